package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
)

// ldapClock is the clock a test moves by hand; certgate's LDAP cache ages
// and staleness window follow it (instanceOptions.now).
type ldapClock struct {
	mu sync.Mutex
	t  time.Time
}

func newLDAPClock() *ldapClock { return &ldapClock{t: time.Now()} }

func (c *ldapClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ldapClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// ldapIdentity is an identity section that binds through s over ldaps,
// with the service account's password in a file and s's CA as caFile,
// both written to dir. The four SPEC bindings are in the cloud CBA order;
// short cache times let tests move past them; extra is appended to the
// ldap block (indented six spaces).
func ldapIdentity(t *testing.T, s *testldap.Server, dir, extra string) string {
	t.Helper()
	caFile := filepath.Join(dir, "ldap-ca.pem")
	s.WriteCA(caFile)
	pwFile := filepath.Join(dir, "ldap-password")
	// The trailing newline is what `echo secret > file` leaves; certgate
	// must not send it as part of the password.
	must(t, os.WriteFile(pwFile, []byte(testldap.ReaderPassword+"\n"), 0o600))
	return fmt.Sprintf(`  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: proxyAddresses}
    - {certificateField: PrincipalName, userAttribute: certificateUserIds}
    - {certificateField: SubjectKeyIdentifier, userAttribute: certificateUserIds}
  directory:
    ldap:
      url: %s
      caFile: %s
      bindDN: %q
      passwordFile: %s
      baseDN: %q
      timeout: 2s
      cacheTTL: 1m
      negativeCacheTTL: 1m
      maxStale: 10m
%s`, s.LDAPSURL, caFile, testldap.ReaderDN, pwFile, testldap.Suffix, extra)
}

// decisionFor returns the last "decision" log line about leaf, nil if none.
func (e *env) decisionFor(leaf *pkigen.Leaf) map[string]any {
	var last map[string]any
	serial := leaf.Cert.SerialNumber.Text(16)
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["msg"] == "decision" && m["serial"] == serial {
			last = m
		}
	}
	return last
}

// admin GETs path on the admin listener.
func (e *env) admin(path string) (int, string) {
	e.t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get("http://" + e.inst.adminAddr() + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// The SPEC bindings against a real directory, through serve and the real
// curl: each admits its user with exactly that user in X-Remote-User; an
// unknown certificate, a disabled account and a UPN made of filter syntax
// are refused in the handshake with their reasons.
func TestServeLDAPBindings(t *testing.T) {
	requireCurl(t)
	s := testldap.Start(t)
	e := newEnv(t, envConfig{identity: ldapIdentity(t, s, t.TempDir(), "")})

	// RFC 4515 specials in a real UPN, and users a wildcard or a broken
	// escape would also match.
	weird := `we*rd(1)\x@contoso.com`
	erin := e.inter.Leaf(t, "Erin") // no UPN, no email: only its SKI binds
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com", Proxy: []string{"SMTP:alice@contoso.com", "smtp:a.smith@contoso.com"}})
	s.AddUser(testldap.User{CN: "carol", UPN: "carol@contoso.com", CertIDs: []string{"X509:<PN>carol.phone@contoso.com"}})
	s.AddUser(testldap.User{CN: "erin", UPN: "erin@contoso.com", CertIDs: []string{"X509:<SKI>" + strings.ToUpper(hex.EncodeToString(erin.Cert.SubjectKeyId))}})
	s.AddUser(testldap.User{CN: "dave", UPN: "dave@contoso.com", Disabled: true})
	s.AddUser(testldap.User{CN: "weird", UPN: weird})
	s.AddUser(testldap.User{CN: "decoy1", UPN: `weXrd(1)\x@contoso.com`})
	s.AddUser(testldap.User{CN: "decoy2", UPN: `we*rd(1)x@contoso.com`})
	s.AddUser(testldap.User{CN: "decoy3", UPN: `we*rd(1)\5cx@contoso.com`})

	admitted := []struct {
		name string
		leaf *pkigen.Leaf
		user string
	}{
		{"upn", e.inter.Leaf(t, "Alice", pkigen.UPN("Alice@Contoso.com")), "alice@contoso.com"},
		{"email primary SMTP", e.inter.Leaf(t, "Alice Mail", pkigen.Email("alice@contoso.com")), "alice@contoso.com"},
		{"email secondary smtp", e.inter.Leaf(t, "A Smith", pkigen.Email("A.Smith@Contoso.com")), "alice@contoso.com"},
		{"certificateUserIds PN", e.inter.Leaf(t, "Carol Phone", pkigen.UPN("carol.phone@contoso.com")), "carol@contoso.com"},
		{"certificateUserIds SKI", erin, "erin@contoso.com"},
		{"upn with filter specials", e.inter.Leaf(t, "Weird", pkigen.UPN(weird)), weird},
	}
	for i, tc := range admitted {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := e.writeLeaf(fmt.Sprint("ok", i), tc.leaf)
			res := e.curl(cert, key)
			if res.code != 200 {
				t.Fatalf("want 200, got %d %q (stderr %s)\nlogs:\n%s", res.code, res.body, res.stderr, e.logs)
			}
			reqs := e.backend.requests()
			if got := reqs[len(reqs)-1].Header.Values("X-Remote-User"); len(got) != 1 || got[0] != tc.user {
				t.Errorf("X-Remote-User = %q, want exactly %q", got, tc.user)
			}
		})
	}

	refused := []struct {
		name   string
		leaf   *pkigen.Leaf
		reason string
	}{
		{"unmapped", e.inter.Leaf(t, "Mallory", pkigen.UPN("mallory@fabrikam.com"), pkigen.Email("mallory@fabrikam.com")), "identity_unmapped"},
		{"disabled by userAccountControl", e.inter.Leaf(t, "Dave", pkigen.UPN("dave@contoso.com")), "user_disabled"},
		{"wildcard upn", e.inter.Leaf(t, "Star", pkigen.UPN("*@contoso.com")), "identity_unmapped"},
		{"filter injection", e.inter.Leaf(t, "Inject", pkigen.UPN("x)(userPrincipalName=*")), "identity_unmapped"},
		{"prefix of the weird upn", e.inter.Leaf(t, "Prefix", pkigen.UPN(`we*rd(1)\x`)), "identity_unmapped"},
	}
	before := len(e.backend.requests())
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := e.writeLeaf(fmt.Sprint("no", i), tc.leaf)
			res := e.curl(cert, key)
			if res.code != 0 || res.exit == 0 {
				t.Fatalf("want a TLS refusal, got HTTP %d %q", res.code, res.body)
			}
			d := e.decisionFor(tc.leaf)
			if d == nil || d["reason"] != tc.reason {
				t.Fatalf("decision = %v, want reason %s", d, tc.reason)
			}
		})
	}
	if n := len(e.backend.requests()) - before; n != 0 {
		t.Fatalf("a refused client reached the backend %d times", n)
	}
	// The password came from the file; it never reaches the log.
	if strings.Contains(e.logs.String(), testldap.ReaderPassword) {
		t.Error("the LDAP bind password appears in the log")
	}
}

// `certgate check` decides with the same LDAP directory serve uses, and
// says directory_unavailable, not identity_unmapped, when it cannot ask.
func TestCheckWithLDAP(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	s.AddUser(testldap.User{CN: "dave", UPN: "dave@contoso.com", Disabled: true})
	e := newEnv(t, envConfig{identity: ldapIdentity(t, s, t.TempDir(), "")})
	cfg := filepath.Join(e.dir, "certgate.yaml")
	alice, _ := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	dave, _ := e.writeLeaf("dave", e.inter.Leaf(t, "Dave", pkigen.UPN("dave@contoso.com")))
	mallory, _ := e.writeLeaf("mallory", e.inter.Leaf(t, "Mallory", pkigen.UPN("mallory@contoso.com")))

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"known user", []string{"check", "--config", cfg, alice}, 0, "accepted: alice@contoso.com (binding PrincipalName->userPrincipalName"},
		{"unknown user", []string{"check", "--config", cfg, mallory}, 1, "rejected: identity_unmapped"},
		{"disabled user", []string{"check", "--config", cfg, dave}, 1, "rejected: user_disabled"},
		{"json", []string{"check", "--config", cfg, "--json", alice}, 0, `"user": "alice@contoso.com"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d (want %d), stdout %q stderr %q, want %q", code, tc.code, out, errs, tc.want)
			}
		})
	}

	s.Stop()
	for _, c := range []string{alice, mallory} {
		code, out, errs := runCLI(t, "check", "--config", cfg, c)
		if code != 1 || !strings.Contains(out, "rejected: directory_unavailable") {
			t.Fatalf("directory down: exit %d, stdout %q stderr %q, want 1 and directory_unavailable", code, out, errs)
		}
	}
}

// The directory going away mid-run: users answered before are admitted
// from the cache until maxStale past their TTL and /readyz stays 200 for
// that window (pulling every replica out of a balancer at the first LDAP
// blip would turn a directory hiccup into an outage); after it, they are
// refused with directory_unavailable, never identity_unmapped, and /readyz
// is 503 naming the directory. When slapd is back, both recover. Time is
// the injected clock; nothing waits for a TTL.
func TestServeLDAPOutage(t *testing.T) {
	requireCurl(t)
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	s.AddUser(testldap.User{CN: "bob", UPN: "bob@contoso.com"})
	clock := newLDAPClock()
	e := newEnv(t, envConfig{rejectWith: "http", identity: ldapIdentity(t, s, t.TempDir(), ""), now: clock.Now})
	alice, aliceKey := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	bob, bobKey := e.writeLeaf("bob", e.inter.Leaf(t, "Bob", pkigen.UPN("bob@contoso.com")))
	mallory, malloryKey := e.writeLeaf("mallory", e.inter.Leaf(t, "Mallory", pkigen.UPN("mallory@contoso.com")))

	expect := func(step, cert, key string, code int, body string) {
		t.Helper()
		res := e.curl(cert, key)
		if res.code != code || !strings.Contains(res.body, body) {
			t.Fatalf("%s: %s: want %d %q, got %d %q (stderr %s)", step, filepath.Base(cert), code, body, res.code, res.body, res.stderr)
		}
	}
	ready := func(step string, code int, body ...string) {
		t.Helper()
		got, text := e.admin("/readyz")
		if got != code {
			t.Fatalf("%s: /readyz = %d %q, want %d", step, got, text, code)
		}
		for _, b := range body {
			if !strings.Contains(text, b) {
				t.Fatalf("%s: /readyz body %q does not contain %q", step, text, b)
			}
		}
	}

	// Up: alice found, mallory known not to exist (cached as such).
	ready("up", 200)
	expect("up", alice, aliceKey, 200, "hello alice@contoso.com")
	expect("up", mallory, malloryKey, 403, "identity_unmapped")

	s.Stop()
	clock.Advance(5 * time.Minute) // past cacheTTL and negativeCacheTTL (1m), within maxStale (10m)
	expect("down, within maxStale", alice, aliceKey, 200, "hello alice@contoso.com")
	// The answer "no such user" is served as stale as "alice" is.
	expect("down, within maxStale", mallory, malloryKey, 403, "identity_unmapped")
	// Never asked before: the directory cannot say she does not exist.
	expect("down, within maxStale", bob, bobKey, 503, "directory_unavailable")
	ready("down, within maxStale", 200)

	// A reload that leaves the LDAP settings alone keeps the directory and
	// its cache: rebuilding it now would refuse alice at once.
	must(t, e.inst.reload(t.Context(), "test"))
	expect("down, after a reload", alice, aliceKey, 200, "hello alice@contoso.com")

	clock.Advance(7 * time.Minute) // 12m: past TTL+maxStale for both answers
	expect("down, past maxStale", alice, aliceKey, 503, "directory_unavailable")
	expect("down, past maxStale", mallory, malloryKey, 503, "directory_unavailable")
	ready("down, past maxStale", 503, "directory", s.LDAPSURL)
	_, metrics := e.admin("/metrics")
	if !strings.Contains(metrics, `certgate_auth_decisions_total{reason="directory_unavailable"}`) {
		t.Error("/metrics has no directory_unavailable decisions")
	}

	s.Restart()
	expect("back", alice, aliceKey, 200, "hello alice@contoso.com")
	expect("back", bob, bobKey, 200, "hello bob@contoso.com")
	expect("back", mallory, malloryKey, 403, "identity_unmapped")
	ready("back", 200)

	for _, r := range e.backend.requests() {
		if u := r.Header.Get("X-Remote-User"); u != "alice@contoso.com" && u != "bob@contoso.com" {
			t.Errorf("backend saw X-Remote-User %q", u)
		}
	}
}

// identity.directory.ldap.attributes.userAccountControl defaults to AD's
// userAccountControl: an AD site gets disabled-account checks without
// configuring them, and an entry that lacks the attribute (not an AD user
// object) is refused rather than trusted. A non-AD directory says so with
// userAccountControl: "" and names its own flag, or has none.
func TestServeLDAPAccountStateDefaults(t *testing.T) {
	requireCurl(t)
	s := testldap.Start(t)
	// AD user objects carry userAccountControl: 512 enabled, 514 disabled.
	s.AddUser(testldap.User{CN: "ad-enabled", UPN: "enabled@contoso.com"})
	s.AddUser(testldap.User{CN: "ad-disabled", UPN: "disabled@contoso.com", Disabled: true})
	// A non-AD entry has no userAccountControl, only its own flag.
	s.Add("cn=plain,"+testldap.UsersDN, map[string][]string{
		"objectClass": {"user"}, "cn": {"plain"}, "sn": {"plain"},
		"userPrincipalName": {"plain@contoso.com"}, "certgateAccountEnabled": {"TRUE"},
	})
	cases := []struct {
		name  string
		attrs string
		want  map[string]int // UPN → HTTP status
	}{
		{"defaults", "", map[string]int{"enabled": 200, "disabled": 403, "plain": 403}},
		{"explicit userAccountControl", "      attributes: {userAccountControl: userAccountControl}\n",
			map[string]int{"enabled": 200, "disabled": 403, "plain": 403}},
		{"non-AD: own flag", "      attributes: {userAccountControl: \"\", accountEnabled: certgateAccountEnabled}\n",
			map[string]int{"enabled": 200, "disabled": 403, "plain": 200}},
		{"non-AD: no flag", "      attributes: {userAccountControl: \"\"}\n",
			map[string]int{"enabled": 200, "disabled": 200, "plain": 200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envConfig{rejectWith: "http", identity: ldapIdentity(t, s, t.TempDir(), tc.attrs)})
			for _, who := range []string{"enabled", "disabled", "plain"} {
				cert, key := e.writeLeaf(who, e.inter.Leaf(t, who, pkigen.UPN(who+"@contoso.com")))
				res := e.curl(cert, key)
				want := tc.want[who]
				if res.code != want {
					t.Errorf("%s: got %d %q, want %d", who, res.code, res.body, want)
				} else if want == 403 && !strings.Contains(res.body, "user_disabled") {
					t.Errorf("%s: refused with %q, want user_disabled", who, res.body)
				}
			}
		})
	}
}

// `certgate validate` refuses an inline LDAP password by name, with the
// file and line, and without echoing the secret; a well-formed LDAP config
// validates without contacting the directory.
func TestValidateLDAPConfig(t *testing.T) {
	e := newEnv(t, envConfig{})
	base, err := os.ReadFile(filepath.Join(e.dir, "certgate.yaml"))
	must(t, err)
	const fileDir = "  directory:\n    file: users.yaml\n"
	if !strings.Contains(string(base), fileDir) {
		t.Fatalf("the env's config has no %q", fileDir)
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "ldap-ca.pem"), pkigen.CertPEM(e.root.Cert), 0o644))
	must(t, os.WriteFile(filepath.Join(e.dir, "ldap-password"), []byte("s3cret-from-file\n"), 0o600))
	ldap := func(lines string) string {
		return "  directory:\n    ldap:\n      url: ldaps://127.0.0.1:1\n      caFile: ldap-ca.pem\n" +
			"      bindDN: \"cn=certgate,ou=service,dc=contoso,dc=com\"\n      baseDN: \"dc=contoso,dc=com\"\n" + lines
	}
	cases := []struct {
		name    string
		dir     string
		code    int
		want    []string
		notWant string
	}{
		{"inline password", ldap("      password: hunter2-inline\n"), 2,
			[]string{"ldap.yaml:", `identity.directory.ldap: unknown key "password"`, "passwordFile or passwordEnv"}, "hunter2-inline"},
		{"password file", ldap("      passwordFile: ldap-password\n"), 0, []string{"OK"}, "s3cret-from-file"},
		{"missing password file", ldap("      passwordFile: nope\n"), 2, []string{"identity.directory.ldap.passwordFile", "nope"}, ""},
		{"missing caFile", strings.Replace(ldap("      passwordFile: ldap-password\n"), "ldap-ca.pem", "missing-ca.pem", 1), 2,
			[]string{"identity.directory.ldap.caFile", "missing-ca.pem"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(e.dir, "ldap.yaml")
			must(t, os.WriteFile(path, []byte(strings.Replace(string(base), fileDir, tc.dir, 1)), 0o644))
			code, out, errs := runCLI(t, "validate", "--config", path)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out, errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("output %q %q does not contain %q", out, errs, w)
				}
			}
			if tc.notWant != "" && strings.Contains(out+errs, tc.notWant) {
				t.Errorf("output echoes the secret %q: %q %q", tc.notWant, out, errs)
			}
		})
	}
}

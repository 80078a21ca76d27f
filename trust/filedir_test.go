package trust_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/trust"
)

const specUsers = `# the directory of the quickstart
users:
  - userPrincipalName: alice@contoso.com   # Alice
    proxyAddresses: ["SMTP:alice@contoso.com", "smtp:a.smith@contoso.com", "SIP:alice@contoso.com"]
    certificateUserIds: ["X509:<SKI>5F3A01", "X509:<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<SR>0A1B2C"]
    accountEnabled: true
    stsRefreshTokensValidFrom: "2026-11-25T10:00:00Z"   # optional
  - userPrincipalName: Bob@Contoso.com
    proxyAddresses: ["SIP:bob@contoso.com"]
    accountEnabled: false
  - userPrincipalName: carol@contoso.com
    proxyAddresses: ["smtp:team@contoso.com"]
  - userPrincipalName: dave@contoso.com
    proxyAddresses: ["SMTP:team@contoso.com"]
    stsRefreshTokensValidFrom: 2026-11-25T10:00:00.5+01:00
`

func upnsOf(users []trust.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.UserPrincipalName
	}
	return out
}

func TestParseUsers(t *testing.T) {
	d := parseDir(t, specUsers)
	users := d.Users()
	if got := upnsOf(users); !slices.Equal(got, []string{"alice@contoso.com", "Bob@Contoso.com", "carol@contoso.com", "dave@contoso.com"}) {
		t.Fatalf("users %q", got)
	}
	if !users[0].AccountEnabled || users[1].AccountEnabled || !users[2].AccountEnabled {
		t.Fatalf("accountEnabled: %v %v %v (absent must mean true)", users[0].AccountEnabled, users[1].AccountEnabled, users[2].AccountEnabled)
	}
	if want := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC); !users[0].SessionsValidFrom.Equal(want) {
		t.Fatalf("stsRefreshTokensValidFrom %v, want %v", users[0].SessionsValidFrom, want)
	}
	if want := time.Date(2026, 11, 25, 9, 0, 0, 5e8, time.UTC); !users[3].SessionsValidFrom.Equal(want) {
		t.Fatalf("unquoted timestamp %v, want %v", users[3].SessionsValidFrom, want)
	}
	if !users[2].SessionsValidFrom.IsZero() {
		t.Fatal("absent stsRefreshTokensValidFrom is not zero")
	}

	ctx := context.Background()
	tests := []struct {
		attr  trust.Attribute
		value string
		want  []string
	}{
		{trust.AttrUserPrincipalName, "alice@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrUserPrincipalName, "ALICE@CONTOSO.COM", []string{"alice@contoso.com"}},
		{trust.AttrUserPrincipalName, "bob@contoso.com", []string{"Bob@Contoso.com"}},
		{trust.AttrUserPrincipalName, "a.smith@contoso.com", nil},
		{trust.AttrProxyAddresses, "a.smith@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "A.Smith@Contoso.COM", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "SMTP:a.smith@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "team@contoso.com", []string{"carol@contoso.com", "dave@contoso.com"}},
		// Other prefixes stay: SIP:bob@ is not the e-mail address bob@.
		{trust.AttrProxyAddresses, "bob@contoso.com", nil},
		{trust.AttrProxyAddresses, "sip:BOB@contoso.com", []string{"Bob@Contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<SKI>5F3A01", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "x509:<ski>5f3a01", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<SKI>5F3A0", nil},
		{trust.AttrCertificateUserIDs, "X509:<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<SR>0A1B2C", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<i>CN=CONTOSO-DC-CA,DC=contoso,DC=com<sr>0a1b2c", []string{"alice@contoso.com"}},
		// DNs are compared normalised (case, spaces) and in either
		// order, as AD tools write them.
		{trust.AttrCertificateUserIDs, "X509:<I>cn=contoso-dc-ca, DC=contoso,DC=com<SR>0A1B2C", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<I>DC=com,DC=contoso,CN=CONTOSO-DC-CA<SR>0A1B2C", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<I>CN=CONTOSO-DC-CA,DC=contoso,DC=org<SR>0A1B2C", nil},
		{trust.AttrCertificateUserIDs, "5F3A01", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s=%s", tc.attr, tc.value), func(t *testing.T) {
			got, err := d.Lookup(ctx, tc.attr, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(upnsOf(got), tc.want) {
				t.Fatalf("got %q, want %q", upnsOf(got), tc.want)
			}
		})
	}
	if _, err := d.Lookup(ctx, "mail", "x"); err == nil {
		t.Fatal("unknown attribute accepted")
	}
}

func TestFileDirectoryLookupDoesNotAllocate(t *testing.T) {
	d := parseDir(t, specUsers)
	ctx := context.Background()
	for _, q := range []struct {
		attr  trust.Attribute
		value string
	}{
		{trust.AttrUserPrincipalName, "alice@contoso.com"},
		{trust.AttrProxyAddresses, "a.smith@contoso.com"},
		{trust.AttrCertificateUserIDs, "X509:<SKI>5F3A01"},
		{trust.AttrCertificateUserIDs, "X509:<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<SR>0A1B2C"},
	} {
		n := testing.AllocsPerRun(100, func() {
			if u, _ := d.Lookup(ctx, q.attr, q.value); len(u) != 1 {
				t.Fatalf("%s=%s not found", q.attr, q.value)
			}
		})
		if n != 0 {
			t.Errorf("Lookup(%s, %s) allocates %v times", q.attr, q.value, n)
		}
	}
}

func TestParseUsersErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty file", "", "users.yaml: empty file"},
		{"comment only", "# nothing\n", "users.yaml: empty file"},
		{"not a mapping", "- a\n", "users.yaml:1: want a mapping"},
		{"missing users", "people: []\n", `users.yaml:1: unknown key "people"`},
		{"users not a list", "users: alice\n", "users.yaml:1: users: want a list"},
		{"user not a mapping", "users:\n  - alice@contoso.com\n", "users.yaml:2: user: want a mapping"},
		{"unknown key", "users:\n  - userPrincipalName: a@b\n    mail: a@b\n", `users.yaml:3: unknown key "mail"`},
		{"repeated key", "users:\n  - userPrincipalName: a@b\n    userPrincipalName: c@d\n", `users.yaml:3: repeated key "userPrincipalName"`},
		{"missing UPN", "users:\n  - accountEnabled: true\n", "users.yaml:2: user without a userPrincipalName"},
		{"empty UPN", "users:\n  - userPrincipalName: \"\"\n", "users.yaml:2: user without a userPrincipalName"},
		{"UPN is a list", "users:\n  - userPrincipalName: [a]\n", "users.yaml:2: userPrincipalName: want a single value"},
		{"duplicate UPN ignoring case", "users:\n  - userPrincipalName: a@b\n  - userPrincipalName: A@B\n", `users.yaml:3: duplicate userPrincipalName "A@B" (first at line 2)`},
		{"bad time", "users:\n  - userPrincipalName: a@b\n    stsRefreshTokensValidFrom: \"2026-11-25\"\n", `users.yaml:3: stsRefreshTokensValidFrom: "2026-11-25" is not an RFC 3339 time`},
		{"bad enabled", "users:\n  - userPrincipalName: a@b\n    accountEnabled: \"yes\"\n", "users.yaml:3: accountEnabled: want true or false"},
		{"proxyAddresses not a list", "users:\n  - userPrincipalName: a@b\n    proxyAddresses: a@b\n", "users.yaml:3: proxyAddresses: want a list"},
		{"empty proxy address", "users:\n  - userPrincipalName: a@b\n    proxyAddresses: [\"\"]\n", "users.yaml:3: proxyAddresses: want non-empty strings"},
		{"nested certificateUserIds", "users:\n  - userPrincipalName: a@b\n    certificateUserIds: [[x]]\n", "users.yaml:3: certificateUserIds: want non-empty strings"},
		{"alias", "users:\n  - &u\n    userPrincipalName: a@b\n  - *u\n", "users.yaml:4: YAML aliases are not supported"},
		{"syntax error", "users:\n  - userPrincipalName: a@b\n   bad: [\n", "users.yaml:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := trust.ParseUsers([]byte(tc.doc), "users.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want prefix %q", err, tc.want)
			}
			var pe *trust.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *trust.ParseError", err)
			}
		})
	}
}

func TestParseUsersNulls(t *testing.T) {
	d := parseDir(t, "users:\n  - userPrincipalName: a@b\n    proxyAddresses:\n    certificateUserIds: ~\n    accountEnabled:\n    stsRefreshTokensValidFrom:\n")
	u := d.Users()[0]
	if !u.AccountEnabled || len(u.ProxyAddresses) != 0 || !u.SessionsValidFrom.IsZero() {
		t.Fatalf("nulls: %+v", u)
	}
	if got := parseDir(t, "users: []\n").Users(); len(got) != 0 {
		t.Fatalf("users %v", got)
	}
}

func TestLoadUsers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(path, []byte(specUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := trust.LoadUsers(path)
	if err != nil || len(d.Users()) != 4 {
		t.Fatalf("LoadUsers: %v", err)
	}
	if _, err := trust.LoadUsers(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("users:\n  - userPrincipalName: a@b\n    typo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.LoadUsers(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":3: ") {
		t.Fatalf("error %v does not start with %s:3:", err, bad)
	}
}

func TestSetSessionsValidFrom(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(path, []byte(specUsers), 0o640); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2027, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))

	// carol has no stsRefreshTokensValidFrom yet; alice has one (replaced).
	for _, upn := range []string{"CAROL@contoso.com", "alice@contoso.com"} {
		if err := trust.SetSessionsValidFrom(path, upn, when); err != nil {
			t.Fatalf("%s: %v", upn, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, keep := range []string{"# the directory of the quickstart", "# Alice", "# optional", `"2027-01-02T02:04:05.0000006Z"`} {
		if !strings.Contains(text, keep) {
			t.Errorf("edited file lost %q:\n%s", keep, text)
		}
	}
	d, err := trust.LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	users := d.Users()
	for _, i := range []int{0, 2} {
		if !users[i].SessionsValidFrom.Equal(when) {
			t.Errorf("%s: %v, want %v", users[i].UserPrincipalName, users[i].SessionsValidFrom, when)
		}
	}
	if !users[1].SessionsValidFrom.IsZero() || !users[3].SessionsValidFrom.Equal(time.Date(2026, 11, 25, 9, 0, 0, 5e8, time.UTC)) {
		t.Errorf("other users changed: %v %v", users[1].SessionsValidFrom, users[3].SessionsValidFrom)
	}
	if got, _ := d.Lookup(context.Background(), trust.AttrProxyAddresses, "a.smith@contoso.com"); len(got) != 1 {
		t.Error("proxyAddresses lost in the rewrite")
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", info.Mode().Perm(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}

	// Refusals leave the file as it is.
	before, _ := os.ReadFile(path)
	if err := trust.SetSessionsValidFrom(path, "mallory@contoso.com", when); err == nil || !strings.Contains(err.Error(), `no user "mallory@contoso.com"`) {
		t.Fatalf("unknown user: %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("file changed by a refused edit")
	}
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte("users:\n  - userPrincipalName: a@b\n    typo: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := trust.SetSessionsValidFrom(broken, "a@b", when); err == nil || !strings.Contains(err.Error(), ":3: unknown key") {
		t.Fatalf("broken file: %v", err)
	}
	if err := trust.SetSessionsValidFrom(filepath.Join(dir, "missing.yaml"), "a@b", when); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSetSessionsValidFromFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(target, []byte(specUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "users.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	when := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := trust.SetSessionsValidFrom(link, "bob@contoso.com", when); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a file")
	}
	d, err := trust.LoadUsers(target)
	if err != nil || !d.Users()[1].SessionsValidFrom.Equal(when) {
		t.Fatalf("target not updated: %v", err)
	}
}

// FuzzParseUsers: arbitrary documents never panic, errors are located
// ParseErrors, and every accepted user is found by its own UPN.
func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(specUsers))
	f.Add([]byte("users: []\n"))
	f.Add([]byte("users:\n  - &u\n    userPrincipalName: a@b\n  - *u\n"))
	f.Add([]byte("users:\n  - userPrincipalName: a@b\n    stsRefreshTokensValidFrom: 2026-01-01T00:00:00Z\n    accountEnabled: false\n"))
	f.Add([]byte("users: {a: [b, {c: d}]}\n"))
	f.Add([]byte("users:\n  - userPrincipalName: a\n  - userPrincipalName: A\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := trust.ParseUsers(data, "users.yaml")
		if err != nil {
			var pe *trust.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a ParseError", err, err)
			}
			return
		}
		for _, u := range d.Users() {
			got, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, u.UserPrincipalName)
			if err != nil || len(got) != 1 || !strings.EqualFold(got[0].UserPrincipalName, u.UserPrincipalName) {
				t.Fatalf("user %q not found by its UPN: %v %v", u.UserPrincipalName, got, err)
			}
		}
	})
}

func BenchmarkFileDirectoryLookup(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("users:\n")
	for i := range 10000 {
		fmt.Fprintf(&doc, "  - userPrincipalName: user%d@contoso.com\n    proxyAddresses: [\"SMTP:user%d@contoso.com\"]\n    certificateUserIds: [\"X509:<SKI>%040X\"]\n", i, i, i)
	}
	d := parseDir(b, doc.String())
	ctx := context.Background()
	queries := []struct {
		name  string
		attr  trust.Attribute
		value string
	}{
		{"upn", trust.AttrUserPrincipalName, "user5000@contoso.com"},
		{"proxy", trust.AttrProxyAddresses, "User5000@Contoso.com"},
		{"cuid", trust.AttrCertificateUserIDs, fmt.Sprintf("X509:<SKI>%040X", 5000)},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if u, _ := d.Lookup(ctx, q.attr, q.value); len(u) != 1 {
					b.Fatal("not found")
				}
			}
		})
	}
}

// asciiCase shifts the ASCII letters in [lo, hi] by delta.
func asciiCase(s string, lo, hi byte, delta int) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = byte(int(c) + delta)
		}
	}
	return string(b)
}

// FuzzCertificateUserIDs: whatever an administrator writes as a
// certificateUserIds value, the directory finds it by that same value and by
// the value with its "X509:<TAG>" prefix in another case; nothing panics.
func FuzzCertificateUserIDs(f *testing.F) {
	for _, s := range []string{
		"X509:<PN>alice@contoso.com", "x509:<ski>5f3a", "X509:<I>CN=CA,DC=com<sr>0a", "X509:<I>no marker",
		"X509:<", "X509:<>", "X509:<S>", "plain", "X509:<SHA1-PUKEY>ab<SR>", "X509:<I><SR>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if strings.TrimSpace(id) == "" {
			return
		}
		doc := fmt.Sprintf("users:\n  - userPrincipalName: a@b\n    certificateUserIds: [%q]\n", id)
		d, err := trust.ParseUsers([]byte(doc), "users.yaml")
		if err != nil {
			return // not every string survives YAML quoting (%q is Go's, not YAML's)
		}
		stored := d.Users()[0].CertificateUserIDs[0]
		queries := []string{stored}
		if len(stored) >= 6 && strings.EqualFold(stored[:5], "x509:") {
			if end := strings.IndexByte(stored, '>'); stored[5:6] == "<" && end > 5 {
				queries = append(queries, "x509:"+asciiCase(stored[5:end], 'A', 'Z', 'a'-'A')+stored[end:], "X509:"+asciiCase(stored[5:end], 'a', 'z', 'A'-'a')+stored[end:])
			}
		}
		for _, q := range queries {
			got, err := d.Lookup(context.Background(), trust.AttrCertificateUserIDs, q)
			if err != nil || len(got) != 1 {
				t.Fatalf("stored %q, lookup %q: %v %v", stored, q, got, err)
			}
		}
	})
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/eas/easclient"
	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/internal/testsogo"
)

// This file puts certgate in front of a real groupware server: SOGo, with
// its ActiveSync bundle, its PostgreSQL tables, memcached, dovecot IMAP
// and slapd as its user directory (internal/testsogo). certgate signs the
// user in by certificate and passes the identity in the header SOGo
// trusts from its front proxy, x-webobjects-remote-user; no password
// exists anywhere in the test.

const sogoHeader = "x-webobjects-remote-user"

// sogoFront is certgate in front of a running SOGo stack.
type sogoFront struct {
	*env
	stack *testsogo.Stack
	alice *pkigen.Leaf
	bob   *pkigen.Leaf
}

func newSOGoFront(t *testing.T) *sogoFront {
	t.Helper()
	dir := testldap.Start(t)
	dir.AddUser(testldap.User{CN: "alice", UPN: aliceUPN, Proxy: []string{"SMTP:" + aliceUPN}, Mail: aliceUPN})
	dir.AddUser(testldap.User{CN: "bob", UPN: "bob@contoso.com", Proxy: []string{"SMTP:bob@contoso.com"}, Mail: "bob@contoso.com"})
	stack := testsogo.Start(t, testsogo.Directory{
		URL: dir.LDAPURL, BindDN: testldap.ReaderDN, BindPassword: testldap.ReaderPassword,
		BaseDN: testldap.UsersDN, UIDField: "userPrincipalName",
	})
	// certgate binds certificates through users.yaml: `certgate user
	// revoke-sessions` edits that file, and a change to it is what cuts a
	// user's live connections (an LDAP directory is only read, per
	// connection, at decision time).
	e := newEnv(t, envConfig{
		rejectWith: "http",
		identity: `  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
  directory:
    file: users.yaml
  header: ` + sogoHeader + "\n",
		users: `users:
  - userPrincipalName: alice@contoso.com
    proxyAddresses: ["SMTP:alice@contoso.com"]
    accountEnabled: true
  - userPrincipalName: bob@contoso.com
    proxyAddresses: ["SMTP:bob@contoso.com"]
    accountEnabled: true
`,
		// SOGo answers ActiveSync under /SOGo; phones ask at the root.
		// sogod closes every connection after one response without a
		// "Connection: close" (SOGo's Apache sample sets
		// proxy-nokeepalive): no backend keep-alive. Its static files
		// come from a file server, as Apache's alias serves them.
		routes: fmt.Sprintf(`  - name: eas
    kind: eas
    pathPrefix: /Microsoft-Server-ActiveSync
    backend: %s/SOGo
    backendKeepAlive: false
  - name: resources
    kind: web
    pathPrefix: /SOGo.woa/WebServerResources/
    backend: %s
  - name: web
    kind: web
    pathPrefix: /
    backend: %s
    backendKeepAlive: false
`, stack.URL, stack.ResourcesURL, stack.URL),
	})
	return &sogoFront{
		env:   e,
		stack: stack,
		alice: e.inter.Leaf(t, "Alice", pkigen.UPN(aliceUPN)),
		bob:   e.inter.Leaf(t, "Bob", pkigen.UPN("bob@contoso.com")),
	}
}

// easClient is a phone holding leaf, for User user. It has no overall
// timeout: a Ping is held for minutes; each call bounds itself with its
// context.
func (f *sogoFront) easClient(leaf *pkigen.Leaf, user, device string) *easclient.Client {
	tr := &http.Transport{TLSClientConfig: f.mtlsConfig(leaf), MaxConnsPerHost: 1, DisableCompression: true}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &easclient.Client{HTTP: &http.Client{Transport: tr}, URL: f.url("/Microsoft-Server-ActiveSync"),
		User: user, DeviceID: device, DeviceType: "iPhone", ProtocolVersion: "14.1"}
}

// message is a small RFC 5322 message with a subject unique to the run.
func message(from, to, subject string) []byte {
	return []byte("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + randomHex(8) + "@contoso.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Sent through the certgate SOGo test.\r\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// easCall sends one command and decodes the answer, failing the test on
// anything but 200 with a WBXML body (or an empty one when empty is ok).
func easCall(t *testing.T, step string, call func() (*http.Response, error)) *wbxml.Node {
	t.Helper()
	resp, err := call()
	return easDecode(t, step, resp, err)
}

func easDecode(t *testing.T, step string, resp *http.Response, err error) *wbxml.Node {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("%s: HTTP %d %q", step, resp.StatusCode, b)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s: reading: %v", step, err)
	}
	if len(b) == 0 {
		return nil
	}
	n, err := wbxml.Decode(b)
	if err != nil {
		t.Fatalf("%s: %v (% x)", step, err, b)
	}
	return n
}

func textOf(n *wbxml.Node, page, tag byte) string {
	if f := n.Find(page, tag); f != nil {
		return f.Text
	}
	return ""
}

// subjects lists the Email subjects of the Adds in a Sync response.
func subjects(n *wbxml.Node) []string {
	var out []string
	for _, add := range n.FindAll(wbxml.PageAirSync, wbxml.AirSyncAdd) {
		out = append(out, textOf(add, wbxml.PageEmail, wbxml.EmailSubject))
	}
	return out
}

// pingResult is a Ping's outcome, as a goroutine saw it.
type pingResult struct {
	node *wbxml.Node
	code int
	err  error
	at   time.Time
}

func startPing(c *easclient.Client, heartbeat time.Duration, folder string) <-chan pingResult {
	ch := make(chan pingResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), heartbeat+time.Minute)
		defer cancel()
		resp, err := c.PingFolders(ctx, heartbeat, "Email", folder)
		if err != nil {
			ch <- pingResult{err: err, at: time.Now()}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		r := pingResult{code: resp.StatusCode, err: err, at: time.Now()}
		if err == nil && resp.StatusCode == http.StatusOK {
			r.node, r.err = wbxml.Decode(b)
		}
		ch <- r
	}()
	return ch
}

// waitTap waits until the tap has seen n occurrences of marker, so a
// long poll is known to be at SOGo before the test acts.
func (f *sogoFront) waitTap(t *testing.T, marker string, n int) {
	t.Helper()
	f.waitFor(t, marker, n, func() string { return string(f.stack.Tap.Bytes()) })
}

func (f *sogoFront) waitFor(t *testing.T, marker string, n int, text func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(text(), marker) < n {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %q #%d at SOGo", marker, n)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's progress
	}
}

// TestSOGoThroughCertgate is the phone and the browser of the person this
// is for: an EAS profile holding alice's certificate syncs her mail from
// SOGo, a Ping wakes up on new mail, SendMail sends; the web mail opens in
// Chromium with the certificate and no login form; a spoofed identity
// header never reaches SOGo; bob's certificate cannot speak for alice; and
// `certgate user revoke-sessions` cuts alice's live Ping.
func TestSOGoThroughCertgate(t *testing.T) {
	f := newSOGoFront(t)
	first := "Welcome " + randomHex(4)
	f.stack.Deliver(aliceUPN, message("bob@contoso.com", aliceUPN, first))

	t.Run("eas", func(t *testing.T) { f.easSession(t, first) })
	t.Run("h2 and base64 query", func(t *testing.T) { f.otherForms(t) })
	t.Run("spoofed header", func(t *testing.T) { f.spoof(t) })
	t.Run("bob as alice", func(t *testing.T) { f.bobAsAlice(t) })
	t.Run("browser", func(t *testing.T) { f.browser(t, first) })
	// Last: it leaves alice refused.
	t.Run("revoke sessions", func(t *testing.T) { f.revoke(t) })

	// Whatever the client sent, SOGo only ever saw certgate's identity,
	// once in every request: nothing reached it around certgate (an
	// absolute redirect to SOGo's own address would send the browser
	// there).
	ids := f.stack.Tap.HeaderValues(sogoHeader)
	for _, v := range ids {
		if v != aliceUPN {
			t.Errorf("SOGo received %s: %q", sogoHeader, v)
		}
	}
	if n := f.stack.Tap.Requests(); n != len(ids) {
		t.Errorf("SOGo received %d requests and %d %s headers", n, len(ids), sogoHeader)
	}
	if t.Failed() {
		t.Logf("sogod log:\n%s", tailString(f.stack.Log("sogod"), 6000))
		t.Logf("certgate log:\n%s", tailString(f.logs.String(), 4000))
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// easSession is what a phone does after its EAS profile is installed.
func (f *sogoFront) easSession(t *testing.T, firstSubject string) {
	c := f.easClient(f.alice, aliceUPN, "SOGoE2EPhone1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs  %s", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	// 1. OPTIONS: what the server speaks.
	resp, err := c.Options(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	versions, commands := resp.Header.Get("MS-ASProtocolVersions"), resp.Header.Get("MS-ASProtocolCommands")
	if resp.StatusCode != http.StatusOK || !strings.Contains(versions, "14.1") || !strings.Contains(commands, "Ping") {
		t.Fatalf("OPTIONS: %d versions %q commands %q", resp.StatusCode, versions, commands)
	}
	step("OPTIONS 200: MS-ASProtocolVersions %s; MS-ASProtocolCommands has Ping and SendMail: %v", versions, strings.Contains(commands, "SendMail"))

	// 2. FolderSync, with Provision first if the server asks (449).
	resp, err = c.FolderSync(ctx, "0")
	if err == nil && resp.StatusCode == 449 {
		resp.Body.Close()
		step("FolderSync 449: the server wants Provision")
		prov := easCall(t, "Provision", func() (*http.Response, error) { return c.Provision(ctx, "0", "") })
		key := textOf(prov, wbxml.PageProvision, wbxml.ProvisionPolicyKey)
		ack := easCall(t, "Provision ack", func() (*http.Response, error) { return c.Provision(ctx, key, "1") })
		final := textOf(ack, wbxml.PageProvision, wbxml.ProvisionPolicyKey)
		fmt.Sscan(final, &c.PolicyKey)
		step("Provision: temporary key %s, final key %s", key, final)
		resp, err = c.FolderSync(ctx, "0")
	}
	fs := easDecode(t, "FolderSync", resp, err)
	if st := textOf(fs, wbxml.PageFolderHierarchy, wbxml.FolderStatus); st != "1" {
		t.Fatalf("FolderSync status %q", st)
	}
	inbox := ""
	var names []string
	for _, add := range fs.FindAll(wbxml.PageFolderHierarchy, wbxml.FolderAdd) {
		names = append(names, textOf(add, wbxml.PageFolderHierarchy, wbxml.FolderDisplayName))
		if textOf(add, wbxml.PageFolderHierarchy, wbxml.FolderType) == "2" { // default Inbox
			inbox = textOf(add, wbxml.PageFolderHierarchy, wbxml.FolderServerID)
		}
	}
	if inbox == "" {
		t.Fatalf("FolderSync has no Inbox (type 2) among %v", names)
	}
	step("FolderSync 200: %d folders %v; Inbox is %q", len(names), names, inbox)

	// 3. Sync of the inbox: a key, then the changes.
	syncKey := "0"
	sync := func(what string) []string {
		t.Helper()
		body := easclient.SyncRequest(syncKey, inbox)
		if syncKey != "0" {
			body = easclient.SyncChangesRequest(syncKey, inbox, 50)
		}
		n := easCall(t, what, func() (*http.Response, error) { return c.Sync(ctx, body) })
		if n == nil {
			// An empty 200 is MS-ASCMD's "nothing changed".
			step("%s 200: empty body (no changes)", what)
			return nil
		}
		if st := textOf(n, wbxml.PageAirSync, wbxml.AirSyncStatus); st != "1" {
			t.Fatalf("%s: status %q", what, st)
		}
		syncKey = textOf(n, wbxml.PageAirSync, wbxml.AirSyncSyncKey)
		s := subjects(n)
		step("%s 200: SyncKey %s, %d new: %q", what, syncKey, len(s), s)
		return s
	}
	sync("Sync (key 0)")
	if got := sync("Sync (changes)"); !contains(got, firstSubject) {
		t.Fatalf("the delivered message %q is not in the inbox Sync: %q", firstSubject, got)
	}
	// Until a Sync comes back empty, SOGo's stored key trails the mailbox
	// and a Ping answers "changed" at once: a phone syncs again.
	if got := sync("Sync (until empty)"); len(got) != 0 {
		t.Fatalf("a second Sync found more: %q", got)
	}

	// 4. Ping: held until a message arrives. The message is delivered once
	// SOGo has looked at the mailbox and found nothing new (its IMAP log
	// shows the Ping's SELECT completed and the Ping is still open), so
	// the time measured is a real wake-up from its polling sleep.
	const heartbeat = 300 * time.Second
	const pingMarker = "<HeartbeatInterval>300</HeartbeatInterval>"
	held := strings.Count(f.stack.Log("sogod"), pingMarker)
	ping := startPing(c, heartbeat, inbox)
	f.waitFor(t, "Select completed", 1, func() string {
		// What sogod logged after it read this Ping.
		log := f.stack.Log("sogod")
		for i := 0; i <= held; i++ {
			j := strings.Index(log, pingMarker)
			if j < 0 {
				return ""
			}
			log = log[j+len(pingMarker):]
		}
		return log
	})
	select {
	case r := <-ping:
		t.Fatalf("the Ping returned before any delivery: %d %v %v", r.code, r.err, r.node)
	default:
	}
	sentAt := time.Now()
	second := "New mail " + randomHex(4)
	step("Ping (HeartbeatInterval %ds) held at SOGo; delivering %q", int(heartbeat/time.Second), second)
	f.stack.Deliver(aliceUPN, message("bob@contoso.com", aliceUPN, second))
	var r pingResult
	select {
	case r = <-ping:
	case <-time.After(60 * time.Second):
		t.Fatal("the Ping did not return within 60s of the delivery")
	}
	if r.err != nil || r.code != http.StatusOK {
		t.Fatalf("Ping: %d %v", r.code, r.err)
	}
	if st := textOf(r.node, wbxml.PagePing, wbxml.PingStatus); st != "2" {
		t.Fatalf("Ping status %q, want 2 (changes)", st)
	}
	step("Ping 200: Status 2 (changes in %q), %.2fs after the delivery", textOf(r.node, wbxml.PagePing, wbxml.PingFolder), r.at.Sub(sentAt).Seconds())
	if got := sync("Sync (after Ping)"); !contains(got, second) {
		t.Fatalf("the new message %q is not in the Sync after the Ping: %q", second, got)
	}

	// 5. SendMail: alice writes to herself; SOGo submits it over SMTP and
	// it comes back into her inbox.
	third := "Sent from the phone " + randomHex(4)
	if n := easCall(t, "SendMail", func() (*http.Response, error) {
		return c.SendMail(ctx, randomHex(8), message(aliceUPN, aliceUPN, third))
	}); n != nil {
		if st := textOf(n, wbxml.PageComposeMail, wbxml.ComposeStatus); st != "" && st != "1" {
			t.Fatalf("SendMail status %q", st)
		}
	}
	select {
	case m := <-f.stack.Sent:
		if !strings.Contains(string(m), third) {
			t.Fatalf("SOGo submitted a different message:\n%s", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SOGo did not submit the SendMail message over SMTP")
	}
	step("SendMail 200: SOGo submitted the message over SMTP")
	if got := sync("Sync (after SendMail)"); !contains(got, third) {
		t.Fatalf("the sent message %q is not in the Sync: %q", third, got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// otherForms: a phone speaking HTTP/2 to certgate (certgate speaks
// HTTP/1.1 to sogod), and one sending MS-ASHTTP's base64 query form.
func (f *sogoFront) otherForms(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h2 := f.easClient(f.alice, aliceUPN, "SOGoE2EH2")
	tr := &http.Transport{TLSClientConfig: f.mtlsConfig(f.alice, "h2"), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	h2.HTTP = &http.Client{Transport: tr}
	resp, err := h2.FolderSync(ctx, "0")
	if err == nil && resp.ProtoMajor != 2 {
		t.Errorf("the HTTP/2 client spoke %s", resp.Proto)
	}
	fs := easDecode(t, "FolderSync over HTTP/2", resp, err)
	if st := textOf(fs, wbxml.PageFolderHierarchy, wbxml.FolderStatus); st != "1" {
		t.Fatalf("FolderSync over HTTP/2: status %q", st)
	}
	b64 := f.easClient(f.alice, aliceUPN, "SOGoE2EB64")
	b64.Base64Query = true
	fs = easCall(t, "FolderSync with the base64 query", func() (*http.Response, error) { return b64.FolderSync(ctx, "0") })
	if st := textOf(fs, wbxml.PageFolderHierarchy, wbxml.FolderStatus); st != "1" {
		t.Fatalf("FolderSync with the base64 query: status %q", st)
	}
}

// spoof sends alice's requests with a forged identity header in several
// spellings; certgate removes them all, so SOGo signs in alice, and the
// forged value appears nowhere in what SOGo received.
func (f *sogoFront) spoof(t *testing.T) {
	const forged = "spoofed-bob@contoso.com"
	c := f.easClient(f.alice, aliceUPN, "SOGoE2EPhone1")
	c.Header = http.Header{
		"X-Webobjects-Remote-User": {forged},
		"x-webobjects-remote-user": {forged},
		"X-WEBOBJECTS-REMOTE-USER": {forged},
		"X_Webobjects_Remote_User": {forged},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := easCall(t, "FolderSync with a forged header", func() (*http.Response, error) { return c.FolderSync(ctx, "0") })
	if st := textOf(fs, wbxml.PageFolderHierarchy, wbxml.FolderStatus); st != "1" {
		t.Fatalf("FolderSync with a forged header: status %q", st)
	}
	cert, key := f.writeLeaf("alice", f.alice)
	res := f.curl(cert, key, "-H", "X-WebObjects-Remote-User: "+forged, "-H", "x_webobjects_remote_user: "+forged,
		"-A", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36", f.url("/SOGo/so/"+aliceUPN+"/Mail/view"))
	if res.code != http.StatusOK || !strings.Contains(res.body, "SOGo.MailerUI") {
		t.Fatalf("web mail with a forged header: %d %s", res.code, tailString(res.body, 2000))
	}
	if strings.Contains(string(f.stack.Tap.Bytes()), forged) {
		t.Fatalf("the forged %s reached SOGo", sogoHeader)
	}
}

// bobAsAlice: bob's valid certificate naming alice in the EAS query is
// refused by certgate and never reaches SOGo.
func (f *sogoFront) bobAsAlice(t *testing.T) {
	before := len(f.stack.Tap.Bytes())
	c := f.easClient(f.bob, aliceUPN, "BobsPhone")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.FolderSync(ctx, "0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "eas_user_mismatch") {
		t.Fatalf("bob as alice: %d %q, want 403 eas_user_mismatch", resp.StatusCode, body)
	}
	if n := len(f.stack.Tap.Bytes()) - before; n != 0 {
		t.Fatalf("SOGo received %d bytes for bob's request as alice", n)
	}
}

// browser opens the web mail in Chromium with alice's certificate.
func (f *sogoFront) browser(t *testing.T, subject string) {
	requireTools(t, "chromium", "certutil", "pk12util", "openssl")
	cert, key := f.writeLeaf("alice", f.alice)
	p12 := filepath.Join(f.dir, "clients", "alice.p12")
	const pass = "certgate-e2e"
	runTool(t, os.Environ(), "openssl", "pkcs12", "-export", "-in", cert, "-inkey", key, "-name", "Alice",
		"-out", p12, "-passout", "pass:"+pass)
	autoSelectPolicy(t, "https://localhost")
	dom := chromiumDOM(t, browserProfile(t, filepath.Join(f.dir, "ca", "root.pem"), p12, pass), f.url("/SOGo/"))
	for _, want := range []string{`ng-app="SOGo.MailerUI"`, subject} {
		if !strings.Contains(dom, want) {
			t.Errorf("the web mail lacks %q:\n%s", want, tailString(dom, 6000))
		}
	}
	for _, bad := range []string{`ng-app="SOGo.MainUI"`, `type="password"`} {
		if strings.Contains(dom, bad) {
			t.Errorf("the browser got a login form (%s)", bad)
		}
	}
}

// revoke cuts alice's live Ping with `certgate user revoke-sessions`.
func (f *sogoFront) revoke(t *testing.T) {
	c := f.easClient(f.alice, aliceUPN, "SOGoE2EPhone2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := easCall(t, "FolderSync", func() (*http.Response, error) { return c.FolderSync(ctx, "0") })
	inbox := ""
	for _, add := range fs.FindAll(wbxml.PageFolderHierarchy, wbxml.FolderAdd) {
		if textOf(add, wbxml.PageFolderHierarchy, wbxml.FolderType) == "2" {
			inbox = textOf(add, wbxml.PageFolderHierarchy, wbxml.FolderServerID)
		}
	}
	pings := strings.Count(string(f.stack.Tap.Bytes()), "Cmd=Ping")
	ping := startPing(c, 300*time.Second, inbox)
	f.waitTap(t, "Cmd=Ping", pings+1)
	// The revocation time has whole seconds: the next one, so that the
	// Ping's connection is strictly older than it.
	revokedAt := time.Now()
	at := revokedAt.Add(time.Second).UTC().Format(time.RFC3339)
	code, out, errOut := runCLI(t, "user", "revoke-sessions", "--config", filepath.Join(f.dir, "certgate.yaml"), aliceUPN, "--at", at)
	if code != 0 {
		t.Fatalf("revoke-sessions: exit %d %q %q", code, out, errOut)
	}
	select {
	case r := <-ping:
		if r.err == nil {
			t.Fatalf("alice's Ping completed (%d) after her sessions were revoked", r.code)
		}
		t.Logf("the live Ping was cut %.2fs after `certgate user revoke-sessions`: %v", r.at.Sub(revokedAt).Seconds(), r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("alice's Ping was not cut within 30s of revoke-sessions")
	}
	before := len(f.stack.Tap.Bytes())
	resp, err := c.FolderSync(ctx, "0")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "session_revoked") {
		t.Fatalf("after revoke-sessions: %d %q, want 403 session_revoked", resp.StatusCode, body)
	}
	if n := len(f.stack.Tap.Bytes()) - before; n != 0 {
		t.Fatalf("SOGo received %d bytes after alice's sessions were revoked", n)
	}
}

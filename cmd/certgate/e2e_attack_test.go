package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy"
)

// clientTLS is a Go TLS client config presenting leaf, trusting the env's root.
func (e *env) clientTLS(leaf *pkigen.Leaf) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(e.root.Cert)
	c := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
	if leaf != nil {
		raw := make([][]byte, 0, len(leaf.Chain))
		for _, x := range leaf.Chain[:len(leaf.Chain)-1] {
			raw = append(raw, x.Raw)
		}
		c.Certificates = []tls.Certificate{{Certificate: raw, PrivateKey: leaf.Key, Leaf: leaf.Cert}}
	}
	return c
}

// rawExchange sends raw bytes over an mTLS connection and returns the status
// line of the answer.
func (e *env) rawExchange(t *testing.T, leaf *pkigen.Leaf, raw string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), e.clientTLS(leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "error: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// TestRequestSmuggling: Go's HTTP/1 server refuses conflicting lengths and
// unknown transfer codings, and for Content-Length with chunked it drops
// the length and reads chunked (RFC 9112 §6.3 allows that instead of a
// 400); obs-fold lines are joined. certgate re-frames every request it
// forwards, so what matters is that the backend never sees an ambiguous
// frame or a header smuggled through a fold.
func TestRequestSmuggling(t *testing.T) {
	e := newEnv(t, envConfig{})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	refused := map[string]string{
		"two CL":             "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"bad TE":             "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"space before colon": "GET / HTTP/1.1\r\nHost: localhost\r\nX-Remote-User : admin@contoso.com\r\n\r\n",
	}
	for name, raw := range refused {
		t.Run(name, func(t *testing.T) {
			if got := e.rawExchange(t, alice, raw); !strings.HasPrefix(got, "HTTP/1.1 400") && !strings.HasPrefix(got, "HTTP/1.1 501") {
				t.Fatalf("want 400 or 501, got %q", got)
			}
		})
	}
	if n := len(e.backend.requests()); n != 0 {
		t.Fatalf("a refused request reached the backend %d times", n)
	}
	t.Run("CL and TE", func(t *testing.T) {
		// The 4 bytes after the chunked body would be a second, smuggled
		// request to a backend that trusted Content-Length.
		got := e.rawExchange(t, alice, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
		// net/http repairs (200), the HTTP/1.1 fast path refuses (400).
		if !strings.HasPrefix(got, "HTTP/1.1 200") && !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("got %q", got)
		}
		for _, r := range e.backend.requests() {
			if r.URL.Path == "/smuggled" {
				t.Fatal("the smuggled request reached the backend")
			}
			if r.ContentLength > 0 || len(r.Header.Values("Content-Length")) > 0 && len(r.TransferEncoding) > 0 {
				t.Fatalf("backend saw an ambiguous frame: CL %d TE %v", r.ContentLength, r.TransferEncoding)
			}
		}
	})
	t.Run("obs-fold", func(t *testing.T) {
		got := e.rawExchange(t, alice, "GET /fold HTTP/1.1\r\nHost: localhost\r\nX-Trace: a\r\n X-Remote-User: admin@contoso.com\r\nX_Remote_User: b\r\n\tadmin@contoso.com\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 200") && !strings.HasPrefix(got, "HTTP/1.1 400") {
			t.Fatalf("got %q", got)
		}
		for _, r := range e.backend.requests() {
			if r.URL.Path != "/fold" {
				continue
			}
			if got := r.Header.Values("X-Remote-User"); len(got) != 1 || got[0] != "alice@contoso.com" {
				t.Fatalf("a folded header changed the identity: %q", got)
			}
		}
	})
}

// TestSecondUPNClaimingAnotherUser: a certificate whose SAN carries a second
// otherName with another user's UPN must not bind to either of them.
func TestSecondUPNClaimingAnotherUser(t *testing.T) {
	requireCurl(t)
	users := defaultUsers + `  - userPrincipalName: bob@contoso.com
    accountEnabled: true
`
	e := newEnv(t, envConfig{users: users, rejectWith: "http"})
	cert, key := e.writeLeaf("twofaced", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com", "bob@contoso.com")))
	res := e.curl(cert, key)
	if res.code != http.StatusForbidden || !strings.Contains(res.body, "identity_ambiguous") {
		t.Fatalf("want 403 identity_ambiguous, got %d %q", res.code, res.body)
	}
	if n := len(e.backend.requests()); n != 0 {
		t.Fatal("an ambiguous certificate reached the backend")
	}
}

// TestCARemovedByReloadCutsOpenConnection: a connection authenticated under
// a CA that a reload removes is refused on its next request.
func TestCARemovedByReloadCutsOpenConnection(t *testing.T) {
	e := newEnv(t, envConfig{})
	other := pkigen.Root(t, "Other Root")
	must(t, pkigen.WriteCert(filepath.Join(e.dir, "ca", "other.pem"), other.Cert))
	// Trust both roots, then connect with a certificate of the second one.
	e.writeConfig(envConfig{caYAML: `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
  - authorityType: root
    trustedCertificate: ca/other.pem
    crlExempt: true
`})
	must(t, e.inst.reload(t.Context(), "test"))
	leaf := other.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	tr := &http.Transport{TLSClientConfig: e.clientTLS(leaf)}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	get := func() int {
		resp, err := client.Get(e.url("/"))
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 200 {
		t.Fatalf("before the reload: %d", code)
	}
	e.writeConfig(envConfig{}) // the other root is gone
	must(t, e.inst.reload(t.Context(), "test"))
	if code := get(); code != proxy.StatusCertificateError {
		t.Fatalf("after the CA was removed, the open connection got %d, want 495 (untrusted)", code)
	}
	if n := len(e.backend.requests()); n != 1 {
		t.Fatalf("backend saw %d requests, want 1", n)
	}
}

// TestSlowClientsDoNotStarveOthers: a client that never finishes its TLS
// handshake and one that sends headers a byte at a time are cut at the
// header timeout, and a normal client is served meanwhile.
func TestSlowClientsDoNotStarveOthers(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{extraYAML: "limits:\n  readHeaderTimeout: 1s\n"})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))

	silent, err := net.Dial("tcp", e.inst.proxyAddr())
	must(t, err)
	defer silent.Close()

	slow, err := tls.Dial("tcp", e.inst.proxyAddr(), e.clientTLS(alice))
	must(t, err)
	defer slow.Close()
	io.WriteString(slow, "GET / HTTP/1.1\r\nHost: local")

	cert, key := e.writeLeaf("alice", alice)
	if res := e.curl(cert, key); res.code != 200 {
		t.Fatalf("a normal client was not served while slow ones hold connections: %d %s", res.code, res.stderr)
	}
	for name, c := range map[string]net.Conn{"no handshake": silent, "slow headers": slow} {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, err := io.ReadAll(c)
		var ne net.Error
		if ok := asNetErr(err, &ne); ok && ne.Timeout() {
			t.Errorf("%s: certgate kept the connection open past its header timeout", name)
		}
	}
}

func asNetErr(err error, target *net.Error) bool {
	if err == nil {
		return false
	}
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

// TestOversizedHeadersRefused: MaxHeaderBytes bounds what a client can make
// certgate buffer.
func TestOversizedHeadersRefused(t *testing.T) {
	e := newEnv(t, envConfig{extraYAML: "limits:\n  maxHeaderBytes: 4KiB\n"})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	raw := "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	if got := e.rawExchange(t, alice, raw); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Fatalf("want 431, got %q", got)
	}
}

var _ = os.Getenv

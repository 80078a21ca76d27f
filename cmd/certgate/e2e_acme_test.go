package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// pebbleCA is Let's Encrypt's test ACME server, run in-process. Its
// directory answers only once start has told its validator where certgate
// listens: certgate must be running (on a port chosen by the kernel)
// before the validator can be built, and certgate starts obtaining at
// once, so its first requests wait.
type pebbleCA struct {
	srv      *httptest.Server
	ready    chan struct{}
	handler  http.Handler
	ca       *ca.CAImpl
	rootFile string // the WFE's own HTTPS certificate, for acme.trustedRoots
	logs     *syncBuffer
}

func newPebble(t *testing.T) *pebbleCA {
	t.Helper()
	// Validate at once, and never reject a good nonce: both only slow a
	// test down (certmagic retries either way).
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	p := &pebbleCA{ready: make(chan struct{}), logs: &syncBuffer{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-p.ready:
			p.handler.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(p.srv.Close)
	p.rootFile = filepath.Join(t.TempDir(), "pebble-wfe.pem")
	must(t, os.WriteFile(p.rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o644))
	return p
}

func (p *pebbleCA) directory() string { return p.srv.URL + "/dir" }

// start builds the CA, whose TLS-ALPN-01 validator connects to
// localhost:tlsPort, and opens the directory.
func (p *pebbleCA) start(tlsPort int) {
	lg := log.New(p.logs, "pebble ", 0)
	st := db.NewMemoryStore()
	p.ca = ca.New(lg, st, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {}})
	v := va.New(lg, 0, tlsPort, false, "", st)
	w := wfe.New(lg, st, v, p.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	p.handler = w.Handler()
	close(p.ready)
}

func (p *pebbleCA) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.GetRootCert(0).Cert)
	return pool
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, ps, err := net.SplitHostPort(addr)
	must(t, err)
	n, err := strconv.Atoi(ps)
	must(t, err)
	return n
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// certgate obtains its server certificate from Pebble with TLS-ALPN-01 on
// its own mTLS listener, then serves it: a client with a certificate gets
// 200 over a chain that verifies to Pebble's root, a client without one is
// still refused.
//
// TLS1.2: the listener's challenge answer is capped at TLS 1.2
// (instanceOptions.challengeMaxVersion; Pebble's validator would otherwise
// negotiate 1.3), serverTLS.minVersion is 1.2 and the clients speak 1.2:
// the validator's handshake, which presents no client certificate, is
// checked to be TLS 1.2 in certgate's log. TLS1.3: minVersion 1.3,
// nothing capped.
func TestACMEObtainsFromPebbleOverTLSALPN(t *testing.T) {
	requireCurl(t)
	for _, tc := range []struct {
		name, min string
		v         uint16
		curlArgs  []string
	}{
		{"TLS1.2", "1.2", tls.VersionTLS12, []string{"--tlsv1.2", "--tls-max", "1.2"}},
		{"TLS1.3", "1.3", tls.VersionTLS13, []string{"--tlsv1.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPebble(t)
			ec := envConfig{serverTLS: fmt.Sprintf(`  minVersion: "%s"
  acme:
    domains: [localhost]
    email: ops@example.com
    directory: %s
    trustedRoots: %s
`, tc.min, p.directory(), p.rootFile)}
			if tc.v == tls.VersionTLS12 {
				ec.challengeMaxVersion = tls.VersionTLS12
			}
			e := newEnv(t, ec)
			alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
			certPath, keyPath := e.writeLeaf("alice", alice)
			readyz := "http://" + e.inst.adminAddr() + "/readyz"

			// Serving, but with no certificate yet: not ready, and a
			// handshake finds nothing to present.
			if code, body := getStatus(t, readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "not yet obtained from ACME for localhost") {
				t.Fatalf("readyz before issuance: %d %q", code, body)
			}
			if res := e.curl(certPath, keyPath); res.code != 0 {
				t.Fatalf("got HTTP %d before any certificate was obtained", res.code)
			}

			p.start(port(t, e.inst.proxyAddr()))
			deadline := time.Now().Add(60 * time.Second)
			for {
				code, body := getStatus(t, readyz)
				if code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready after 60s: %d %q\ncertgate:\n%s\npebble:\n%s", code, body, e.logs, p.logs)
				}
				time.Sleep(50 * time.Millisecond) // polling certmagic's background obtain
			}
			wantLine := `"msg":"ACME: TLS-ALPN-01 challenge answered","server_name":"localhost","tls_version":"` + tc.min + `"`
			if !strings.Contains(e.logs.String(), wantLine) {
				t.Errorf("no log line %s:\n%s", wantLine, e.logs)
			}

			// A client that trusts only Pebble's root and presents its
			// certificate: the handshake verifies the ACME chain.
			conn, err := tls.Dial("tcp", e.inst.proxyAddr(), &tls.Config{
				ServerName:   "localhost",
				RootCAs:      p.roots(),
				Certificates: []tls.Certificate{{Certificate: [][]byte{alice.Cert.Raw, e.inter.Cert.Raw}, PrivateKey: alice.Key}},
				MinVersion:   tc.v,
				MaxVersion:   tc.v,
				NextProtos:   []string{"http/1.1"},
			})
			if err != nil {
				t.Fatalf("mTLS handshake with the ACME certificate: %v", err)
			}
			cs := conn.ConnectionState()
			conn.Close()
			leaf := cs.PeerCertificates[0]
			pebbleInter := p.ca.GetIntermediateCert(0).Cert
			if cs.Version != tc.v || leaf.Issuer.String() != pebbleInter.Subject.String() || leaf.CheckSignatureFrom(pebbleInter) != nil {
				t.Fatalf("served %s certificate issued by %q, want one signed by Pebble's %q", tls.VersionName(cs.Version), leaf.Issuer, pebbleInter.Subject)
			}
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
				t.Errorf("ACME certificate names %v", leaf.DNSNames)
			}
			if l := e.inst.cert.Leaf(); l == nil || !l.Equal(leaf) {
				t.Error("serverCert.Leaf (metrics, status page) is not the certificate served")
			}

			// The real curl, trusting only Pebble's root.
			pebbleRoot := filepath.Join(e.dir, "pebble-root.pem")
			must(t, pkigen.WriteCert(pebbleRoot, p.ca.GetRootCert(0).Cert))
			res := e.curl(certPath, keyPath, append([]string{"--cacert", pebbleRoot}, tc.curlArgs...)...)
			if res.code != 200 || !strings.Contains(res.body, "hello alice@contoso.com") {
				t.Fatalf("curl with a client certificate: %d %q %s", res.code, res.body, res.stderr)
			}
			res = e.curl("", "", append([]string{"--cacert", pebbleRoot}, tc.curlArgs...)...)
			if res.code != 0 || res.exit == 0 {
				t.Fatalf("curl without a client certificate: HTTP %d exit %d, want a refused handshake", res.code, res.exit)
			}

			// The relaxed config answers only a live challenge: a probe
			// offering only acme-tls/1 now fails, and one that also offers
			// http/1.1 gets the mTLS config, which wants a certificate.
			probe := func(protos []string) error {
				c, err := tls.Dial("tcp", e.inst.proxyAddr(), &tls.Config{
					ServerName: "localhost", InsecureSkipVerify: true, NextProtos: protos, MinVersion: tc.v, MaxVersion: tc.v,
				})
				if err != nil {
					return err
				}
				defer c.Close()
				// Under TLS 1.3 the server's refusal arrives after the
				// client's side of the handshake is done.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
				return err
			}
			if err := probe([]string{acmeChallengeProto}); err == nil {
				t.Error("acme-tls/1 probe with no active challenge succeeded")
			}
			noCert := func() int { return strings.Count(e.logs.String(), `"reason":"no_certificate"`) }
			before := noCert()
			if err := probe([]string{acmeChallengeProto, "http/1.1"}); err == nil {
				t.Error("acme-tls/1+http/1.1 probe without a client certificate succeeded")
			}
			for noCert() == before {
				if time.Now().After(deadline) {
					t.Fatal("the acme-tls/1+http/1.1 probe was not refused for want of a client certificate")
				}
				time.Sleep(10 * time.Millisecond) // the server logs after its handshake returns
			}
		})
	}
}

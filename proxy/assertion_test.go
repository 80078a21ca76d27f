package proxy_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/proxy/assertion"
	"github.com/certgate/certgate/trust"
	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// seen is a backend that records the assertion headers it receives.
type seen struct {
	mu   sync.Mutex
	reqs []http.Header
	srv  *httptest.Server
}

func newSeen(t *testing.T) *seen {
	s := &seen{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Header.Clone())
		s.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *seen) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

type rig struct {
	client *http.Client
	base   string
	reg    *prometheus.Registry
}

// startRig serves routes behind a real mTLS listener on 127.0.0.1 and
// returns a client presenting alice's certificate.
func startRig(t *testing.T, jwks *assertion.KeySet, jwksPath string, routes ...proxy.RouteConfig) *rig {
	t.Helper()
	root := pkigen.Root(t, "Assertion Test Root")
	server := root.Server(t, []string{"localhost"})
	alice := root.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	store, err := trust.NewStore([]trust.CA{{Type: trust.AuthorityRoot, Cert: root.Cert, CRLExempt: true}})
	if err != nil {
		t.Fatal(err)
	}
	var rts []*proxy.Route
	for _, rc := range routes {
		rt, err := proxy.NewRoute(rc)
		if err != nil {
			t.Fatal(err)
		}
		rts = append(rts, rt)
	}
	reg := prometheus.NewRegistry()
	srvCert := tls.Certificate{Certificate: [][]byte{server.Cert.Raw}, PrivateKey: server.Key, Leaf: server.Cert}
	s := proxy.NewServer(proxy.Options{
		Metrics:        proxy.NewMetrics(reg),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &srvCert, nil },
	})
	err = s.SetPolicy(&proxy.Policy{
		Trust:    store,
		Binder:   trust.NewBinder([]trust.Binding{{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName}}, nil),
		Routes:   rts,
		JWKS:     jwks,
		JWKSPath: jwksPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "localhost",
		Certificates: []tls.Certificate{{Certificate: [][]byte{alice.Cert.Raw}, PrivateKey: alice.Key}},
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &rig{client: &http.Client{Transport: tr, Timeout: 10 * time.Second}, base: "https://" + ln.Addr().String(), reg: reg}
}

func (r *rig) get(t *testing.T, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", r.base+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header[hdr[i]] = []string{hdr[i+1]}
	}
	req.Host = "localhost"
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ecKey(t *testing.T) *assertion.Key {
	t.Helper()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := assertion.KeyFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signer(t *testing.T, reuse time.Duration, keys ...*assertion.Key) *assertion.Signer {
	t.Helper()
	s, err := assertion.NewSigner(assertion.Options{Keys: keys, Issuer: "certgate-test", Audience: "https://backend.test", Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimsOf(t *testing.T, set *assertion.KeySet, tok string) assertion.Claims {
	t.Helper()
	var jwks jose.JSONWebKeySet
	json.Unmarshal(set.JSON(), &jwks)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("assertion %q: %v", tok, err)
	}
	keys := jwks.Key(jws.Signatures[0].Protected.KeyID)
	if len(keys) == 0 {
		t.Fatalf("kid %q not in the JWKS", jws.Signatures[0].Protected.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var c assertion.Claims
	json.Unmarshal(payload, &c)
	return c
}

func TestAssertionReachesBackendAndForgedCopiesDoNot(t *testing.T) {
	be := newSeen(t)
	k := ecKey(t)
	sg := signer(t, 0, k)
	set := assertion.NewKeySet(k)
	r := startRig(t, set, "",
		proxy.RouteConfig{Name: "signed", PathPrefix: "/signed", Backend: be.srv.URL, Assertion: sg},
		proxy.RouteConfig{Name: "plain", PathPrefix: "/", Backend: be.srv.URL})

	forged := []string{"X-Certgate-Assertion", "forged", "X_Certgate_Assertion", "forged", "x-certgate-assertion", "forged"}
	if code, _ := r.get(t, "/signed", forged...); code != 200 {
		t.Fatalf("signed route: %d", code)
	}
	if code, _ := r.get(t, "/plain", forged...); code != 200 {
		t.Fatalf("plain route: %d", code)
	}
	hs := be.headers()
	if len(hs) != 2 {
		t.Fatalf("backend got %d requests", len(hs))
	}
	var toks []string
	for k, v := range hs[0] {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-certgate-assertion") {
			toks = append(toks, v...)
		}
	}
	if len(toks) != 1 || toks[0] == "forged" {
		t.Fatalf("signed route: assertion headers %q, want exactly certgate's", toks)
	}
	c := claimsOf(t, set, toks[0])
	if c.Subject != "alice@contoso.com" || c.Audience != "https://backend.test" || c.Issuer != "certgate-test" ||
		c.Binding == nil || c.Binding.CertificateField != "PrincipalName" || c.Confirmation.X5tS256 == "" || c.Expiry-c.IssuedAt != 60 {
		t.Fatalf("claims %+v", c)
	}
	for k := range hs[1] {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-certgate-assertion") {
			t.Fatalf("plain route: the client's %s reached the backend", k)
		}
	}
}

func TestAssertionReuseWithinConnection(t *testing.T) {
	for _, tc := range []struct {
		reuse        time.Duration
		signed, same float64
	}{{0, 3, 0}, {time.Minute - time.Second, 1, 2}} {
		be := newSeen(t)
		k := ecKey(t)
		r := startRig(t, assertion.NewKeySet(k), "", proxy.RouteConfig{Name: "web", PathPrefix: "/", Backend: be.srv.URL, Assertion: signer(t, tc.reuse, k)})
		for range 3 {
			if code, _ := r.get(t, "/"); code != 200 {
				t.Fatal(code)
			}
		}
		hs := be.headers()
		same := 0.0
		for i := 1; i < len(hs); i++ {
			if hs[i].Get("X-Certgate-Assertion") == hs[0].Get("X-Certgate-Assertion") {
				same++
			}
		}
		signed := counterSum(t, r.reg, "certgate_assertions_signed_total")
		if signed != tc.signed || same != tc.same {
			t.Errorf("reuse %s: %v signed, %v requests carried the first assertion again; want %v and %v", tc.reuse, signed, same, tc.signed, tc.same)
		}
	}
}

// counterSum adds up a counter's series in reg.
func counterSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.Metric {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

type brokenHSM struct{ crypto.Signer }

func (brokenHSM) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("token removed")
}

func TestSigningFailureRefusesWith500(t *testing.T) {
	be := newSeen(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := assertion.KeyFromSigner(brokenHSM{priv})
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, assertion.NewKeySet(k), "", proxy.RouteConfig{Name: "web", PathPrefix: "/", Backend: be.srv.URL, Assertion: signer(t, 5*time.Second, k)})
	for range 2 {
		if code, body := r.get(t, "/"); code != 500 || !strings.Contains(body, "assertion could not be signed") {
			t.Fatalf("got %d %q, want 500", code, body)
		}
	}
	if n := len(be.headers()); n != 0 {
		t.Fatalf("the backend got %d requests without the assertion", n)
	}
	if n := counterSum(t, r.reg, "certgate_assertion_signing_errors_total"); n != 2 {
		t.Fatalf("signing errors counted %v, want 2", n)
	}
}

func TestJWKSOnTheProxyListener(t *testing.T) {
	be := newSeen(t)
	k := ecKey(t)
	set := assertion.NewKeySet(k, ecKey(t))
	r := startRig(t, set, "/.well-known/certgate-jwks.json", proxy.RouteConfig{Name: "web", PathPrefix: "/", Backend: be.srv.URL, Assertion: signer(t, 0, k)})
	code, body := r.get(t, "/.well-known/certgate-jwks.json")
	if code != 200 || body != string(set.JSON()) {
		t.Fatalf("got %d %s", code, body)
	}
	if len(be.headers()) != 0 {
		t.Fatal("the JWKS request reached the backend")
	}
}

// TestAssertionReuseUnderHTTP2 sends concurrent streams on one HTTP/2
// connection: every request carries a valid assertion, and the streams
// share the connection's assertion instead of one signature each.
func TestAssertionReuseUnderHTTP2(t *testing.T) {
	be := newSeen(t)
	k := ecKey(t)
	set := assertion.NewKeySet(k)
	r := startRig(t, set, "", proxy.RouteConfig{Name: "web", PathPrefix: "/", Backend: be.srv.URL, Assertion: signer(t, 30*time.Second, k)})
	if code, _ := r.get(t, "/"); code != 200 { // opens the connection
		t.Fatal(code)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", r.base+"/", nil)
			req.Host = "localhost"
			resp, err := r.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Errorf("%s %d", resp.Proto, resp.StatusCode)
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	hs := be.headers()
	for _, h := range hs {
		if c := claimsOf(t, set, h.Get("X-Certgate-Assertion")); c.Subject != "alice@contoso.com" {
			t.Fatalf("claims %+v", c)
		}
	}
	if n := counterSum(t, r.reg, "certgate_assertions_signed_total"); n != 1 {
		t.Errorf("%v signatures for %d requests on one connection within the reuse window, want 1", n, len(hs))
	}
}

package verifyassertion_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	verifyassertion "github.com/certgate/certgate/examples/verify-assertion"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy/assertion"
	"github.com/go-jose/go-jose/v4"
)

// jwksServer publishes a key set that a test can swap, and counts fetches.
type jwksServer struct {
	mu      sync.Mutex
	set     *assertion.KeySet
	fetches atomic.Int32
	srv     *httptest.Server
}

func newJWKS(t *testing.T, keys ...*assertion.Key) *jwksServer {
	j := &jwksServer{set: assertion.NewKeySet(keys...)}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		w.Write(j.set.JSON())
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) publish(keys ...*assertion.Key) {
	j.mu.Lock()
	j.set = assertion.NewKeySet(keys...)
	j.mu.Unlock()
}

func key(t *testing.T, alg string) *assertion.Key {
	t.Helper()
	var k *assertion.Key
	var err error
	if alg == "EdDSA" {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		k, err = assertion.KeyFromSigner(priv)
	} else {
		priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		k, err = assertion.KeyFromSigner(priv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const aud = "http://app.internal:8080"

var (
	t0   = time.Unix(1_800_000_000, 0)
	leaf = []byte("the client certificate's DER")
)

func sign(t *testing.T, k *assertion.Key, audience string, at time.Time) string {
	t.Helper()
	s, err := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "certgate", Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Sign(assertion.Subject{User: "alice@contoso.com", BindingField: "PrincipalName", BindingAttribute: "userPrincipalName", Leaf: leaf}, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.now.Load()) }
func (c *clock) set(t time.Time)     { c.now.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.now.Add(int64(d)) }
func newClock(at time.Time) *clock   { c := &clock{}; c.set(at); return c }
func req(hdr ...string) *http.Request { // name, value pairs
	r := httptest.NewRequest("GET", "/", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	return r
}

func clientCert(der []byte) string { return ":" + base64.StdEncoding.EncodeToString(der) + ":" }

// forge signs claims with key priv but names kid in the header, as an
// attacker who knows certgate's (public) key id would.
func forge(t *testing.T, alg jose.SignatureAlgorithm, priv any, kid, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jws.CompactSerialize()
	return tok
}

func TestVerify(t *testing.T) {
	good := key(t, "ES256")
	j := newJWKS(t, good)
	clk := newClock(t0)
	v, err := verifyassertion.New(verifyassertion.Options{JWKSURL: j.srv.URL, Audience: aud, Issuer: "certgate", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, good, aud, t0)
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload := `{"iss":"certgate","sub":"admin@contoso.com","aud":"` + aud + `","iat":1800000000,"exp":1800000060}`
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+good.ID+`"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "."
	for _, tc := range []struct {
		name string
		at   time.Duration // after t0
		r    *http.Request
		err  string // "" = accepted
	}{
		{name: "valid", r: req("X-Certgate-Assertion", tok)},
		{name: "valid with its client certificate", r: req("X-Certgate-Assertion", tok, "Client-Cert", clientCert(leaf))},
		{name: "within the skew after exp", at: 65 * time.Second, r: req("X-Certgate-Assertion", tok)},
		{name: "expired", at: 71 * time.Second, r: req("X-Certgate-Assertion", tok), err: "expired"},
		{name: "from the future", at: -time.Minute, r: req("X-Certgate-Assertion", tok), err: "issued in the future"},
		{name: "another certificate", r: req("X-Certgate-Assertion", tok, "Client-Cert", clientCert([]byte("mallory"))), err: "cnf.x5t#S256 does not match"},
		{name: "missing", r: req("X-Remote-User", "admin@contoso.com"), err: "want exactly one X-Certgate-Assertion header, got 0"},
		{name: "twice", r: req("X-Certgate-Assertion", tok, "X-Certgate-Assertion", tok), err: "got 2"},
		{name: "garbage", r: req("X-Certgate-Assertion", "a.b.c"), err: "not a compact JWS"},
		{name: "other audience", r: req("X-Certgate-Assertion", sign(t, good, "http://other.internal", t0)), err: "audience"},
		{name: "attacker's key with certgate's kid", r: req("X-Certgate-Assertion", forge(t, jose.ES256, attacker, good.ID, payload)), err: "bad signature"},
		{name: "attacker's own kid", r: req("X-Certgate-Assertion", sign(t, key(t, "ES256"), aud, t0)), err: "unknown key id"},
		{name: "alg none", r: req("X-Certgate-Assertion", none), err: "not a compact JWS"},
		{name: "HMAC with the public key", r: req("X-Certgate-Assertion", forge(t, jose.HS256, []byte("public key bytes, 32 or more long"), good.ID, payload)), err: "not a compact JWS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk.set(t0.Add(tc.at))
			c, err := v.Verify(tc.r)
			if tc.err == "" {
				if err != nil || c.Subject != "alice@contoso.com" || c.Binding == nil || c.Binding.CertificateField != "PrincipalName" {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Verify = %+v, %v; want an error with %q", c, err, tc.err)
			}
		})
	}
}

func TestRequireClientCert(t *testing.T) {
	k := key(t, "EdDSA")
	j := newJWKS(t, k)
	v, _ := verifyassertion.New(verifyassertion.Options{JWKSURL: j.srv.URL, Audience: aud, RequireClientCert: true, Now: newClock(t0).Now})
	tok := sign(t, k, aud, t0)
	if _, err := v.Verify(req("X-Certgate-Assertion", tok)); err == nil || !strings.Contains(err.Error(), "no Client-Cert") {
		t.Fatalf("without Client-Cert: %v", err)
	}
	if _, err := v.Verify(req("X-Certgate-Assertion", tok, "Client-Cert", clientCert(leaf))); err != nil {
		t.Fatal(err)
	}
}

// TestRotation: certgate publishes a new key and signs with it; the
// verifier fetches the JWKS again on the unknown kid and accepts, while
// assertions of the old key still verify; unknown kids refetch at most once
// per MinRefresh.
func TestRotation(t *testing.T) {
	k1, k2 := key(t, "ES256"), key(t, "EdDSA")
	j := newJWKS(t, k1)
	clk := newClock(t0)
	v, _ := verifyassertion.New(verifyassertion.Options{JWKSURL: j.srv.URL, Audience: aud, MinRefresh: 10 * time.Second, Now: clk.Now})
	old := sign(t, k1, aud, t0)
	if _, err := v.Verify(req("X-Certgate-Assertion", old)); err != nil {
		t.Fatal(err)
	}
	j.publish(k2, k1)
	clk.add(11 * time.Second)
	if _, err := v.Verify(req("X-Certgate-Assertion", sign(t, k2, aud, clk.Now()))); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if _, err := v.Verify(req("X-Certgate-Assertion", old)); err != nil {
		t.Fatalf("old key's assertion during rotation: %v", err)
	}
	if n := j.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2 (first use, unknown kid)", n)
	}
	stranger := sign(t, key(t, "ES256"), aud, clk.Now())
	for range 20 {
		if _, err := v.Verify(req("X-Certgate-Assertion", stranger)); err == nil {
			t.Fatal("unknown key accepted")
		}
	}
	if n := j.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after 20 unknown kids within MinRefresh, want still 2", n)
	}
	clk.add(10 * time.Second)
	v.Verify(req("X-Certgate-Assertion", stranger))
	if n := j.fetches.Load(); n != 3 {
		t.Fatalf("%d JWKS fetches once MinRefresh passed, want 3", n)
	}
}

func TestMiddleware(t *testing.T) {
	k := key(t, "ES256")
	j := newJWKS(t, k)
	v, _ := verifyassertion.New(verifyassertion.Options{JWKSURL: j.srv.URL, Audience: aud, Now: newClock(t0).Now})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifyassertion.FromContext(r.Context())
		w.Write([]byte("hello " + c.Subject))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req("X-Certgate-Assertion", sign(t, k, aud, t0)))
	if rec.Code != 200 || rec.Body.String() != "hello alice@contoso.com" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req("X-Remote-User", "alice@contoso.com"))
	if rec.Code != 401 {
		t.Fatalf("forged header only: %d %q", rec.Code, rec.Body)
	}
	down, _ := verifyassertion.New(verifyassertion.Options{JWKSURL: "http://127.0.0.1:1/jwks.json", Audience: aud})
	rec = httptest.NewRecorder()
	down.Middleware(h).ServeHTTP(rec, req("X-Certgate-Assertion", sign(t, k, aud, t0)))
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("JWKS unreachable: %d", rec.Code)
	}
}

// python finds a Python 3 with PyJWT and cryptography.
func python(t *testing.T) string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import jwt, cryptography").Run() == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("python3 with PyJWT is required in CI (.ci/run installs python3-jwt python3-cryptography)")
	}
	t.Skip("no python3 with PyJWT and cryptography")
	return ""
}

// TestPythonPyJWT runs verify.py, the Python version of the check, against
// assertions certgate's signer made and a JWKS it published.
func TestPythonPyJWT(t *testing.T) {
	py := python(t)
	ec, ed := key(t, "ES256"), key(t, "EdDSA")
	j := newJWKS(t, ec, ed)
	now := time.Now()
	// A real certificate, for the cnf check against --client-cert.
	root := pkigen.Root(t, "PyJWT Test Root")
	alice := root.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	certPath := filepath.Join(t.TempDir(), "alice.pem")
	if err := pkigen.WriteCert(certPath, alice.Cert); err != nil {
		t.Fatal(err)
	}
	signFor := func(k *assertion.Key, der []byte) string {
		s, _ := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "certgate", Audience: aud})
		tok, _, err := s.Sign(assertion.Subject{User: "alice@contoso.com", Leaf: der}, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, tok, audience string
		ok                  bool
		want                string
		cert                bool
	}{
		{"cnf matches", signFor(ed, alice.Cert.Raw), aud, true, `"sub": "alice@contoso.com"`, true},
		{"cnf for another certificate", signFor(ed, []byte("other")), aud, false, "cnf.x5t#S256 does not match", true},
		{"ES256", sign(t, ec, aud, now), aud, true, `"sub": "alice@contoso.com"`, false},
		{"EdDSA", sign(t, ed, aud, now), aud, true, `"x5t#S256": "` + assertion.Thumbprint(leaf) + `"`, false},
		{"other audience", sign(t, ec, "http://other", now), aud, false, "InvalidAudienceError", false},
		{"expired", sign(t, ec, aud, now.Add(-5*time.Minute)), aud, false, "ExpiredSignatureError", false},
		{"unknown key", sign(t, key(t, "ES256"), aud, now), aud, false, "refused", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"verify.py", "--jwks", j.srv.URL, "--audience", tc.audience, "--issuer", "certgate"}
			if tc.cert {
				args = append(args, "--client-cert", certPath)
			}
			out, err := exec.Command(py, append(args, tc.tok)...).CombinedOutput()
			if (err == nil) != tc.ok || !strings.Contains(string(out), tc.want) {
				t.Fatalf("verify.py: %v\n%s\nwant ok=%v and %q", err, out, tc.ok, tc.want)
			}
		})
	}
}

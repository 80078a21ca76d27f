package assertion_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certgate/certgate/proxy/assertion"
	"github.com/go-jose/go-jose/v4"
)

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkcs8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadKey(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	for _, tc := range []struct {
		name, path, alg, err string
	}{
		{name: "ecdsa pkcs8", path: writePEM(t, "PRIVATE KEY", pkcs8(t, ec)), alg: "ES256"},
		{name: "ecdsa sec1", path: writePEM(t, "EC PRIVATE KEY", sec1), alg: "ES256"},
		{name: "ed25519", path: writePEM(t, "PRIVATE KEY", pkcs8(t, ed)), alg: "EdDSA"},
		{name: "p384", path: writePEM(t, "PRIVATE KEY", pkcs8(t, p384)), err: "ECDSA key on P-384; ES256 needs P-256"},
		{name: "rsa", path: writePEM(t, "PRIVATE KEY", pkcs8(t, rk)), err: "*rsa.PrivateKey key; want ECDSA P-256 (ES256) or Ed25519 (EdDSA)"},
		{name: "certificate only", path: writePEM(t, "CERTIFICATE", []byte{1, 2, 3}), err: "no PEM private key"},
		{name: "garbage in block", path: writePEM(t, "PRIVATE KEY", []byte("not a key")), err: "cannot parse the PRIVATE KEY block"},
		{name: "encrypted", path: writePEM(t, "ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}), err: "the private key is encrypted"},
		{name: "missing", path: filepath.Join(t.TempDir(), "nope.pem"), err: "no such file or directory"},
		{name: "directory", path: t.TempDir(), err: "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := assertion.LoadKey(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.path) {
					t.Fatalf("LoadKey = %v, want an error naming %s and saying %q", err, tc.path, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Alg != tc.alg || len(k.ID) != 43 || k.File != tc.path || k.ModTime.IsZero() {
				t.Fatalf("key = alg %s id %q file %s mtime %v", k.Alg, k.ID, k.File, k.ModTime)
			}
			// The id is the RFC 7638 thumbprint: stable for the key.
			again, err := assertion.LoadKey(tc.path)
			if err != nil || again.ID != k.ID {
				t.Fatalf("second load id %v %v, want %s", again, err, k.ID)
			}
		})
	}
}

func newKey(t *testing.T, alg string) *assertion.Key {
	t.Helper()
	var priv any
	if alg == "EdDSA" {
		_, priv, _ = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	k, err := assertion.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8(t, priv)}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// verify checks tok against the published JWKS as a backend would.
func verify(t *testing.T, set *assertion.KeySet, tok string) assertion.Claims {
	t.Helper()
	var jwks jose.JSONWebKeySet
	if err := json.Unmarshal(set.JSON(), &jwks); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Protected
	keys := jwks.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in the JWKS", h.KeyID, len(keys))
	}
	if typ := h.ExtraHeaders["typ"]; typ != "JWT" {
		t.Fatalf("typ = %v", typ)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c assertion.Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignVerifiesWithTheJWKS(t *testing.T) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			k, old := newKey(t, alg), newKey(t, "ES256")
			s, err := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k, old}, Issuer: "https://certgate.test", Audience: "https://owa.internal"})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_800_000_000, 0)
			leaf := []byte("certificate DER")
			tok, exp, err := s.Sign(assertion.Subject{User: "alice@contoso.com", BindingField: "PrincipalName", BindingAttribute: "userPrincipalName", IssuerSKI: "AB12", Leaf: leaf}, now)
			if err != nil {
				t.Fatal(err)
			}
			c := verify(t, assertion.NewKeySet(s.Keys()...), tok)
			want := assertion.Claims{Issuer: "https://certgate.test", Subject: "alice@contoso.com", Audience: "https://owa.internal",
				IssuedAt: now.Unix(), NotBefore: now.Unix(), Expiry: now.Unix() + 60, ID: c.ID,
				Binding: &assertion.Binding{CertificateField: "PrincipalName", UserAttribute: "userPrincipalName"}, IssuerSKI: "AB12",
				Confirmation: assertion.Confirmation{X5tS256: assertion.Thumbprint(leaf)}}
			if gotJ, wantJ := mustJSON(t, c), mustJSON(t, want); gotJ != wantJ {
				t.Fatalf("claims\n got %s\nwant %s", gotJ, wantJ)
			}
			if len(c.ID) != 22 || !exp.Equal(now.Add(60*time.Second)) {
				t.Fatalf("jti %q exp %v", c.ID, exp)
			}
			tok2, _, _ := s.Sign(assertion.Subject{User: "alice@contoso.com", Leaf: leaf}, now)
			if c2 := verify(t, assertion.NewKeySet(k), tok2); c2.ID == c.ID || c2.Binding != nil {
				t.Fatalf("second assertion: jti %q (first %q), binding %v", c2.ID, c.ID, c2.Binding)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeySetPublishesEveryKeyOnce(t *testing.T) {
	a, b := newKey(t, "ES256"), newKey(t, "EdDSA")
	set := assertion.NewKeySet(a, b, a)
	if ids := set.IDs(); len(ids) != 2 || ids[0] != a.ID || ids[1] != b.ID {
		t.Fatalf("ids %v", ids)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(set.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc.Keys {
		if _, private := k["d"]; private {
			t.Fatalf("the JWKS publishes a private key: %v", k)
		}
		if k["use"] != "sig" || (k["alg"] != "ES256" && k["alg"] != "EdDSA") {
			t.Fatalf("key %v", k)
		}
	}
	if got := string(assertion.NewKeySet().JSON()); got != `{"keys":[]}` {
		t.Fatalf("empty set %s", got)
	}
}

type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("HSM unavailable")
}

func TestSignFailureIsAnError(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, err := assertion.KeyFromSigner(failingSigner{ec})
	if err != nil {
		t.Fatal(err)
	}
	s, err := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := s.Sign(assertion.Subject{User: "alice@contoso.com"}, time.Now())
	if err == nil || tok != "" || !strings.Contains(err.Error(), "HSM unavailable") || !strings.Contains(err.Error(), k.ID) {
		t.Fatalf("Sign = %q, %v; want the signer's error naming the key", tok, err)
	}
}

func TestNewSignerRefusesBadOptions(t *testing.T) {
	k := newKey(t, "ES256")
	for _, tc := range []struct {
		o   assertion.Options
		err string
	}{
		{assertion.Options{Issuer: "i", Audience: "a"}, "no signing key"},
		{assertion.Options{Keys: []*assertion.Key{k}, Audience: "a"}, "issuer is required"},
		{assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i"}, "audience is required"},
		{assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i", Audience: "a", Lifetime: 10 * time.Second, Reuse: 10 * time.Second}, "shorter than the lifetime"},
		{assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i", Audience: "a", Lifetime: time.Millisecond}, "shorter than 1s"},
	} {
		if _, err := assertion.NewSigner(tc.o); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("NewSigner(%+v) = %v, want %q", tc.o, err, tc.err)
		}
	}
	if _, err := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i", Audience: "a"}); err != nil {
		t.Fatal(err)
	}
	s, _ := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "i", Audience: "a"})
	if _, _, err := s.Sign(assertion.Subject{}, time.Now()); err == nil {
		t.Fatal("an assertion without a user was signed")
	}
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			t := &testing.T{}
			k := newKey(t, alg)
			s, _ := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{k}, Issuer: "https://certgate.test", Audience: "https://owa.internal"})
			sub := assertion.Subject{User: "alice@contoso.com", BindingField: "PrincipalName", BindingAttribute: "userPrincipalName", IssuerSKI: "AB12", Leaf: make([]byte, 900)}
			now := time.Now()
			b.ReportAllocs()
			// CPU time as well as wall time: on a shared machine the wall
			// time of a signature includes waiting for a core.
			cpu0 := cpuTime()
			for b.Loop() {
				if _, _, err := s.Sign(sub, now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package trust_test

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// upnOnlySAN encodes a SAN holding one otherName whose UPN value is inner
// (raw bytes inside [0] EXPLICIT), to make malformed UPNs.
func otherNameSAN(t testing.TB, oid asn1.ObjectIdentifier, inner func(*cryptobyte.Builder)) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), inner)
		})
	})
	return b.BytesOrPanic()
}

func utf8Value(s string) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
	}
}

func TestVerify(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	foreign := wideRoot(t, "Foreign")
	constrained := wideRoot(t, "Constrained", pkigen.PermittedEmail("contoso.com"))
	oldInter := root.Intermediate(t, "Old Inter", pkigen.Validity(t0.AddDate(-2, 0, 0), t0.Add(-time.Hour)))
	weakInter := root.Intermediate(t, "Weak Inter", at, pkigen.RSA(1024))
	// deep is root → inter → d2 → d3: four certificates with the leaf's
	// issuer d3 sent by the client.
	d2 := inter.Intermediate(t, "D2", at)
	d3 := d2.Intermediate(t, "D3", at)

	rootOnly := mustStore(t, []trust.CA{rootCA(root)})
	withInter := mustStore(t, []trust.CA{rootCA(root), interCA(inter)})
	withConstrained := mustStore(t, []trust.CA{rootCA(constrained)})
	short := mustStore(t, []trust.CA{rootCA(root), interCA(inter)}, trust.MaxChainLength(2))
	fewSANs := mustStore(t, []trust.CA{rootCA(root)}, trust.MaxSANs(2))

	upnCritical := root.Leaf(t, "alice", at, pkigen.UPN("alice@contoso.com"), pkigen.CriticalSAN())
	badUPNCritical := handmade(t, root, &x509.Certificate{
		Subject:         pkix.Name{CommonName: "bad upn"},
		ExtraExtensions: []pkix.Extension{{Id: oidSAN, Critical: true, Value: otherNameSAN(t, trust.OIDUPN, func(b *cryptobyte.Builder) { b.AddASN1Int64(5) })}},
	})
	otherOnlyCritical := handmade(t, root, &x509.Certificate{
		Subject:         pkix.Name{CommonName: "guid only"},
		ExtraExtensions: []pkix.Extension{{Id: oidSAN, Critical: true, Value: otherNameSAN(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 1}, utf8Value("x"))}},
	})
	unknownCritical := handmade(t, root, &x509.Certificate{
		Subject:         pkix.Name{CommonName: "odd"},
		EmailAddresses:  []string{"alice@contoso.com"},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}}},
	})

	tests := []struct {
		name      string
		store     *trust.Store
		certs     []*x509.Certificate
		at        time.Time
		reason    trust.Reason
		chainLen  int
		errSubstr string
	}{
		{name: "root only", store: rootOnly, certs: []*x509.Certificate{root.Leaf(t, "a", at).Cert}, reason: trust.OK, chainLen: 2},
		{name: "configured intermediate", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert}, reason: trust.OK, chainLen: 3},
		{name: "intermediate sent by client only", store: rootOnly, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert, inter.Cert}, reason: trust.OK, chainLen: 3},
		{name: "client sends intermediates and root", store: rootOnly, certs: []*x509.Certificate{d3.Leaf(t, "a", at).Cert, d3.Cert, d2.Cert, inter.Cert, root.Cert}, reason: trust.OK, chainLen: 5},
		{name: "intermediate missing", store: rootOnly, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert}, reason: trust.Untrusted, errSubstr: "unknown authority"},
		{name: "foreign CA", store: withInter, certs: []*x509.Certificate{foreign.Leaf(t, "a", at).Cert}, reason: trust.Untrusted, errSubstr: "unknown authority"},
		{name: "foreign CA sent along", store: rootOnly, certs: []*x509.Certificate{foreign.Leaf(t, "a", at).Cert, foreign.Cert}, reason: trust.Untrusted},
		{name: "no certificate", store: rootOnly, certs: nil, reason: trust.NoCertificate},
		{name: "expired leaf", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "a", pkigen.Validity(t0.Add(-48*time.Hour), t0.Add(-time.Second))).Cert}, reason: trust.Expired},
		{name: "not yet valid leaf", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "a", pkigen.Validity(t0.Add(time.Second), t0.Add(48*time.Hour))).Cert}, reason: trust.NotYetValid},
		{name: "valid leaf checked later", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert}, at: t0.AddDate(2, 0, 0), reason: trust.Expired},
		{name: "valid leaf checked earlier", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert}, at: t0.AddDate(0, -1, 0), reason: trust.NotYetValid},
		{name: "expired intermediate", store: rootOnly, certs: []*x509.Certificate{oldInter.Leaf(t, "a", pkigen.Validity(t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))).Cert, oldInter.Cert}, reason: trust.Expired},
		{name: "serverAuth-only leaf", store: withInter, certs: []*x509.Certificate{inter.Leaf(t, "srv", at, pkigen.EKU(x509.ExtKeyUsageServerAuth)).Cert}, reason: trust.BadUsage},
		{name: "CA certificate as client", store: withInter, certs: []*x509.Certificate{inter.Cert}, reason: trust.BadUsage},
		{name: "email outside name constraints", store: withConstrained, certs: []*x509.Certificate{constrained.Leaf(t, "bob", at, pkigen.Email("bob@fabrikam.com")).Cert}, reason: trust.NameConstraints},
		{name: "email inside name constraints", store: withConstrained, certs: []*x509.Certificate{constrained.Leaf(t, "bob", at, pkigen.Email("bob@contoso.com")).Cert}, reason: trust.OK, chainLen: 2},
		{name: "critical UPN-only SAN", store: rootOnly, certs: []*x509.Certificate{upnCritical.Cert}, reason: trust.OK, chainLen: 2},
		{name: "critical SAN with malformed UPN", store: rootOnly, certs: []*x509.Certificate{badUPNCritical}, reason: trust.Untrusted, errSubstr: "malformed subjectAltName"},
		{name: "critical SAN with other otherName only", store: rootOnly, certs: []*x509.Certificate{otherOnlyCritical}, reason: trust.Untrusted, errSubstr: "unhandled critical extension"},
		{name: "unknown critical extension", store: rootOnly, certs: []*x509.Certificate{unknownCritical}, reason: trust.Untrusted, errSubstr: "unhandled critical extension"},
		{name: "chain too long", store: short, certs: []*x509.Certificate{inter.Leaf(t, "a", at).Cert}, reason: trust.Untrusted, errSubstr: "longer than the maximum 2"},
		{name: "chain at the maximum", store: short, certs: []*x509.Certificate{root.Leaf(t, "a", at).Cert}, reason: trust.OK, chainLen: 2},
		{name: "too many certificates sent", store: short, certs: []*x509.Certificate{root.Leaf(t, "a", at).Cert, inter.Cert, root.Cert}, reason: trust.Untrusted, errSubstr: "client sent 3 certificates"},
		{name: "small RSA leaf", store: rootOnly, certs: []*x509.Certificate{root.Leaf(t, "a", at, pkigen.RSA(1024)).Cert}, reason: trust.Untrusted, errSubstr: "1024 bits"},
		{name: "small RSA intermediate", store: rootOnly, certs: []*x509.Certificate{weakInter.Leaf(t, "a", at).Cert, weakInter.Cert}, reason: trust.Untrusted, errSubstr: "1024 bits"},
		{name: "RSA 2048 leaf", store: rootOnly, certs: []*x509.Certificate{root.Leaf(t, "a", at, pkigen.RSA(2048)).Cert}, reason: trust.OK, chainLen: 2},
		{name: "too many SANs", store: fewSANs, certs: []*x509.Certificate{root.Leaf(t, "a", at, pkigen.Email("a@x.com", "b@x.com", "c@x.com")).Cert}, reason: trust.Untrusted, errSubstr: "3 subjectAltName entries"},
		{name: "SANs at the maximum", store: fewSANs, certs: []*x509.Certificate{root.Leaf(t, "a", at, pkigen.Email("a@x.com", "b@x.com")).Cert}, reason: trust.OK, chainLen: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at := tc.at
			if at.IsZero() {
				at = t0
			}
			chain, err := tc.store.Verify(tc.certs, at)
			if got := trust.ReasonOf(err); got != string(tc.reason) {
				t.Fatalf("reason %q, want %q (err %v)", got, tc.reason, err)
			}
			if err != nil {
				var te *trust.Error
				if !errors.As(err, &te) {
					t.Fatalf("error %T is not a *trust.Error", err)
				}
				if !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("error %q does not mention %q", err, tc.errSubstr)
				}
				return
			}
			if len(chain) != tc.chainLen {
				t.Fatalf("chain of %d, want %d", len(chain), tc.chainLen)
			}
			if chain[0] != tc.certs[0] {
				t.Fatalf("chain[0] is not the caller's leaf")
			}
			last := chain[len(chain)-1]
			if _, ok := tc.store.BySKI(last.SubjectKeyId); !ok || !bytes.Equal(last.RawIssuer, last.RawSubject) {
				t.Fatalf("chain ends at %v, not a configured root", last.Subject)
			}
		})
	}
}

// The critical UPN-only SAN really is rejected by crypto/x509 alone, so the
// "critical UPN-only SAN" row above exercises certgate's own handling.
func TestCriticalUPNOnlySANFailsInCryptoX509(t *testing.T) {
	root := wideRoot(t, "Root")
	leaf := root.Leaf(t, "alice", pkigen.At(t0), pkigen.UPN("alice@contoso.com"), pkigen.CriticalSAN())
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var u x509.UnhandledCriticalExtension
	if !errors.As(err, &u) {
		t.Fatalf("crypto/x509 error %v, want UnhandledCriticalExtension", err)
	}
	// certgate's copy must not leak: the caller's certificate is untouched.
	s := mustStore(t, []trust.CA{rootCA(root)})
	if _, err := s.Verify([]*x509.Certificate{leaf.Cert}, t0); err != nil {
		t.Fatal(err)
	}
	if len(leaf.Cert.UnhandledCriticalExtensions) != 1 {
		t.Fatalf("Verify modified the caller's certificate")
	}
}

func TestVerifyPrefersShortestChain(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	// The same name and key as inter, self-signed: a second anchor the leaf
	// chains to directly, next to leaf → inter → root.
	direct := pkigen.Root(t, "Inter", at, pkigen.Key(inter.Key))
	s := mustStore(t, []trust.CA{rootCA(root), rootCA(direct)})
	leaf := inter.Leaf(t, "a", at)
	chain, err := s.Verify([]*x509.Certificate{leaf.Cert, inter.Cert}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || chain[1] != direct.Cert {
		t.Fatalf("chain %v, want leaf → the direct anchor", subjects(chain))
	}
}

func subjects(chain []*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = c.Subject.String()
	}
	return out
}

func TestNewStore(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	inter2 := inter.Intermediate(t, "Inter2", at)
	foreign := wideRoot(t, "Foreign")
	stray := foreign.Intermediate(t, "Stray", at)
	weakRoot := pkigen.Root(t, "Weak", at, pkigen.RSA(1024))
	leaf := root.Leaf(t, "leaf", at)
	expiredInter := root.Intermediate(t, "Expired", pkigen.Validity(t0.AddDate(-2, 0, 0), t0.AddDate(-1, 0, 0)))

	tests := []struct {
		name    string
		cas     []trust.CA
		opts    []trust.StoreOption
		wantErr string
		defect  string // NewStore succeeds; the last CA is unusable for this
	}{
		{name: "root", cas: []trust.CA{rootCA(root)}},
		{name: "root and intermediates in any order", cas: []trust.CA{interCA(inter2), rootCA(root), interCA(inter)}},
		{name: "empty", cas: nil, wantErr: "no root CA"},
		{name: "intermediates only", cas: []trust.CA{interCA(inter)}, wantErr: "no root CA"},
		// A broken CA is a runtime fact: the store builds and reports it.
		{name: "intermediate not chaining", cas: []trust.CA{rootCA(root), interCA(stray)}, defect: `unknown authority: its issuer "CN=Foreign"`},
		{name: "intermediate missing its parent", cas: []trust.CA{rootCA(root), interCA(inter2)}, defect: `its issuer "CN=Inter"`},
		{name: "same certificate twice", cas: []trust.CA{rootCA(root), rootCA(root)}},
		{name: "not a CA", cas: []trust.CA{rootCA(root), {Type: trust.AuthorityRoot, Cert: leaf.Cert}}, defect: "basicConstraints say it is not a CA"},
		{name: "weak RSA CA", cas: []trust.CA{rootCA(weakRoot)}, defect: "RSA key of 1024 bits"},
		{name: "expired intermediate is reported", cas: []trust.CA{rootCA(root), interCA(expiredInter)}, opts: []trust.StoreOption{trust.WithClock(func() time.Time { return t0 })}, defect: "expired at"},
		{name: "weak RSA CA allowed by option", cas: []trust.CA{rootCA(weakRoot)}, opts: []trust.StoreOption{trust.MinRSABits(1024)}},
		{name: "unknown type", cas: []trust.CA{{Type: "anchor", Cert: root.Cert}}, wantErr: `authority type "anchor"`},
		{name: "nil certificate", cas: []trust.CA{{Type: trust.AuthorityRoot}}, wantErr: "CA 1: no certificate"},
		{name: "zero chain length", cas: []trust.CA{rootCA(root)}, opts: []trust.StoreOption{trust.MaxChainLength(0)}, wantErr: "MaxChainLength"},
		{name: "zero SANs", cas: []trust.CA{rootCA(root)}, opts: []trust.StoreOption{trust.MaxSANs(0)}, wantErr: "MaxSANs"},
		{name: "negative cache", cas: []trust.CA{rootCA(root)}, opts: []trust.StoreOption{trust.VerifyCacheSize(-1)}, wantErr: "VerifyCacheSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := trust.NewStore(tc.cas, tc.opts...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewStore: %v", err)
				}
				if len(s.CAs()) != len(tc.cas) {
					t.Fatalf("CAs() has %d entries, want %d", len(s.CAs()), len(tc.cas))
				}
				st := s.CAStatus(time.Time{})
				last := st[len(st)-1]
				if tc.defect == "" && !last.Usable {
					t.Fatalf("CA unusable: %s", last.Defect)
				}
				if tc.defect != "" && (last.Usable || !strings.Contains(last.Defect, tc.defect)) {
					t.Fatalf("CA status %+v, want unusable for %q", last, tc.defect)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// A configured intermediate is never an anchor: once the root has expired,
// a leaf under a still-valid intermediate is refused, where treating the
// intermediate as an anchor (as the hint pool in tls.Config.ClientCAs would)
// accepts it.
func TestIntermediateIsNotAnAnchor(t *testing.T) {
	root := wideRoot(t, "Root") // valid until t0 + 5 years
	inter := root.Intermediate(t, "Inter", pkigen.Validity(t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0)))
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter)})
	leaf := inter.Leaf(t, "a", pkigen.Validity(t0.AddDate(6, 0, 0), t0.AddDate(7, 0, 0)))
	later := t0.AddDate(6, 0, 1)

	_, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: s.HintPool(), CurrentTime: later, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		t.Fatalf("with the intermediate as an anchor the leaf verifies, but: %v", err)
	}
	_, err = s.Verify([]*x509.Certificate{leaf.Cert}, later)
	if trust.ReasonOf(err) != string(trust.Expired) {
		t.Fatalf("reason %q (%v), want expired (the root)", trust.ReasonOf(err), err)
	}
	if !strings.Contains(err.Error(), `CA "CN=Root"`) || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("error %v does not say the root expired", err)
	}
}

func TestStoreAccessors(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	other := wideRoot(t, "Other")
	cas := []trust.CA{
		{Type: trust.AuthorityRoot, Cert: root.Cert, CRLURL: "http://pki/root.crl"},
		{Type: trust.AuthorityIntermediate, Cert: inter.Cert, CRLURL: "http://pki/inter.crl", DeltaCRLURL: "http://pki/inter+.crl"},
	}
	s := mustStore(t, cas)

	want := x509.NewCertPool()
	want.AddCert(root.Cert)
	want.AddCert(inter.Cert)
	if !s.HintPool().Equal(want) {
		t.Fatal("HintPool is not roots ∪ intermediates")
	}

	got := s.CAs()
	if len(got) != 2 || got[1].DeltaCRLURL != "http://pki/inter+.crl" {
		t.Fatalf("CAs() = %+v", got)
	}
	got[0].CRLURL = "changed"
	if s.CAs()[0].CRLURL != "http://pki/root.crl" {
		t.Fatal("CAs() exposes the store's slice")
	}

	ca, ok := s.BySKI(inter.Cert.SubjectKeyId)
	if !ok || ca.Cert != inter.Cert || ca.CRLURL != "http://pki/inter.crl" {
		t.Fatalf("BySKI(inter) = %+v, %v", ca, ok)
	}
	if _, ok := s.BySKI(other.Cert.SubjectKeyId); ok {
		t.Fatal("BySKI found a CA that is not configured")
	}
	ski := inter.Cert.SubjectKeyId
	if n := testing.AllocsPerRun(100, func() { s.BySKI(ski) }); n != 0 {
		t.Fatalf("BySKI allocates %v times", n)
	}

	leaf := inter.Leaf(t, "a", at)
	for _, tc := range []struct {
		cert *x509.Certificate
		want *x509.Certificate
	}{
		{leaf.Cert, inter.Cert},
		{inter.Cert, root.Cert},
		{root.Cert, root.Cert},
		{other.Leaf(t, "x", at).Cert, nil},
		// No AKI: found by issuer name and signature.
		{handmade(t, inter, &x509.Certificate{Subject: pkix.Name{CommonName: "no aki"}}), inter.Cert},
	} {
		ca, ok := s.IssuerOf(tc.cert)
		if ok != (tc.want != nil) || (ok && ca.Cert != tc.want) {
			t.Errorf("IssuerOf(%s) = %v, %v; want %v", tc.cert.Subject, ca.Cert, ok, tc.want)
		}
	}

	s2 := mustStore(t, cas)
	if s.Gen() == s2.Gen() || s.Gen() == 0 {
		t.Fatalf("Gen not unique: %d and %d", s.Gen(), s2.Gen())
	}
}

func TestCASKIFallback(t *testing.T) {
	root := wideRoot(t, "Root")
	// pkigen writes method-1 SKIs, so the computation must agree with it.
	if got := trust.ComputeSKI(root.Cert); !bytes.Equal(got, root.Cert.SubjectKeyId) {
		t.Fatalf("ComputeSKI = %X, want %X", got, root.Cert.SubjectKeyId)
	}
	noSKI := handmade(t, root, &x509.Certificate{Subject: pkix.Name{CommonName: "no ski"}})
	if len(noSKI.SubjectKeyId) != 0 {
		t.Fatal("test certificate unexpectedly has an SKI")
	}
	ca := trust.CA{Cert: noSKI}
	if got, want := ca.SKI(), trust.ComputeSKI(noSKI); len(got) != 20 || !bytes.Equal(got, want) {
		t.Fatalf("SKI() = %X, want %X", got, want)
	}
}

func TestVerifyCache(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter)})
	leaf := inter.Leaf(t, "a", pkigen.Validity(t0.Add(-time.Hour), t0.Add(time.Hour)))
	certs := []*x509.Certificate{leaf.Cert}

	first, err := s.Verify(certs, t0)
	if err != nil {
		t.Fatal(err)
	}
	first[1] = nil // the caller owns what it got
	// The cached path is the one that allocates almost nothing.
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := s.Verify(certs, t0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 5 {
		t.Fatalf("cached Verify allocates %v times; the cache is not used", allocs)
	}
	second, err := s.Verify(certs, t0.Add(30*time.Minute))
	if err != nil || second[1] != inter.Cert {
		t.Fatalf("cached chain %v, %v", second, err)
	}
	// A hit re-checks validity: the same chain later is expired, earlier not
	// yet valid.
	if _, err := s.Verify(certs, t0.Add(2*time.Hour)); trust.ReasonOf(err) != string(trust.Expired) {
		t.Fatalf("after NotAfter: %v", err)
	}
	if _, err := s.Verify(certs, t0.Add(-2*time.Hour)); trust.ReasonOf(err) != string(trust.NotYetValid) {
		t.Fatalf("before NotBefore: %v", err)
	}
	// A different *x509.Certificate with the same bytes gets its own pointer
	// back.
	again, err := x509.ParseCertificate(leaf.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := s.Verify([]*x509.Certificate{again}, t0)
	if err != nil || chain[0] != again {
		t.Fatalf("cached hit returned another leaf pointer (%v)", err)
	}

	cold := mustStore(t, []trust.CA{rootCA(root), interCA(inter)}, trust.VerifyCacheSize(0))
	if n := testing.AllocsPerRun(5, func() { _, _ = cold.Verify(certs, t0) }); n <= 5 {
		t.Fatalf("uncached Verify allocates only %v times; the assertion above proves nothing", n)
	}
}

// Many goroutines verifying many distinct chains through a tiny cache:
// eviction and lookups race (go test -race) and every answer stays right.
func TestVerifyCacheConcurrent(t *testing.T) {
	at := pkigen.At(t0)
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", at)
	foreign := wideRoot(t, "Foreign")
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter)}, trust.VerifyCacheSize(3))
	var good, bad [][]*x509.Certificate
	for i := range 8 {
		good = append(good, []*x509.Certificate{inter.Leaf(t, fmt.Sprint("g", i), at).Cert})
		bad = append(bad, []*x509.Certificate{foreign.Leaf(t, fmt.Sprint("b", i), at).Cert})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				g, b := good[(w+i)%len(good)], bad[(w+i)%len(bad)]
				if chain, err := s.Verify(g, t0); err != nil || chain[0] != g[0] || len(chain) != 3 {
					errs <- fmt.Errorf("good chain: %v", err)
					return
				}
				if _, err := s.Verify(b, t0); trust.ReasonOf(err) != string(trust.Untrusted) {
					errs <- fmt.Errorf("foreign chain: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkVerify(b *testing.B) {
	at := pkigen.At(t0)
	root := wideRoot(b, "Root")
	inter := root.Intermediate(b, "Inter", at)
	cas := []trust.CA{rootCA(root), interCA(inter)}
	leaf := inter.Leaf(b, "alice", at, pkigen.UPN("alice@contoso.com"))
	certs := []*x509.Certificate{leaf.Cert, inter.Cert}
	for _, bc := range []struct {
		name string
		opts []trust.StoreOption
	}{
		{"cold", []trust.StoreOption{trust.VerifyCacheSize(0)}},
		{"cached", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustStore(b, cas, bc.opts...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Verify(certs, t0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

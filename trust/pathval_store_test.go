package trust_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/pathval"
)

// A CA that expires while certgate runs refuses the chains through it from
// that moment, cached or not, without a new store.
func TestCAExpiringWhileRunning(t *testing.T) {
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", pkigen.Validity(t0.AddDate(0, -1, 0), t0.Add(time.Hour)))
	leaf := inter.Leaf(t, "a", pkigen.Validity(t0.AddDate(0, -1, 0), t0.AddDate(1, 0, 0)))
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter)})
	certs := []*x509.Certificate{leaf.Cert}
	if _, err := s.Verify(certs, t0); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if _, err := s.Verify(certs, t0); err != nil { // from the cache
		t.Fatalf("before expiry, cached: %v", err)
	}
	later := t0.Add(2 * time.Hour)
	_, err := s.Verify(certs, later)
	if trust.ReasonOf(err) != string(trust.Expired) || !strings.Contains(err.Error(), `CA "CN=Inter"`) {
		t.Fatalf("after the CA expired: %v", err)
	}
	st := s.CAStatus(later)
	if !st[0].Usable || st[1].Usable || st[1].Reason != trust.Expired {
		t.Fatalf("CAStatus after expiry: %+v", st)
	}
}

// A CA renewed with the same key has two certificates with one SKI: both
// are kept, either path works, and the issuer is found by name and key.
func TestCAsSharingAKey(t *testing.T) {
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", pkigen.Validity(t0.AddDate(-2, 0, 0), t0.AddDate(0, 0, -1)))
	renewed := root.Intermediate(t, "Inter", pkigen.Key(inter.Key), pkigen.Validity(t0.AddDate(0, 0, -2), t0.AddDate(2, 0, 0)))
	if string(inter.Cert.SubjectKeyId) != string(renewed.Cert.SubjectKeyId) {
		t.Fatal("test PKI: the renewed CA should have the old SKI")
	}
	leaf := inter.Leaf(t, "a", pkigen.Validity(t0.AddDate(0, -1, 0), t0.AddDate(0, 1, 0)))
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter), interCA(renewed)})
	chain, err := s.Verify([]*x509.Certificate{leaf.Cert}, t0)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if chain[1] != renewed.Cert {
		t.Fatalf("chain goes through %v, want the valid renewed certificate", chain[1].NotAfter)
	}
	if ca, ok := s.IssuerOf(leaf.Cert); !ok || ca.Cert.Subject.CommonName != "Inter" {
		t.Fatalf("IssuerOf: %v %v", ca, ok)
	}
	if _, ok := s.BySKI(inter.Cert.SubjectKeyId); !ok {
		t.Fatal("BySKI finds nothing")
	}
	st := s.CAStatus(t0)
	if st[1].Usable || !st[2].Usable {
		t.Fatalf("CAStatus: %+v", st)
	}
}

// A CRL signer is judged by the full path validation, to the store's
// limits, but as a CRL signer: cRLSign, no CA, no clientAuth needed.
func TestCheckCRLSigner(t *testing.T) {
	root := wideRoot(t, "Root")
	inter := root.Intermediate(t, "Inter", pkigen.At(t0), pkigen.KeyUsage(x509.KeyUsageCertSign))
	crlKey := root.Leaf(t, "Inter", pkigen.At(t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU(x509.ExtKeyUsageServerAuth))
	weak := root.Leaf(t, "Inter", pkigen.At(t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.RSA(1024))
	s := mustStore(t, []trust.CA{rootCA(root), interCA(inter)}, trust.WithClock(func() time.Time { return t0 }))
	if err := s.CheckCRLSigner(crlKey.Cert, time.Time{}); err != nil {
		t.Errorf("CRL key: %v", err)
	}
	if err := s.CheckCRLSigner(inter.Cert, t0); trust.ReasonOf(err) != string(trust.BadUsage) || !strings.Contains(err.Error(), "cRLSign") {
		t.Errorf("a CA whose keyUsage lacks cRLSign: %v", err)
	}
	if err := s.CheckCRLSigner(weak.Cert, t0); trust.ReasonOf(err) != string(trust.Untrusted) || !strings.Contains(err.Error(), "RSA key of 1024 bits") {
		t.Errorf("a 1024-bit CRL key: %v", err)
	}
	if err := s.CheckCRLSigner(crlKey.Cert, crlKey.Cert.NotAfter.Add(time.Second)); trust.ReasonOf(err) != string(trust.Expired) {
		t.Errorf("an expired CRL key: %v", err)
	}
}

// Store passes pathval's reasons on as its own: they must be the same SPEC
// codes.
func TestPathvalReasonsAreTrustReasons(t *testing.T) {
	for p, r := range map[pathval.Reason]trust.Reason{
		pathval.Untrusted: trust.Untrusted, pathval.Expired: trust.Expired, pathval.NotYetValid: trust.NotYetValid,
		pathval.BadUsage: trust.BadUsage, pathval.NameConstraints: trust.NameConstraints, pathval.Malformed: trust.MalformedCertificate,
	} {
		if string(p) != string(r) {
			t.Errorf("pathval %q is trust %q", p, r)
		}
	}
}

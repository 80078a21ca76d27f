package revocation_test

import (
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
	"github.com/certgate/certgate/trust"
)

// configureWithStore is configure with the sources' VerifySigner set to a
// trust.Store of the same certificates, as cmd/certgate wires it; calls
// counts the path validations.
func (p *crlKeyPKI) configureWithStore(t *testing.T, signer *pkigen.CA, extra ...*pkigen.CA) (calls *atomic.Int64) {
	t.Helper()
	cas := []trust.CA{{Type: trust.AuthorityRoot, Cert: p.root.Cert}}
	srcs := []revocation.Source{{Issuer: p.root.Cert, CRLURL: p.srv.url("/root.crl")}}
	for _, ca := range append([]*pkigen.CA{p.certKey, p.crlKey}, extra...) {
		cas = append(cas, trust.CA{Type: trust.AuthorityIntermediate, Cert: ca.Cert})
		url := p.srv.url("/inter.crl")
		if ca.Cert.Subject.CommonName != "Inter" {
			url = p.srv.url("/" + ca.Cert.Subject.CommonName + ".crl")
			p.srv.serveCRL("/"+ca.Cert.Subject.CommonName+".crl", ca.MustCRL(t, p.crlOpts(1)))
		}
		srcs = append(srcs, revocation.Source{Issuer: ca.Cert, CRLURL: url})
	}
	store, err := trust.NewStore(cas)
	if err != nil {
		t.Fatal(err)
	}
	calls = new(atomic.Int64)
	verify := func(c *x509.Certificate, at time.Time) error {
		calls.Add(1)
		return store.CheckCRLSigner(c, at)
	}
	for i := range srcs {
		srcs[i].VerifySigner = verify
	}
	p.srv.serveCRL("/inter.crl", signer.MustCRL(t, p.crlOpts(1, p.bob)))
	p.srv.serveCRL("/root.crl", p.root.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: p.t0.Add(-time.Minute), NextUpdate: p.t0.Add(time.Hour)}))
	p.c.SetSources(srcs)
	p.mustRefresh(t)
	return calls
}

// A CRL signer whose own certification path is broken in a way only full
// path validation sees (its dates and revocation are fine) cannot clear
// anyone: its CRLs are unusable, and say why. A serial they list is still
// refused.
func TestCRLSignerWithABrokenPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(p *crlKeyPKI) (signer *pkigen.CA, extra []*pkigen.CA)
		want string
	}{
		{"weak key", func(p *crlKeyPKI) (*pkigen.CA, []*pkigen.CA) {
			l := p.root.Leaf(t, "Inter", pkigen.At(p.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU(), pkigen.RSA(1024))
			return &pkigen.CA{Cert: l.Cert, Key: l.Key}, nil
		}, "RSA key of 1024 bits"},
		{"outside its issuer's name constraints", func(p *crlKeyPKI) (*pkigen.CA, []*pkigen.CA) {
			mid := p.root.Intermediate(t, "Mid", pkigen.At(p.t0), pkigen.PermittedDNS("contoso.com"))
			l := mid.Leaf(t, "Inter", pkigen.At(p.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU(), pkigen.DNS("crl.fabrikam.com"))
			return &pkigen.CA{Cert: l.Cert, Key: l.Key}, []*pkigen.CA{mid}
		}, "name constraints"},
		{"under a CA that may not issue", func(p *crlKeyPKI) (*pkigen.CA, []*pkigen.CA) {
			mid := p.root.Intermediate(t, "Mid", pkigen.At(p.t0), pkigen.KeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageCRLSign))
			l := mid.Leaf(t, "Inter", pkigen.At(p.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU())
			return &pkigen.CA{Cert: l.Cert, Key: l.Key}, []*pkigen.CA{mid}
		}, "keyCertSign"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newCRLKeyPKI(t)
			var extra []*pkigen.CA
			p.crlKey, extra = tc.make(p)
			p.configureWithStore(t, p.crlKey, extra...)
			refuseWith(t, p.c, p.alice, p.t0, revocation.ReasonCRLUnavailable, "CRL signer", "certification path is not valid", tc.want)
			refuse(t, p.c, p.bob, p.t0, revocation.ReasonRevoked)
		})
	}
}

// With a sound path the CRL key clears, and its path validation is asked
// once per span between two validity bounds, not per check: here until
// the CRL key expires, after which it is asked again and refuses.
func TestCRLSignerPathValidationIsKept(t *testing.T) {
	p := newCRLKeyPKI(t, pkigen.Validity(time.Now().Add(-time.Hour), time.Now().Add(2*time.Hour)))
	calls := p.configureWithStore(t, p.crlKey)
	admit(t, p.c, p.alice, p.t0)
	admit(t, p.c, p.alice, p.t0.Add(time.Minute))
	refuse(t, p.c, p.bob, p.t0, revocation.ReasonRevoked)
	if n := calls.Load(); n != 1 {
		t.Errorf("%d path validations for checks between the same bounds, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = p.c.Check(p.alice.Chain, p.t0) }); n != 0 {
		t.Errorf("Check through a validated CRL signer allocates %.1f times", n)
	}
	refuseWith(t, p.c, p.alice, p.t0.Add(3*time.Hour), revocation.ReasonCRLUnavailable, "certification path is not valid", "expired")
	if n := calls.Load(); n != 2 {
		t.Errorf("%d path validations after crossing the signer's notAfter, want 2", n)
	}
	// Back before the bound (a clock step back): asked again, usable.
	admit(t, p.c, p.alice, p.t0)
}

// PKITS 4.4.21 with the path validation wired: revocation of the signer is
// still the checker's own finding.
func TestRevokedCRLSignerWithStore(t *testing.T) {
	p := newCRLKeyPKI(t)
	p.configureWithStore(t, p.crlKey)
	admit(t, p.c, p.alice, p.t0)
	p.srv.serveCRL("/root.crl", p.root.MustCRL(t, pkigen.CRLOptions{Number: 2, ThisUpdate: p.t0.Add(-time.Minute), NextUpdate: p.t0.Add(time.Hour),
		Revoked: []x509.RevocationListEntry{{SerialNumber: p.crlKey.Cert.SerialNumber, RevocationTime: p.t0.Add(-time.Hour)}}}))
	p.mustRefresh(t)
	refuseWith(t, p.c, p.alice, p.t0, revocation.ReasonCRLUnavailable, "CRL signer", "revoked")
}

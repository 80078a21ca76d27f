package revocation_test

import (
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

// crlKeyPKI is a CA ("Inter") whose certificate-signing key may not sign
// CRLs, and a second certificate of the same CA name, issued by the root,
// for the key that does (PKITS 4.4.19-21).
type crlKeyPKI struct {
	*fixture
	certKey *pkigen.CA // issues the client certificates
	crlKey  *pkigen.CA // signs the CRLs
	alice   *pkigen.Leaf
	bob     *pkigen.Leaf
}

func newCRLKeyPKI(t *testing.T, crlKeyOpts ...pkigen.Option) *crlKeyPKI {
	f := newFixture(t)
	p := &crlKeyPKI{fixture: f}
	p.certKey = f.root.Intermediate(t, "Inter", pkigen.At(f.t0), pkigen.KeyUsage(x509.KeyUsageCertSign))
	// Not a CA: a CRL signer needs cRLSign only.
	opts := append([]pkigen.Option{pkigen.At(f.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU()}, crlKeyOpts...)
	l := f.root.Leaf(t, "Inter", opts...)
	p.crlKey = &pkigen.CA{Cert: l.Cert, Key: l.Key, Chain: l.Chain}
	p.alice = p.certKey.Leaf(t, "alice", pkigen.At(f.t0))
	p.bob = p.certKey.Leaf(t, "bob", pkigen.At(f.t0))
	return p
}

// configure serves the CA's CRL (signed by signer) and the root's CRL, and
// configures root, the certificate-signing key and the CRL key, both with
// the CA's CRL URL.
func (p *crlKeyPKI) configure(t *testing.T, signer *pkigen.CA, revokedByRoot ...*x509.Certificate) {
	t.Helper()
	o := p.crlOpts(1, p.bob)
	p.srv.serveCRL("/inter.crl", signer.MustCRL(t, o))
	var rootRevoked []x509.RevocationListEntry
	for _, c := range revokedByRoot {
		rootRevoked = append(rootRevoked, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: p.t0.Add(-time.Hour)})
	}
	p.srv.serveCRL("/root.crl", p.root.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: p.t0.Add(-time.Minute), NextUpdate: p.t0.Add(time.Hour), Revoked: rootRevoked}))
	p.c.SetSources([]revocation.Source{
		{Issuer: p.root.Cert, CRLURL: p.srv.url("/root.crl")},
		{Issuer: p.certKey.Cert, CRLURL: p.srv.url("/inter.crl")},
		{Issuer: p.crlKey.Cert, CRLURL: p.srv.url("/inter.crl")},
	})
}

func TestSeparateCRLSigningKey(t *testing.T) {
	p := newCRLKeyPKI(t)
	p.configure(t, p.crlKey)
	p.mustRefresh(t)
	admit(t, p.c, p.alice, p.t0)
	refuse(t, p.c, p.bob, p.t0, revocation.ReasonRevoked)
	for _, st := range p.c.Status() {
		if st.IssuerSKI == hex.EncodeToString(p.certKey.Cert.SubjectKeyId) && st.SignerSKI != hex.EncodeToString(p.crlKey.Cert.SubjectKeyId) {
			t.Errorf("status of the certificate key names signer %q, want the CRL key", st.SignerSKI)
		}
	}
}

// TestRevokedCRLSignerMakesItsCRLUnusable is PKITS 4.4.21.
func TestRevokedCRLSignerMakesItsCRLUnusable(t *testing.T) {
	p := newCRLKeyPKI(t)
	p.configure(t, p.crlKey, p.crlKey.Cert)
	p.mustRefresh(t)
	refuseWith(t, p.c, p.alice, p.t0, revocation.ReasonCRLUnavailable, "CRL signer", "revoked")
	// A listed serial is still refused: the CRL only cannot clear.
	refuse(t, p.c, p.bob, p.t0, revocation.ReasonRevoked)
}

func TestExpiredCRLSigner(t *testing.T) {
	p := newCRLKeyPKI(t, pkigen.Validity(time.Now().Add(-48*time.Hour), time.Now().Add(time.Hour)))
	p.configure(t, p.crlKey)
	p.mustRefresh(t)
	admit(t, p.c, p.alice, p.t0)
	later := p.t0.Add(2 * time.Hour) // the CRL is still fresh, its signer not
	refuseWith(t, p.c, p.alice, later, revocation.ReasonCRLUnavailable, "CRL signer", "is not valid at")
}

// TestCRLSignerWithoutCRLSign: the other key's certificate has a keyUsage
// without cRLSign, so its signature makes no CRL.
func TestCRLSignerWithoutCRLSign(t *testing.T) {
	p := newCRLKeyPKI(t, pkigen.KeyUsage(x509.KeyUsageDigitalSignature))
	// crypto/x509 will only sign with a certificate that has cRLSign.
	relabelled := *p.crlKey.Cert
	relabelled.KeyUsage |= x509.KeyUsageCRLSign
	p.configure(t, &pkigen.CA{Cert: &relabelled, Key: p.crlKey.Key})
	err := p.refresh(t)
	if fetchKind(err) != revocation.KindSignature || !strings.Contains(err.Error(), "cRLSign") {
		t.Fatalf("RefreshNow = %v, want a signature error naming cRLSign", err)
	}
	refuseWith(t, p.c, p.alice, p.t0, revocation.ReasonCRLUnavailable, "no CRL loaded yet", "cRLSign")
}

// TestCRLSignerOfAnUnconfiguredIssuer: the CRL key's certificate must
// itself come from a configured CA.
func TestCRLSignerOfAnUnconfiguredIssuer(t *testing.T) {
	p := newCRLKeyPKI(t)
	stranger := pkigen.Root(t, "Stranger", pkigen.At(p.t0))
	l := stranger.Leaf(t, "Inter", pkigen.At(p.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU())
	p.crlKey = &pkigen.CA{Cert: l.Cert, Key: l.Key}
	p.configure(t, p.crlKey)
	p.mustRefresh(t)
	refuseWith(t, p.c, p.alice, p.t0, revocation.ReasonCRLUnavailable, "is not a configured CA")
}

// TestKeyRolloverConsultsTheCRLThatCoversTheCertificate is PKITS 4.5.5:
// a CA rolled over to a new key publishes, under its old key, a CRL only
// for its self-issued certificate, and under its new key the CRL for
// everything it issued. A certificate issued with the old key and revoked
// is listed on the new key's CRL only, and must be refused.
func TestKeyRolloverConsultsTheCRLThatCoversTheCertificate(t *testing.T) {
	f := newFixture(t)
	oldKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	newKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	kept := oldKey.Leaf(t, "kept", pkigen.At(f.t0))
	revoked := oldKey.Leaf(t, "revoked", pkigen.At(f.t0))
	selfIssuedDP := idp(fullName(dirName(nameOf(cnATV(cbasn1.PrintableString, "Self-Issued Cert DP")))))
	f.srv.serveCRL("/old.crl", oldKey.MustCRL(t, withExt(f.crlOpts(1), selfIssuedDP)))
	f.srv.serveCRL("/new.crl", newKey.MustCRL(t, f.crlOpts(1, revoked)))
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: oldKey.Cert, CRLURL: f.srv.url("/old.crl")},
		{Issuer: newKey.Cert, CRLURL: f.srv.url("/new.crl")},
	})
	f.mustRefresh(t)
	refuse(t, f.c, revoked, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, kept, f.t0)

	// Without the new key configured, nothing covers them. (The old key's
	// source changes with the CA's certificates, so its CRL is verified
	// again.)
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: oldKey.Cert, CRLURL: f.srv.url("/old.crl")},
	})
	f.mustRefresh(t)
	refuseWith(t, f.c, kept, f.t0, revocation.ReasonCRLUnavailable, "no CRL covers this certificate", "Self-Issued Cert DP")
	refuseWith(t, f.c, revoked, f.t0, revocation.ReasonCRLUnavailable, "no CRL covers this certificate")
}

// TestRolloverCRLSignedByTheNewKey is PKITS 4.5.1/4.5.2: the old key's
// certificates are covered by a CRL the new key signs, configured at the
// old key's entry.
func TestRolloverCRLSignedByTheNewKey(t *testing.T) {
	f := newFixture(t)
	newKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	oldKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	kept := oldKey.Leaf(t, "kept", pkigen.At(f.t0))
	revoked := oldKey.Leaf(t, "revoked", pkigen.At(f.t0))
	f.srv.serveCRL("/new.crl", newKey.MustCRL(t, f.crlOpts(1, revoked)))
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: newKey.Cert, CRLURL: f.srv.url("/new.crl")},
		{Issuer: oldKey.Cert, CRLURL: f.srv.url("/new.crl")},
	})
	f.mustRefresh(t)
	admit(t, f.c, kept, f.t0)
	refuse(t, f.c, revoked, f.t0, revocation.ReasonRevoked)
	if n := testing.AllocsPerRun(100, func() { _ = f.c.Check(kept.Chain, f.t0) }); n != 0 {
		t.Errorf("Check through another key's CRL allocates %.1f times", n)
	}
}

// TestSeveralCertificatesOneSKI: a CA renewed with the same key has two
// certificates with one SKI; they share one source, one fetch, one CRL.
func TestSeveralCertificatesOneSKI(t *testing.T) {
	f := newFixture(t)
	renewed := f.root.Intermediate(t, "Inter", pkigen.At(f.t0), pkigen.Key(f.inter.Key))
	if string(renewed.Cert.SubjectKeyId) != string(f.inter.Cert.SubjectKeyId) {
		t.Fatal("test PKI: the renewed certificate has another SKI")
	}
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.srv.serveCRL("/other.crl", f.crl(t, 1))
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: f.inter.Cert, CRLURL: f.srv.url("/inter.crl")},
		{Issuer: renewed.Cert, CRLURL: f.srv.url("/other.crl")},
	})
	f.mustRefresh(t)
	if n := f.srv.hitCount("/inter.crl"); n != 1 {
		t.Errorf("%d fetches of the shared CRL, want 1", n)
	}
	if n := f.srv.hitCount("/other.crl"); n != 0 {
		t.Errorf("the second certificate's CRL URL was fetched %d times, want 0 (the first is used)", n)
	}
	f.logs.mustContain(t, "one SKI name different CRL URLs")
	var entries int
	for _, st := range f.c.Status() {
		if st.IssuerSKI == f.interSKIHex {
			entries++
			if st.Certificates != 2 {
				t.Errorf("status counts %d certificates for the SKI, want 2", st.Certificates)
			}
		}
	}
	if entries != 1 {
		t.Errorf("%d status entries for the SKI, want 1", entries)
	}
	viaRenewed := func(l *pkigen.Leaf) []*x509.Certificate {
		return []*x509.Certificate{l.Cert, renewed.Cert, f.root.Cert}
	}
	if err := f.c.Check(viaRenewed(f.alice), f.t0); err != nil {
		t.Errorf("alice via the renewed certificate: %v", err)
	}
	if reasonOf(f.c.Check(viaRenewed(f.bob), f.t0)) != revocation.ReasonRevoked {
		t.Error("bob via the renewed certificate not refused as revoked")
	}
	admit(t, f.c, f.alice, f.t0)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)

	// crlExempt counts only when every certificate of the key says so.
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: f.inter.Cert, Exempt: true},
		{Issuer: renewed.Cert},
	})
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
}

// TestCRLSignerPathIsChecked: the CRL key's certificate comes from an
// intermediate, which must itself be unrevoked by the root.
func TestCRLSignerPathIsChecked(t *testing.T) {
	for _, midRevoked := range []bool{false, true} {
		f := newFixture(t)
		mid := f.root.Intermediate(t, "Mid", pkigen.At(f.t0))
		certKey := f.root.Intermediate(t, "Inter", pkigen.At(f.t0), pkigen.KeyUsage(x509.KeyUsageCertSign))
		l := mid.Leaf(t, "Inter", pkigen.At(f.t0), pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU())
		crlKey := &pkigen.CA{Cert: l.Cert, Key: l.Key}
		alice := certKey.Leaf(t, "alice", pkigen.At(f.t0))
		var rootRevoked []*x509.Certificate
		if midRevoked {
			rootRevoked = append(rootRevoked, mid.Cert)
		}
		var entries []x509.RevocationListEntry
		for _, c := range rootRevoked {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: f.t0.Add(-time.Hour)})
		}
		f.srv.serveCRL("/root.crl", f.root.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: f.t0.Add(-time.Minute), NextUpdate: f.t0.Add(time.Hour), Revoked: entries}))
		f.srv.serveCRL("/mid.crl", mid.MustCRL(t, f.crlOpts(1)))
		f.srv.serveCRL("/inter.crl", crlKey.MustCRL(t, f.crlOpts(1)))
		f.c.SetSources([]revocation.Source{
			{Issuer: f.root.Cert, CRLURL: f.srv.url("/root.crl")},
			{Issuer: mid.Cert, CRLURL: f.srv.url("/mid.crl")},
			{Issuer: certKey.Cert, CRLURL: f.srv.url("/inter.crl")},
			{Issuer: crlKey.Cert, CRLURL: f.srv.url("/inter.crl")},
		})
		f.mustRefresh(t)
		if !midRevoked {
			admit(t, f.c, alice, f.t0)
			continue
		}
		refuseWith(t, f.c, alice, f.t0, revocation.ReasonCRLUnavailable, "CRL signer", `certificate "CN=Mid"`, "revoked")
	}
}

// TestRequestFreshAcrossKeys: with a rolled-over CA, the CRL that clears a
// certificate of the old key may be the new key's, so instant revocation
// waits for, and fetches, every CRL of the CA that could clear it.
func TestRequestFreshAcrossKeys(t *testing.T) {
	f := newFixture(t)
	oldKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	newKey := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	caOnly := f.root.Intermediate(t, "Rollover CA", pkigen.At(f.t0))
	kept := oldKey.Leaf(t, "kept", pkigen.At(f.t0))
	serve := func(tu time.Time, n int64) {
		for path, ca := range map[string]*pkigen.CA{"/old.crl": oldKey, "/new.crl": newKey, "/ca-only.crl": caOnly} {
			o := f.crlOpts(n)
			o.ThisUpdate = tu
			if ca == caOnly {
				o = withExt(o, idp(flag(2)))
				o.ThisUpdate = f.t0.Add(-time.Hour) // never refreshed: must not hold anyone back
			}
			f.srv.serveCRL(path, ca.MustCRL(t, o))
		}
	}
	serve(f.t0.Add(-time.Minute), 1)
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, Exempt: true},
		{Issuer: oldKey.Cert, CRLURL: f.srv.url("/old.crl")},
		{Issuer: newKey.Cert, CRLURL: f.srv.url("/new.crl")},
		{Issuer: caOnly.Cert, CRLURL: f.srv.url("/ca-only.crl")},
	})
	f.mustRefresh(t)
	admit(t, f.c, kept, f.t0)
	revokedAt := f.t0

	// Only the old key's CRL is new: not enough.
	o := f.crlOpts(2)
	o.ThisUpdate = f.t0.Add(time.Second)
	f.srv.serveCRL("/old.crl", oldKey.MustCRL(t, o))
	f.clk.add(2 * time.Second)
	f.c.RequestFresh(oldKey.Cert.SubjectKeyId, revokedAt)
	revocation.WaitBackground(f.c)
	if tu := f.c.ThisUpdate(oldKey.Cert.SubjectKeyId); tu.After(revokedAt) {
		t.Fatalf("ThisUpdate %v after %v while the new key's CRL is older", tu, revokedAt)
	}
	if f.srv.hitCount("/new.crl") != 2 || f.srv.hitCount("/ca-only.crl") != 1 {
		t.Errorf("fetches: new key %d (want 2), CA-only %d (want 1)", f.srv.hitCount("/new.crl"), f.srv.hitCount("/ca-only.crl"))
	}

	// The new key publishes; the next request (after the rate limit) gets it.
	serve(f.t0.Add(time.Second), 3)
	f.clk.add(time.Minute)
	f.c.RequestFresh(oldKey.Cert.SubjectKeyId, revokedAt)
	revocation.WaitBackground(f.c)
	if tu := f.c.ThisUpdate(oldKey.Cert.SubjectKeyId); !tu.After(revokedAt) {
		t.Fatalf("ThisUpdate %v not after %v with every CRL that could clear it newer", tu, revokedAt)
	}
}

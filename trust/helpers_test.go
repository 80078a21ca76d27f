package trust_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
)

// t0 is the fixed "now" of these tests: certificates are made around it and
// verified at it, so no test depends on the wall clock.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidDC  = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// wideRoot is a root valid from long before t0 to long after.
func wideRoot(t testing.TB, cn string, opts ...pkigen.Option) *pkigen.CA {
	t.Helper()
	return pkigen.Root(t, cn, append([]pkigen.Option{pkigen.Validity(t0.AddDate(-5, 0, 0), t0.AddDate(5, 0, 0))}, opts...)...)
}

func mustStore(t testing.TB, cas []trust.CA, opts ...trust.StoreOption) *trust.Store {
	t.Helper()
	s, err := trust.NewStore(cas, opts...)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

func rootCA(ca *pkigen.CA) trust.CA { return trust.CA{Type: trust.AuthorityRoot, Cert: ca.Cert} }

func interCA(ca *pkigen.CA) trust.CA {
	return trust.CA{Type: trust.AuthorityIntermediate, Cert: ca.Cert}
}

// handmade signs tmpl with ca for what pkigen cannot express (no SKI, odd
// extensions, a chosen issuer DN). Missing fields get leaf defaults.
func handmade(t testing.TB, ca *pkigen.CA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(4242)
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = t0.Add(-time.Hour), t0.Add(24*time.Hour)
	}
	if tmpl.ExtKeyUsage == nil && !tmpl.IsCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	parent, signer := tmpl, any(key)
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// contosoRoot is a root whose DN is written the AD CS way (DC=com first in
// the RDN sequence), to pin the IssuerAndSerialNumber format.
func contosoRoot(t testing.TB) *pkigen.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: oidDC, Value: "com"}, {Type: oidDC, Value: "contoso"},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "CONTOSO-DC-CA"},
		}},
		NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pkigen.CA{Cert: c, Key: key, Chain: []*x509.Certificate{c}}
}

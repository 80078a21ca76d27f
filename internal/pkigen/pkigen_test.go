package pkigen_test

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

func TestChainVerifiesAndCRLParses(t *testing.T) {
	root := pkigen.Root(t, "Root")
	inter := root.Intermediate(t, "Inter")
	leaf := inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com"))
	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	ints := x509.NewCertPool()
	ints.AddCert(inter.Cert)
	if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: ints, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(leaf.Cert.EmailAddresses) != 1 {
		t.Fatalf("email SAN lost: %v", leaf.Cert.EmailAddresses)
	}
	der := inter.MustCRL(t, pkigen.CRLOptions{Number: 7, Revoked: pkigen.Revoke(time.Now(), leaf.Cert.SerialNumber), DeltaBase: 5})
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := rl.CheckSignatureFrom(inter.Cert); err != nil {
		t.Fatal(err)
	}
	if rl.Number.Cmp(big.NewInt(7)) != 0 || len(rl.RevokedCertificateEntries) != 1 {
		t.Fatalf("crl: number %v entries %d", rl.Number, len(rl.RevokedCertificateEntries))
	}
}

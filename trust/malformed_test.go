package trust_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certgate/certgate/trust"
)

// TestMalformedCertificateFiles: certificates kept in testdata/malformed
// whose SAN otherName UPN is malformed (crypto/x509 parses them: it skips
// otherName) are refused by Verify and by the UPN reader, never bound.
func TestMalformedCertificateFiles(t *testing.T) {
	read := func(name string) *x509.Certificate {
		b, err := os.ReadFile(filepath.Join("testdata", "malformed", name))
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := read("ca.pem")
	store, err := trust.NewStore([]trust.CA{{Type: trust.AuthorityRoot, Cert: ca, CRLExempt: true}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"upn-wrong-inner-tag.pem", "upn-missing-value.pem", "critical-san-bad-upn.pem"} {
		t.Run(name, func(t *testing.T) {
			leaf := read(name)
			if upns, err := trust.UPNs(leaf); err == nil {
				t.Fatalf("UPNs accepted a malformed otherName: %q", upns)
			}
			_, err := store.Verify([]*x509.Certificate{leaf}, time.Now())
			if got := trust.ReasonOf(err); got != string(trust.Untrusted) {
				t.Fatalf("Verify: reason %q (%v), want untrusted", got, err)
			}
		})
	}
}

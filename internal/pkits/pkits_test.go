package pkits

import (
	"crypto/x509"
	"testing"
)

// TestSuiteIsComplete guards the copy: every applicable case's files are
// present and parse as far as crypto/x509 goes, and the count is the 133
// the suite's README promises.
func TestSuiteIsComplete(t *testing.T) {
	cases, err := Applicable()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 133 {
		t.Fatalf("%d applicable cases, want 133", len(cases))
	}
	for _, c := range cases {
		for _, name := range c.Path {
			if _, err := Cert(name); err != nil {
				t.Errorf("%s: %v", c.ID, err)
			}
		}
		for _, ca := range c.CRLs {
			for _, n := range []string{ca.BaseCRL, ca.DeltaCRL} {
				if n == "" {
					continue
				}
				der, err := CRL(n)
				if err != nil {
					t.Errorf("%s: %v", c.ID, err)
					continue
				}
				if _, err := x509.ParseRevocationList(der); err != nil {
					t.Errorf("%s: CRL %s: %v", c.ID, n, err)
				}
			}
		}
	}
}

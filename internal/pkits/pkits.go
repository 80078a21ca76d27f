// Package pkits serves the NIST Public Key Interoperability Test Suite
// (PKITS 1.0.1, public domain) to certgate's tests: its certificates, its
// CRLs and its table of cases with the verdict a conforming RFC 5280
// verifier gives. It only reads the suite; how a case maps onto certgate's
// configuration is the caller's business (testdata/README.md says how).
package pkits

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"strings"
)

//go:embed testdata/cases.tsv testdata/certs testdata/crls
var files embed.FS

// CA is one certification authority of a case's path, with the CRLs it
// publishes (names without extension; empty when none).
type CA struct {
	Cert     string
	BaseCRL  string
	DeltaCRL string
}

// Case is one line of cases.tsv.
type Case struct {
	ID     string
	Accept bool
	// Path is the certificate names, trust anchor first, end entity last.
	Path []string
	// CRLs maps a CA certificate name of Path to what it publishes.
	CRLs map[string]CA
	// NotApplicable is empty for the cases certgate must decide, otherwise
	// why the case is outside certgate's model.
	NotApplicable string
	Title         string
}

// Root is the trust anchor's name.
func (c Case) Root() string { return c.Path[0] }

// Intermediates are the CA certificates between anchor and end entity.
func (c Case) Intermediates() []string { return c.Path[1 : len(c.Path)-1] }

// Leaf is the end entity's name.
func (c Case) Leaf() string { return c.Path[len(c.Path)-1] }

// Cases returns every case of the suite in table order.
func Cases() ([]Case, error) {
	data, err := files.ReadFile("testdata/cases.tsv")
	if err != nil {
		return nil, err
	}
	var out []Case
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "#") || strings.TrimSpace(text) == "" {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 6 {
			return nil, fmt.Errorf("cases.tsv:%d: %d columns, want 6", line, len(f))
		}
		c := Case{ID: f[0], Path: strings.Split(f[2], ","), CRLs: map[string]CA{}, NotApplicable: f[4], Title: f[5]}
		switch f[1] {
		case "accept":
			c.Accept = true
		case "reject":
		default:
			return nil, fmt.Errorf("cases.tsv:%d: verdict %q", line, f[1])
		}
		if len(c.Path) < 2 {
			return nil, fmt.Errorf("cases.tsv:%d: path of %d certificates", line, len(c.Path))
		}
		if f[3] != "" {
			for _, item := range strings.Split(f[3], ",") {
				name, crls, ok := strings.Cut(item, "=")
				base, delta, ok2 := strings.Cut(crls, "+")
				if !ok || !ok2 {
					return nil, fmt.Errorf("cases.tsv:%d: CRL column item %q, want CA=BASE+DELTA", line, item)
				}
				c.CRLs[name] = CA{Cert: name, BaseCRL: base, DeltaCRL: delta}
			}
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// Applicable returns the cases certgate must decide.
func Applicable() ([]Case, error) {
	all, err := Cases()
	if err != nil {
		return nil, err
	}
	var out []Case
	for _, c := range all {
		if c.NotApplicable == "" {
			out = append(out, c)
		}
	}
	return out, nil
}

// Cert returns a certificate's DER by name.
func Cert(name string) ([]byte, error) { return files.ReadFile("testdata/certs/" + name + ".crt") }

// CRL returns a CRL's DER by name.
func CRL(name string) ([]byte, error) { return files.ReadFile("testdata/crls/" + name + ".crl") }

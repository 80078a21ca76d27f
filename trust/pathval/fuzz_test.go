package pathval

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

// bytesource hands out fuzz bytes as small choices; past the end it gives 0.
type bytesource struct {
	b []byte
	i int
}

func (s *bytesource) pick(n int) int {
	if s.i >= len(s.b) {
		return 0
	}
	v := int(s.b[s.i]) % n
	s.i++
	return v
}

var (
	fuzzDomains = []string{"contoso.com", "sales.contoso.com", "fabrikam.com", ".contoso.com"}
	fuzzDNS     = []string{"a.contoso.com", "b.sales.contoso.com", "x.fabrikam.com", "contoso.com"}
	fuzzEmails  = []string{"u@contoso.com", "u@fabrikam.com", "u@sales.contoso.com"}
	fuzzEKUs    = [][]x509.ExtKeyUsage{nil, {x509.ExtKeyUsageClientAuth}, {x509.ExtKeyUsageServerAuth}, {x509.ExtKeyUsageAny}, {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	fuzzNames   = []string{"Root", "I1", "I2", "I3"}
)

// fuzzSpec draws the features both verifiers implement the same way per
// RFC 5280 (where they differ by design, see FuzzAgainstX509).
func fuzzSpec(s *bytesource, cn string, ca bool, key int) spec {
	sp := spec{cn: cn, key: key, ca: ca}
	switch s.pick(8) {
	case 1:
		sp.notAfter = t0.Add(-time.Hour)
	case 2:
		sp.notBefore = t0.Add(time.Hour)
	}
	sp.eku = fuzzEKUs[s.pick(len(fuzzEKUs)+3)%len(fuzzEKUs)]
	if ca {
		switch s.pick(6) {
		case 1:
			sp.pathLen = intp(0)
		case 2:
			sp.pathLen = intp(1)
		case 3:
			sp.noBC = true
		}
		if s.pick(8) == 0 {
			sp.ku = x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		}
		switch s.pick(4) {
		case 1:
			sp.permDNS = []string{fuzzDomains[s.pick(len(fuzzDomains))]}
		case 2:
			sp.exclDNS = []string{fuzzDomains[s.pick(len(fuzzDomains))]}
		case 3:
			sp.permEmail = []string{fuzzDomains[s.pick(len(fuzzDomains))]}
		}
		return sp
	}
	for range s.pick(3) {
		sp.dns = append(sp.dns, fuzzDNS[s.pick(len(fuzzDNS))])
	}
	for range s.pick(2) {
		sp.emails = append(sp.emails, fuzzEmails[s.pick(len(fuzzEmails))])
	}
	return sp
}

// FuzzAgainstX509 builds random chains and holds pathval to crypto/x509's
// verdict. The documented differences, each allowed only where it applies:
//
//   - pathval accepts, crypto/x509 refuses: a self-issued intermediate under
//     a pathLenConstraint (RFC 5280 §6.1.4 (l) does not count it; crypto/x509
//     counts every intermediate).
//   - crypto/x509 accepts, pathval refuses: a mailbox at a subdomain of an
//     rfc822Name constraint written as a host ("contoso.com"), which RFC
//     5280 §4.2.1.10 limits to that host (".contoso.com" is the domain);
//     crypto/x509 reads it as a domain. This is PKITS 4.13.24.
//   - pathval accepts, crypto/x509 refuses: a root without basicConstraints
//     (a trust anchor is a name and a key, §6.1.1 (d); crypto/x509 wants a
//     v3 root to say cA TRUE).
//
// Other differences of the package documentation are not drawn here (a
// name written in another string type or case, directoryName constraints,
// SHA-1 signatures, subject emailAddress under rfc822Name constraints) and
// have their own tests.
func FuzzAgainstX509(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	f.Add([]byte{2, 3, 2, 1, 0, 1, 1, 2, 3, 0, 1, 2, 3, 1, 2, 3, 1, 0, 2, 1})
	f.Add([]byte{2, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 2, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &bytesource{b: data}
		n := s.pick(3)
		rootSpec := fuzzSpec(s, "Root", true, 0)
		emailConstraints := rootSpec.permEmail
		root := mk(t, rootSpec, nil, nil)
		path := []*issued{root}
		selfIssued := false
		for i := range n {
			name := fuzzNames[i+1]
			if s.pick(4) == 0 {
				name = path[len(path)-1].cert.Subject.CommonName // self-issued
				selfIssued = true
			}
			sp := fuzzSpec(s, name, true, i+1)
			emailConstraints = append(emailConstraints, sp.permEmail...)
			path = append(path, mk(t, sp, path[len(path)-1], nil))
		}
		leafSpec := fuzzSpec(s, "leaf", false, 5)
		if s.pick(10) == 0 {
			leafSpec.ca = true
		}
		leaf := mk(t, leafSpec, path[len(path)-1], nil)
		inters := path[1:]

		roots, pool := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root.cert)
		for _, c := range inters {
			pool.AddCert(c.cert)
		}
		_, xerr := leaf.cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		// Each intermediate is configured or sent by the client; x509 sees
		// them all as intermediates, which is what both are.
		var configured, sent []*issued
		for _, c := range inters {
			if s.pick(2) == 0 {
				configured = append(configured, c)
			} else {
				sent = append(sent, c)
			}
		}
		_, perr := New(certs(root), certs(configured...), Options{}).Verify(leaf.cert, certs(sent...), t0)
		switch {
		case (xerr == nil) == (perr == nil):
		case perr == nil && selfIssued && isTooManyIntermediates(xerr):
		case perr == nil && !root.cert.BasicConstraintsValid && isUnknownAuthority(xerr):
		case xerr == nil && reasonOf(t, perr) == NameConstraints && hostOnlyEmailConstraint(emailConstraints, leafSpec.emails):
		default:
			t.Fatalf("crypto/x509: %v\npathval: %v", xerr, perr)
		}
	})
}

// hostOnlyEmailConstraint: some mailbox is at a proper subdomain of a
// host-form rfc822Name constraint.
func hostOnlyEmailConstraint(constraints, emails []string) bool {
	for _, c := range constraints {
		if strings.HasPrefix(c, ".") {
			continue
		}
		for _, e := range emails {
			if _, host, _ := strings.Cut(e, "@"); strings.HasSuffix(host, "."+c) {
				return true
			}
		}
	}
	return false
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func isTooManyIntermediates(err error) bool {
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason == x509.TooManyIntermediates
}

// FuzzParsers feeds the DER parsers of names, subjectAltNames and
// nameConstraints (all outside input: they come from client certificates)
// with arbitrary bytes: no panic, and a name that parses compares equal to
// itself.
func FuzzParsers(f *testing.F) {
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x0d, 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, 'a', ' '})
	f.Add([]byte{0x30, 0x06, 0xa0, 0x04, 0x30, 0x02, 0x82, 0x00})
	f.Add([]byte{0x30, 0x0a, 0xa0, 0x08, 0x30, 0x06, 0x87, 0x04, 10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if n, err := parseName(data); err == nil {
			if !n.equal(n) || !n.hasPrefix(n) || !SameName(data, data) {
				t.Fatal("a name does not match itself")
			}
			_ = describeName(n)
		}
		if gns, err := parseGeneralNames(data); err == nil {
			for _, g := range gns {
				_ = g.String()
			}
			var st nameState
			if nc, err := parseNameConstraints(data); err == nil {
				st.add(nc, "CA")
			}
			_ = st.check(gns)
		}
		if nc, err := parseNameConstraints(data); err == nil {
			var st nameState
			st.add(nc, "CA")
			for _, g := range append(nc.permitted, nc.excluded...) {
				_ = g.String()
			}
		}
	})
}

package revocation_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

// DER builders for distribution points, shared by cRLDistributionPoints
// (certificates) and issuingDistributionPoint (CRLs).

func der(f func(b *cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	f(&b)
	return b.BytesOrPanic()
}

func ctx(n int) cbasn1.Tag  { return cbasn1.Tag(n).ContextSpecific() }
func cons(n int) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific().Constructed() }

func uriName(u string) []byte {
	return der(func(b *cryptobyte.Builder) { b.AddASN1(ctx(6), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) }) })
}

func dirName(name []byte) []byte {
	return der(func(b *cryptobyte.Builder) { b.AddASN1(cons(4), func(b *cryptobyte.Builder) { b.AddBytes(name) }) })
}

// cnATV is one AttributeTypeAndValue CN=v with the given string tag.
func cnATV(tag cbasn1.Tag, v string) []byte {
	return der(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier([]int{2, 5, 4, 3})
			b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
		})
	})
}

// nameOf is a Name of single-valued RDNs.
func nameOf(atvs ...[]byte) []byte {
	return der(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, a := range atvs {
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(a) })
			}
		})
	})
}

// fullName is a distributionPoint [0] holding fullName GeneralNames.
func fullName(names ...[]byte) []byte {
	return der(func(b *cryptobyte.Builder) {
		b.AddASN1(cons(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cons(0), func(b *cryptobyte.Builder) {
				for _, n := range names {
					b.AddBytes(n)
				}
			})
		})
	})
}

// relativeName is a distributionPoint [0] holding nameRelativeToCRLIssuer.
func relativeName(atv []byte) []byte {
	return der(func(b *cryptobyte.Builder) {
		b.AddASN1(cons(0), func(b *cryptobyte.Builder) {
			b.AddASN1(cons(1), func(b *cryptobyte.Builder) { b.AddBytes(atv) })
		})
	})
}

// reasonBits is a ReasonFlags [n] field with the given flag numbers set.
func reasonBits(tag int, flags ...int) []byte {
	var v [2]byte
	for _, f := range flags {
		v[f/8] |= 0x80 >> (f % 8)
	}
	body := []byte{0, v[0], v[1]}
	if v[1] == 0 {
		body = []byte{0, v[0]}
	}
	return der(func(b *cryptobyte.Builder) { b.AddASN1(ctx(tag), func(b *cryptobyte.Builder) { b.AddBytes(body) }) })
}

func flag(tag int) []byte {
	return der(func(b *cryptobyte.Builder) { b.AddASN1(ctx(tag), func(b *cryptobyte.Builder) { b.AddUint8(0xff) }) })
}

func seq(fields ...[]byte) []byte {
	return der(func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for _, f := range fields {
				b.AddBytes(f)
			}
		})
	})
}

// idp is an issuingDistributionPoint extension with the given fields.
func idp(fields ...[]byte) pkix.Extension { return idpExtension(seq(fields...)) }

// crlDP is a cRLDistributionPoints extension, one DistributionPoint per
// argument (each the concatenated fields of one).
func crlDP(dps ...[]byte) pkix.Extension {
	var all [][]byte
	for _, d := range dps {
		all = append(all, seq(d))
	}
	return pkix.Extension{Id: []int{2, 5, 29, 31}, Value: seq(all...)}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// leafWithExts makes a client certificate of ca carrying exts, which
// pkigen has no option for. crypto/x509 refuses to parse a
// cRLDistributionPoints with nameRelativeToCRLIssuer (PKITS 4.14.4-6), so
// such an extension is put into the parsed certificate instead, as a caller
// with another parser would hold it: Check reads Certificate.Extensions.
func leafWithExts(t *testing.T, ca *pkigen.CA, cn string, at time.Time, exts ...pkix.Extension) *pkigen.Leaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: cn},
		NotBefore:       at.Add(-time.Hour),
		NotAfter:        at.Add(24 * time.Hour),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		AuthorityKeyId:  ca.Cert.SubjectKeyId,
		ExtraExtensions: exts,
	}
	raw, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(raw)
	if err != nil && strings.Contains(err.Error(), "invalid CRL distribution point") {
		l := leafWithExts(t, ca, cn, at)
		l.Cert.Extensions = append(l.Cert.Extensions, exts...)
		return l
	}
	if err != nil {
		t.Fatal(err)
	}
	return &pkigen.Leaf{Cert: c, Key: key, Chain: append([]*x509.Certificate{c}, ca.Chain...)}
}

// serveScoped serves the intermediate's CRL with the given IDP, listing
// revoked, and loads it.
func (f *fixture) serveScoped(t *testing.T, ext pkix.Extension, revoked ...*pkigen.Leaf) {
	t.Helper()
	o := f.crlOpts(1, revoked...)
	o.ExtraExtensions = append(o.ExtraExtensions, ext)
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, o))
	f.mustRefresh(t)
}

// refuseWith is refuse that also wants words in the explanation.
func refuseWith(t *testing.T, c *revocation.Checker, l *pkigen.Leaf, at time.Time, reason string, words ...string) {
	t.Helper()
	re := refuse(t, c, l, at, reason)
	for _, w := range words {
		if !strings.Contains(re.Error(), w) {
			t.Errorf("%s: %q does not say %q", l.Cert.Subject.CommonName, re.Error(), w)
		}
	}
}

const (
	part1 = "http://crl.example/part1.crl"
	part2 = "http://crl.example/part2.crl"
)

// TestPartitionedCRLCoversOnlyItsDistributionPoint is PKITS 4.14.3 in
// small: a CRL for one distribution point says nothing about certificates
// that point elsewhere, even when it lists their serial.
func TestPartitionedCRLCoversOnlyItsDistributionPoint(t *testing.T) {
	f := newFixture(t)
	in1 := f.inter.Leaf(t, "in1", pkigen.CRLURL(part1), pkigen.At(f.t0))
	// Scheme and host are case-insensitive; the path is not.
	upper := f.inter.Leaf(t, "upper", pkigen.CRLURL("HTTP://CRL.Example"+strings.TrimPrefix(part1, "http://crl.example")), pkigen.At(f.t0))
	upperPath := f.inter.Leaf(t, "upperPath", pkigen.CRLURL(strings.ToUpper(part1)), pkigen.At(f.t0))
	revoked1 := f.inter.Leaf(t, "revoked1", pkigen.CRLURL(part1), pkigen.At(f.t0))
	both := f.inter.Leaf(t, "both", pkigen.CRLURL(part2, part1), pkigen.At(f.t0))
	listedElsewhere := f.inter.Leaf(t, "listedElsewhere", pkigen.CRLURL(part2), pkigen.At(f.t0))
	noDP := f.inter.Leaf(t, "noDP", pkigen.At(f.t0))
	f.serveScoped(t, idp(fullName(uriName(part1))), revoked1, listedElsewhere)
	if st := f.status(t).Scope; !strings.Contains(st, "URI:"+part1) {
		t.Errorf("status scope %q does not name the distribution point", st)
	}

	admit(t, f.c, in1, f.t0)
	admit(t, f.c, upper, f.t0)
	refuse(t, f.c, upperPath, f.t0, revocation.ReasonCRLUnavailable)
	admit(t, f.c, both, f.t0)
	refuse(t, f.c, revoked1, f.t0, revocation.ReasonRevoked)
	// Listed, but not by a CRL that covers it: neither revoked nor fine.
	refuseWith(t, f.c, listedElsewhere, f.t0, revocation.ReasonCRLUnavailable, "no CRL covers this certificate", part1, "partitioned", "it names URI:"+part2)
	refuseWith(t, f.c, noDP, f.t0, revocation.ReasonCRLUnavailable, "no CRL covers this certificate", "it has no cRLDistributionPoints")
	// The CRL of a plain certificate (no IDP) still covers all of them.
	f.srv.serveCRL("/inter.crl", f.crl(t, 2, revoked1))
	f.mustRefresh(t)
	admit(t, f.c, listedElsewhere, f.t0)
	admit(t, f.c, noDP, f.t0)
}

// TestDistributionPointDirectoryNames compares names by RFC 5280 7.1 and
// resolves nameRelativeToCRLIssuer on both sides (PKITS 4.14.6-9).
func TestDistributionPointDirectoryNames(t *testing.T) {
	f := newFixture(t)
	// The IDP names "CN=Inter, CN=CRL1" relative to the CRL issuer.
	crl1 := cnATV(cbasn1.PrintableString, "CRL1")
	relative := f.leaf(t, "relative", crlDP(relativeName(crl1)))
	// The same name, absolute, in UTF8String, another case and spacing.
	other := nameOf(cnATV(cbasn1.UTF8String, "  inter "), cnATV(cbasn1.UTF8String, "crl1"))
	absolute := f.leaf(t, "absolute", crlDP(fullName(dirName(other))))
	exact := f.leaf(t, "exact", crlDP(fullName(dirName(nameOf(cnATV(cbasn1.PrintableString, "Inter"), crl1)))))
	revoked := f.leaf(t, "revoked", crlDP(relativeName(crl1)))
	crl2 := f.leaf(t, "crl2", crlDP(relativeName(cnATV(cbasn1.PrintableString, "CRL2"))))
	issuerOnly := f.leaf(t, "issuerOnly", crlDP(fullName(dirName(f.inter.Cert.RawSubject))))
	f.serveScoped(t, idp(relativeName(crl1)), revoked, crl2)

	admit(t, f.c, relative, f.t0)
	admit(t, f.c, absolute, f.t0)
	admit(t, f.c, exact, f.t0)
	refuse(t, f.c, revoked, f.t0, revocation.ReasonRevoked)
	refuseWith(t, f.c, crl2, f.t0, revocation.ReasonCRLUnavailable, "CN=CRL1,CN=Inter")
	refuseWith(t, f.c, issuerOnly, f.t0, revocation.ReasonCRLUnavailable, "partitioned")

	// An IDP naming the CA itself is the distribution point every
	// certificate of the CA falls back on (RFC 5280 6.3.3).
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, withExt(f.crlOpts(2), idp(fullName(dirName(f.inter.Cert.RawSubject))))))
	f.mustRefresh(t)
	admit(t, f.c, issuerOnly, f.t0)
	admit(t, f.c, f.alice, f.t0)
}

func withExt(o pkigen.CRLOptions, e ...pkix.Extension) pkigen.CRLOptions {
	o.ExtraExtensions = append(o.ExtraExtensions, e...)
	return o
}

func (f *fixture) leaf(t *testing.T, cn string, exts ...pkix.Extension) *pkigen.Leaf {
	return leafWithExts(t, f.inter, cn, f.t0, exts...)
}

// TestOnlyContainsCACertsAtTheCALevel: a root's CRL of CA certificates
// clears the intermediate (PKITS 4.14.13); a CRL of user certificates
// cannot.
func TestOnlyContainsCACertsAtTheCALevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ext  pkix.Extension
		ok   bool
	}{
		{"CA certificates", idp(flag(2)), true},
		{"user certificates", idp(flag(1)), false},
		{"attribute certificates", idp(flag(5)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.serveCRL("/inter.crl", f.crl(t, 1))
			f.srv.serveCRL("/root.crl", f.root.MustCRL(t, withExt(pkigen.CRLOptions{Number: 1, ThisUpdate: f.t0.Add(-time.Minute), NextUpdate: f.t0.Add(time.Hour)}, tc.ext)))
			f.c.SetSources([]revocation.Source{
				{Issuer: f.root.Cert, CRLURL: f.srv.url("/root.crl")},
				{Issuer: f.inter.Cert, CRLURL: f.srv.url("/inter.crl")},
			})
			f.mustRefresh(t)
			if tc.ok {
				admit(t, f.c, f.alice, f.t0)
				return
			}
			re := refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
			if re.Serial != f.inter.Cert.SerialNumber.Text(16) || !strings.Contains(re.Error(), tc.name+" only") {
				t.Errorf("refusal %v, want the intermediate's, naming %s", re, tc.name)
			}
		})
	}
}

// TestOnlySomeReasons: a CRL for some reasons only revokes what it lists
// and clears nothing; with every reason it is complete.
func TestOnlySomeReasons(t *testing.T) {
	f := newFixture(t)
	f.serveScoped(t, idp(reasonBits(3, 1, 2)), f.bob)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	refuseWith(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable, "only some revocation reasons", "keyCompromise+cACompromise")

	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, withExt(f.crlOpts(2, f.bob), idp(reasonBits(3, 1, 2, 3, 4, 5, 6, 7, 8)))))
	f.mustRefresh(t)
	admit(t, f.c, f.alice, f.t0)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)

	// The certificate's own distribution point may limit the reasons too.
	someDP := f.leaf(t, "someDP", crlDP(cat(fullName(uriName(part1)), reasonBits(1, 1))))
	allDP := f.leaf(t, "allDP", crlDP(fullName(uriName(part1))))
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, withExt(f.crlOpts(3), idp(fullName(uriName(part1))))))
	f.mustRefresh(t)
	admit(t, f.c, allDP, f.t0)
	refuseWith(t, f.c, someDP, f.t0, revocation.ReasonCRLUnavailable, "only some revocation reasons")
}

// TestIndirectCRLRefused: certgate reads a CA's own CRL only.
func TestIndirectCRLRefused(t *testing.T) {
	f := newFixture(t)
	other := dirName(nameOf(cnATV(cbasn1.PrintableString, "Other CRL Issuer")))
	crlIssuer := der(func(b *cryptobyte.Builder) { b.AddASN1(cons(2), func(b *cryptobyte.Builder) { b.AddBytes(other) }) })
	indirect := f.leaf(t, "indirect", crlDP(cat(fullName(uriName(part1)), crlIssuer)))
	mixed := f.leaf(t, "mixed", crlDP(cat(fullName(uriName(part2)), crlIssuer), fullName(uriName(part1))))
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	refuseWith(t, f.c, indirect, f.t0, revocation.ReasonCRLUnavailable, "indirect CRLs are not supported")
	admit(t, f.c, mixed, f.t0)

	// An IDP that says indirectCRL is refused at ingest.
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, withExt(f.crlOpts(2), idp(flag(4)))))
	if err := f.refresh(t); fetchKind(err) != revocation.KindExtension || !strings.Contains(err.Error(), "indirect") {
		t.Fatalf("RefreshNow = %v, want an extension error about an indirect CRL", err)
	}
}

// TestDeltaScopeMustMatchBase (RFC 5280 5.2.4): a delta of another scope
// does not complete the base; one that names its own location in the IDP
// (as AD CS does) does.
func TestDeltaScopeMustMatchBase(t *testing.T) {
	f := newFixture(t, withDelta())
	users := func(url string) pkix.Extension { return idp(fullName(uriName(url)), flag(1)) }
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, withExt(f.crlOpts(10), users("http://pki/CA.crl"))))
	d := f.crlOpts(11, f.carol)
	d.DeltaBase = 10
	f.srv.serveCRL("/inter-delta.crl", f.inter.MustCRL(t, d))
	f.mustRefresh(t)
	if f.status(t).DeltaApplied {
		t.Fatal("a delta without the base's IDP was applied")
	}
	f.logs.mustContain(t, "delta CRL does not apply")
	d.Number = 12
	d.ExtraExtensions = append(d.ExtraExtensions, idp(fullName(uriName("http://pki/CA+.crl")), flag(2)))
	f.srv.serveCRL("/inter-delta.crl", f.inter.MustCRL(t, d))
	f.mustRefresh(t)
	if f.status(t).DeltaApplied {
		t.Fatal("a delta of CA certificates was applied to a base of user certificates")
	}
	d.Number = 13
	d.ExtraExtensions = []pkix.Extension{users("http://pki/CA+.crl")}
	f.srv.serveCRL("/inter-delta.crl", f.inter.MustCRL(t, d))
	f.mustRefresh(t)
	if !f.status(t).DeltaApplied {
		t.Fatal("a delta with the base's scope, naming its own location, was not applied")
	}
	// The certificates point at the base's location.
	carol := f.inter.Leaf(t, "carol2", pkigen.CRLURL("http://pki/CA.crl"), pkigen.At(f.t0))
	d.Number = 14
	d.Revoked = pkigen.Revoke(f.t0.Add(-time.Hour), carol.Cert.SerialNumber)
	f.srv.serveCRL("/inter-delta.crl", f.inter.MustCRL(t, d))
	f.mustRefresh(t)
	refuse(t, f.c, carol, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, f.inter.Leaf(t, "dave", pkigen.CRLURL("http://pki/CA.crl"), pkigen.At(f.t0)), f.t0)
}

// TestScopedCheckDoesNotAllocate: the scope check on the admit path is
// byte comparisons.
func TestScopedCheckDoesNotAllocate(t *testing.T) {
	f := newFixture(t)
	in1 := f.inter.Leaf(t, "in1", pkigen.CRLURL(part2, part1), pkigen.At(f.t0))
	upper := f.inter.Leaf(t, "upper", pkigen.CRLURL("HTTP://CRL.EXAMPLE/part1.crl"), pkigen.At(f.t0))
	dir := f.leaf(t, "dir", crlDP(fullName(dirName(nameOf(cnATV(cbasn1.PrintableString, "Inter"), cnATV(cbasn1.PrintableString, "CRL1"))))))
	f.serveScoped(t, idp(fullName(uriName(part1), dirName(nameOf(cnATV(cbasn1.PrintableString, "Inter"), cnATV(cbasn1.PrintableString, "CRL1"))))))
	for _, l := range []*pkigen.Leaf{in1, upper, dir} {
		if n := testing.AllocsPerRun(200, func() {
			if err := f.c.Check(l.Chain, f.t0); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Check allocates %.1f times per call", l.Cert.Subject.CommonName, n)
		}
	}
}

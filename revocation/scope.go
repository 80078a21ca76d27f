package revocation

import (
	"bytes"
	"crypto/x509"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/trust/pathval"
)

// allReasons is the ReasonFlags mask of every revocation reason, from
// keyCompromise (bit 1) to aACompromise (bit 8); bit 0 is "unused". A CRL
// clears a certificate only when the reasons it covers for it add up to this
// (RFC 5280 6.3.3 (d), (j)).
const allReasons uint16 = 0x1fe

// gname is one GeneralName of a distribution point.
type gname struct {
	der []byte // the GeneralName element: the cheap, byte-equal comparison
	dn  string // a directoryName prepared by pathval.NameKey; "" for other kinds
	uri []byte // a uniformResourceIdentifier's content; nil for other kinds
}

// idp is a CRL's issuingDistributionPoint (RFC 5280 5.2.5), reduced at
// ingest to what the per-certificate scope check needs, so that check is a
// few byte comparisons.
type idp struct {
	// names are the distributionPoint's names, made absolute (a
	// nameRelativeToCRLIssuer is appended to the CRL issuer's name); empty
	// when the IDP names no distribution point.
	names []gname
	// namesIssuer: names include the CRL issuer's own name, which is the
	// distribution point RFC 5280 6.3.3 assumes for a CRL that a
	// certificate's cRLDistributionPoints do not point at.
	namesIssuer       bool
	users, cas, attrs bool
	reasons           uint16 // onlySomeReasons; allReasons when absent
}

func (p *idp) String() string {
	if p == nil {
		return "all certificates"
	}
	var parts []string
	switch {
	case p.users:
		parts = append(parts, "user certificates only")
	case p.cas:
		parts = append(parts, "CA certificates only")
	case p.attrs:
		parts = append(parts, "attribute certificates only")
	}
	if len(p.names) > 0 {
		parts = append(parts, "distribution point "+describeNames(p.names))
	}
	if p.reasons != allReasons {
		parts = append(parts, "reasons "+describeReasons(p.reasons))
	}
	if len(parts) == 0 {
		return "all certificates"
	}
	return strings.Join(parts, ", ")
}

// mayCoverEndEntities reports whether the CRL can speak for some
// end-entity certificate.
func (p *idp) mayCoverEndEntities() bool {
	return p == nil || !(p.cas || p.attrs)
}

// sameScope is the 5.2.4 rule that a delta and its base cover the same
// certificates: the same kinds, the same reasons, and a distribution point
// named in both or in neither. The names themselves are not compared: a CA
// may name the delta's own location in the delta's IDP (AD CS fills IDP
// URLs from the same templates as the files it publishes, "CA+.crl" for the
// delta), and ignoring such a delta would drop its revocations. Serials are
// unique per CA, so a delta of another partition cannot revoke or release
// a certificate of this one.
func sameScope(a, b *idp) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.users == b.users && a.cas == b.cas && a.attrs == b.attrs && a.reasons == b.reasons &&
		(len(a.names) == 0) == (len(b.names) == 0)
}

var reasonNames = [9]string{"unused", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", "privilegeWithdrawn", "aACompromise"}

func describeReasons(m uint16) string {
	var out []string
	for i, n := range reasonNames {
		if m&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "+")
}

func describeNames(ns []gname) string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, describeName(n.der))
	}
	return strings.Join(out, " | ")
}

// describeName renders a GeneralName for an error message.
func describeName(der []byte) string {
	s := cryptobyte.String(der)
	var v cryptobyte.String
	var tag asn1.Tag
	if !s.ReadAnyASN1(&v, &tag) {
		return "?"
	}
	switch tag {
	case asn1.Tag(4).ContextSpecific().Constructed():
		return "DirName:" + pathval.FormatName(v)
	case asn1.Tag(6).ContextSpecific():
		return "URI:" + string(v)
	case asn1.Tag(1).ContextSpecific():
		return "email:" + string(v)
	case asn1.Tag(2).ContextSpecific():
		return "DNS:" + string(v)
	}
	return "GeneralName[" + strconv.Itoa(int(tag&0x1f)) + "]"
}

// readIDP reads an issuingDistributionPoint. issuerName is the CRL's issuer
// Name (DER), the base of a nameRelativeToCRLIssuer. Indirect CRLs are
// refused: certgate reads each CA's own CRL, and entries for other issuers'
// certificates would need the certificateIssuer bookkeeping it does not do.
func readIDP(v cryptobyte.String, issuerName []byte) (*idp, error) {
	p := &idp{reasons: allReasons}
	var seq cryptobyte.String
	if !v.ReadASN1(&seq, asn1.SEQUENCE) || !v.Empty() {
		return nil, fetchErrorf(KindParse, "malformed issuing distribution point")
	}
	bad := fetchErrorf(KindParse, "malformed issuing distribution point")
	for !seq.Empty() {
		var val cryptobyte.String
		var tag asn1.Tag
		if !seq.ReadAnyASN1(&val, &tag) {
			return nil, bad
		}
		flag := len(val) == 1 && val[0] == 0xff
		isBool := len(val) == 1 && (val[0] == 0 || val[0] == 0xff)
		switch tag {
		case asn1.Tag(0).ContextSpecific().Constructed():
			names, err := readDPName(val, issuerName)
			if err != nil {
				return nil, err
			}
			p.names = names
		case asn1.Tag(1).ContextSpecific():
			p.users = flag
		case asn1.Tag(2).ContextSpecific():
			p.cas = flag
		case asn1.Tag(3).ContextSpecific():
			m, ok := reasonMask(val)
			if !ok {
				return nil, bad
			}
			p.reasons = m
			continue
		case asn1.Tag(4).ContextSpecific():
			if flag {
				return nil, fetchErrorf(KindExtension, "indirect CRL (issuingDistributionPoint indirectCRL): only a CA's own CRL is supported")
			}
		case asn1.Tag(5).ContextSpecific():
			p.attrs = flag
		default:
			return nil, bad
		}
		if tag != asn1.Tag(0).ContextSpecific().Constructed() && !isBool {
			return nil, bad
		}
	}
	n := 0
	for _, f := range []bool{p.users, p.cas, p.attrs} {
		if f {
			n++
		}
	}
	if n > 1 {
		return nil, fetchErrorf(KindParse, "issuing distribution point limits to more than one kind of certificate")
	}
	if issuerDN, ok := pathval.NameKey(issuerName); ok {
		for _, g := range p.names {
			if g.dn != "" && g.dn == issuerDN {
				p.namesIssuer = true
			}
		}
	}
	return p, nil
}

// readDPName reads the content of a [0] DistributionPointName into absolute
// GeneralNames.
func readDPName(v cryptobyte.String, issuerName []byte) ([]gname, error) {
	bad := fetchErrorf(KindParse, "malformed distribution point name")
	var inner cryptobyte.String
	var tag asn1.Tag
	if !v.ReadAnyASN1(&inner, &tag) || !v.Empty() {
		return nil, bad
	}
	switch tag {
	case asn1.Tag(0).ContextSpecific().Constructed(): // fullName
		var names []gname
		for !inner.Empty() {
			var el cryptobyte.String
			var t asn1.Tag
			if !inner.ReadAnyASN1Element(&el, &t) {
				return nil, bad
			}
			g := gname{der: bytes.Clone(el)}
			var content cryptobyte.String
			el.ReadAnyASN1(&content, &t)
			switch t {
			case asn1.Tag(4).ContextSpecific().Constructed():
				dn, ok := pathval.NameKey(content)
				if !ok {
					return nil, bad
				}
				g.dn = dn
			case asn1.Tag(6).ContextSpecific():
				g.uri = g.der[len(g.der)-len(content):]
			}
			names = append(names, g)
		}
		if len(names) == 0 {
			return nil, bad
		}
		return names, nil
	case asn1.Tag(1).ContextSpecific().Constructed(): // nameRelativeToCRLIssuer
		full, ok := appendRDN(issuerName, inner)
		if !ok {
			return nil, bad
		}
		g, ok := dirGName(full)
		if !ok {
			return nil, bad
		}
		return []gname{g}, nil
	}
	return nil, bad
}

// dirGName makes the directoryName GeneralName of a Name.
func dirGName(name []byte) (gname, bool) {
	dn, ok := pathval.NameKey(name)
	if !ok {
		return gname{}, false
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.Tag(4).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddBytes(name) })
	der, err := b.Bytes()
	if err != nil {
		return gname{}, false
	}
	return gname{der: der, dn: dn}, true
}

// appendRDN returns the Name base with one more RDN (the content of a SET
// OF AttributeTypeAndValue) at the end.
func appendRDN(base []byte, rdn []byte) ([]byte, bool) {
	s := cryptobyte.String(base)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !s.Empty() || len(rdn) == 0 {
		return nil, false
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(seq)
		b.AddASN1(asn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(rdn) })
	})
	out, err := b.Bytes()
	return out, err == nil
}

// reasonMask reads ReasonFlags content (a BIT STRING's bytes) into a mask.
func reasonMask(v []byte) (uint16, bool) {
	if len(v) == 0 || v[0] > 7 || (len(v) == 1 && v[0] != 0) {
		return 0, false
	}
	var m uint16
	for i := 0; i < 9 && 1+i/8 < len(v); i++ {
		if v[1+i/8]&(0x80>>(i%8)) != 0 {
			m |= 1 << i
		}
	}
	return m, true
}

// coverage is whether one CRL covers one certificate.
type coverage uint8

const (
	covAll         coverage = iota // covers it for every reason
	covSomeReasons                 // covers it for some reasons only (onlySomeReasons, or the certificate's DP reasons)
	covNotNamed                    // names distribution points the certificate does not point at
	covWrongKind                   // onlyContains* excludes it
	covIndirect                    // the certificate's CRLs are issued by another entity (cRLIssuer)
)

// covers is RFC 5280 6.3.3 (b)(2) and (d) for one CRL issued by the
// certificate's own CA: does the CRL's scope include the certificate, for
// which reasons. It does not allocate unless a directoryName has to be
// compared in normalised form (encodings differ) or a distribution point is
// named relative to the CRL issuer.
func (p *idp) covers(cert *x509.Certificate) coverage {
	ext, hasDP := crlDPExtension(cert)
	if hasDP && !hasDirectDP(ext) {
		return covIndirect
	}
	if p == nil {
		return covAll
	}
	switch {
	case p.attrs, p.users && cert.IsCA, p.cas && !cert.IsCA:
		return covWrongKind
	}
	var reasons uint16
	if len(p.names) == 0 || p.namesIssuer {
		// No distribution point named, or the one every certificate of
		// the issuer falls back on.
		reasons = allReasons
	} else if hasDP {
		reasons = p.matchDPs(ext, cert)
		if reasons == 0 {
			return covNotNamed
		}
	} else {
		return covNotNamed
	}
	if reasons&p.reasons != allReasons {
		return covSomeReasons
	}
	return covAll
}

// crlDPExtension finds the certificate's cRLDistributionPoints.
func crlDPExtension(cert *x509.Certificate) ([]byte, bool) {
	for i := range cert.Extensions {
		id := cert.Extensions[i].Id
		if len(id) == 4 && id[0] == 2 && id[1] == 5 && id[2] == 29 && id[3] == 31 {
			return cert.Extensions[i].Value, true
		}
	}
	return nil, false
}

// hasDirectDP reports whether one of the distribution points is served by
// the certificate's issuer itself (no cRLIssuer). A malformed extension has
// none: crypto/x509 refuses those certificates anyway.
func hasDirectDP(ext []byte) bool {
	s := cryptobyte.String(ext)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) {
		return false
	}
	for !seq.Empty() {
		var dp cryptobyte.String
		if !seq.ReadASN1(&dp, asn1.SEQUENCE) {
			return false
		}
		if !dp.SkipOptionalASN1(asn1.Tag(0).ContextSpecific().Constructed()) ||
			!dp.SkipOptionalASN1(asn1.Tag(1).ContextSpecific()) {
			return false
		}
		if !dp.PeekASN1Tag(asn1.Tag(2).ContextSpecific().Constructed()) {
			return true
		}
	}
	return false
}

// matchDPs returns the union of the reasons of the certificate's direct
// distribution points whose name matches one of the IDP's; 0 if none does.
func (p *idp) matchDPs(ext []byte, cert *x509.Certificate) uint16 {
	s := cryptobyte.String(ext)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) {
		return 0
	}
	var union uint16
	for !seq.Empty() {
		var dp, name, reasons cryptobyte.String
		var hasName, hasReasons bool
		if !seq.ReadASN1(&dp, asn1.SEQUENCE) ||
			!dp.ReadOptionalASN1(&name, &hasName, asn1.Tag(0).ContextSpecific().Constructed()) ||
			!dp.ReadOptionalASN1(&reasons, &hasReasons, asn1.Tag(1).ContextSpecific()) {
			return 0
		}
		if !hasName || dp.PeekASN1Tag(asn1.Tag(2).ContextSpecific().Constructed()) || !p.nameMatches(name, cert) {
			continue
		}
		m := allReasons
		if hasReasons {
			var ok bool
			if m, ok = reasonMask(reasons); !ok {
				continue
			}
		}
		union |= m
	}
	return union
}

// nameMatches compares a certificate's DistributionPointName with the
// IDP's names: at least one name in common (RFC 5280 6.3.3 (b)(2)(i)).
func (p *idp) nameMatches(v cryptobyte.String, cert *x509.Certificate) bool {
	var inner cryptobyte.String
	var tag asn1.Tag
	if !v.ReadAnyASN1(&inner, &tag) {
		return false
	}
	switch tag {
	case asn1.Tag(0).ContextSpecific().Constructed():
		for !inner.Empty() {
			var el cryptobyte.String
			var t asn1.Tag
			if !inner.ReadAnyASN1Element(&el, &t) {
				return false
			}
			for i := range p.names {
				if bytes.Equal(el, p.names[i].der) {
					return true
				}
			}
			var content cryptobyte.String
			el.ReadAnyASN1(&content, &t)
			switch t {
			case asn1.Tag(4).ContextSpecific().Constructed():
				if p.dnMatches(content) {
					return true
				}
			case asn1.Tag(6).ContextSpecific():
				for i := range p.names {
					if p.names[i].uri != nil && sameURI(content, p.names[i].uri) {
						return true
					}
				}
			}
		}
	case asn1.Tag(1).ContextSpecific().Constructed():
		// Relative to the CRL issuer, which for a CA's own CRL is the
		// certificate's issuer.
		full, ok := appendRDN(cert.RawIssuer, inner)
		return ok && p.dnMatches(full)
	}
	return false
}

func (p *idp) dnMatches(name []byte) bool {
	dn, ok := pathval.NameKey(name)
	if !ok {
		return false
	}
	for i := range p.names {
		if p.names[i].dn != "" && p.names[i].dn == dn {
			return true
		}
	}
	return false
}

// describeCertDPs renders a certificate's direct distribution point names
// for an error message.
func describeCertDPs(cert *x509.Certificate) string {
	ext, ok := crlDPExtension(cert)
	if !ok {
		return "it has no cRLDistributionPoints"
	}
	s := cryptobyte.String(ext)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) {
		return "malformed cRLDistributionPoints"
	}
	var out []string
	for !seq.Empty() {
		var dp, name, inner cryptobyte.String
		var hasName bool
		var tag asn1.Tag
		if !seq.ReadASN1(&dp, asn1.SEQUENCE) || !dp.ReadOptionalASN1(&name, &hasName, asn1.Tag(0).ContextSpecific().Constructed()) {
			return "malformed cRLDistributionPoints"
		}
		if !hasName || !name.ReadAnyASN1(&inner, &tag) {
			continue
		}
		switch tag {
		case asn1.Tag(0).ContextSpecific().Constructed():
			for !inner.Empty() {
				var el cryptobyte.String
				if !inner.ReadAnyASN1Element(&el, &tag) {
					break
				}
				out = append(out, describeName(el))
			}
		case asn1.Tag(1).ContextSpecific().Constructed():
			if full, ok := appendRDN(cert.RawIssuer, inner); ok {
				out = append(out, "DirName:"+pathval.FormatName(full))
			}
		}
	}
	if len(out) == 0 {
		return "it names none"
	}
	return "it names " + strings.Join(out, " | ")
}

// sameURI compares two URIs as far as RFC 3986 6.2.2.1 allows without
// decoding them: scheme and authority case-insensitively, the rest byte
// for byte. It does not allocate.
func sameURI(a, b []byte) bool {
	ha, ra := splitURI(a)
	hb, rb := splitURI(b)
	return bytes.EqualFold(ha, hb) && bytes.Equal(ra, rb)
}

var schemeSep = []byte("://")

// splitURI cuts a URI after its authority.
func splitURI(u []byte) (head, rest []byte) {
	i := bytes.Index(u, schemeSep)
	if i < 0 {
		return nil, u
	}
	j := bytes.IndexByte(u[i+len(schemeSep):], '/')
	if j < 0 {
		return u, nil
	}
	return u[:i+len(schemeSep)+j], u[i+len(schemeSep)+j:]
}

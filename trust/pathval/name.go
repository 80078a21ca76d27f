package pathval

import (
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/text/unicode/norm"
)

// name is a distinguished name prepared for RFC 5280 §7.1 comparison: one
// canonical string per RDN, most significant RDN first (the encoding
// order). Two names match when their RDN lists are equal; a
// directoryName constraint matches a name whose RDN list it prefixes.
type name struct {
	rdns   []string
	emails []string // values of emailAddress attributes, for rfc822Name constraints
}

func (n name) key() string { return strings.Join(n.rdns, "\x03") }

func (n name) empty() bool { return len(n.rdns) == 0 }

func (n name) equal(o name) bool { return slices.Equal(n.rdns, o.rdns) }

// hasPrefix reports whether p's RDNs begin n's.
func (n name) hasPrefix(p name) bool {
	return len(p.rdns) <= len(n.rdns) && slices.Equal(n.rdns[:len(p.rdns)], p.rdns)
}

var oidEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

var errBadName = errors.New("distinguished name does not parse")

// parseName reads a DER Name (SEQUENCE OF SET OF AttributeTypeAndValue).
// Each attribute value of a directory string type is decoded and prepared
// as RFC 4518 asks in the simplified form RFC 5280 §7.1 allows: Unicode
// NFKC, case folded, leading and trailing white space removed and inner
// runs of white space collapsed to one space. The string type itself does
// not take part, so a PrintableString and a UTF8String with the same
// characters match (the rollover of §4.1.2.6). Values of other types
// compare by their DER bytes. The attributes of a multi-valued RDN are a
// set, so they are sorted.
func parseName(raw []byte) (name, error) {
	var n name
	in := cryptobyte.String(raw)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return n, errBadName
	}
	for !seq.Empty() {
		var set cryptobyte.String
		if !seq.ReadASN1(&set, cbasn1.SET) || set.Empty() {
			return n, errBadName
		}
		var atvs []string
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			var val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) ||
				!atv.ReadAnyASN1Element(&val, &tag) || !atv.Empty() {
				return n, errBadName
			}
			var content cryptobyte.String
			var t2 cbasn1.Tag
			elem := val
			if !elem.ReadAnyASN1(&content, &t2) {
				return n, errBadName
			}
			s, ok := decodeString(tag, content)
			var v string
			if ok {
				// Quoted, so that no value can contain the separators
				// and two different names never share a key.
				v = oid.String() + "\x01s" + strconv.Quote(prepare(s))
				if oid.Equal(oidEmailAddress) {
					n.emails = append(n.emails, s)
				}
			} else {
				v = oid.String() + "\x01b" + hex.EncodeToString(val)
			}
			atvs = append(atvs, v)
		}
		slices.Sort(atvs)
		n.rdns = append(n.rdns, strings.Join(atvs, "\x02"))
	}
	return n, nil
}

// decodeString decodes the directory string types; ok is false for any
// other type or an invalid encoding.
func decodeString(tag cbasn1.Tag, b []byte) (string, bool) {
	switch tag {
	case cbasn1.UTF8String:
		return string(b), utf8.Valid(b)
	case cbasn1.PrintableString, cbasn1.IA5String, cbasn1.Tag(18) /* NumericString */, cbasn1.Tag(26) /* VisibleString */ :
		for _, c := range b {
			if c >= utf8.RuneSelf {
				return "", false
			}
		}
		return string(b), true
	case cbasn1.T61String:
		// TeletexString: read as Latin-1, what every verifier does in practice.
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case cbasn1.Tag(30): // BMPString
		if len(b)%2 != 0 {
			return "", false
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), true
	case cbasn1.Tag(28): // UniversalString
		if len(b)%4 != 0 {
			return "", false
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(binary.BigEndian.Uint32(b[4*i:]))
		}
		return string(r), true
	}
	return "", false
}

// PrepareString is the §7.1 string preparation of one attribute value
// (NFKC, case folded, insignificant spaces removed), for comparing names
// that come as text, such as AD's altSecurityIdentities values.
func PrepareString(s string) string { return prepare(s) }

// prepare applies the §7.1 string preparation.
func prepare(s string) string {
	s = norm.NFKC.String(s)
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(unicode.ToLower(unicode.ToUpper(r)))
	}
	return b.String()
}

// NameKey returns a string that two DER-encoded distinguished names share
// exactly when [SameName] reports them the same, so callers can prepare a
// name once and compare or index it as a string; ok is false for a name
// that does not parse.
func NameKey(der []byte) (key string, ok bool) {
	n, err := parseName(der)
	if err != nil {
		return "", false
	}
	return n.key(), true
}

// SameName reports whether two DER-encoded distinguished names match by
// the RFC 5280 §7.1 comparison this package chains names with. A name that
// does not parse matches nothing.
func SameName(a, b []byte) bool {
	na, err := parseName(a)
	if err != nil {
		return false
	}
	nb, err := parseName(b)
	return err == nil && na.equal(nb)
}

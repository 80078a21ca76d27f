package trust

import (
	"encoding/hex"
	"strings"

	"github.com/certgate/certgate/trust/pathval"
)

// This file compares certificateUserIds (Active Directory's
// altSecurityIdentities) values as the tools that write them spell them.
//
// AD tooling writes DNs most significant RDN first ("DC=com,DC=contoso,
// CN=Contoso CA"), the reverse of RFC 4514; "<SR>" serials in reversed
// byte order; and letter case freely. Names are compared after a
// normalisation in the spirit of RFC 5280 §7.1 (attribute types by name or
// OID, values unescaped and prepared by pathval.PrepareString, the §7.1
// preparation path validation compares names with). The names come as
// text here, not DER, hence this parser.

// Weak reports whether a binding is a weak certificate mapping in the sense
// of Microsoft's 2022 certificate-mapping hardening (KB5014754): a
// certificateUserIds mapping by subject, issuer and subject, or e-mail
// name, which anyone able to get a certificate with that name from a
// trusted CA can satisfy. PrincipalName counts as weak too, as the cloud
// CBA's "low affinity" bindings do. The strong ones are IssuerAndSerialNumber,
// SubjectKeyIdentifier and SHA1PublicKey. Bindings to userPrincipalName
// and proxyAddresses are not certificate mappings and are never weak here.
func (b Binding) Weak() bool {
	if b.Attribute != AttrCertificateUserIDs {
		return false
	}
	switch b.Field {
	case FieldSubject, FieldIssuerAndSubject, FieldRFC822Name, FieldPrincipalName:
		return true
	}
	return false
}

// CertificateUserIDKey is the comparison form of a certificateUserIds value,
// the one both directories index and match by: "X509:" and the tag in upper
// case; SKI, SHA1-PUKEY and serial hex in upper case; DNs normalised, and
// the same key for a DN in RFC 4514 order and in AD's reversed order. A
// value that does not parse as a tagged X509 value is compared as it is.
func CertificateUserIDKey(s string) string {
	if len(s) < 7 || !strings.EqualFold(s[:5], "x509:") || s[5] != '<' {
		return s
	}
	end := strings.IndexByte(s[6:], '>')
	if end < 0 {
		return s
	}
	tag, rest := asciiUpper(s[6:6+end]), s[6+end+1:]
	switch tag {
	case "SKI", "SHA1-PUKEY":
		rest = asciiUpper(rest)
	case "S":
		rest = dnKey(rest)
	case "I":
		if i, n := lastMarker(rest, "<SR>"); i >= 0 {
			rest = dnKey(rest[:i]) + "<SR>" + asciiUpper(rest[i+n:])
		} else if i, n := lastMarker(rest, "<S>"); i >= 0 {
			rest = dnKey(rest[:i]) + "<S>" + dnKey(rest[i+n:])
		}
	}
	return "X509:<" + tag + ">" + rest
}

// lastMarker finds the last marker (like "<SR>") in s outside a backslash
// escape, ignoring ASCII case; it returns its index and length, or -1.
func lastMarker(s, marker string) (int, int) {
	for i := len(s) - len(marker); i >= 0; i-- {
		if strings.EqualFold(s[i:i+len(marker)], marker) && (i == 0 || s[i-1] != '\\') {
			return i, len(marker)
		}
	}
	return -1, 0
}

// dnKey is a DN string's order-independent comparison form: the smaller of
// its normalised RDN sequence read forwards and backwards, so that
// "CN=CA,DC=contoso,DC=com" and AD's "DC=com,DC=contoso,CN=CA" meet. A DN
// that does not parse is kept as it is.
func dnKey(s string) string {
	rdns, ok := normDN(s)
	if !ok {
		return s
	}
	fwd := strings.Join(rdns, ",")
	for i, j := 0, len(rdns)-1; i < j; i, j = i+1, j-1 {
		rdns[i], rdns[j] = rdns[j], rdns[i]
	}
	if rev := strings.Join(rdns, ","); rev < fwd {
		return rev
	}
	return fwd
}

// dnTypeNames maps the spellings of attribute types to one.
var dnTypeNames = map[string]string{
	"2.5.4.3": "cn", "2.5.4.5": "serialnumber", "2.5.4.6": "c", "2.5.4.7": "l", "2.5.4.8": "st", "s": "st",
	"2.5.4.9": "street", "2.5.4.10": "o", "2.5.4.11": "ou", "2.5.4.17": "postalcode",
	"0.9.2342.19200300.100.1.1": "uid", "userid": "uid", "0.9.2342.19200300.100.1.25": "dc", "domaincomponent": "dc",
	"1.2.840.113549.1.9.1": "emailaddress", "e": "emailaddress", "email": "emailaddress",
	"commonname": "cn", "organizationname": "o", "organizationalunitname": "ou", "countryname": "c", "localityname": "l",
	"stateorprovincename": "st",
}

// normDN splits an RFC 4514 DN (either order) into normalised RDNs:
// "type=value" with the type in one spelling and the value unescaped,
// prepared as path validation compares names (RFC 5280 §7.1:
// pathval.PrepareString); the parts of a multi-valued RDN sorted and joined with
// "+". Hex-encoded values ("#04...") are kept as upper-case hex.
func normDN(s string) ([]string, bool) {
	var rdns []string
	var atvs []string
	var cur strings.Builder
	escaped := false
	flushATV := func() bool {
		part := cur.String()
		cur.Reset()
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return false
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if n, ok := dnTypeNames[k]; ok {
			k = n
		}
		if k == "" {
			return false
		}
		atvs = append(atvs, k+"="+normValue(v))
		return true
	}
	flushRDN := func() bool {
		if !flushATV() {
			return false
		}
		sortStrings(atvs)
		rdns = append(rdns, strings.Join(atvs, "+"))
		atvs = atvs[:0]
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
			if isHex(c) && i+1 < len(s) && isHex(s[i+1]) {
				b, _ := hex.DecodeString(s[i : i+2])
				cur.WriteByte(b[0])
				i++
				continue
			}
			cur.WriteByte(c)
			continue
		case c == '\\':
			escaped = true
			continue
		case c == ',' || c == ';':
			if !flushRDN() {
				return nil, false
			}
			continue
		case c == '+':
			if !flushATV() {
				return nil, false
			}
			continue
		}
		cur.WriteByte(c)
	}
	if escaped || !flushRDN() {
		return nil, false
	}
	return rdns, true
}

// normValue folds an unescaped value, then escapes it again, so that a
// key is itself a DN that normalises to itself.
func normValue(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "#") {
		v = asciiUpper(v)
	} else {
		v = pathval.PrepareString(v) // the comparison path validation uses
	}
	if !strings.ContainsAny(v, ",+\\;\"<>=") {
		return v
	}
	var b strings.Builder
	for _, r := range v {
		if strings.ContainsRune(",+\\;\"<>=", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// reverseDN writes an RFC 4514 DN in AD's order (most significant first),
// or the reverse: the RDNs, split at unescaped commas, in reverse order.
func reverseDN(s string) string {
	var rdns []string
	start, escaped := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case escaped:
			escaped = false
		case s[i] == '\\':
			escaped = true
		case s[i] == ',':
			rdns = append(rdns, s[start:i])
			start = i + 1
		}
	}
	rdns = append(rdns, s[start:])
	for i, j := 0, len(rdns)-1; i < j; i, j = i+1, j-1 {
		rdns[i], rdns[j] = rdns[j], rdns[i]
	}
	return strings.Join(rdns, ",")
}

// reverseHex reverses the byte order of a hex string: a serial number as
// AD's altSecurityIdentities "<SR>" writes it (least significant byte
// first, the order Windows keeps serials in memory).
func reverseHex(h string) string {
	if len(h)%2 != 0 {
		return h
	}
	b := make([]byte, 0, len(h))
	for i := len(h) - 2; i >= 0; i -= 2 {
		b = append(b, h[i], h[i+1])
	}
	return string(b)
}

// cuidVariants is every spelling a directory may hold a certificate value
// of field in: the form FieldValues gives, with DNs also in AD's order and
// serials also byte-reversed. The file directory finds all of them under
// one or two keys; LDAP needs each spelled out, since its server compares
// the strings.
func cuidVariants(f Field, v string) []string {
	out := []string{v}
	add := func(s string) {
		for _, have := range out {
			if have == s {
				return
			}
		}
		out = append(out, s)
	}
	switch f {
	case FieldSubject:
		add(reverseDN(v))
	case FieldIssuerAndSerialNumber:
		rest, ok := strings.CutPrefix(v, "<I>")
		i := strings.LastIndex(rest, "<SR>")
		if !ok || i < 0 {
			break
		}
		issuer, serial := rest[:i], rest[i+4:]
		for _, is := range []string{issuer, reverseDN(issuer)} {
			for _, sr := range []string{serial, reverseHex(serial)} {
				add("<I>" + is + "<SR>" + sr)
			}
		}
	case FieldIssuerAndSubject:
		rest, ok := strings.CutPrefix(v, "<I>")
		i := strings.LastIndex(rest, "<S>")
		if !ok || i < 0 {
			break
		}
		add("<I>" + reverseDN(rest[:i]) + "<S>" + reverseDN(rest[i+3:]))
	}
	return out
}

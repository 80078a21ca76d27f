package trust

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
)

// FormatDN writes a DER Name (cert.RawIssuer, cert.RawSubject) as an RFC
// 4514 string, most specific RDN first: "CN=CONTOSO-DC-CA,DC=contoso,DC=com".
//
// It is pkix.Name.String() with the attribute names Windows CAs use that Go
// does not know: DC (domainComponent), UID and E (emailAddress, as Windows
// writes it). Go alone renders AD CS names as
// "CN=CONTOSO-DC-CA,0.9.2342.19200300.100.1.25=#1307636f6e746f736f,…",
// which no administrator would type into a directory. Unknown attributes
// keep Go's "OID=#hex" form, multi-valued RDNs are joined with "+", and
// values are escaped as Go escapes them. It fails only on a Name that
// encoding/asn1 cannot read, which crypto/x509's own parser may still have
// accepted.
func FormatDN(raw []byte) (string, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(raw, &rdns)
	if err != nil {
		return "", fmt.Errorf("distinguished name: %w", err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("distinguished name: %d trailing bytes", len(rest))
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i != len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeATV(&b, atv)
		}
	}
	return b.String(), nil
}

func attributeName(oid asn1.ObjectIdentifier) (string, bool) {
	if len(oid) == 4 && oid[0] == 2 && oid[1] == 5 && oid[2] == 4 {
		switch oid[3] {
		case 3:
			return "CN", true
		case 5:
			return "SERIALNUMBER", true
		case 6:
			return "C", true
		case 7:
			return "L", true
		case 8:
			return "ST", true
		case 9:
			return "STREET", true
		case 10:
			return "O", true
		case 11:
			return "OU", true
		case 17:
			return "POSTALCODE", true
		}
	}
	switch {
	case oid.Equal(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}):
		return "DC", true
	case oid.Equal(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}):
		return "UID", true
	case oid.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}):
		return "E", true
	}
	return "", false
}

func writeATV(b *strings.Builder, atv pkix.AttributeTypeAndValue) {
	name, ok := attributeName(atv.Type)
	if !ok {
		if der, err := asn1.Marshal(atv.Value); err == nil {
			b.WriteString(atv.Type.String())
			b.WriteString("=#")
			b.WriteString(hex.EncodeToString(der))
			return
		}
		name = atv.Type.String()
	}
	b.WriteString(name)
	b.WriteByte('=')
	v := fmt.Sprint(atv.Value)
	for k, c := range v {
		escape := false
		switch c {
		case ',', '+', '"', '\\', '<', '>', ';':
			escape = true
		case ' ':
			escape = k == 0 || k == len(v)-1
		case '#':
			escape = k == 0
		}
		if escape {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
}

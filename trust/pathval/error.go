package pathval

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Reason says why a path was refused. The values are certgate's SPEC
// reason codes, so callers pass them on unchanged.
type Reason string

// The reasons Verify gives.
const (
	Untrusted       Reason = "untrusted"
	Expired         Reason = "expired"
	NotYetValid     Reason = "not_yet_valid"
	BadUsage        Reason = "bad_usage"
	NameConstraints Reason = "name_constraints"
	// Malformed is an end-entity certificate whose names cannot be read.
	Malformed Reason = "malformed_certificate"
)

// Error is a refused path: the reason, the certificate at fault and the rule
// it broke. For Untrusted without a complete path, Issuer is the name that
// was looked for and Tried lists the configured and sent CAs tried for it,
// each with why it did not do.
type Error struct {
	Reason Reason
	Cert   *x509.Certificate // the certificate at fault, nil when none is
	Rule   string            // "RFC 5280 §6.1.4 (k) basicConstraints" and the like
	Detail string
	Issuer string
	Tried  []string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Cert != nil {
		b.WriteString(Describe(e.Cert))
		b.WriteString(": ")
	}
	b.WriteString(e.Detail)
	if e.Rule != "" {
		fmt.Fprintf(&b, " [%s]", e.Rule)
	}
	if len(e.Tried) > 0 {
		b.WriteString("; tried ")
		b.WriteString(strings.Join(e.Tried, "; "))
	}
	return b.String()
}

// Describe names a certificate in explanations: its subject and, for a CA,
// its key identifier (several CA certificates may share a name), for other
// certificates the serial number.
func Describe(c *x509.Certificate) string {
	subj := FormatName(c.RawSubject)
	if subj == "" {
		subj = "(empty subject)"
	}
	if c.IsCA {
		return fmt.Sprintf("CA %q (SKI %x)", subj, KeyID(c)) // lower-case hex, as certgate writes SKIs everywhere
	}
	return fmt.Sprintf("certificate %q (serial %X)", subj, c.SerialNumber)
}

// KeyID returns the subjectKeyIdentifier, or RFC 5280 §4.2.1.2 method 1
// (SHA-1 of the subjectPublicKey BIT STRING) when the certificate has none.
func KeyID(c *x509.Certificate) []byte {
	if len(c.SubjectKeyId) > 0 {
		return c.SubjectKeyId
	}
	if bits, ok := publicKeyBits(c.RawSubjectPublicKeyInfo); ok {
		s := sha1.Sum(bits)
		return s[:]
	}
	s := sha1.Sum(c.RawSubjectPublicKeyInfo)
	return s[:]
}

func publicKeyBits(spki []byte) ([]byte, bool) {
	s := cryptobyte.String(spki)
	var inner, algo cryptobyte.String
	var bits []byte
	ok := s.ReadASN1(&inner, cbasn1.SEQUENCE) && inner.ReadASN1(&algo, cbasn1.SEQUENCE) && inner.ReadASN1BitStringAsBytes(&bits)
	return bits, ok
}

// FormatName renders a DER distinguished name as RFC 4514 text, most
// specific RDN first, naming the attributes Active Directory CAs use (DC,
// UID, E) that pkix.Name.String prints as dotted OIDs. A name that does
// not parse is shown as hex.
func FormatName(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) != 0 {
		return "#" + hex.EncodeToString(raw)
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
			b.WriteString(attrShort(atv.Type.String()))
			b.WriteByte('=')
			v, ok := atv.Value.(string)
			if !ok {
				der, _ := asn1.Marshal(atv.Value)
				b.WriteString("#" + hex.EncodeToString(der))
				continue
			}
			for k, r := range v {
				switch {
				case strings.ContainsRune(",+\"\\<>;", r), k == 0 && (r == ' ' || r == '#'), k == len(v)-1 && r == ' ':
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

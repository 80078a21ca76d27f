package pathval

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/certfmt"
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

// KeyID returns the subjectKeyIdentifier, or [ComputeKeyID] when the
// certificate has none, so every certificate has a key identifier.
func KeyID(c *x509.Certificate) []byte {
	if len(c.SubjectKeyId) > 0 {
		return c.SubjectKeyId
	}
	return ComputeKeyID(c, new([sha1.Size]byte))
}

// ComputeKeyID writes the RFC 5280 §4.2.1.2 method 1 key identifier of c
// into buf and returns buf[:]: the SHA-1 of the subjectPublicKey BIT STRING
// (without tag, length and unused-bits byte). It is what AD CS and most
// CAs write, so a CA that omits the extension still gets the key its
// children's AKI names. Should the SubjectPublicKeyInfo not parse (it did
// once, or c would not exist), the SHA-1 of the whole SubjectPublicKeyInfo
// keeps the result stable. It does not allocate, for the handshake path.
func ComputeKeyID(c *x509.Certificate, buf *[sha1.Size]byte) []byte {
	spki := cryptobyte.String(c.RawSubjectPublicKeyInfo)
	var inner, algo cryptobyte.String
	var bits []byte
	if spki.ReadASN1(&inner, cbasn1.SEQUENCE) && inner.ReadASN1(&algo, cbasn1.SEQUENCE) && inner.ReadASN1BitStringAsBytes(&bits) {
		*buf = sha1.Sum(bits)
	} else {
		*buf = sha1.Sum(c.RawSubjectPublicKeyInfo)
	}
	return buf[:]
}

// FormatName renders a DER distinguished name for explanations the way
// certgate spells DNs everywhere ([certfmt.DN]: RFC 4514 order, DC, UID and
// emailAddress named). A name that does not parse is shown as hex.
func FormatName(raw []byte) string {
	if s := certfmt.DN(raw, pkix.Name{}); s != "" || bytes.Equal(raw, emptyName) {
		return s
	}
	return "#" + hex.EncodeToString(raw)
}

// emptyName is the DER of an empty Name, which formats as "".
var emptyName = []byte{0x30, 0x00}

package trust

import (
	// SHA-1 because SKI method 1 and the cloud CBA's SHA1-PUKEY are defined
	// with it; these are names, not integrity checks.
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/certgate/certgate/trust/pathval"
)

// ComputeSKI returns the RFC 5280 §4.2.1.2 method 1 key identifier of
// cert, [pathval.ComputeKeyID]: the SHA-1 of the subjectPublicKey bits.
func ComputeSKI(cert *x509.Certificate) []byte {
	return pathval.ComputeKeyID(cert, new([sha1.Size]byte))
}

// SubjectKeyID returns cert's subjectKeyIdentifier, or [ComputeSKI] when the
// certificate carries none, so every certificate has a key.
func SubjectKeyID(cert *x509.Certificate) []byte { return pathval.KeyID(cert) }

// FieldValues returns the values a binding on field reads from cert, in
// certificate order. Most fields have one value; PrincipalName and
// RFC822Name have as many as the SAN holds, possibly none.
//
// The formats follow the cloud CBA's certificateUserIds:
//   - SubjectKeyIdentifier: upper-case hex of the SKI ([SubjectKeyID]).
//   - SHA1PublicKey: upper-case hex SHA-1 of the whole DER
//     SubjectPublicKeyInfo (the cloud CBA's SHA1-PUKEY), not of the key bits.
//   - IssuerAndSerialNumber: "<I>" + issuer DN + "<SR>" + serial. The DN is
//     [FormatDN]: pkix.Name.String()'s RFC 4514 order, most specific RDN
//     first ("CN=CONTOSO-DC-CA,DC=contoso,DC=com"), with DC, UID and E
//     named. The serial is upper-case big-endian hex of its magnitude
//     bytes without colons or a sign byte ("0A1B…", as shown in the
//     certificate). A certificateUserIds binding also looks the value up
//     as AD writes it (DNs most significant RDN first, "DC=com,DC=contoso,
//     CN=…", and the serial byte-reversed), and directories compare DNs
//     normalised ([CertificateUserIDKey]).
//   - Subject: [FormatDN] of the subject, same form as above.
//   - IssuerAndSubject: "<I>" + issuer DN + "<S>" + subject DN.
func FieldValues(cert *x509.Certificate, f Field) ([]string, error) {
	switch f {
	case FieldPrincipalName:
		return UPNs(cert)
	case FieldRFC822Name:
		return append([]string(nil), cert.EmailAddresses...), nil
	case FieldSubjectKeyIdentifier:
		return []string{upperHex(SubjectKeyID(cert))}, nil
	case FieldSHA1PublicKey:
		sum := sha1.Sum(cert.RawSubjectPublicKeyInfo)
		return []string{upperHex(sum[:])}, nil
	case FieldIssuerAndSerialNumber:
		return []string{"<I>" + dnString(cert.RawIssuer, cert.Issuer) + "<SR>" + serialHex(cert)}, nil
	case FieldSubject:
		return []string{dnString(cert.RawSubject, cert.Subject)}, nil
	case FieldIssuerAndSubject:
		return []string{"<I>" + dnString(cert.RawIssuer, cert.Issuer) + "<S>" + dnString(cert.RawSubject, cert.Subject)}, nil
	}
	return nil, fmt.Errorf("trust: unknown certificate field %q", f)
}

// dnString is FormatDN, or Go's rendering of the parsed name when
// encoding/asn1 cannot read the raw one.
func dnString(raw []byte, parsed pkix.Name) string {
	if s, err := FormatDN(raw); err == nil {
		return s
	}
	return parsed.String()
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

func serialHex(cert *x509.Certificate) string {
	if cert.SerialNumber == nil || cert.SerialNumber.Sign() == 0 {
		return "00"
	}
	return upperHex(cert.SerialNumber.Bytes())
}

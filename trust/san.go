package trust

import (
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// OIDUPN is the Microsoft User Principal Name otherName type
// (1.3.6.1.4.1.311.20.2.3), the SAN entry smart-card logon and the cloud
// CBA's PrincipalName binding read.
var OIDUPN = encasn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

var oidSAN = encasn1.ObjectIdentifier{2, 5, 29, 17}

// ErrMalformedSAN is wrapped by every error about a subjectAltName extension
// that does not parse.
var ErrMalformedSAN = errors.New("malformed subjectAltName")

var tagOtherName = asn1.Tag(0).ContextSpecific().Constructed()

// sanInfo is what one pass over a SAN extension learns.
type sanInfo struct {
	count int // GeneralNames of any kind
	// otherNamesOnly is true when every GeneralName is an otherName: the only
	// case where Go leaves a critical SAN unhandled and certgate takes over.
	otherNamesOnly bool
	upns           []string
}

// parseSAN reads a SubjectAltName extension value (a SEQUENCE OF
// GeneralName). crypto/x509 parses the DNS, email, IP and URI entries but
// skips otherName, so the UPN is read here. It is strict: trailing bytes, an
// otherName without a type, or a UPN that is not a non-empty UTF8String in
// [0] EXPLICIT make the whole extension malformed, because a UPN is an
// identity and a half-readable identity must not be guessed at.
func parseSAN(value []byte) (sanInfo, error) {
	info := sanInfo{otherNamesOnly: true}
	in := cryptobyte.String(value)
	var names cryptobyte.String
	if !in.ReadASN1(&names, asn1.SEQUENCE) || !in.Empty() {
		return info, fmt.Errorf("%w: not a SEQUENCE OF GeneralName", ErrMalformedSAN)
	}
	for !names.Empty() {
		var gn cryptobyte.String
		var tag asn1.Tag
		if !names.ReadAnyASN1(&gn, &tag) {
			return info, fmt.Errorf("%w: GeneralName %d does not parse", ErrMalformedSAN, info.count+1)
		}
		info.count++
		if tag != tagOtherName {
			info.otherNamesOnly = false
			continue
		}
		var oid encasn1.ObjectIdentifier
		if !gn.ReadASN1ObjectIdentifier(&oid) {
			return info, fmt.Errorf("%w: otherName %d has no type-id", ErrMalformedSAN, info.count)
		}
		if !oid.Equal(OIDUPN) {
			continue
		}
		var explicit, v cryptobyte.String
		if !gn.ReadASN1(&explicit, asn1.Tag(0).ContextSpecific().Constructed()) || !gn.Empty() ||
			!explicit.ReadASN1(&v, asn1.UTF8String) || !explicit.Empty() {
			return info, fmt.Errorf("%w: UPN %d is not a UTF8String in [0] EXPLICIT", ErrMalformedSAN, len(info.upns)+1)
		}
		if len(v) == 0 || !utf8.Valid(v) {
			return info, fmt.Errorf("%w: UPN %d is empty or not UTF-8", ErrMalformedSAN, len(info.upns)+1)
		}
		info.upns = append(info.upns, string(v))
	}
	if info.count == 0 {
		// RFC 5280 §4.2.1.6: the SEQUENCE has at least one entry; an empty
		// one would let a critical SAN pass as "only otherNames".
		return info, fmt.Errorf("%w: no GeneralName", ErrMalformedSAN)
	}
	return info, nil
}

// ParseUPNs returns the User Principal Names, in order, of a raw
// SubjectAltName extension value. Entries of other kinds are skipped; a
// malformed extension or UPN is an error wrapping [ErrMalformedSAN].
func ParseUPNs(sanExtValue []byte) ([]string, error) {
	info, err := parseSAN(sanExtValue)
	if err != nil {
		return nil, err
	}
	return info.upns, nil
}

// sanExtension returns the certificate's SAN extension, if any.
func sanExtension(cert *x509.Certificate) ([]byte, bool) {
	for _, e := range cert.Extensions {
		if e.Id.Equal(oidSAN) {
			return e.Value, true
		}
	}
	return nil, false
}

// UPNs returns the SAN otherName User Principal Names of cert in the order
// they appear (a certificate may carry more than one). A certificate without
// a SAN has none; a malformed SAN or UPN is an error.
func UPNs(cert *x509.Certificate) ([]string, error) {
	v, ok := sanExtension(cert)
	if !ok {
		return nil, nil
	}
	return ParseUPNs(v)
}

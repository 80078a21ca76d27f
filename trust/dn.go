package trust

import "github.com/certgate/certgate/trust/pathval"

// FormatDN writes a DER Name (cert.RawIssuer, cert.RawSubject) as an RFC
// 4514 string, most specific RDN first: "CN=CONTOSO-DC-CA,DC=contoso,DC=com",
// with the attribute names Windows CAs use (DC, UID, E). It is
// [pathval.FormatDN], so the binding values of IssuerAndSerialNumber and
// Subject and the explanations of path validation name a certificate in
// one form; see there for the rules.
func FormatDN(raw []byte) (string, error) { return pathval.FormatDN(raw) }

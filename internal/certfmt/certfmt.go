// Package certfmt spells certificate values the one way certgate shows them
// everywhere (logs, metrics, status.json, CLI output, config errors): key
// identifiers as lower-case hex, as the issuer_ski metric label has always
// been, and distinguished names in RFC 4514 order (the most specific RDN
// first), taken from the certificate's own encoding.
package certfmt

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
)

// SKI formats a key identifier as lower-case hex without separators.
func SKI(ski []byte) string { return hex.EncodeToString(ski) }

// Subject is the certificate's subject DN.
func Subject(c *x509.Certificate) string { return DN(c.RawSubject, c.Subject) }

// Issuer is the certificate's issuer DN.
func Issuer(c *x509.Certificate) string { return DN(c.RawIssuer, c.Issuer) }

// DN formats a DER Name as RFC 4514 says: its RDNs last to first, so a
// certificate encoded O then CN prints "CN=..,O=..", and one encoded CN
// then O (as some tools write) prints "O=..,CN=..", as it is. Unlike
// pkix.Name.String, which reorders attributes into a canonical order and so
// can print a DN that no certificate has, it keeps the encoding's order, and
// it names DC, UID and emailAddress, which Active Directory CAs use, instead
// of printing dotted OIDs with hex values. fallback is used when raw does
// not parse.
func DN(raw []byte, fallback pkix.Name) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) != 0 {
		return fallback.String()
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(AttrName(atv.Type.String()))
			b.WriteByte('=')
			if v, ok := atv.Value.(string); ok {
				b.WriteString(escape(v))
			} else if der, err := asn1.Marshal(atv.Value); err == nil {
				b.WriteString("#" + hex.EncodeToString(der))
			}
		}
	}
	return b.String()
}

var attrNames = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.5":                    "SERIALNUMBER",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.9":                    "STREET",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.17":                   "POSTALCODE",
	"0.9.2342.19200300.100.1.1":  "UID",
	"0.9.2342.19200300.100.1.25": "DC",
	"1.2.840.113549.1.9.1":       "emailAddress",
}

// AttrName is the short name of an attribute type OID (dotted), or the OID.
func AttrName(oid string) string {
	if n, ok := attrNames[oid]; ok {
		return n
	}
	return oid
}

// escape escapes a value as RFC 4514 section 2.4 asks.
func escape(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case strings.ContainsRune(",+\"<>;\\=", r),
			i == 0 && (r == ' ' || r == '#'),
			i == len(v)-1 && r == ' ':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

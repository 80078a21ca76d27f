package config

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/certgate/certgate/internal/certfmt"
)

// maxCertFileSize bounds a CA certificate file; real ones are a few KiB.
const maxCertFileSize = 1 << 20

// ParseCertificateFile reads one certificate from a PEM or DER file. The
// format is detected by content, not by the file's extension, because .cer
// files exported from Windows are either.
func ParseCertificateFile(path string) (*x509.Certificate, error) {
	data, err := readFileLimit(path, maxCertFileSize)
	if err != nil {
		return nil, err
	}
	c, err := ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseCertificate parses PEM holding exactly one CERTIFICATE block, or one
// raw DER certificate.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return parsePEMCertificate(data)
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER certificate: %w", err)
	}
	return c, nil
}

func parsePEMCertificate(data []byte) (*x509.Certificate, error) {
	var der []byte
	rest := data
	for n := 0; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			// The block's content is never echoed: it may be a private key.
			return nil, fmt.Errorf("PEM block %d is %q, want only one CERTIFICATE", n+1, b.Type)
		}
		if der != nil {
			return nil, errors.New("more than one CERTIFICATE block; put each CA in its own file and entry")
		}
		der = b.Bytes
	}
	if der == nil {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("bad CERTIFICATE block: %w", err)
	}
	return c, nil
}

// FormatSKI formats a subject key identifier as certgate prints SKIs
// everywhere: lower-case hex without separators, as the issuer_ski metric
// label. ParseSKI reads any case.
func FormatSKI(ski []byte) string { return certfmt.SKI(ski) }

// KeyID returns the certificate's subject key identifier, or the RFC 5280
// §4.2.1.2 method 1 identifier (SHA-1 of the subjectPublicKey bits) when it
// has none, as the trust store keys such a CA (v1-style roots have no SKI).
func KeyID(c *x509.Certificate) []byte {
	if len(c.SubjectKeyId) > 0 {
		return c.SubjectKeyId
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err == nil && len(rest) == 0 {
		sum := sha1.Sum(spki.PublicKey.Bytes)
		return sum[:]
	}
	sum := sha1.Sum(c.RawSubjectPublicKeyInfo)
	return sum[:]
}

// maxSKILen bounds a subject key identifier; RFC 5280's methods give 8 or
// 20 bytes and SHA-512 gives 64.
const maxSKILen = 64

// ParseSKI reads a subject key identifier in hex, any case, with optional
// colons, spaces or dashes between digits ("5F:3A:…", "5f 3a …").
func ParseSKI(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ':', ' ', '-', '\t':
			return -1
		}
		return r
	}, s)
	if clean == "" {
		return nil, errors.New("empty SKI")
	}
	if len(clean)%2 != 0 {
		return nil, fmt.Errorf("SKI %q has an odd number of hex digits", s)
	}
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("SKI %q is not hex", s)
	}
	if len(b) > maxSKILen {
		return nil, fmt.Errorf("SKI %q is longer than %d bytes", s, maxSKILen)
	}
	return b, nil
}

// SubjectString returns the certificate's subject as certgate prints DNs
// everywhere ([certfmt.DN]).
func SubjectString(c *x509.Certificate) string { return certfmt.Subject(c) }

// attrAliases maps the other spellings tools print to the names above.
var attrAliases = map[string]string{"e": "emailaddress", "email": "emailaddress", "s": "st", "userid": "uid"}

// issuerMatches compares a configured trustedIssuer with the certificate's
// subject. Both RFC 4514 order ("CN=..,O=..") and the reversed X.500 order
// ("O=..,CN=..") are accepted, case-insensitively and ignoring spaces around
// separators, because Windows, OpenSSL and Go print DNs differently.
func issuerMatches(configured string, c *x509.Certificate) bool {
	want := dnParts(SubjectString(c))
	got := dnParts(configured)
	if len(want) == 0 || len(want) != len(got) {
		return false
	}
	same, reversed := true, true
	for i := range want {
		same = same && got[i] == want[i]
		reversed = reversed && got[i] == want[len(want)-1-i]
	}
	return same || reversed
}

// dnParts splits a DN string into normalised "type=value" parts, honouring
// backslash escapes and double quotes.
func dnParts(dn string) []string {
	var parts []string
	var cur strings.Builder
	escaped, quoted := false, false
	flush := func() {
		p := strings.TrimSpace(cur.String())
		cur.Reset()
		if p == "" {
			return
		}
		if k, v, ok := strings.Cut(p, "="); ok {
			k = strings.ToLower(strings.TrimSpace(k))
			if name := certfmt.AttrName(k); name != k {
				k = strings.ToLower(name)
			}
			if a, ok := attrAliases[k]; ok {
				k = a
			}
			p = k + "=" + strings.TrimSpace(v)
		}
		parts = append(parts, strings.ToLower(p))
	}
	for _, r := range dn {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case (r == ',' || r == ';') && !quoted:
			flush()
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return parts
}

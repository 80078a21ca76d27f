package clientcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// XFCC returns one X-Forwarded-Client-Cert element in Envoy's format
// (Envoy docs, "x-forwarded-client-cert"), for an edge proxy that sets the
// header afresh (Envoy's SANITIZE_SET):
//
//	By=<by>;Hash=<hex SHA-256 of the leaf DER>;Cert="<URL-encoded leaf PEM>";
//	Chain="<URL-encoded PEM of the whole chain, leaf first>";Subject="<leaf subject DN>";
//	URI=<each URI SAN>;DNS=<each DNS SAN>;Email=<each email>;UPN=<each UPN>
//
// Email and UPN are certgate extensions (Envoy has no key for them); they
// carry the values given, which the caller reads from the certificate (the
// UPN is a SAN otherName that crypto/x509 does not parse). By is left out
// when empty.
//
// Cert, Chain and Subject are always quoted; other values are quoted when
// they contain ',', ';', '=', '"' or '\', or begin or end with white space.
// Inside quotes '"' and '\' are escaped with a backslash, as in an HTTP
// quoted-string (Envoy documents only the '\"' escape). The PEM is
// percent-encoded in everything outside RFC 3986's unreserved set, which
// for PEM text is exactly what Envoy writes (it escapes newline, space, '+',
// '/' and '='), and url.PathUnescape or url.QueryUnescape decode it.
//
// A SAN, By, Email or UPN value holding a control character cannot be
// carried in a header and is left out; control characters in the subject
// DN are written as RFC 4514 \XX escapes. An empty chain gives "".
func XFCC(chain []*x509.Certificate, by string, upn []string, email []string) string {
	if len(chain) == 0 {
		return ""
	}
	leaf := chain[0]
	var b strings.Builder
	pair := func(key, value string, quote bool) {
		if hasCTL(value) {
			return
		}
		writePair(&b, key, value, quote)
	}
	if by != "" {
		pair("By", by, false)
	}
	sum := sha256.Sum256(leaf.Raw)
	pair("Hash", hex.EncodeToString(sum[:]), false)
	pair("Cert", urlEncode(pemOf(leaf)), true)
	pair("Chain", urlEncode(pemOf(chain...)), true)
	pair("Subject", escapeCTL(leaf.Subject.String()), true)
	for _, u := range leaf.URIs {
		pair("URI", u.String(), false)
	}
	for _, d := range leaf.DNSNames {
		pair("DNS", d, false)
	}
	for _, e := range email {
		pair("Email", e, false)
	}
	for _, u := range upn {
		pair("UPN", u, false)
	}
	return b.String()
}

func pemOf(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// writePair appends key=value, preceded by ';' unless it is the first.
func writePair(b *strings.Builder, key, value string, quote bool) {
	if b.Len() > 0 {
		b.WriteByte(';')
	}
	b.WriteString(key)
	b.WriteByte('=')
	if !quote && !needsQuote(value) {
		b.WriteString(value)
		return
	}
	writeQuoted(b, value)
}

func writeQuoted(b *strings.Builder, value string) {
	b.WriteByte('"')
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(value[i])
	}
	b.WriteByte('"')
}

func needsQuote(v string) bool {
	if strings.ContainsAny(v, `,;="\`) {
		return true
	}
	return v != "" && (isOWS(v[0]) || isOWS(v[len(v)-1]))
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func escapeCTL(s string) string {
	if !hasCTL(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, `\%02X`, c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// urlEncode percent-encodes every byte outside RFC 3986's unreserved set.
func urlEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3 / 2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// knownKeys are Envoy's XFCC keys plus certgate's, in their canonical
// spelling; ParseXFCC reports them so whatever case the header used.
var knownKeys = [...]string{"By", "Hash", "Cert", "Chain", "Subject", "URI", "DNS", "Email", "UPN"}

// MaxXFCCLength bounds what ParseXFCC reads; a chain of a few certificates
// in URL-encoded PEM is well under it.
const MaxXFCCLength = 256 << 10

// ParseXFCC splits an X-Forwarded-Client-Cert header into its elements
// (one per proxy hop), each a map from key to values in order. Known keys
// (By, Hash, Cert, Chain, Subject, URI, DNS, Email, UPN) are matched in any
// case and reported in that spelling; other keys are kept as written.
// Quoted values are unquoted; Cert and Chain stay URL-encoded. An empty
// header gives no elements; control characters other than tab are errors.
func ParseXFCC(h string) ([]map[string][]string, error) {
	if h == "" {
		return nil, nil
	}
	if len(h) > MaxXFCCLength {
		return nil, fmt.Errorf("xfcc: longer than %d bytes", MaxXFCCLength)
	}
	for i := 0; i < len(h); i++ {
		// No header value can hold these, so none is a value's content.
		if c := h[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return nil, fmt.Errorf("xfcc: at offset %d: control character 0x%02x", i, c)
		}
	}
	p := xfccParser{s: h}
	var out []map[string][]string
	for {
		elem, more, err := p.element()
		if err != nil {
			return nil, err
		}
		out = append(out, elem)
		if !more {
			return out, nil
		}
	}
}

type xfccParser struct {
	s string
	i int
}

func (p *xfccParser) errorf(format string, args ...any) error {
	return fmt.Errorf("xfcc: at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *xfccParser) skipOWS() {
	for p.i < len(p.s) && isOWS(p.s[p.i]) {
		p.i++
	}
}

// element reads key=value pairs up to ',' (more is true) or the end.
func (p *xfccParser) element() (elem map[string][]string, more bool, err error) {
	elem = map[string][]string{}
	for {
		key, err := p.key()
		if err != nil {
			return nil, false, err
		}
		value, err := p.value()
		if err != nil {
			return nil, false, err
		}
		elem[key] = append(elem[key], value)
		if p.i == len(p.s) {
			return elem, false, nil
		}
		sep := p.s[p.i]
		p.i++
		if sep == ',' {
			return elem, true, nil
		}
		// sep is ';', the only other byte value() stops at.
	}
}

func (p *xfccParser) key() (string, error) {
	p.skipOWS()
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	if p.i == len(p.s) || p.s[p.i] != '=' {
		if p.i == len(p.s) && start == p.i {
			return "", p.errorf("missing key=value pair")
		}
		return "", p.errorf("want '=' after a key")
	}
	if start == p.i {
		return "", p.errorf("empty key")
	}
	key := p.s[start:p.i]
	p.i++ // '='
	for _, k := range knownKeys {
		if strings.EqualFold(k, key) {
			return k, nil
		}
	}
	return key, nil
}

func (p *xfccParser) value() (string, error) {
	if p.i < len(p.s) && p.s[p.i] == '"' {
		p.i++
		var b strings.Builder
		for {
			if p.i == len(p.s) {
				return "", p.errorf("unterminated quoted value")
			}
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				p.skipOWS()
				if p.i < len(p.s) && p.s[p.i] != ';' && p.s[p.i] != ',' {
					return "", p.errorf("want ';' or ',' after a quoted value")
				}
				return b.String(), nil
			case '\\':
				if p.i == len(p.s) {
					return "", p.errorf("unterminated quoted value")
				}
				c = p.s[p.i]
				p.i++
			}
			b.WriteByte(c)
		}
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ';' && p.s[p.i] != ',' {
		if p.s[p.i] == '"' {
			return "", p.errorf("'\"' inside an unquoted value")
		}
		p.i++
	}
	return strings.TrimRight(p.s[start:p.i], " \t"), nil
}

// isTchar is RFC 9110's token character set.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// DecodeXFCCCerts decodes a Cert or Chain value (URL-encoded PEM, as
// ParseXFCC returns it) into certificates, in order.
func DecodeXFCCCerts(v string) ([]*x509.Certificate, error) {
	s, err := url.PathUnescape(v)
	if err != nil {
		return nil, fmt.Errorf("xfcc: certificate value: %w", err)
	}
	rest := []byte(s)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("xfcc: certificate %d: PEM block %q, want CERTIFICATE", len(certs)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("xfcc: certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("xfcc: certificate value: no CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("xfcc: certificate value: text after the last PEM block")
	}
	return certs, nil
}

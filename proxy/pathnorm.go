package proxy

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PathError says why a request path is refused. Every such request is
// answered 400 before routing: a path certgate and a backend could read
// differently cannot be routed safely.
type PathError struct{ Why string }

func (e *PathError) Error() string { return "ambiguous path: " + e.Why }

func pathErr(why string) error { return &PathError{Why: why} }

// NormalizePath returns the one path certgate routes on and forwards, or a
// *PathError when the path is ambiguous. raw is the request path as sent,
// still percent-encoded, without the query (the query is never touched).
//
// The rule, in order:
//
//  1. The path starts with "/".
//  2. Percent-encodings must be two hex digits. Those of unreserved
//     characters (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) are decoded, all
//     others are kept, with upper-case hex (§6.2.2.1). Bytes that are not
//     allowed literally in a path segment (space, '"', '<', '>', '^', '`',
//     '{', '|', '}', non-ASCII bytes) are percent-encoded.
//  3. Refused: an encoded '/' or '\' (%2F %5C: a separator to some
//     backends, part of a name to others), a literal '\' (IIS treats it as
//     '/'), NUL and other control characters in any form, percent-encoded
//     bytes that are not valid UTF-8 (overlong forms such as %C0%AE, which
//     old IIS decoded to '.'), and full-width or look-alike forms of '/',
//     '\' and '.' (U+FF0F, U+2215, U+FE52, ...).
//  4. Repeated slashes are collapsed ("//" is "/", as IIS, nginx's
//     merge_slashes and most frameworks read it).
//  5. Dot-segments "." and ".." are removed (RFC 3986 §5.2.4); a ".." that
//     would climb above the root is refused. A segment that is only dots
//     and spaces ("...", ".. ") or is a dot-segment with parameters
//     ("..;x", Tomcat's "/..;/") is refused: IIS strips trailing dots and
//     spaces from a segment and Java servers drop ";" parameters, so such
//     a segment is ".." to one backend and a name to another.
//
// A path ending in "/" (or in a dot-segment) keeps its trailing "/". The
// result decodes (url.PathUnescape) to the path routes are matched against.
// NormalizePath is pure and safe for concurrent use; the result of an
// already normalised path is that path.
func NormalizePath(raw string) (string, error) {
	if raw == "" || raw[0] != '/' {
		return "", pathErr("the path does not start with /")
	}
	// Pass 1: percent-encoding, character classes, UTF-8.
	var b strings.Builder
	b.Grow(len(raw))
	var dec []byte // the fully decoded path, to check UTF-8 and runes
	if !asciiOnly(raw) || strings.IndexByte(raw, '%') >= 0 {
		dec = make([]byte, 0, len(raw))
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		encoded := false
		if c == '%' {
			if i+2 >= len(raw) {
				return "", pathErr("a % not followed by two hex digits")
			}
			hi, ok1 := unhex(raw[i+1])
			lo, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", pathErr("a % not followed by two hex digits")
			}
			c = hi<<4 | lo
			i += 2
			encoded = true
		}
		switch {
		case c == 0:
			return "", pathErr("NUL in the path")
		case c < 0x20 || c == 0x7f:
			return "", pathErr("a control character in the path")
		case c == '/' && encoded:
			return "", pathErr("an encoded / (%2F) in a segment")
		case c == '\\':
			if encoded {
				return "", pathErr(`an encoded \ (%5C) in a segment`)
			}
			return "", pathErr(`a \ in the path (IIS treats it as /)`)
		}
		if dec != nil {
			dec = append(dec, c)
		}
		if c == '/' || isUnreserved(c) || !encoded && isPathLiteral(c) {
			b.WriteByte(c)
			continue
		}
		const hexDigits = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	if dec != nil {
		if !utf8.Valid(dec) {
			return "", pathErr("percent-encoded bytes that are not valid UTF-8 (overlong or broken sequence)")
		}
		for _, r := range string(dec) {
			if r < utf8.RuneSelf {
				continue
			}
			if why := confusable(r); why != "" {
				return "", pathErr(why)
			}
		}
	}
	enc := b.String()

	// Pass 2: segments. '/' is a separator only here: encoded ones were
	// refused above.
	segs := strings.Split(enc[1:], "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case s == "":
			// Repeated slash, or the trailing one.
			if last {
				trailing = true
			}
			continue
		case s == ".":
			trailing = last
			continue
		case s == "..":
			if len(out) == 0 {
				return "", pathErr("the path climbs above the root")
			}
			out = out[:len(out)-1]
			trailing = last
			continue
		}
		if why := ambiguousDots(s); why != "" {
			return "", pathErr(why)
		}
		trailing = false
		out = append(out, s)
	}
	if len(out) == 0 {
		return "/", nil
	}
	res := "/" + strings.Join(out, "/")
	if trailing {
		res += "/"
	}
	return res, nil
}

// ambiguousDots refuses segments that IIS or a Java server would read as a
// dot-segment: only dots and encoded spaces, or a dot-segment followed by
// ";" parameters.
func ambiguousDots(seg string) string {
	base, _, hasParams := strings.Cut(seg, ";")
	t := strings.ReplaceAll(base, "%20", " ")
	if strings.Trim(t, ". ") == "" && t != "" {
		if hasParams {
			return "a dot-segment with ; parameters"
		}
		return "a segment of only dots and spaces (IIS strips trailing dots and spaces)"
	}
	if hasParams && base == "" {
		// ";x" alone is an empty segment to a server that drops parameters.
		return "a segment that is only ; parameters"
	}
	return ""
}

// confusable names why a non-ASCII rune is refused, or "" when it is not:
// the compatibility forms of '/', '\' and '.' (NFKC maps them to ASCII,
// and some backends normalise so). Letters that case-insensitive servers
// fold to ASCII are not refused here (Turkish paths are full of U+0131);
// IsEASPath looks through them.
func confusable(r rune) string {
	switch r {
	case '\u2215', '\u2044', '\u29f8', '\ufe68', '\u2216', '\u29f5', '\ufe52', '\u2024', '\uff0f', '\uff3c', '\uff0e':
		return "a look-alike of /, \\ or . in the path"
	}
	return ""
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// isPathLiteral reports the bytes besides unreserved ones that stay
// literal in a segment: RFC 3986 pchar's sub-delims, ':' and '@', and
// '[' ']' which browsers leave alone (net/url accepts the same set).
func isPathLiteral(c byte) bool {
	return strings.IndexByte("!$&'()*+,;=:@[]", c) >= 0
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// easSegment is the first path segment under which Exchange serves
// ActiveSync, whatever route certgate has for it.
const easSegment = "Microsoft-Server-ActiveSync"

// IsEASPath reports whether a backend such as Exchange on IIS would serve
// the normalised path as ActiveSync: its first segment, decoded, with any
// ";" parameters removed and trailing dots and spaces stripped (as IIS
// does), compared case-insensitively, begins with
// Microsoft-Server-ActiveSync; or the path, so compared, is
// /autodiscover/autodiscover.xml. The comparison maps letters as a
// Unicode-aware server does (U+017F 'ſ' is 'S', U+0131 'ı' is 'I', U+212A
// Kelvin is 'K'); viaUnicode reports a path that is ActiveSync only
// through such a letter, which certgate refuses as ambiguous. certgate
// applies the EAS checks to every other such request, whatever route it
// lands on.
func IsEASPath(norm string) (eas, viaUnicode bool) {
	segs := strings.SplitN(strings.TrimPrefix(norm, "/"), "/", 3)
	first, u1 := looseSegment(segs[0])
	if hasPrefixFold(first, easSegment) {
		return true, u1
	}
	if len(segs) == 2 && strings.EqualFold(first, "autodiscover") {
		if second, u2 := looseSegment(segs[1]); strings.EqualFold(second, "autodiscover.xml") {
			return true, u1 || u2
		}
	}
	return false, false
}

// looseSegment is a segment as IIS or a Java server compares it, with
// non-ASCII letters that such a server maps to ASCII letters mapped
// (mapped reports whether any was).
func looseSegment(seg string) (string, bool) {
	seg, _, _ = strings.Cut(seg, ";")
	if strings.IndexByte(seg, '%') >= 0 {
		if d, err := unescapePath(seg); err == nil {
			seg = d
		}
	}
	mapped := false
	if !asciiOnly(seg) {
		seg = strings.Map(func(r rune) rune {
			if r < utf8.RuneSelf {
				return r
			}
			for _, f := range [...]rune{unicode.ToUpper(r), unicode.ToLower(r), unicode.ToUpper(unicode.ToLower(r)), unicode.ToLower(unicode.ToUpper(r))} {
				if f < utf8.RuneSelf {
					mapped = true
					return f
				}
			}
			return r
		}, seg)
	}
	return strings.TrimRight(seg, ". "), mapped
}

var errBadEscape = errors.New("bad percent-encoding")

func unescapePath(s string) (string, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", errBadEscape
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", errBadEscape
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return string(out), nil
}

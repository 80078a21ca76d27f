// Package h1 parses HTTP/1.1 message heads for certgate's forwarding fast
// path, strictly: anything RFC 9112 lets a server refuse and that two
// parsers could read differently (request smuggling) is refused, and
// anything valid the fast path does not forward itself is reported so that
// the caller can hand the connection to net/http. Parsing never allocates:
// a head is a set of offsets into the caller's buffer.
package h1

import "errors"

// Verdicts besides a parsed head.
var (
	// ErrIncomplete: no complete head in the buffer yet.
	ErrIncomplete = errors.New("h1: incomplete head")
	// ErrHandoff: a valid request the fast path leaves to net/http
	// (upgrades, Expect, chunked request bodies, HTTP/1.0, ...).
	ErrHandoff = errors.New("h1: hand off to net/http")
)

// Malformed is a head refused with 400 and a closed connection.
type Malformed struct{ Reason string }

func (e *Malformed) Error() string { return "h1: malformed request: " + e.Reason }

func malformed(reason string) error { return &Malformed{Reason: reason} }

// MaxFields bounds the header fields of a head the fast path keeps; a
// request with more is handed off, not refused.
const MaxFields = 64

// Span is a [Start, End) range of the buffer.
type Span struct{ Start, End int }

// Field is one header field: its name and its value without surrounding
// whitespace.
type Field struct{ Name, Value Span }

// Field kinds the forwarder acts on.
const (
	KindOther    uint8 = iota
	KindHopByHop       // Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Transfer-Encoding, Proxy-Authorization
	KindHost
	KindContentLength
)

// Request is a parsed request head; every Span indexes the buffer given
// to ParseRequest.
type Request struct {
	Method, Target Span
	Path, Query    Span // Target split at the first '?'; Query without it
	Host           Span
	ContentLength  int64 // -1: no body
	Close          bool  // Connection: close
	HeadLen        int   // bytes of the head, final CRLF CRLF included
	NFields        int
	Fields         [MaxFields]Field
	Kinds          [MaxFields]uint8
}

// ParseRequest parses the request head at the start of b.
func ParseRequest(b []byte, r *Request) error {
	end, err := headEnd(b)
	if err != nil {
		return err
	}
	*r = Request{ContentLength: -1, HeadLen: end}
	line, rest := cutLine(b, 0, end)
	// request-line = method SP request-target SP HTTP-version
	i := line.Start
	for i < line.End && isTchar(b[i]) {
		i++
	}
	if i == line.Start || i >= line.End || b[i] != ' ' {
		return malformed("bad method")
	}
	r.Method = Span{line.Start, i}
	i++
	t := i
	for i < line.End && b[i] > ' ' && b[i] < 0x7f {
		i++
	}
	if i == t || i >= line.End || b[i] != ' ' {
		return malformed("bad request target")
	}
	r.Target = Span{t, i}
	i++
	var cl, te, host, handoff bool
	// HTTP/1.0 and a later 1.x are valid (RFC 9112 2.3), left to net/http.
	switch v := b[i:line.End]; {
	case string(v) == "HTTP/1.1":
	case len(v) == 8 && string(v[:7]) == "HTTP/1." && v[7] >= '0' && v[7] <= '9':
		handoff = true
	default:
		return malformed("bad HTTP version")
	}

	var absHost Span
	for rest.Start < rest.End {
		line, rest = cutLine(b, rest.Start, rest.End)
		if line.Start == line.End {
			break // the empty line ends the head
		}
		if c := b[line.Start]; c == ' ' || c == '\t' {
			return malformed("obs-fold")
		}
		j := line.Start
		for j < line.End && isTchar(b[j]) {
			j++
		}
		if j == line.Start || j == line.End || b[j] != ':' {
			return malformed("bad header name")
		}
		name := Span{line.Start, j}
		v0, v1, ok := fieldValue(b, j+1, line.End)
		if !ok {
			return malformed("control character in a header value")
		}
		value := Span{v0, v1}
		kind := KindOther
		switch n := b[name.Start:name.End]; {
		case equalFold(n, "content-length"):
			if cl {
				return malformed("more than one Content-Length")
			}
			cl = true
			kind = KindContentLength
			n, ok := parseLength(b[v0:v1])
			if !ok {
				return malformed("bad Content-Length")
			}
			r.ContentLength = n
		case equalFold(n, "transfer-encoding"):
			if te {
				return malformed("more than one Transfer-Encoding")
			}
			te = true
			if !equalFold(b[v0:v1], "chunked") {
				return malformed("Transfer-Encoding other than chunked")
			}
			kind = KindHopByHop
		case equalFold(n, "host"):
			if host {
				return malformed("more than one Host")
			}
			host = true
			kind = KindHost
			if !validHost(b[v0:v1]) {
				return malformed("bad Host")
			}
			r.Host = value
		case equalFold(n, "connection"):
			kind = KindHopByHop
			var other bool
			forTokens(b[v0:v1], func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					r.Close = true
				case equalFold(tok, "keep-alive"):
				default:
					other = true // upgrade, or a header to drop by name
				}
			})
			if other {
				handoff = true
			}
		case equalFold(n, "upgrade"), equalFold(n, "expect"):
			handoff = true
		case equalFold(n, "keep-alive"), equalFold(n, "proxy-connection"), equalFold(n, "te"),
			equalFold(n, "trailer"), equalFold(n, "proxy-authorization"):
			kind = KindHopByHop
		}
		if r.NFields == MaxFields {
			handoff = true
			continue
		}
		r.Fields[r.NFields] = Field{Name: name, Value: value}
		r.Kinds[r.NFields] = kind
		r.NFields++
	}
	if cl && te {
		return malformed("both Content-Length and Transfer-Encoding")
	}
	if !host {
		return malformed("no Host")
	}
	// request-target forms (RFC 9112 3.2).
	tg := b[r.Target.Start:r.Target.End]
	if equalFold(b[r.Method.Start:r.Method.End], "connect") {
		return ErrHandoff // a tunnel: net/http refuses it
	}
	switch {
	case tg[0] == '/':
		r.Path = r.Target
		for k := r.Target.Start; k < r.Target.End; k++ {
			if b[k] == '?' {
				r.Path.End = k
				r.Query = Span{k + 1, r.Target.End}
				break
			}
		}
	case hasPrefixFold(tg, "http://") || hasPrefixFold(tg, "https://"):
		s := r.Target.Start + 7
		if tg[4] != ':' {
			s++
		}
		e := s
		for e < r.Target.End && b[e] != '/' && b[e] != '?' {
			e++
		}
		absHost = Span{s, e}
		if !equalFoldBytes(b[absHost.Start:absHost.End], b[r.Host.Start:r.Host.End]) {
			return malformed("absolute-form target for another host")
		}
		return ErrHandoff
	case len(tg) == 1 && tg[0] == '*':
		return ErrHandoff
	default:
		return malformed("bad request target")
	}
	if te || handoff || !plainPath(b[r.Path.Start:r.Path.End]) {
		return ErrHandoff
	}
	return nil
}

// plainPath reports whether a path is already in the normal form
// certgate routes on (proxy.NormalizePath): no percent-encoding, only
// characters allowed literally, no empty segment ("//") and no segment
// that starts with a dot (".", "..", "...", "..;x" and the like) or with
// ";" (only parameters). Such a
// path is its own normal form and decoded form, so a route matched on its
// bytes is the route the net/http path matches. Other paths are left to
// net/http, which normalises or refuses them.
func plainPath(p []byte) bool {
	for i, c := range p {
		if c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.' || p[i+1] == ';') {
			return false
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '/', c == '-', c == '.', c == '_', c == '~', c == '!', c == '$', c == '&', c == '\'',
			c == '(', c == ')', c == '*', c == '+', c == ',', c == ';', c == '=', c == ':', c == '@':
		default:
			return false
		}
	}
	return true
}

// headEnd finds the end of the head and refuses bare CR and bare LF in it.
func headEnd(b []byte) (int, error) {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\r':
			if i+1 == len(b) {
				return 0, ErrIncomplete
			}
			if b[i+1] != '\n' {
				return 0, malformed("bare CR")
			}
			if i+3 < len(b) && b[i+2] == '\r' && b[i+3] == '\n' {
				return i + 4, nil
			}
			i++
		case '\n':
			return 0, malformed("bare LF")
		}
	}
	return 0, ErrIncomplete
}

// cutLine returns the line at start (without CRLF) and the rest up to end.
func cutLine(b []byte, start, end int) (line, rest Span) {
	for i := start; i+1 < end; i++ {
		if b[i] == '\r' {
			return Span{start, i}, Span{i + 2, end}
		}
	}
	return Span{start, end}, Span{end, end}
}

// parseLength reads 1*DIGIT into an int64 that cannot overflow.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// validHost accepts uri-host [":" port] characters: no whitespace, no '/',
// '?', '#' or '@' that would make a URL of it mean another host.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_', c == '~', c == '%':
		default:
			return false
		}
	}
	return true
}

func forTokens(v []byte, f func([]byte)) {
	for len(v) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		tok := v[:i]
		for len(tok) > 0 && (tok[0] == ' ' || tok[0] == '\t') {
			tok = tok[1:]
		}
		for len(tok) > 0 && (tok[len(tok)-1] == ' ' || tok[len(tok)-1] == '\t') {
			tok = tok[:len(tok)-1]
		}
		if len(tok) > 0 {
			f(tok)
		}
		if i == len(v) {
			return
		}
		v = v[i+1:]
	}
}

// isTchar is RFC 9110's token character.
func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFold compares b with the lower-case ASCII s.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[:len(s)], s)
}

// EqualFold reports whether b is the lower-case ASCII s, ignoring case.
func EqualFold(b []byte, s string) bool { return equalFold(b, s) }

// ForTokens calls f with each element of a comma-separated list.
func ForTokens(v []byte, f func([]byte)) { forTokens(v, f) }

// fieldValue is a field's value between start and end with the optional
// white space around it trimmed (RFC 9110 §5.5); ok is false when the value
// holds a control character other than HTAB, which neither the request nor
// the response parser passes on.
func fieldValue(b []byte, start, end int) (v0, v1 int, ok bool) {
	v0, v1 = start, end
	for v0 < v1 && (b[v0] == ' ' || b[v0] == '\t') {
		v0++
	}
	for v1 > v0 && (b[v1-1] == ' ' || b[v1-1] == '\t') {
		v1--
	}
	for k := v0; k < v1; k++ {
		if c := b[k]; c < ' ' && c != '\t' || c == 0x7f {
			return v0, v1, false
		}
	}
	return v0, v1, true
}

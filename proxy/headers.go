package proxy

import "net/http"

// reservedHeaders are the request headers certgate sets itself. Any inbound
// header whose name, lower-cased with '_' read as '-', is one of these is
// dropped: backends behind WSGI, PHP or CGI fold X_Remote_User into
// X-Remote-User, and a spoofed copy would survive a plain Header.Del
// (CVE-2025-64484).
var reservedHeaders = []string{
	"x-remote-user",
	"x-certgate-assertion",
	"client-cert",
	"client-cert-chain",
	"x-forwarded-client-cert",
	"x-forwarded-for",
	"x-forwarded-proto",
	"x-forwarded-host",
	"x-forwarded-port",
	"x-forwarded-user",
	"x-forwarded-email",
	"x-real-ip",
	"forwarded",
	"x-ssl-client-cert",
	"x-ssl-client-verify",
	"x-client-verify",
}

// headerSet is a set of lower-case header names, bucketed by length so
// that checking a request's headers allocates nothing.
type headerSet [][]string

func newHeaderSet(extra ...string) headerSet {
	var s headerSet
	add := func(h string) {
		h = normHeader(h)
		for len(s) <= len(h) {
			s = append(s, nil)
		}
		for _, have := range s[len(h)] {
			if have == h {
				return
			}
		}
		s[len(h)] = append(s[len(h)], h)
	}
	for _, h := range reservedHeaders {
		add(h)
	}
	for _, h := range extra {
		add(h)
	}
	return s
}

// normHeader folds ASCII case and '_' only: header names are ASCII tokens
// (net/http refuses others), and strings.ToLower would turn each invalid
// UTF-8 byte into a three-byte U+FFFD, breaking the length buckets.
func normHeader(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		} else if c == '_' {
			b[i] = '-'
		}
	}
	return string(b)
}

// has reports whether name, read case-insensitively with '_' as '-', is in s.
func (s headerSet) has(name string) bool { return inSet(s, name) }

// hasBytes is has for a name still in a request buffer (the HTTP/1.1 fast
// path): one implementation for both, so the two paths strip alike.
func (s headerSet) hasBytes(name []byte) bool { return inSet(s, name) }

func inSet[T ~string | ~[]byte](s headerSet, name T) bool {
	if len(name) >= len(s) {
		return false
	}
	for _, r := range s[len(name)] {
		if equalHeaderFold(name, r) {
			return true
		}
	}
	return false
}

// equalHeaderFold compares name with the normalised r of the same length.
func equalHeaderFold[T ~string | ~[]byte](name T, r string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != r[i] {
			return false
		}
	}
	return true
}

// strip removes every header of h that is in s, whatever its spelling.
func (s headerSet) strip(h http.Header) {
	for k := range h {
		if s.has(k) {
			delete(h, k)
		}
	}
}

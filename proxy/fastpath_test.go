package proxy

import (
	"bytes"
	"testing"

	"github.com/certgate/certgate/proxy/h1"
)

// FuzzFastPathPathIsNormal: a path the fast path forwards as it is (the
// parser accepts the request without handing it off) is one NormalizePath
// leaves unchanged, so both paths route and forward the same bytes.
func FuzzFastPathPathIsNormal(f *testing.F) {
	for _, p := range []string{"/", "/a/b", "/a/../b", "//x", "/%41", "/a;b", "/.x", "/a/./b"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := []byte("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		var r h1.Request
		if h1.ParseRequest(req, &r) != nil {
			return
		}
		raw := req[r.Path.Start:r.Path.End]
		norm, err := NormalizePath(string(raw))
		if err != nil || !bytes.Equal([]byte(norm), raw) {
			t.Fatalf("fast path forwards %q as it is; NormalizePath gives %q, %v", raw, norm, err)
		}
	})
}

// FuzzMaybeEASPath: every plain path IsEASPath calls ActiveSync is one the
// fast path hands to the net/http path (unless its route is an EAS route,
// which checks it anyway).
func FuzzMaybeEASPath(f *testing.F) {
	for _, p := range []string{"/Microsoft-Server-ActiveSync", "/microsoft-server-activesync;x", "/autodiscover/autodiscover.xml", "/AutoDiscover./autodiscover.xml.", "/owa"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := []byte("GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n")
		var r h1.Request
		if h1.ParseRequest(req, &r) != nil {
			return
		}
		raw := req[r.Path.Start:r.Path.End]
		if eas, _ := IsEASPath(string(raw)); eas && !maybeEASPath(raw) {
			t.Fatalf("IsEASPath(%q) but the fast path would not hand it off", raw)
		}
	})
}

package proxy

import (
	"net/url"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	ok := map[string]string{
		"/":                                     "/",
		"/a/b":                                  "/a/b",
		"//Microsoft-Server-ActiveSync":         "/Microsoft-Server-ActiveSync",
		"/./Microsoft-Server-ActiveSync":        "/Microsoft-Server-ActiveSync",
		"/x/../Microsoft-Server-ActiveSync":     "/Microsoft-Server-ActiveSync",
		"/%2E/Microsoft-Server-ActiveSync":      "/Microsoft-Server-ActiveSync",
		"/x/%2e%2E/Microsoft-Server-ActiveSync": "/Microsoft-Server-ActiveSync",
		"/%4Dicrosoft-Server-ActiveSync":        "/Microsoft-Server-ActiveSync",
		"/a//b///c/":                            "/a/b/c/",
		"/a/.":                                  "/a/",
		"/a/b/..":                               "/a/",
		"/a%20b":                                "/a%20b",
		"/%e2%82%ac":                            "/%E2%82%AC",
		"/\u20ac":                               "/%E2%82%AC",
		"/a;b=c/d":                              "/a;b=c/d",
		"/a\"b":                                 "/a%22b",
		"/%25":                                  "/%25",
		"/a.b.":                                 "/a.b.",
		"/kullan\u0131c\u0131":                  "/kullan%C4%B1c%C4%B1",
		"/%E3%80%82":                            "/%E3%80%82",
	}
	for in, want := range ok {
		if want == "" {
			continue
		}
		got, err := NormalizePath(in)
		if err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
			continue
		}
		// Idempotent, and what routes match decodes cleanly.
		if again, err := NormalizePath(got); err != nil || again != got {
			t.Errorf("NormalizePath(%q) = %q, %v; not idempotent", got, again, err)
		}
		if _, err := url.PathUnescape(got); err != nil {
			t.Errorf("%q does not decode: %v", got, err)
		}
	}
	bad := []string{
		"", "x", "*", "/..", "/a/../..", "/%2e%2e", "/a%2Fb", "/a%2fb", "/a%5Cb", "/a\\b", "/a%00", "/a\x00",
		"/a%0d%0a", "/a\r", "/%", "/%4", "/%zz", "/%u002F", "/%C0%AE%C0%AE/", "/%C0%AF", "/%E0%80%AE", "/%FF",
		"/...", "/.. /x", "/..%20", "/..;/x", "/.;x/y", "/;x/..", "/a\uff0fb", "/a%EF%BC%8Fb", "/a\u2215b",
		"/a%EF%BC%8E%EF%BC%8E/", "/a\x7f",
	}
	for _, in := range bad {
		if got, err := NormalizePath(in); err == nil {
			t.Errorf("NormalizePath(%q) = %q, want an error", in, got)
		}
	}
}

func TestIsEASPath(t *testing.T) {
	yes := []string{"/Microsoft-Server-ActiveSync", "/microsoft-server-activesync/default.eas", "/MICROSOFT-SERVER-ACTIVESYNC.",
		"/Microsoft-Server-ActiveSync;x=y", "/Microsoft-Server-ActiveSync%20", "/Microsoft-Server-ActiveSync.%20.",
		"/autodiscover/autodiscover.xml", "/AutoDiscover/AutoDiscover.XML.", "/autodiscover;a/autodiscover.xml;b"}
	viaUnicode := []string{"/Micro%C5%BFoft-Server-ActiveSync", "/M%C4%B1crosoft-Server-ActiveSync", "/autodiscover/autod%C4%B1scover.xml"}
	no := []string{"/", "/owa/", "/x/Microsoft-Server-ActiveSync", "/Microsoft-Server-Active", "/autodiscover/other.xml", "/kullan%C4%B1c%C4%B1"}
	for _, p := range yes {
		if eas, u := IsEASPath(p); !eas || u {
			t.Errorf("IsEASPath(%q) = %v, %v", p, eas, u)
		}
	}
	for _, p := range viaUnicode {
		if eas, u := IsEASPath(p); !eas || !u {
			t.Errorf("IsEASPath(%q) = %v, %v; want true, true", p, eas, u)
		}
	}
	for _, p := range no {
		if eas, _ := IsEASPath(p); eas {
			t.Errorf("IsEASPath(%q) = true", p)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "//a/./b/../c", "/%2e%2E/x", "/a%2Fb", "/\u017F", "/..;/", "/%C0%AE", "/a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		// The result is a fixed point, never climbs, and has no segment a
		// backend could read as a dot-segment or a separator.
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("NormalizePath(%q) = %q, then %q, %v", in, out, again, err)
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || strings.Contains(out, "\\") {
			t.Fatalf("NormalizePath(%q) = %q", in, out)
		}
		for _, s := range strings.Split(out, "/") {
			if s == "." || s == ".." {
				t.Fatalf("NormalizePath(%q) = %q keeps a dot-segment", in, out)
			}
		}
		dec, err := url.PathUnescape(out)
		if err != nil || strings.ContainsAny(dec, "\\\x00") {
			t.Fatalf("NormalizePath(%q) = %q decodes to %q, %v", in, out, dec, err)
		}
	})
}

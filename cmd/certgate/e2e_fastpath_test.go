package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// rawResponse sends raw bytes on a new mTLS connection as alice and reads
// one response (nil when the connection ends without one).
func (e *env) rawResponse(alice *pkigen.Leaf, raw string) *http.Response {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.inst.proxyAddr(), e.mtlsConfig(alice))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// The whole suite runs on one HTTP/1.1 path whatever the configs say
// with CERTGATE_TEST_FASTPATH=1 (the fast path) or 0 (net/http only).
func init() {
	switch os.Getenv("CERTGATE_TEST_FASTPATH") {
	case "1":
		on := true
		forceFastPath = &on
	case "0":
		off := false
		forceFastPath = &off
	}
}

func fastPathEnv(t *testing.T, on bool) *env {
	return newEnv(t, envConfig{extraYAML: fmt.Sprintf("http1:\n  fastPath: %v\n", on)})
}

// TestFastPathForwards: on the fast path a request reaches the backend
// with certgate's identity and forwarded headers and without any spelling
// of the client's copies; keep-alive, bodies, and the requests it hands
// to net/http (chunked body, Host/SNI mismatch) keep working.
func TestFastPathForwards(t *testing.T) {
	e := fastPathEnv(t, true)
	alice := e.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	c, err := tls.Dial("tcp", e.inst.proxyAddr(), e.mtlsConfig(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	send := func(raw string) (*http.Response, string) {
		t.Helper()
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := send("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: localhost\r\nX_Remote_User: mallory\r\nx-remote-user: mallory\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\nclient-cert: :Zm9v:\r\nUser-Agent: t\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello alice@contoso.com\n" {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	resp, body = send("POST /post HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 200 || body != "hello alice@contoso.com\n" {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	}
	reqs := e.backend.requests()
	if len(reqs) != 2 {
		t.Fatalf("backend saw %d requests", len(reqs))
	}
	r := reqs[0]
	if r.URL.RequestURI() != "/a/b?x=1&y=%20" || r.Header.Get("X-Remote-User") != "alice@contoso.com" ||
		len(r.Header.Values("X-Remote-User")) != 1 || r.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
		r.Header.Get("X-Forwarded-Proto") != "https" || r.Header.Get("X-Forwarded-Host") != "localhost" ||
		r.Header.Get("Client-Cert") != "" || r.Header.Get("User-Agent") != "t" {
		t.Fatalf("backend request %s %v", r.URL, r.Header)
	}
	for k := range r.Header {
		if strings.Contains(strings.ToLower(k), "remote_user") {
			t.Fatalf("spoofed %s reached the backend", k)
		}
	}
	if reqs[1].Method != "POST" || reqs[1].ContentLength != 5 {
		t.Fatalf("POST reached the backend as %s with length %d", reqs[1].Method, reqs[1].ContentLength)
	}
	// A request net/http serves (a path it normalises) on the same
	// connection, then one more on the fast path's connection, now
	// net/http's.
	resp, body = send("GET /a/./b HTTP/1.1\r\nHost: localhost\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello alice@contoso.com\n" {
		t.Fatalf("handed-off GET: %d %q", resp.StatusCode, body)
	}
	// A chunked body is handed to net/http too, which closes after it
	// (a chunked HTTP/1 request may have carried a Content-Length).
	resp, body = send("POST /chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != 200 || body != "hello alice@contoso.com\n" || !resp.Close {
		t.Fatalf("chunked POST: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if resp := e.rawResponse(alice, "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n"); resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("Host/SNI mismatch: %v", resp)
	}
	if n := len(e.backend.requests()); n != 4 {
		t.Fatalf("backend saw %d requests, want 4", n)
	}
}

// TestMalformedRefusedOnBothPaths is the differential test: the same
// ambiguous or malformed requests are refused by the fast path and by the
// net/http path, and none reaches the backend. Two forms RFC 9112 lets a
// server either refuse or repair are repaired by net/http (Content-Length
// beside Transfer-Encoding: the length is dropped and the body read as
// chunked; obs-fold: folded into one line) and refused by the fast path;
// for those the net/http path must at least hand the backend one
// re-framed request, never a second one smuggled inside the first.
func TestMalformedRefusedOnBothPaths(t *testing.T) {
	repairedByNetHTTP := map[string]bool{"CL and TE": true, "obs-fold": true}
	cases := map[string]string{
		"CL and TE":           "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"differing CL":        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"CL list":             "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!",
		"signed CL":           "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\nhello",
		"TE gzip":             "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
		"TE chunked, chunked": "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
		"TE identity":         "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: identity\r\n\r\n",
		"obs-fold":            "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n",
		"bare CR":             "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n",
		"space before colon":  "GET / HTTP/1.1\r\nHost: localhost\r\nX-A : a\r\n\r\n",
		"bad header name":     "GET / HTTP/1.1\r\nHost: localhost\r\nX(A): a\r\n\r\n",
		"NUL in value":        "GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n",
		"no Host":             "GET / HTTP/1.1\r\n\r\n",
		"two Hosts":           "GET / HTTP/1.1\r\nHost: localhost\r\nHost: other\r\n\r\n",
		"absolute-form other": "GET http://other.example/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"bad version":         "GET / HTTP/3.0\r\nHost: localhost\r\n\r\n",
		"oversized head":      "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
	}
	alice := func(e *env) *pkigen.Leaf { return e.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com")) }
	for _, on := range []bool{true, false} {
		if forceFastPath != nil && *forceFastPath != on {
			t.Logf("CERTGATE_TEST_FASTPATH forces one path: fastPath=%v not compared", on)
			continue
		}
		e := fastPathEnv(t, on)
		leaf := alice(e)
		repaired := 0
		for name, raw := range cases {
			resp := e.rawResponse(leaf, raw)
			if !on && repairedByNetHTTP[name] {
				repaired++
				continue
			}
			if resp != nil && resp.StatusCode < 400 {
				t.Errorf("fastPath=%v %s: accepted with %d", on, name, resp.StatusCode)
			}
		}
		reqs := e.backend.requests()
		if len(reqs) != repaired {
			t.Errorf("fastPath=%v: %d malformed requests reached the backend, want %d", on, len(reqs), repaired)
		}
		for _, r := range reqs {
			if r.Header.Get("Content-Length") != "" && len(r.TransferEncoding) > 0 || strings.Contains(r.Header.Get("X-A"), "\n") {
				t.Errorf("a repaired request reached the backend ambiguous: %v %v", r.TransferEncoding, r.Header)
			}
		}
	}
}

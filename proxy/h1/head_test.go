package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"testing"
)

func TestParseRequest(t *testing.T) {
	ok := "GET /a?b=c HTTP/1.1\r\nHost: example.com:8443\r\nContent-Length: 3\r\nConnection: close\r\nX_Odd-Name: v \r\n\r\nabc"
	var r Request
	if err := ParseRequest([]byte(ok), &r); err != nil {
		t.Fatal(err)
	}
	b := []byte(ok)
	if string(b[r.Method.Start:r.Method.End]) != "GET" || string(b[r.Path.Start:r.Path.End]) != "/a" ||
		string(b[r.Query.Start:r.Query.End]) != "b=c" || string(b[r.Host.Start:r.Host.End]) != "example.com:8443" ||
		r.ContentLength != 3 || !r.Close || r.HeadLen != len(ok)-3 || r.NFields != 4 ||
		string(b[r.Fields[3].Value.Start:r.Fields[3].Value.End]) != "v" {
		t.Fatalf("%+v", r)
	}
	for _, tc := range []struct {
		raw  string
		want error
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n", ErrIncomplete},
		{"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", ErrHandoff},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", ErrHandoff},
		{"GET / HTTP/1.0\r\nHost: a\r\n\r\n", ErrHandoff},
		{"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", ErrHandoff},
		{"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n", ErrHandoff},
	} {
		if err := ParseRequest([]byte(tc.raw), &r); err != tc.want {
			t.Errorf("%q: %v, want %v", tc.raw, err, tc.want)
		}
	}
}

// FuzzParseRequest: no panic, spans inside the buffer, and a head the fast
// path forwards is one net/http also reads, with the same method, target,
// Host and body length.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Request
		err := ParseRequest(data, &r)
		var bad *Malformed
		if err != nil && err != ErrIncomplete && err != ErrHandoff && !errors.As(err, &bad) {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil {
			return
		}
		for _, s := range []Span{r.Method, r.Target, r.Path, r.Query, r.Host} {
			if s.Start < 0 || s.End > r.HeadLen || s.Start > s.End {
				t.Fatalf("span %v outside the head", s)
			}
		}
		hr, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if herr != nil {
			t.Fatalf("forwardable for the fast path, refused by net/http: %v", herr)
		}
		if hr.Method != string(data[r.Method.Start:r.Method.End]) || hr.RequestURI != string(data[r.Target.Start:r.Target.End]) ||
			hr.Host != string(data[r.Host.Start:r.Host.End]) || hr.ContentLength != max(r.ContentLength, 0) {
			t.Fatalf("net/http reads %s %s host %q length %d; fast path %+v", hr.Method, hr.RequestURI, hr.Host, hr.ContentLength, r)
		}
	})
}

// FuzzChunkScanner: where the scanner says a chunked body ends, net/http's
// chunked reader reads the same body without error.
func FuzzChunkScanner(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), 3)
	f.Add([]byte("3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nNEXT"), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var c ChunkScanner
		split = min(max(split, 0), len(data))
		n1, done, err := c.Scan(data[:split])
		n := n1
		if err == nil && !done {
			var n2 int
			n2, done, err = c.Scan(data[split:])
			n += n2
		}
		if err != nil || !done {
			return
		}
		_, rerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(data[:n])))
		if rerr != nil {
			t.Fatalf("scanner ends a body at %d that net/http cannot read: %v (%s)", n, rerr, strconv.Quote(string(data[:n])))
		}
	})
}

// A path the fast path routes on must be its own normal form; the rest is
// handed to net/http (proxy.NormalizePath's test holds both to the same
// rule, proxy/fastpath_test.go).
func TestPlainPathHandsOffUnnormalised(t *testing.T) {
	for _, p := range []string{"//a", "/a//b", "/./a", "/a/..", "/a/../b", "/...", "/..;x/a", "/.hidden", "/a%2Fb", "/a\\b", "/;", "/a/;x"} {
		if plainPath([]byte(p)) {
			t.Errorf("%q taken as plain", p)
		}
	}
	for _, p := range []string{"/", "/a/b.c/", "/Microsoft-Server-ActiveSync", "/a;b=c/d@e:f", "/so/alice@contoso.com/Mail"} {
		if !plainPath([]byte(p)) {
			t.Errorf("%q not taken as plain", p)
		}
	}
}

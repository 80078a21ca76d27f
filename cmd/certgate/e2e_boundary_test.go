package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file holds the end-to-end tests of issue 16: the request as a
// security boundary (the path routed on is the path forwarded, protocol
// switches only where promised, cheap unauthenticated connections, the
// admin listener, no-directory identities, CL+TE framing, the demo's
// folder).

const bobUsers = defaultUsers + `  - userPrincipalName: bob@contoso.com
    proxyAddresses: ["SMTP:bob@contoso.com"]
    accountEnabled: true
`

// easAndWeb is the SPEC's route shape: an EAS route and a catch-all web
// route, each with its own recording backend.
type easAndWeb struct {
	*env
	eas *recorder
}

func newEASAndWeb(t *testing.T, easHost string) *easAndWeb {
	easBackend := newRecorder(t)
	host := ""
	if easHost != "" {
		host = "    host: " + easHost + "\n"
	}
	e := newEnv(t, envConfig{users: bobUsers, rejectWith: "http", beforeStart: func(e *env) {
		e.writeConfig(envConfig{users: bobUsers, rejectWith: "http", routes: fmt.Sprintf(`  - name: eas
    kind: eas
%s    pathPrefix: /Microsoft-Server-ActiveSync
    autodiscover: true
    backend: %s
  - name: web
    kind: web
    pathPrefix: /
    backend: %s
`, host, easBackend.srv.URL, e.backend.srv.URL)})
	}})
	return &easAndWeb{env: e, eas: easBackend}
}

// easPathSpellings are ways to write /Microsoft-Server-ActiveSync that IIS,
// Exchange's host, or another backend may resolve to it, and the
// normalised path certgate must forward when it accepts the spelling
// ("" when it must refuse it with 400).
var easPathSpellings = []struct{ raw, norm string }{
	{"/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	// The three.
	{"//Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/./Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/x/../Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	// Case and percent-encoding.
	{"/microsoft-server-activesync", "/microsoft-server-activesync"},
	{"/MICROSOFT-SERVER-ACTIVESYNC", "/MICROSOFT-SERVER-ACTIVESYNC"},
	{"/%4Dicrosoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/Microsoft%2DServer%2dActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/%2e/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/x/%2E%2e/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/x/.%2E/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"///Microsoft-Server-ActiveSync//", "/Microsoft-Server-ActiveSync/"},
	{"/x/./../Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/autodiscover/../Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	{"/x/y/../../Microsoft-Server-ActiveSync/.", "/Microsoft-Server-ActiveSync/"},
	// IIS strips trailing dots and spaces; Java servers drop ;params.
	{"/Microsoft-Server-ActiveSync.", "/Microsoft-Server-ActiveSync."},
	{"/Microsoft-Server-ActiveSync%20", "/Microsoft-Server-ActiveSync%20"},
	{"/Microsoft-Server-ActiveSync.%20.", "/Microsoft-Server-ActiveSync.%20."},
	{"/Microsoft-Server-ActiveSync;x=y", "/Microsoft-Server-ActiveSync;x=y"},
	{"/Microsoft-Server-ActiveSync/default.eas", "/Microsoft-Server-ActiveSync/default.eas"},
	{"/Microsoft-Server-ActiveSync#x", "/Microsoft-Server-ActiveSync%23x"},
	{"/x/../Microsoft-Server-ActiveSync\"", "/Microsoft-Server-ActiveSync%22"},
	{"/Microsoft-Server-ActiveSync/%2e%2e/Microsoft-Server-ActiveSync", "/Microsoft-Server-ActiveSync"},
	// Ambiguous: refused.
	{"/..", ""},
	{"/.%2E/Microsoft-Server-ActiveSync", ""},
	{"/x/..;/Microsoft-Server-ActiveSync", ""},
	{"/x/.../Microsoft-Server-ActiveSync", ""},
	{"/x/..%20/Microsoft-Server-ActiveSync", ""},
	{"/x/..%2E/../Microsoft-Server-ActiveSync", ""},
	{"/x%2F..%2FMicrosoft-Server-ActiveSync", ""},
	{"/x%2f..%2fMicrosoft-Server-ActiveSync", ""},
	{"/x%5C..%5CMicrosoft-Server-ActiveSync", ""},
	{`/x\..\Microsoft-Server-ActiveSync`, ""},
	{`/\Microsoft-Server-ActiveSync`, ""},
	{"/Microsoft-Server-ActiveSync%00", ""},
	{"/Microsoft-Server-ActiveSync%2F", ""},
	{"/x/%C0%AE%C0%AE/Microsoft-Server-ActiveSync", ""},
	{"/%C0%AF/Microsoft-Server-ActiveSync", ""},
	{"/x/%E0%80%AE%E0%80%AE/Microsoft-Server-ActiveSync", ""},
	{"/Micro%C5%BFoft-Server-ActiveSync", ""},                 // U+017F, 'S' to IIS
	{"/Micro\u017foft-Server-ActiveSync", ""},                 // the same, raw UTF-8
	{"/M%C4%B1crosoft-Server-ActiveSync", ""},                 // U+0131, 'I' to IIS
	{"/x%EF%BC%8F..%EF%BC%8FMicrosoft-Server-ActiveSync", ""}, // full-width /
	{"/%u004Dicrosoft-Server-ActiveSync", ""},                 // IIS's %u form
	{"/x/..%00/Microsoft-Server-ActiveSync", ""},
}

// TestEASPathSpellingsCannotSkipTheUserCheck: with alice's certificate, a
// request naming bob's mailbox is refused however the EAS path is spelled,
// over HTTP/1.1 (raw bytes, so nothing is cleaned on the way) and HTTP/2
// (a raw :path); one naming alice reaches the EAS backend with exactly the
// normalised path and the query byte for byte, or is refused as ambiguous.
func TestEASPathSpellingsCannotSkipTheUserCheck(t *testing.T) {
	f := newEASAndWeb(t, "")
	alice := f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	const bobQuery = "Cmd=Sync&User=bob@contoso.com&DeviceId=dev1&DeviceType=SmartPhone"
	const aliceQuery = "Cmd=Sync&User=alice&DeviceId=dev1&DeviceType=SmartPhone&X=%2F%2e+"
	for _, proto := range []string{"h1", "h2"} {
		for _, sp := range easPathSpellings {
			t.Run(proto+" "+sp.raw, func(t *testing.T) {
				code := f.send(t, proto, alice, "POST", sp.raw+"?"+bobQuery, nil)
				if code != http.StatusBadRequest && code != http.StatusForbidden && code != -1 {
					t.Errorf("bob's mailbox via %q: status %d, want 400 or 403", sp.raw, code)
				}
				before := len(f.eas.requests())
				code2 := f.send(t, proto, alice, "POST", sp.raw+"?"+aliceQuery, nil)
				t.Logf("bob: %d, alice: %d", code, code2)
				code = code2
				switch {
				case sp.norm == "":
					if code != http.StatusBadRequest && code != -1 {
						t.Errorf("%q: status %d, want 400 (ambiguous)", sp.raw, code)
					}
				case code != http.StatusOK:
					t.Errorf("%q: status %d, want 200", sp.raw, code)
				default:
					reqs := f.eas.requests()
					if len(reqs) != before+1 {
						t.Fatalf("%q: the EAS backend got %d new requests, want 1", sp.raw, len(reqs)-before)
					}
					got := reqs[len(reqs)-1].RequestURI
					if want := sp.norm + "?" + aliceQuery; got != want {
						t.Errorf("%q: the backend got %q, want %q", sp.raw, got, want)
					}
				}
			})
		}
	}
	for _, r := range append(f.eas.requests(), f.backend.requests()...) {
		if strings.Contains(r.URL.RawQuery, "bob") {
			t.Errorf("a request for bob's mailbox reached a backend: %s", r.RequestURI)
		}
	}
	t.Run("absolute-form", func(t *testing.T) {
		got := f.rawExchange(t, alice, "POST https://localhost/x/../Microsoft-Server-ActiveSync?"+bobQuery+" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 403") {
			t.Fatalf("got %q, want 403", got)
		}
	})
}

// TestEASPathViaCurlPathAsIs reproduces the issue with curl --path-as-is
// over HTTP/1.1 and HTTP/2.
func TestEASPathViaCurlPathAsIs(t *testing.T) {
	requireCurl(t)
	f := newEASAndWeb(t, "")
	cert, key := f.writeLeaf("alice", f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	for _, ver := range []string{"--http1.1", "--http2"} {
		for _, p := range []string{"//Microsoft-Server-ActiveSync", "/./Microsoft-Server-ActiveSync", "/x/../Microsoft-Server-ActiveSync"} {
			res := f.curl(cert, key, ver, "--path-as-is", "-X", "POST", f.url(p+"?Cmd=Sync&User=bob@contoso.com&DeviceId=dev1&DeviceType=SmartPhone"))
			if res.code != http.StatusForbidden || !strings.Contains(res.body, "eas_user_mismatch") {
				t.Errorf("curl %s --path-as-is %s: %d %q, want 403 eas_user_mismatch", ver, p, res.code, res.body)
			}
		}
	}
	if n := len(f.backend.requests()) + len(f.eas.requests()); n != 0 {
		t.Fatalf("%d requests for bob's mailbox reached a backend", n)
	}
}

// TestEASPathOnWebRouteIsChecked: the EAS route names one host; the same
// Exchange answers under another name that only the catch-all web route
// serves. The EAS checks follow the path, not the route.
func TestEASPathOnWebRouteIsChecked(t *testing.T) {
	f := newEASAndWeb(t, "mail.contoso.test")
	alice := f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	for _, proto := range []string{"h1", "h2"} {
		for _, p := range []string{"/Microsoft-Server-ActiveSync", "/microsoft-server-activesync./x", "/Microsoft-Server-ActiveSync;a=b", "/autodiscover/AUTODISCOVER.XML."} {
			if code := f.send(t, proto, alice, "POST", p+"?Cmd=Sync&User=bob@contoso.com&DeviceId=dev1&DeviceType=SmartPhone", nil); code != http.StatusForbidden {
				t.Errorf("%s %s on the web route: %d, want 403", proto, p, code)
			}
		}
		if code := f.send(t, proto, alice, "POST", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice@contoso.com&DeviceId=dev1&DeviceType=SmartPhone", nil); code != http.StatusOK {
			t.Errorf("%s alice's own mailbox on the web route: %d, want 200", proto, code)
		}
	}
	for _, r := range f.backend.requests() {
		if strings.Contains(r.URL.RawQuery, "bob") {
			t.Errorf("bob's mailbox reached the web backend: %s", r.RequestURI)
		}
	}
}

// send makes one request over a new connection, HTTP/1.1 with the target
// written as is, or HTTP/2 with target as the :path, and returns the
// status (-1: the server reset the stream or closed the connection).
func (e *env) send(t *testing.T, proto string, leaf *pkigen.Leaf, method, target string, hdr [][2]string) int {
	t.Helper()
	if proto == "h1" {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n", method, target)
		for _, h := range hdr {
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		}
		b.WriteString("\r\n")
		line := e.rawExchange(t, leaf, b.String())
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
			return -1
		}
		code, _ := strconv.Atoi(f[1])
		return code
	}
	res := e.h2Request(t, leaf, method, target, hdr)
	return res.status
}

type h2Result struct {
	status int // -1: stream reset or connection closed before headers
	body   string
	goaway bool // the server sent GOAWAY
	closed bool // the server closed the connection
}

// h2Request sends one HTTP/2 request with raw pseudo-headers (Go's client
// would clean the path) and reads until the stream ends.
func (e *env) h2Request(t *testing.T, leaf *pkigen.Leaf, method, path string, hdr [][2]string) h2Result {
	t.Helper()
	cfg := e.clientTLS(leaf)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	must(t, writeFull(conn, []byte(http2.ClientPreface)))
	fr := http2.NewFramer(conn, conn)
	must(t, fr.WriteSettings())
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	fields := [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}}
	for _, f := range append(fields, hdr...) {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	must(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true}))
	res := h2Result{status: -1}
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			res.status, _ = strconv.Atoi(f.Value)
		}
	})
	var body strings.Builder
	ended := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			res.closed = err == io.EOF || strings.Contains(err.Error(), "reset") || strings.Contains(err.Error(), "closed")
			break
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			if f.StreamID == 1 {
				dec.Write(f.HeaderBlockFragment())
				ended = f.StreamEnded()
			}
		case *http2.DataFrame:
			if f.StreamID == 1 {
				body.Write(f.Data())
				ended = f.StreamEnded()
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return res
			}
		case *http2.GoAwayFrame:
			res.goaway = true
			if f.LastStreamID < 1 {
				return res
			}
		}
		if ended {
			res.body = body.String()
			if leaf != nil {
				return res
			}
			// A client without an admitted certificate: read on, to see
			// the server end the connection after its one answer.
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		}
	}
	res.body = body.String()
	return res
}

// switcher is a backend that switches protocols when asked (echoing the
// Upgrade value), or always when rogue is set, and then records what the
// client writes into the tunnel.
type switcher struct {
	srv      *httptest.Server
	rogue    bool
	mu       sync.Mutex
	headers  []http.Header
	tunneled []string
}

func newSwitcher(t *testing.T, rogue bool) *switcher {
	s := &switcher{rogue: rogue}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.headers = append(s.headers, r.Header.Clone())
		s.mu.Unlock()
		up := r.Header.Get("Upgrade")
		if up == "" && s.rogue {
			up = "h2c"
		}
		if up == "" {
			fmt.Fprintln(w, "plain")
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", up)
		brw.Flush()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := brw.ReadString('\n')
		s.mu.Lock()
		s.tunneled = append(s.tunneled, line)
		s.mu.Unlock()
		fmt.Fprintf(brw, "tunnel got %s", line)
		brw.Flush()
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switcher) seen() ([]http.Header, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.headers...), append([]string(nil), s.tunneled...)
}

// exchange1 writes raw on a new connection and reads one response; then,
// if then is not empty, writes then and returns the first line that
// follows, and whether the server closed the connection after the
// response (checked within five seconds).
func (e *env) exchange1(t *testing.T, leaf *pkigen.Leaf, raw, then string) (resp *http.Response, body, next string, closed bool) {
	t.Helper()
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), e.clientTLS(leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	must(t, writeFull(conn, []byte(raw)))
	rd := bufio.NewReader(conn)
	resp, err = http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	if then != "" {
		writeFull(conn, []byte(then))
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	next, err = rd.ReadString('\n')
	var ne interface{ Timeout() bool }
	closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
	return resp, body, next, closed
}

// TestUpgradeOnlyToWebSocket: h2c and unknown upgrades never reach the
// backend, so no tunnel opens; WebSocket passes on web routes unless the
// route turns it off, never on EAS paths; a backend's unasked 101 is a
// 502 and the client connection is closed.
func TestUpgradeOnlyToWebSocket(t *testing.T) {
	sw := newSwitcher(t, false)
	rogue := newSwitcher(t, true)
	e := newEnv(t, envConfig{rejectWith: "http", beforeStart: func(e *env) {
		e.writeConfig(envConfig{rejectWith: "http", routes: fmt.Sprintf(`  - name: nows
    kind: web
    pathPrefix: /nows/
    websocket: false
    backend: %s
  - name: rogue
    kind: web
    pathPrefix: /rogue/
    backend: %s
  - name: eas
    kind: eas
    pathPrefix: /Microsoft-Server-ActiveSync
    backend: %s
  - name: web
    kind: web
    pathPrefix: /
    backend: %s
`, sw.srv.URL, rogue.srv.URL, sw.srv.URL, sw.srv.URL)})
	}})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	const smuggled = "GET /admin HTTP/1.1\r\nHost: backend\r\nX-Remote-User: admin@contoso.com\r\n\r\n"
	refused := map[string]string{
		"h2c":              "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"h2c settings out": "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
		"unknown":          "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: raw-tcp/1\r\n\r\n",
		"list":             "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n",
		"ws turned off":    "GET /nows/ HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"ws on eas":        "GET /Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=d1&DeviceType=x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"ws on eas path":   "GET //Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=d1&DeviceType=x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	}
	for name, raw := range refused {
		t.Run(name, func(t *testing.T) {
			// The smuggled request must be read as a request of its own
			// (the identity header stripped), never as tunnel bytes.
			resp, body, next, _ := e.exchange1(t, alice, raw, smuggled)
			if resp.StatusCode != 200 || body != "plain\n" || strings.Contains(next, "tunnel") {
				t.Fatalf("got %d %q then %q, want a plain 200 and no tunnel", resp.StatusCode, body, next)
			}
		})
	}
	hs, tunneled := sw.seen()
	if len(tunneled) != 0 {
		t.Fatalf("the backend opened a tunnel: %q", tunneled)
	}
	for _, h := range hs {
		if h.Get("Upgrade") != "" || h.Get("HTTP2-Settings") != "" {
			t.Fatalf("the backend was asked to switch: %v", h)
		}
	}
	t.Run("websocket", func(t *testing.T) {
		resp, _, next, _ := e.exchange1(t, alice, "GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", "hello\n")
		if resp.StatusCode != 101 || next != "tunnel got hello\n" {
			t.Fatalf("a WebSocket upgrade on a web route did not pass: %d %q", resp.StatusCode, next)
		}
	})
	t.Run("CONNECT", func(t *testing.T) {
		for _, target := range []string{"localhost:443", "/"} {
			if code := e.send(t, "h1", alice, "CONNECT", target, nil); code != http.StatusMethodNotAllowed && code != http.StatusBadRequest {
				t.Errorf("CONNECT %s: %d, want 405 or 400", target, code)
			}
		}
	})
	t.Run("h2 upgrade header", func(t *testing.T) {
		res := e.h2Request(t, alice, "GET", "/", [][2]string{{"upgrade", "h2c"}})
		if res.status == 101 || res.status == 200 {
			t.Fatalf("an HTTP/2 request with Upgrade got %d", res.status)
		}
	})
	t.Run("unasked 101", func(t *testing.T) {
		resp, _, next, closed := e.exchange1(t, alice, "GET /rogue/ HTTP/1.1\r\nHost: localhost\r\n\r\n", "")
		if resp.StatusCode != 502 || !closed {
			t.Fatalf("a backend's unasked 101: got %d then %q (closed %v), want 502 and the connection closed", resp.StatusCode, next, closed)
		}
		if _, tun := rogue.seen(); len(tun) != 0 && strings.TrimSpace(tun[0]) != "" {
			t.Fatalf("the client reached the rogue backend's tunnel: %q", tun)
		}
	})
}

// closedWithin reports whether the server closes conn (EOF or reset)
// within d, reading and dropping whatever it sends meanwhile.
func closedWithin(conn net.Conn, d time.Duration) bool {
	conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// TestUnauthenticatedConnectionsAreShort: with rejectWith http, a client
// without a certificate gets one error answer and the connection is closed
// at the header timeout (1 s here, against a 120 s idle timeout), over
// HTTP/1.1 and HTTP/2 alike, even if it only sends the HTTP/2 preface.
func TestUnauthenticatedConnectionsAreShort(t *testing.T) {
	e := newEnv(t, envConfig{rejectWith: "http", extraYAML: "limits:\n  readHeaderTimeout: 1s\n  idleTimeout: 120s\n"})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	dial := func(leaf *pkigen.Leaf, proto string) *tls.Conn {
		cfg := e.clientTLS(leaf)
		cfg.NextProtos = []string{proto}
		c, err := tls.Dial("tcp", e.inst.proxyAddr(), cfg)
		must(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("h2 preface only", func(t *testing.T) {
		c := dial(nil, "h2")
		must(t, writeFull(c, []byte(http2.ClientPreface)))
		must(t, http2.NewFramer(c, c).WriteSettings())
		if !closedWithin(c, 15*time.Second) {
			t.Fatal("a cert-less HTTP/2 connection that sent only the preface was kept past the header timeout")
		}
	})
	t.Run("h2 pings", func(t *testing.T) {
		// Activity does not extend it.
		c := dial(nil, "h2")
		must(t, writeFull(c, []byte(http2.ClientPreface)))
		fr := http2.NewFramer(c, c)
		must(t, fr.WriteSettings())
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; i < 100; i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if fr.WritePing(false, [8]byte{byte(i)}) != nil {
					return
				}
			}
		}()
		if !closedWithin(c, 15*time.Second) {
			t.Fatal("a cert-less HTTP/2 connection sending pings was kept past the header timeout")
		}
	})
	t.Run("h1 silent", func(t *testing.T) {
		c := dial(nil, "http/1.1")
		if !closedWithin(c, 15*time.Second) {
			t.Fatal("a cert-less HTTP/1.1 connection was kept past the header timeout")
		}
	})
	t.Run("h2 one answer then GOAWAY and close", func(t *testing.T) {
		res := e.h2Request(t, nil, "GET", "/", nil)
		if res.status != proxy.StatusCertificateRequired || !strings.Contains(res.body, "no_certificate") || !res.goaway || !res.closed {
			t.Fatalf("got %d %q (GOAWAY %v, closed %v), want 496 no_certificate, then GOAWAY and close", res.status, res.body, res.goaway, res.closed)
		}
	})
	t.Run("h1 one answer then close", func(t *testing.T) {
		resp, body, next, closed := e.exchange1(t, nil, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\nGET /again HTTP/1.1\r\nHost: localhost\r\n\r\n", "")
		if resp.StatusCode != proxy.StatusCertificateRequired || !strings.Contains(body, "no_certificate") || !closed || next != "" {
			t.Fatalf("got %d %q then %q (closed %v)", resp.StatusCode, body, next, closed)
		}
	})
	t.Run("admitted connections keep the idle timeout", func(t *testing.T) {
		c := dial(alice, "h2")
		must(t, writeFull(c, []byte(http2.ClientPreface)))
		must(t, http2.NewFramer(c, c).WriteSettings())
		if closedWithin(c, 3*time.Second) {
			t.Fatal("an admitted HTTP/2 connection was closed at the unauthenticated deadline")
		}
	})
	if n := len(e.backend.requests()); n != 0 {
		t.Fatalf("%d cert-less requests reached the backend", n)
	}
}

// TestUnauthenticatedPerSourceCap: one source address may hold only
// maxUnauthenticatedPerIP connections without an admitted certificate;
// admitted connections do not count, and closing the others frees the
// budget.
func TestUnauthenticatedPerSourceCap(t *testing.T) {
	e := newEnv(t, envConfig{rejectWith: "http", extraYAML: "limits:\n  maxUnauthenticatedPerIP: 4\n"})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	client := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: e.clientTLS(alice), DisableKeepAlives: false}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client) error {
		resp, err := c.Get(e.url("/"))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Admitted connections, held open, are not counted.
	for i := 0; i < 6; i++ {
		must(t, get(client()))
	}
	// Four silent TCP connections fill the budget...
	var silent []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", e.inst.proxyAddr())
		must(t, err)
		silent = append(silent, c)
	}
	// ...so the next connection is closed before its handshake, whatever
	// certificate it would have shown.
	c, err := tls.Dial("tcp", e.inst.proxyAddr(), e.clientTLS(alice))
	if err == nil {
		_, err = c.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"))
		if err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	if err == nil {
		t.Fatal("a fifth unauthenticated connection from one address was served")
	}
	if got := e.gathered("certgate_tls_handshakes_total", map[string]string{"result": "capped"}); got < 1 {
		t.Fatalf("capped connections counted %v, want at least 1", got)
	}
	for _, s := range silent {
		s.Close()
	}
	// The budget comes back as the silent connections go.
	var last error
	for i := 0; i < 50; i++ {
		if last = get(client()); last == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("after the silent connections closed: %v", last)
	}
}

// adminDo sends one request to the admin listener with the given Host and
// headers and returns the status.
func (e *env) adminDo(t *testing.T, method, path, host string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+e.inst.adminAddr()+path, nil)
	must(t, err)
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminListenerRefusesRebindingAndCrossSite: a DNS-rebinding page
// (Host: its own name) cannot read /status.json or POST, a cross-site POST
// is refused, /metrics stays scrapeable under any Host, and a configured
// token guards the status and control endpoints.
func TestAdminListenerRefusesRebindingAndCrossSite(t *testing.T) {
	e := newEnv(t, envConfig{extraYAML: ""})
	own := e.inst.adminAddr()
	_, port, _ := net.SplitHostPort(own)
	cases := []struct {
		method, path, host string
		hdr                map[string]string
		want               int
	}{
		{"GET", "/status.json", "attacker.example:" + port, nil, http.StatusMisdirectedRequest},
		{"GET", "/status", "attacker.example", nil, http.StatusMisdirectedRequest},
		{"GET", "/readyz", "attacker.example:" + port, nil, http.StatusMisdirectedRequest},
		{"POST", "/crl/refresh", "attacker.example:" + port, nil, http.StatusMisdirectedRequest},
		{"GET", "/metrics", "attacker.example:" + port, nil, http.StatusOK},
		{"GET", "/status.json", "", nil, http.StatusOK},
		{"GET", "/status.json", "localhost:" + port, nil, http.StatusOK},
		{"POST", "/crl/refresh", "", map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"POST", "/crl/refresh", "", map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
		{"POST", "/crl/refresh", "", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"POST", "/crl/refresh", "", nil, http.StatusOK},
		{"POST", "/crl/refresh", "", map[string]string{"Origin": "http://" + own, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	}
	for _, c := range cases {
		if got := e.adminDo(t, c.method, c.path, c.host, c.hdr); got != c.want {
			t.Errorf("%s %s Host %q %v: %d, want %d", c.method, c.path, c.host, c.hdr, got, c.want)
		}
	}

	t.Run("token", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.WriteFile(filepath.Join(dir, "admin.token"), []byte("s3cret-admin-token-0123456789\n"), 0o600))
		e := newEnv(t, envConfig{extraYAML: ""})
		// The admin section is generated; add the token and the extra
		// allowed host to it and restart from the same folder.
		cfg, err := os.ReadFile(filepath.Join(e.dir, "certgate.yaml"))
		must(t, err)
		text := strings.Replace(string(cfg), "admin:\n  listen: \"127.0.0.1:0\"\n",
			"admin:\n  listen: \"127.0.0.1:0\"\n  tokenFile: "+filepath.Join(dir, "admin.token")+"\n  allowedHosts: [certgate-admin.internal]\n", 1)
		must(t, os.WriteFile(filepath.Join(e.dir, "certgate.yaml"), []byte(text), 0o644))
		e.inst.close()
		inst, err := startFromConfig(t.Context(), filepath.Join(e.dir, "certgate.yaml"), e.logs, instanceOptions{})
		must(t, err)
		t.Cleanup(inst.close)
		e.inst = inst
		bearer := map[string]string{"Authorization": "Bearer s3cret-admin-token-0123456789"}
		for _, c := range []struct {
			method, path, host string
			hdr                map[string]string
			want               int
		}{
			{"GET", "/status.json", "", nil, http.StatusUnauthorized},
			{"GET", "/status.json", "", map[string]string{"Authorization": "Bearer wrong"}, http.StatusUnauthorized},
			{"POST", "/crl/refresh", "", nil, http.StatusUnauthorized},
			{"GET", "/status.json", "", bearer, http.StatusOK},
			{"GET", "/status.json", "certgate-admin.internal", bearer, http.StatusOK},
			{"POST", "/crl/refresh", "", bearer, http.StatusOK},
			{"GET", "/metrics", "", nil, http.StatusOK},
			{"GET", "/healthz", "", nil, http.StatusOK},
			{"GET", "/readyz", "", nil, http.StatusOK},
		} {
			if got := e.adminDo(t, c.method, c.path, c.host, c.hdr); got != c.want {
				t.Errorf("%s %s Host %q %v: %d, want %d", c.method, c.path, c.host, c.hdr, got, c.want)
			}
		}
	})
}

// TestNoDirectoryIdentityMustBeCleanAndSingle: with no directory the
// certificate value is the identity; one with CR/LF is identity_unmapped
// and one with two different UPNs identity_ambiguous, decided before any
// backend is involved, over HTTP/1.1 and HTTP/2.
func TestNoDirectoryIdentityMustBeCleanAndSingle(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{rejectWith: "http", identity: `  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: userPrincipalName}
`})
	cases := []struct {
		name   string
		leaf   *pkigen.Leaf
		reason string
	}{
		{"crlf", e.inter.Leaf(t, "Mallory", pkigen.UPN("alice@contoso.com\r\nX-Remote-User: admin@contoso.com")), "identity_unmapped"},
		{"nul", e.inter.Leaf(t, "Mallory", pkigen.UPN("alice@contoso.com\x00admin")), "identity_unmapped"},
		{"tab", e.inter.Leaf(t, "Mallory", pkigen.UPN("alice@contoso.com\tadmin")), "identity_unmapped"},
		{"c1 control", e.inter.Leaf(t, "Mallory", pkigen.UPN("alice@contoso.com\u0085admin")), "identity_unmapped"},
		{"two upns", e.inter.Leaf(t, "Two", pkigen.UPN("alice@contoso.com", "bob@contoso.com")), "identity_ambiguous"},
		{"two emails", e.inter.Leaf(t, "Two", pkigen.Email("alice@contoso.com", "bob@contoso.com")), "identity_ambiguous"},
	}
	for _, c := range cases {
		cert, key := e.writeLeaf(c.name, c.leaf)
		for _, ver := range []string{"--http1.1", "--http2"} {
			res := e.curl(cert, key, ver)
			if res.code != http.StatusForbidden || !strings.Contains(res.body, c.reason) {
				t.Errorf("%s %s: %d %q, want 403 %s", c.name, ver, res.code, res.body, c.reason)
			}
		}
	}
	// The same UPN twice is one identity; a UPN and a different email
	// are two bindings, the first of which wins.
	for name, leaf := range map[string]*pkigen.Leaf{
		"same upn twice": e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com", "ALICE@contoso.com")),
		"upn and email":  e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"), pkigen.Email("a.smith@contoso.com")),
	} {
		cert, key := e.writeLeaf(strings.ReplaceAll(name, " ", "-"), leaf)
		if res := e.curl(cert, key); res.code != 200 || !strings.Contains(res.body, "hello alice@contoso.com") {
			t.Errorf("%s: %d %q, want 200 as alice", name, res.code, res.body)
		}
	}
	if n := len(e.backend.requests()); n != 2 {
		t.Fatalf("backend saw %d requests, want 2", n)
	}
}

// TestCLAndTEClosesTheConnection: RFC 9112 §6.3: after a request with both
// Content-Length and Transfer-Encoding the connection is closed, so a
// pipelined request behind it is never read.
func TestCLAndTEClosesTheConnection(t *testing.T) {
	e := newEnv(t, envConfig{})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	raw := "POST /first HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
		"GET /pipelined HTTP/1.1\r\nHost: localhost\r\n\r\n"
	resp, _, next, closed := e.exchange1(t, alice, raw, "")
	if !closed || next != "" {
		t.Fatalf("after a CL+TE request: status %d, then %q (closed %v); want the connection closed", resp.StatusCode, next, closed)
	}
	if resp.Header.Get("Connection") != "close" && !resp.Close {
		t.Errorf("the answer does not say Connection: close")
	}
	for _, r := range e.backend.requests() {
		if r.URL.Path == "/pipelined" {
			t.Fatal("the request pipelined after CL+TE was served")
		}
	}
	// A request with Content-Length alone keeps the connection.
	_, _, next, closed = e.exchange1(t, alice, "POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.1\r\nHost: localhost\r\n\r\n", "")
	if closed || !strings.HasPrefix(next, "HTTP/1.1 200") {
		t.Fatalf("a plain keep-alive pipeline was cut: %q (closed %v)", next, closed)
	}
}

// TestPathOverrideHeadersRemoved: IIS URL Rewrite (and ASP.NET) serve the
// path in X-Original-URL instead of the request line's, so a client
// sending one to the web route could reach bob's mailbox unchecked. Such
// headers never reach a backend, in any case or underscore spelling.
func TestPathOverrideHeadersRemoved(t *testing.T) {
	f := newEASAndWeb(t, "")
	alice := f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	const target = "/Microsoft-Server-ActiveSync?Cmd=Sync&User=bob@contoso.com&DeviceId=dev1&DeviceType=SmartPhone"
	for _, proto := range []string{"h1", "h2"} {
		for _, h := range []string{"X-Original-URL", "x-rewrite-url", "X_Original_URL", "X-Forwarded-Uri", "X-Forwarded-Prefix", "X-Original-URI"} {
			name := h
			if proto == "h2" {
				name = strings.ToLower(h)
			}
			if code := f.send(t, proto, alice, "POST", "/owa/", [][2]string{{name, target}}); code != http.StatusOK {
				t.Fatalf("%s %s: %d", proto, h, code)
			}
		}
	}
	for _, r := range f.backend.requests() {
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, ","), "bob") {
				t.Errorf("the web backend got %s: %q", k, v)
			}
		}
	}
}

// TestEASUserParameterSpellings: ASP.NET reads query names with %-decoding
// (its own %uXXXX form included) and Unicode case mapping, so each of
// these names is a User to Exchange and must be checked (or refused) here.
func TestEASUserParameterSpellings(t *testing.T) {
	f := newEASAndWeb(t, "")
	alice := f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	for _, proto := range []string{"h1", "h2"} {
		for _, name := range []string{"User", "user", "USER", "Us%65r", "%55ser", "%u0055ser", "u%C5%BFer", "U%C5%BFER", "User%00", "User&User"} {
			q := "Cmd=Sync&" + name + "=bob@contoso.com&DeviceId=dev1&DeviceType=SmartPhone"
			if code := f.send(t, proto, alice, "POST", "/Microsoft-Server-ActiveSync?"+q, nil); code != http.StatusForbidden && code != -1 && code != http.StatusBadRequest {
				t.Errorf("%s %s: %d, want 403", proto, q, code)
			}
		}
	}
	for _, r := range append(f.eas.requests(), f.backend.requests()...) {
		t.Errorf("a request reached a backend: %s", r.RequestURI)
	}
}

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/web/webapp"
	"github.com/certgate/certgate/internal/pkigen"
)

// This file drives web routes end to end: Go clients, raw TLS and curl
// talk through a real certgate to the example web app and to backends
// that are down, slow, on TLS or on a Unix socket.

// webBackend is the example web app (or another handler) as a backend,
// counting the connections certgate opens to it.
type webBackend struct {
	srv  *httptest.Server
	logs *syncBuffer
	// feeds hands the test each /events stream's own feed once the stream
	// has sent its hello. One channel shared by every stream would let a
	// stream the client already left, whose backend handler certgate has
	// not yet cancelled, take an event meant for the next one.
	feeds chan chan<- string
	conns atomic.Int64

	mu   sync.Mutex
	reqs []*http.Request
}

// startWebBackend serves h, or the example web app when h is nil; tlsCfg
// makes it an HTTPS (and HTTP/2) backend.
func startWebBackend(t *testing.T, h http.Handler, tlsCfg *tls.Config) *webBackend {
	t.Helper()
	b := &webBackend{logs: &syncBuffer{}, feeds: make(chan chan<- string)}
	if h == nil {
		h = webapp.Handler(slog.New(slog.NewTextHandler(b.logs, nil)), webapp.Options{
			Events: func(ctx context.Context) <-chan string {
				feed := make(chan string)
				select {
				case b.feeds <- feed:
				case <-ctx.Done():
				}
				return feed
			},
		})
	}
	record := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reqs = append(b.reqs, r.Clone(context.Background()))
		b.mu.Unlock()
		record.ServeHTTP(w, r)
	})
	b.srv = httptest.NewUnstartedServer(h)
	// The refused TLS handshakes of TestWebHTTPSBackend are expected.
	b.srv.Config.ErrorLog = log.New(b.logs, "", 0)
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	if tlsCfg != nil {
		b.srv.TLS = tlsCfg
		b.srv.EnableHTTP2 = true
		b.srv.StartTLS()
	} else {
		b.srv.Start()
	}
	t.Cleanup(b.srv.Close)
	return b
}

func (b *webBackend) requests() []*http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*http.Request(nil), b.reqs...)
}

func webRoute(name, prefix, backend, extra string) string {
	return fmt.Sprintf("  - name: %s\n    kind: web\n    pathPrefix: %s\n    backend: %s\n%s", name, prefix, backend, extra)
}

func getBody(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return resp, readAllClose(t, resp)
}

func TestWebHTTP2AndHTTP1(t *testing.T) {
	app := startWebBackend(t, nil, nil)
	e := newEnv(t, envConfig{routes: webRoute("web", "/", app.srv.URL, "")})
	alice := aliceLeaf(t, e)
	for _, h2 := range []bool{true, false} {
		resp, body := getBody(t, e.mtlsClient(alice, h2), e.url("/"))
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != wantMajor || !strings.Contains(body, `<h1 id="hello">Hello, alice@contoso.com</h1>`) {
			t.Errorf("h2=%v: %d %s\n%s", h2, resp.StatusCode, resp.Proto, body)
		}
	}
	requireCurl(t)
	cert, key := e.writeLeaf("alice", alice)
	for _, v := range []string{"--http2", "--http1.1"} {
		if res := e.curl(cert, key, v, e.url("/whoami")); res.code != 200 || !strings.Contains(res.body, `"user":"alice@contoso.com"`) {
			t.Errorf("curl %s: %d %q %s", v, res.code, res.body, res.stderr)
		}
	}
}

// TestWebMisdirectedOnReusedHTTP2Connection: the server certificate covers
// localhost and 127.0.0.1, so an HTTP/2 client may send a request for
// either name on one connection. certgate answers 421 when :authority is
// not the name the TLS session was set up (and the client checked) for.
func TestWebMisdirectedOnReusedHTTP2Connection(t *testing.T) {
	e := newEnv(t, envConfig{})
	c := e.mtlsClient(aliceLeaf(t, e), true)
	port := e.inst.proxyAddr()[strings.LastIndex(e.inst.proxyAddr(), ":")+1:]
	send := func(host string) (*http.Response, string, bool) {
		var reused bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("/"), nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, readAllClose(t, resp), reused
	}
	if resp, _, _ := send("localhost:" + port); resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("first request: %d %s", resp.StatusCode, resp.Proto)
	}
	resp, body, reused := send("127.0.0.1:" + port)
	if !reused || resp.ProtoMajor != 2 {
		t.Fatalf("the second request did not reuse the HTTP/2 connection (reused %v, %s)", reused, resp.Proto)
	}
	if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "misdirected") {
		t.Errorf("other :authority on the connection: %d %q", resp.StatusCode, body)
	}
	// The connection stays good for its own name.
	if resp, _, reused := send("localhost:" + port); resp.StatusCode != 200 || !reused {
		t.Errorf("after the 421: %d, reused %v", resp.StatusCode, reused)
	}
	if n := len(e.backend.requests()); n != 2 {
		t.Errorf("backend got %d requests, want 2 (the misdirected one never)", n)
	}
}

// wsUpgrade opens a WebSocket through certgate over a raw mTLS connection.
func wsUpgrade(t *testing.T, e *env, leaf *pkigen.Leaf, origin string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), e.mtlsConfig(leaf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	req := "GET /ws HTTP/1.1\r\nHost: " + e.hostHeader() + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\nOrigin: " + origin + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return conn, br, resp
}

func TestWebSocketThroughCertgate(t *testing.T) {
	app := startWebBackend(t, nil, nil)
	e := newEnv(t, envConfig{routes: webRoute("web", "/", app.srv.URL, "")})
	alice := aliceLeaf(t, e)
	conn, br, resp := wsUpgrade(t, e, alice, "https://"+e.hostHeader())
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != webapp.AcceptKey("dGhlIHNhbXBsZSBub25jZQ==") {
		t.Fatalf("upgrade: %d %v", resp.StatusCode, resp.Header)
	}
	mask := []byte{9, 8, 7, 6}
	for _, m := range []struct {
		op   byte
		p    string
		want byte
	}{
		{webapp.OpText, "hello through certgate", webapp.OpText},
		{webapp.OpPing, "ping", webapp.OpPong},
		{webapp.OpBinary, strings.Repeat("\x00\x01", 30000), webapp.OpBinary},
	} {
		if err := webapp.WriteFrame(conn, m.op, []byte(m.p), mask); err != nil {
			t.Fatal(err)
		}
		f, err := webapp.ReadFrame(br, false)
		if err != nil || f.Op != m.want || string(f.Payload) != m.p {
			t.Fatalf("sent op %d (%d bytes), got op %d (%d bytes), %v", m.op, len(m.p), f.Op, len(f.Payload), err)
		}
	}
	if err := webapp.WriteFrame(conn, webapp.OpClose, webapp.CloseFrame(webapp.CloseNormal, ""), mask); err != nil {
		t.Fatal(err)
	}
	if f, err := webapp.ReadFrame(br, false); err != nil || f.Op != webapp.OpClose || binary.BigEndian.Uint16(f.Payload) != webapp.CloseNormal {
		t.Fatalf("close: %+v %v", f, err)
	}
	if !strings.Contains(app.logs.String(), `msg="websocket open" identity=`+aliceUPN) {
		t.Errorf("the app did not see alice on the WebSocket:\n%s", app.logs.String())
	}
	// Another site's page cannot use the browser's certificate for it.
	if _, _, resp := wsUpgrade(t, e, alice, "https://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin upgrade: %d", resp.StatusCode)
	}
}

// TestWebServerSentEventsStream proves each event reaches the client while
// the backend still holds the stream open: nothing is buffered.
func TestWebServerSentEventsStream(t *testing.T) {
	app := startWebBackend(t, nil, nil)
	e := newEnv(t, envConfig{routes: webRoute("web", "/", app.srv.URL, "")})
	alice := aliceLeaf(t, e)
	for _, h2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("/events"), nil)
			c := e.mtlsClient(alice, h2)
			c.Timeout = 0 // the context bounds it; a client timeout would cut the stream
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			step := "hello"
			next := func() string {
				var ev strings.Builder
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("stream ended awaiting %s: %v (so far %q)", step, err, ev.String())
					}
					if line == "\n" {
						return ev.String()
					}
					ev.WriteString(line)
				}
			}
			if ev := next(); ev != "event: hello\ndata: alice@contoso.com\n" {
				t.Fatalf("first event %q", ev)
			}
			// This stream's own feed: the previous subtest's stream may
			// still be open at the backend (its cancellation travels
			// through certgate asynchronously).
			var feed chan<- string
			select {
			case feed = <-app.feeds:
			case <-ctx.Done():
				t.Fatal("the backend never asked for events")
			}
			for i := range 3 {
				v := "tick " + strconv.Itoa(i)
				step = v
				select {
				case feed <- v:
				case <-ctx.Done():
					t.Fatal("the backend stopped taking events")
				}
				if ev := next(); ev != "data: "+v+"\n" {
					t.Fatalf("event %q, want %q", ev, v)
				}
			}
		})
	}
}

// TestWebStreamAfterSlowStart: a stream whose backend answers only after
// the fast path has begun watching the client (quickResponse, 200 ms),
// and then sends its head alone and each event later, still has the head
// and every event reach the client as they are written, on both HTTP/1.1
// paths.
func TestWebStreamAfterSlowStart(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fastPath=%v", fast), func(t *testing.T) {
			events := make(chan string)
			be := startWebBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Not synchronisation: the answer must come well after
				// the fast path's quick-response window, which opened
				// when it sent this request.
				select {
				case <-time.After(500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				rc := http.NewResponseController(w)
				if rc.Flush() != nil {
					return
				}
				for {
					select {
					case v := <-events:
						fmt.Fprintf(w, "data: %s\n\n", v)
						if rc.Flush() != nil {
							return
						}
					case <-r.Context().Done():
						return
					}
				}
			}), nil)
			e := newEnv(t, envConfig{
				routes:    webRoute("web", "/", be.srv.URL, ""),
				extraYAML: fmt.Sprintf("http1:\n  fastPath: %v\n", fast),
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url("/stream"), nil)
			c := e.mtlsClient(aliceLeaf(t, e), false)
			c.Timeout = 0
			resp, err := c.Do(req) // returns once the head alone is through
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
				t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
			}
			br := bufio.NewReader(resp.Body)
			for i := range 3 {
				v := "event " + strconv.Itoa(i)
				select {
				case events <- v:
				case <-ctx.Done():
					t.Fatal("the backend stopped taking events")
				}
				var got strings.Builder
				for !strings.HasSuffix(got.String(), "\n\n") {
					line, err := br.ReadString('\n')
					if err != nil {
						t.Fatalf("stream ended awaiting %s: %v (so far %q)", v, err, got.String())
					}
					got.WriteString(line)
				}
				if got.String() != "data: "+v+"\n\n" {
					t.Fatalf("got %q, want %q", got.String(), v)
				}
			}
		})
	}
}

// backendPKI is a separate CA for backend server certificates.
func backendPKI(t *testing.T, dir string, names ...string) (caFile string, cfg *tls.Config) {
	t.Helper()
	root := pkigen.Root(t, "Backend Root "+names[0])
	srv := root.Server(t, names)
	caFile = filepath.Join(dir, "backend-"+names[0]+"-root.pem")
	must(t, pkigen.WriteCert(caFile, root.Cert))
	cert := tls.Certificate{Certificate: [][]byte{srv.Cert.Raw}, PrivateKey: srv.Key, Leaf: srv.Cert}
	return caFile, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
}

// TestWebHTTPSBackend: an https backend is checked against backendCA under
// backendServerName, and a backend that fails that check is never sent
// the request (502, fail closed).
func TestWebHTTPSBackend(t *testing.T) {
	dir := t.TempDir()
	caFile, tlsCfg := backendPKI(t, dir, "app.internal")
	otherCA, _ := backendPKI(t, dir, "other.internal")
	seenTLS := make(chan *tls.ConnectionState, 16)
	be := startWebBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenTLS <- r.TLS
		fmt.Fprintf(w, "%s for %s", r.Proto, r.Header.Get("X-Remote-User"))
	}), tlsCfg)
	routes := webRoute("good", "/good/", be.srv.URL, "    backendCA: "+caFile+"\n    backendServerName: app.internal\n") +
		webRoute("wrongca", "/wrongca/", be.srv.URL, "    backendCA: "+otherCA+"\n    backendServerName: app.internal\n") +
		webRoute("noname", "/noname/", be.srv.URL, "    backendCA: "+caFile+"\n") +
		webRoute("systemroots", "/systemroots/", be.srv.URL, "    backendServerName: app.internal\n")
	e := newEnv(t, envConfig{routes: routes})
	alice := aliceLeaf(t, e)

	const n = 10
	for i := range n {
		// A new client connection each time: only the backend pool is shared.
		c := e.mtlsClient(alice, i%2 == 0)
		resp, body := getBody(t, c, e.url("/good/x"))
		if resp.StatusCode != 200 || body != "HTTP/2.0 for alice@contoso.com" {
			t.Fatalf("good: %d %q", resp.StatusCode, body)
		}
		c.Transport.(*http.Transport).CloseIdleConnections()
		if cs := <-seenTLS; cs == nil || cs.ServerName != "app.internal" {
			t.Errorf("backend TLS state %+v", cs)
		}
	}
	if got := be.conns.Load(); got != 1 {
		t.Errorf("certgate opened %d connections to the HTTP/2 backend for %d requests, want 1", got, n)
	}
	c := e.mtlsClient(alice, false)
	for _, path := range []string{"/wrongca/x", "/noname/x", "/systemroots/x"} {
		resp, body := getBody(t, c, e.url(path))
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "backend_unavailable") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	if got := len(be.requests()); got != n {
		t.Errorf("backend handled %d requests, want %d: an unverified backend got one", got, n)
	}
	if !strings.Contains(e.logs.String(), "certificate signed by unknown authority") {
		t.Errorf("the log does not say why the backend was refused:\n%s", e.logs.String())
	}
}

// TestWebUnixSocketBackend is the sidecar case: the app listens on a Unix
// socket next to the config. Before the app is up the route answers 502.
func TestWebUnixSocketBackend(t *testing.T) {
	e := newEnv(t, envConfig{routes: webRoute("web", "/", "unix:web.sock", "")})
	alice := aliceLeaf(t, e)
	c := e.mtlsClient(alice, true)
	if resp, body := getBody(t, c, e.url("/")); resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "backend_unavailable") {
		t.Fatalf("no app yet: %d %q", resp.StatusCode, body)
	}
	ln, err := net.Listen("unix", filepath.Join(e.dir, "web.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: webapp.Handler(nil, webapp.Options{}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	resp, body := getBody(t, c, e.url("/"))
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello, alice@contoso.com") {
		t.Errorf("over the socket: %d %q", resp.StatusCode, body)
	}
}

// TestWebBackendPooling: certgate keeps backend connections for the next
// client instead of dialling per request.
func TestWebBackendPooling(t *testing.T) {
	be := startWebBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "pooled")
	}), nil)
	e := newEnv(t, envConfig{routes: webRoute("web", "/", be.srv.URL, "")})
	alice := aliceLeaf(t, e)
	const n = 10
	for range n {
		c := e.mtlsClient(alice, false)
		if resp, body := getBody(t, c, e.url("/")); resp.StatusCode != 200 || body != "pooled" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
	// A client can read the whole answer just before certgate hands the
	// backend connection back to its pool, so the next request may dial
	// once more; without pooling it would be one connection per request.
	if got := be.conns.Load(); got > 3 {
		t.Errorf("%d backend connections for %d requests on %d client connections", got, n, n)
	}
	t.Logf("%d backend connections for %d requests", be.conns.Load(), n)
}

// TestWebBackendDownAndSlow: a backend that is not there is 502, one that
// does not answer within the route's timeout is 504, each with the reason,
// and neither hangs the client.
func TestWebBackendDownAndSlow(t *testing.T) {
	requireCurl(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	slow := startWebBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), nil)
	t.Cleanup(func() { close(release) })
	routes := webRoute("down", "/down/", down, "") + webRoute("slow", "/slow/", slow.srv.URL, "    timeout: 1s\n")
	e := newEnv(t, envConfig{routes: routes})
	cert, key := e.writeLeaf("alice", aliceLeaf(t, e))

	if res := e.curl(cert, key, e.url("/down/")); res.code != http.StatusBadGateway || !strings.Contains(res.body, "backend_unavailable") {
		t.Errorf("down: %d %q %s", res.code, res.body, res.stderr)
	}
	start := time.Now()
	res := e.curl(cert, key, e.url("/slow/"))
	if res.code != http.StatusGatewayTimeout || !strings.Contains(res.body, "backend_timeout") {
		t.Errorf("slow: %d %q %s", res.code, res.body, res.stderr)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("504 after %v, before the route's 1s timeout", took)
	}
	select {
	case <-arrived:
	default:
		t.Error("the slow backend never got the request")
	}
	for _, want := range []string{`"route":"down"`, `"route":"slow"`, `"status":502`, `"status":504`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
}

// TestWebExpectContinueBackendRefuses: Expect: 100-continue goes through to
// the backend, so a backend that refuses an upload from its headers alone
// spares the client sending the body; one that wants it gets it.
func TestWebExpectContinueBackendRefuses(t *testing.T) {
	be := startWebBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 1000 {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "read %d", len(b))
	}), nil)
	e := newEnv(t, envConfig{routes: webRoute("web", "/", be.srv.URL, "")})
	alice := aliceLeaf(t, e)
	post := func(n int) (*tls.Conn, *bufio.Reader) {
		conn, err := tls.Dial("tcp", e.inst.proxyAddr(), e.mtlsConfig(alice))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", e.hostHeader(), n)
		return conn, bufio.NewReader(conn)
	}

	_, br := post(5000)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAllClose(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("large upload: %d %q (a 100 here asked for a body the backend refuses)", resp.StatusCode, body)
	}

	conn, br := post(10)
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("small upload: first line %q, %v", line, err)
	}
	_, _ = br.ReadString('\n')
	_, _ = io.WriteString(conn, "0123456789")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAllClose(t, resp); resp.StatusCode != 200 || body != "read 10" {
		t.Errorf("small upload: %d %q", resp.StatusCode, body)
	}
}

const identityForward = `  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: proxyAddresses}
  directory:
    file: users.yaml
  forwardClientCert: %s
`

// spoofedCertHeaders are forwarded-certificate headers a client might send
// to impersonate someone; certgate drops them in every mode.
var spoofedCertHeaders = http.Header{
	"Client-Cert":             {":TUFMTE9SWQ==:"},
	"Client_Cert":             {":TUFMTE9SWQ==:"},
	"Client-Cert-Chain":       {":TUFMTE9SWQ==:"},
	"X-Forwarded-Client-Cert": {"By=spiffe://evil;Hash=00;UPN=mallory@contoso.com"},
	"x_forwarded_client_cert": {"Hash=00"},
}

func sendSpoofed(t *testing.T, e *env, leaf *pkigen.Leaf) http.Header {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url("/"), nil)
	for k, v := range spoofedCertHeaders {
		req.Header[k] = v
	}
	before := len(e.backend.requests())
	resp, err := e.mtlsClient(leaf, true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAllClose(t, resp)
	reqs := e.backend.requests()
	if resp.StatusCode != 200 || len(reqs) != before+1 {
		t.Fatalf("status %d, backend got %d requests", resp.StatusCode, len(reqs)-before)
	}
	h := reqs[len(reqs)-1].Header
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, "TUFMTE9SWQ") || strings.Contains(v, "evil") || strings.Contains(v, "mallory") || strings.Contains(v, "Hash=00") {
				t.Errorf("a client-sent copy reached the backend: %s: %s", k, v)
			}
		}
		if strings.Contains(k, "_") {
			t.Errorf("underscore header %s reached the backend", k)
		}
	}
	return h
}

func TestForwardClientCert(t *testing.T) {
	t.Run("rfc9440", func(t *testing.T) {
		e := newEnv(t, envConfig{identity: fmt.Sprintf(identityForward, "rfc9440")})
		alice := aliceLeaf(t, e)
		h := sendSpoofed(t, e, alice)
		cc := h.Values("Client-Cert")
		if len(cc) != 1 {
			t.Fatalf("Client-Cert %q", cc)
		}
		if der := decodeByteSequence(t, cc[0]); !equalDER(der, alice.Cert.Raw) {
			t.Error("Client-Cert does not decode to the client's certificate")
		}
		chain := h.Values("Client-Cert-Chain")
		if len(chain) != 1 {
			t.Fatalf("Client-Cert-Chain %q", chain)
		}
		// RFC 9440: the issuers in TLS order, without the leaf; the root may
		// follow.
		items := strings.Split(chain[0], ",")
		want := [][]byte{e.inter.Cert.Raw, e.root.Cert.Raw}
		if len(items) < 1 || len(items) > 2 {
			t.Fatalf("Client-Cert-Chain has %d items", len(items))
		}
		for i, it := range items {
			if !equalDER(decodeByteSequence(t, strings.TrimSpace(it)), want[i]) {
				t.Errorf("Client-Cert-Chain item %d is not the %s", i, []string{"intermediate", "root"}[i])
			}
		}
		if h.Get("X-Forwarded-Client-Cert") != "" {
			t.Error("XFCC sent in rfc9440 mode")
		}
		ci, err := webapp.ForwardedCert(h)
		if err != nil || ci.Subject != alice.Cert.Subject.String() {
			t.Errorf("the example app reads %+v, %v", ci, err)
		}
	})
	t.Run("xfcc", func(t *testing.T) {
		e := newEnv(t, envConfig{identity: fmt.Sprintf(identityForward, "xfcc")})
		alice := aliceLeaf(t, e)
		h := sendSpoofed(t, e, alice)
		x := h.Values("X-Forwarded-Client-Cert")
		if len(x) != 1 {
			t.Fatalf("X-Forwarded-Client-Cert %q: want one header", x)
		}
		sum := sha256.Sum256(alice.Cert.Raw)
		for _, want := range []string{"Hash=" + hex.EncodeToString(sum[:]), "UPN=alice@contoso.com", "Email=alice@contoso.com"} {
			if !strings.Contains(x[0], want) {
				t.Errorf("XFCC lacks %s: %s", want, x[0])
			}
		}
		ci, err := webapp.ForwardedCert(h)
		if err != nil || ci.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("Cert decodes to %+v, %v", ci, err)
		}
		// Chain is the URL-encoded PEM of the leaf and its issuers.
		_, rest, _ := strings.Cut(x[0], `Chain="`)
		enc, _, _ := strings.Cut(rest, `"`)
		p, err := url.PathUnescape(enc)
		if err != nil {
			t.Fatal(err)
		}
		var got [][]byte
		for b, r := pem.Decode([]byte(p)); b != nil; b, r = pem.Decode(r) {
			got = append(got, b.Bytes)
		}
		if len(got) < 2 || !equalDER(got[0], alice.Cert.Raw) || !equalDER(got[1], e.inter.Cert.Raw) {
			t.Errorf("Chain holds %d certificates, not leaf then intermediate", len(got))
		}
		if h.Get("Client-Cert") != "" {
			t.Error("Client-Cert sent in xfcc mode")
		}
	})
	t.Run("none", func(t *testing.T) {
		e := newEnv(t, envConfig{})
		h := sendSpoofed(t, e, aliceLeaf(t, e))
		if h.Get("Client-Cert") != "" || h.Get("X-Forwarded-Client-Cert") != "" {
			t.Errorf("a certificate header without forwardClientCert: %v", h)
		}
	})
}

func decodeByteSequence(t *testing.T, v string) []byte {
	t.Helper()
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		t.Fatalf("%q is not an RFC 8941 byte sequence", v)
	}
	b, err := base64.StdEncoding.DecodeString(v[1 : len(v)-1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func equalDER(a, b []byte) bool {
	ca, err1 := x509.ParseCertificate(a)
	cb, err2 := x509.ParseCertificate(b)
	return err1 == nil && err2 == nil && ca.Equal(cb)
}

package eas_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/proxy/eas"
)

const versions = "2.5,12.0,12.1,14.0,14.1,16.0,16.1"

// rawGet sends a request on a plain TCP connection and returns the
// response bytes exactly as the server wrote them, which http.Client
// would canonicalise away.
func rawGet(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A bound, not a synchronisation: a hung server fails the test.
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: mail\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func headerBlock(resp string) string {
	h, _, _ := strings.Cut(resp, "\r\n\r\n")
	return h
}

// setLikeReverseProxy fills the header the way httputil.ReverseProxy does,
// with Header.Add, which canonicalises the keys.
func setLikeReverseProxy(h http.Header) {
	h.Add("MS-ASProtocolVersions", versions)
	h.Add("MS-ASProtocolCommands", "Sync,Ping")
	h.Add("MS-Server-ActiveSync", "16.1")
	h.Add("X-MS-RP", versions)
	h.Add("request-id", "42")
	h.Add("X-Other", "kept")
}

var wantExact = []string{
	"\r\nMS-ASProtocolVersions: " + versions + "\r\n",
	"\r\nMS-ASProtocolCommands: Sync,Ping\r\n",
	"\r\nMS-Server-ActiveSync: 16.1\r\n",
	"\r\nX-MS-RP: " + versions + "\r\n",
	"\r\nrequest-id: 42\r\n",
	"\r\nX-Other: kept\r\n",
}

func assertExactCase(t *testing.T, resp string) {
	t.Helper()
	h := headerBlock(resp) + "\r\n"
	for _, w := range wantExact {
		if !strings.Contains(h, w) {
			t.Errorf("header %q not on the wire in:\n%s", strings.TrimSpace(w), h)
		}
	}
	for _, bad := range []string{"Ms-Asprotocolversions", "Ms-Server-Activesync", "X-Ms-Rp", "Request-Id"} {
		if strings.Contains(h, bad) {
			t.Errorf("canonicalised %q on the wire", bad)
		}
	}
}

func TestHeaderCaseWriterOnTheWire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = eas.NewHeaderCaseWriter(w)
		setLikeReverseProxy(w.Header())
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	assertExactCase(t, rawGet(t, srv.Listener.Addr().String()))
}

func TestHeaderCaseWriterImplicitHeader(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = eas.NewHeaderCaseWriter(w)
		setLikeReverseProxy(w.Header())
		_, _ = io.WriteString(w, "no WriteHeader") // the header goes out with the first Write
	}))
	defer srv.Close()
	resp := rawGet(t, srv.Listener.Addr().String())
	assertExactCase(t, resp)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 OK") {
		t.Errorf("status line %q", strings.SplitN(resp, "\r\n", 2)[0])
	}
}

// Without the wrapper Go canonicalises: the control that shows the raw
// reads above can see the difference.
func TestHeaderCaseWithoutWriterIsCanonical(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setLikeReverseProxy(w.Header())
	}))
	defer srv.Close()
	if h := headerBlock(rawGet(t, srv.Listener.Addr().String())); !strings.Contains(h, "Ms-Asprotocolversions: ") {
		t.Fatalf("expected Go's canonical spelling without the wrapper:\n%s", h)
	}
}

// TestHeaderCaseThroughReverseProxy is Pitfall 10: the backend writes the
// exact case, ReverseProxy re-canonicalises it, the wrapper restores it.
func TestHeaderCaseThroughReverseProxy(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["MS-ASProtocolVersions"] = []string{versions}
		h["MS-ASProtocolCommands"] = []string{"Sync,Ping"}
		h["MS-Server-ActiveSync"] = []string{"16.1"}
		h["X-MS-RP"] = []string{versions}
		h["request-id"] = []string{"42"}
		h["X-Other"] = []string{"kept"}
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}

	for _, wrap := range []bool{true, false} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if wrap {
				w = eas.NewHeaderCaseWriter(w)
			}
			rp.ServeHTTP(w, r)
		}))
		resp := rawGet(t, front.Listener.Addr().String())
		front.Close()
		if wrap {
			assertExactCase(t, resp)
		} else if !strings.Contains(resp, "Ms-Asprotocolversions: ") {
			t.Errorf("unwrapped ReverseProxy kept the exact case; the pitfall test proves nothing:\n%s", headerBlock(resp))
		}
	}
}

// TestHeaderCaseWriterFlushAndDeadline flushes the header before any body
// (as a long poll does) and sets a write deadline through
// http.ResponseController, which needs Unwrap.
func TestHeaderCaseWriterFlushAndDeadline(t *testing.T) {
	release := make(chan struct{})
	errs := make(chan error, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w = eas.NewHeaderCaseWriter(w)
		rc := http.NewResponseController(w)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		setLikeReverseProxy(w.Header())
		errs <- rc.Flush()
		<-release
		_, _ = io.WriteString(w, "late body")
	}))
	defer srv.Close()
	defer close(release)

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "POST /x HTTP/1.1\r\nHost: mail\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(c)
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the flushed header: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	// The header arrived while the handler is still blocked on release.
	assertExactCase(t, head.String())
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("ResponseController through the wrapper: %v", err)
		}
	}
}

// TestHeaderCaseWriterUpgrade passes a WebSocket-style upgrade through
// ReverseProxy and the wrapper: ReverseProxy needs Hijack for the 101.
func TestHeaderCaseWriterUpgrade(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = conn.Write([]byte("echo: " + line))
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.ServeHTTP(eas.NewHeaderCaseWriter(w), r)
	}))
	defer front.Close()

	c, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: mail\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "hello\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo: hello\n" {
		t.Fatalf("after upgrade read %q, %v", line, err)
	}
}

func TestFixHeaderCase(t *testing.T) {
	h := http.Header{}
	h.Add("Ms-Asprotocolversions", "a")
	h["MS-ASProtocolVersions"] = []string{"b"}
	h.Add("X-Ms-Policykey", "1")
	h.Add("Content-Type", "application/vnd.ms-sync.wbxml")
	eas.FixHeaderCase(h)
	want := http.Header{
		"MS-ASProtocolVersions": {"b", "a"},
		"X-MS-PolicyKey":        {"1"},
		"Content-Type":          {"application/vnd.ms-sync.wbxml"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("got %v, want %v", h, want)
	}
	eas.FixHeaderCase(h) // idempotent
	if !reflect.DeepEqual(h, want) {
		t.Errorf("second pass changed it: %v", h)
	}
}

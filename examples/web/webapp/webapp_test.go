package webapp_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/web/webapp"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy/clientcert"
)

func get(t *testing.T, h http.Handler, path string, hdr http.Header) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPageNeedsIdentity(t *testing.T) {
	h := webapp.Handler(nil, webapp.Options{})
	if w := get(t, h, "/", nil); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "no X-Remote-User") {
		t.Errorf("anonymous: %d %q", w.Code, w.Body)
	}
	// Another header name is configurable; the default then means nothing.
	h = webapp.Handler(nil, webapp.Options{IdentityHeader: "X-User"})
	if w := get(t, h, "/", http.Header{"X-Remote-User": {"alice"}}); w.Code != http.StatusUnauthorized {
		t.Errorf("wrong header accepted: %d", w.Code)
	}
	if w := get(t, h, "/", http.Header{"X-User": {"alice"}}); w.Code != http.StatusOK {
		t.Errorf("configured header: %d", w.Code)
	}
}

func TestPageRendersUserEscaped(t *testing.T) {
	h := webapp.Handler(nil, webapp.Options{})
	w := get(t, h, "/", http.Header{"X-Remote-User": {`alice@contoso.com<script>x</script>`}})
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	if !strings.Contains(body, `<h1 id="hello">Hello, alice@contoso.com&lt;script&gt;x&lt;/script&gt;</h1>`) {
		t.Errorf("page:\n%s", body)
	}
	if strings.Contains(body, `id="cert"`) {
		t.Error("certificate table without a forwarded certificate")
	}
	if w := get(t, h, "/nope", http.Header{"X-Remote-User": {"alice"}}); w.Code != http.StatusNotFound {
		t.Errorf("unknown path: %d", w.Code)
	}
}

// TestForwardedCert decodes what certgate's own encoders write.
func TestForwardedCert(t *testing.T) {
	root := pkigen.Root(t, "Root")
	inter := root.Intermediate(t, "Inter")
	leaf := inter.Leaf(t, "Alice; \"the\" tester", pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com"))
	sum := sha256.Sum256(leaf.Cert.Raw)
	want := hex.EncodeToString(sum[:])

	cert, chain := clientcert.RFC9440(leaf.Chain)
	xfcc := clientcert.XFCC(leaf.Chain, "", []string{"alice@contoso.com"}, []string{"alice@contoso.com"})
	for _, tc := range []struct {
		name string
		h    http.Header
		via  string
	}{
		{"rfc9440", http.Header{"Client-Cert": {cert}, "Client-Cert-Chain": {chain}}, "Client-Cert"},
		{"xfcc", http.Header{"X-Forwarded-Client-Cert": {xfcc}}, "X-Forwarded-Client-Cert"},
		// A second element (an earlier hop) is not read.
		{"xfcc two elements", http.Header{"X-Forwarded-Client-Cert": {xfcc + `,Cert="junk"`}}, "X-Forwarded-Client-Cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ci, err := webapp.ForwardedCert(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			if ci.SHA256 != want || ci.Via != tc.via || ci.Subject != leaf.Cert.Subject.String() || ci.Issuer != inter.Cert.Subject.String() {
				t.Errorf("got %+v", ci)
			}
			page := get(t, webapp.Handler(nil, webapp.Options{}), "/", withUser(tc.h)).Body.String()
			if !strings.Contains(page, want) || !strings.Contains(page, `id="cert-subject"`) {
				t.Errorf("page does not show the certificate:\n%s", page)
			}
		})
	}
	if ci, err := webapp.ForwardedCert(http.Header{}); ci != nil || err != nil {
		t.Errorf("no header: %v %v", ci, err)
	}
	for _, bad := range []http.Header{
		{"Client-Cert": {"AAAA"}},
		{"Client-Cert": {":!!:"}},
		{"Client-Cert": {":AAAA:"}},
		{"X-Forwarded-Client-Cert": {"Hash=abc"}},
		{"X-Forwarded-Client-Cert": {`Cert="%ZZ"`}},
		{"X-Forwarded-Client-Cert": {`Cert="not pem"`}},
	} {
		if _, err := webapp.ForwardedCert(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
		page := get(t, webapp.Handler(nil, webapp.Options{}), "/", withUser(bad))
		if page.Code != http.StatusOK || !strings.Contains(page.Body.String(), `id="cert-error"`) {
			t.Errorf("%v: page %d without the error", bad, page.Code)
		}
	}
}

func withUser(h http.Header) http.Header {
	h = h.Clone()
	h.Set("X-Remote-User", "alice@contoso.com")
	return h
}

func TestWhoami(t *testing.T) {
	h := webapp.Handler(nil, webapp.Options{})
	w := get(t, h, "/whoami", http.Header{"X-Remote-User": {"alice@contoso.com"}, "X-Forwarded-Host": {"localhost:8443"}})
	var got webapp.Whoami
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.User != "alice@contoso.com" || got.ForwardedHost != "localhost:8443" || got.Cert != nil {
		t.Errorf("%+v", got)
	}
}

// TestEventsStream proves each event reaches the client before the next
// one exists: the stream is flushed, not buffered.
func TestEventsStream(t *testing.T) {
	feed := make(chan string)
	srv := httptest.NewServer(webapp.Handler(nil, webapp.Options{Events: func(context.Context) <-chan string { return feed }}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("X-Remote-User", "alice@contoso.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	readEvent := func() string {
		t.Helper()
		var ev strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading an event: %v (so far %q)", err, ev.String())
			}
			if line == "\n" {
				return ev.String()
			}
			ev.WriteString(line)
		}
	}
	if ev := readEvent(); ev != "event: hello\ndata: alice@contoso.com\n" {
		t.Errorf("first event %q", ev)
	}
	for _, v := range []string{"one", "two\nlines"} {
		feed <- v
		if ev, want := readEvent(), "data: "+strings.ReplaceAll(v, "\n", " ")+"\n"; ev != want {
			t.Errorf("event %q, want %q", ev, want)
		}
	}
	close(feed)
	if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
		t.Errorf("after the feed closed: %q %v", b, err)
	}
}

// wsDial opens a WebSocket to srv with extra request headers and returns
// the connection, its reader and the handshake status.
func wsDial(t *testing.T, addr string, extra string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ=="
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: app\r\nX-Remote-User: alice@contoso.com\r\n"+
		"Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: "+key+"\r\n"+extra+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// RFC 6455's own example key and answer.
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Errorf("Sec-WebSocket-Accept %q", got)
		}
	}
	return c, br, resp.StatusCode
}

var mask = []byte{1, 2, 3, 4}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(webapp.Handler(nil, webapp.Options{}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	c, br, code := wsDial(t, addr, "Sec-WebSocket-Version: 13\r\nOrigin: https://app\r\n")
	if code != http.StatusSwitchingProtocols {
		t.Fatalf("handshake %d", code)
	}
	big := strings.Repeat("x", 64000) // a 16-bit length
	for _, m := range []struct {
		op byte
		p  string
	}{{webapp.OpText, "hello"}, {webapp.OpBinary, "\x00\xff"}, {webapp.OpPing, "are you there"}, {webapp.OpText, big}} {
		if err := webapp.WriteFrame(c, m.op, []byte(m.p), mask); err != nil {
			t.Fatal(err)
		}
		f, err := webapp.ReadFrame(br, false)
		if err != nil {
			t.Fatal(err)
		}
		wantOp := m.op
		if m.op == webapp.OpPing {
			wantOp = webapp.OpPong
		}
		if f.Op != wantOp || !f.Fin || string(f.Payload) != m.p {
			t.Errorf("sent op %d %d bytes, got op %d %d bytes", m.op, len(m.p), f.Op, len(f.Payload))
		}
	}
	if err := webapp.WriteFrame(c, webapp.OpClose, webapp.CloseFrame(webapp.CloseNormal, "bye"), mask); err != nil {
		t.Fatal(err)
	}
	f, err := webapp.ReadFrame(br, false)
	if err != nil || f.Op != webapp.OpClose || binary.BigEndian.Uint16(f.Payload) != webapp.CloseNormal {
		t.Fatalf("close answer %+v %v", f, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after close: %v", err)
	}
}

func TestWebSocketRefusals(t *testing.T) {
	srv := httptest.NewServer(webapp.Handler(nil, webapp.Options{}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for name, tc := range map[string]struct {
		extra string
		code  int
	}{
		"no version":   {"", http.StatusUpgradeRequired},
		"old version":  {"Sec-WebSocket-Version: 8\r\n", http.StatusUpgradeRequired},
		"cross origin": {"Sec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n", http.StatusForbidden},
		"bad origin":   {"Sec-WebSocket-Version: 13\r\nOrigin: null\r\n", http.StatusForbidden},
		// Behind certgate the Host is the backend's; X-Forwarded-Host is the client's.
		"forwarded host": {"Sec-WebSocket-Version: 13\r\nOrigin: https://localhost:8443\r\nX-Forwarded-Host: localhost:8443\r\n", http.StatusSwitchingProtocols},
	} {
		if _, _, code := wsDial(t, addr, tc.extra); code != tc.code {
			t.Errorf("%s: status %d, want %d", name, code, tc.code)
		}
	}

	closeCode := func(t *testing.T, send func(c net.Conn)) int {
		t.Helper()
		c, br, code := wsDial(t, addr, "Sec-WebSocket-Version: 13\r\n")
		if code != http.StatusSwitchingProtocols {
			t.Fatalf("handshake %d", code)
		}
		send(c)
		f, err := webapp.ReadFrame(br, false)
		if err != nil || f.Op != webapp.OpClose || len(f.Payload) < 2 {
			t.Fatalf("want a close frame, got %+v %v", f, err)
		}
		return int(binary.BigEndian.Uint16(f.Payload))
	}
	for name, tc := range map[string]struct {
		frame []byte
		code  int
	}{
		"unmasked":        {[]byte{0x81, 0x01, 'a'}, webapp.CloseProtocol},
		"rsv bit":         {[]byte{0xC1, 0x81, 0, 0, 0, 0, 'a'}, webapp.CloseProtocol},
		"fragment":        {[]byte{0x01, 0x81, 0, 0, 0, 0, 'a'}, webapp.CloseUnsupported},
		"continuation":    {[]byte{0x80, 0x81, 0, 0, 0, 0, 'a'}, webapp.CloseProtocol},
		"bad utf8":        {[]byte{0x81, 0x81, 0, 0, 0, 0, 0xff}, webapp.CloseBadData},
		"long ping":       {append([]byte{0x89, 0x80 | 126, 0, 126}, make([]byte, 4+126)...), webapp.CloseProtocol},
		"too big":         {[]byte{0x82, 0x80 | 127, 0, 0, 0, 0, 0, 2, 0, 0}, webapp.CloseTooBig},
		"unknown opcode":  {[]byte{0x83, 0x80, 0, 0, 0, 0}, webapp.CloseProtocol},
		"close with code": {[]byte{0x88, 0x82, 0, 0, 0, 0, 0x0f, 0xa1}, 4001},
	} {
		t.Run(name, func(t *testing.T) {
			if got := closeCode(t, func(c net.Conn) { _, _ = c.Write(tc.frame) }); got != tc.code {
				t.Errorf("close code %d, want %d", got, tc.code)
			}
		})
	}
}

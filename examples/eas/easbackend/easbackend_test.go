package easbackend_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/eas/easbackend"
	"github.com/certgate/certgate/examples/eas/easclient"
	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/proxy/eas"
)

const alice = "alice@contoso.com"

// server runs the backend on a real loopback listener; seen receives every
// request the backend gets.
func server(t *testing.T, opts easbackend.Options) (*httptest.Server, <-chan *http.Request) {
	t.Helper()
	seen := make(chan *http.Request, 16)
	opts.OnRequest = func(r *http.Request) { seen <- r }
	srv := httptest.NewServer(easbackend.Handler(nil, opts))
	t.Cleanup(srv.Close)
	return srv, seen
}

func client(srv *httptest.Server, base64Query bool) *easclient.Client {
	return &easclient.Client{
		HTTP:        srv.Client(),
		URL:         srv.URL + "/Microsoft-Server-ActiveSync",
		User:        alice,
		DeviceID:    "ApplF17XYZ",
		DeviceType:  "iPhone",
		Base64Query: base64Query,
		Header:      http.Header{"X-Remote-User": {alice}},
	}
}

func TestOptionsExactCaseOnTheWire(t *testing.T) {
	srv, _ := server(t, easbackend.Options{})
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second)) // a bound, not a synchronisation
	_, _ = io.WriteString(c, "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: mail\r\nX-Remote-User: "+alice+"\r\nConnection: close\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	head += "\r\n"
	for _, want := range []string{
		"HTTP/1.1 200 OK\r\n",
		"\r\nMS-ASProtocolVersions: 2.5,12.0,12.1,14.0,14.1,16.0,16.1\r\n",
		"\r\nMS-ASProtocolCommands: " + easbackend.ProtocolCommands + "\r\n",
		"\r\nMS-Server-ActiveSync: 16.1\r\n",
		"\r\nAllow: OPTIONS,POST\r\n",
		"\r\nX-Seen-Remote-User: " + alice + "\r\n",
	} {
		if !strings.Contains(head, want) {
			t.Errorf("missing %q in:\n%s", strings.TrimSpace(want), head)
		}
	}
	for _, bad := range []string{"Ms-Asprotocolversions", "Ms-Server-Activesync"} {
		if strings.Contains(head, bad) {
			t.Errorf("canonicalised %s on the wire", bad)
		}
	}
}

func TestOptionsThroughClient(t *testing.T) {
	srv, _ := server(t, easbackend.Options{})
	resp, err := client(srv, false).Options(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("MS-ASProtocolVersions") != easbackend.ProtocolVersions {
		t.Errorf("status %d, versions %q", resp.StatusCode, resp.Header.Get("MS-ASProtocolVersions"))
	}
}

func TestSync(t *testing.T) {
	for _, b64 := range []bool{false, true} {
		t.Run("base64="+strconv.FormatBool(b64), func(t *testing.T) {
			srv, seen := server(t, easbackend.Options{})
			c := client(srv, b64)
			c.User = `CONTOSO\alice` // a backslash in the query, escaped in the plain form
			body := easclient.SyncRequest("0", "1")
			resp, err := c.Sync(context.Background(), body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if got := resp.Header.Get(easbackend.SeenHeader); got != alice {
				t.Errorf("%s = %q", easbackend.SeenHeader, got)
			}
			doc, err := easclient.ReadWBXML(resp)
			if err != nil {
				t.Fatal(err)
			}
			if n := doc.Find(wbxml.PageAirSync, wbxml.AirSyncSyncKey); n == nil || n.Text != strconv.Itoa(len(body)) {
				t.Errorf("echoed byte count %+v, want %d", n, len(body))
			}
			if n := doc.Find(wbxml.PageAirSync, wbxml.AirSyncCollectionID); n == nil || n.Text != alice {
				t.Errorf("echoed identity %+v", n)
			}

			r := <-seen
			q, err := eas.ParseQuery(r.URL.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			if q.Base64 != b64 || q.Cmd != "Sync" || q.User != `CONTOSO\alice` || q.DeviceID != "ApplF17XYZ" || q.DeviceType != "iPhone" {
				t.Errorf("backend saw query %q = %+v", r.URL.RawQuery, q)
			}
			if !b64 && r.Header.Get("MS-ASProtocolVersion") != "14.1" {
				t.Errorf("plain form without MS-ASProtocolVersion: %v", r.Header)
			}
		})
	}
}

func TestRequestsRefused(t *testing.T) {
	srv, _ := server(t, easbackend.Options{MaxBody: 64})
	ctx := context.Background()
	do := func(c *easclient.Client, cmd string, body []byte, ct string) (int, string) {
		q, err := c.Query(cmd)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+"?"+q, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range c.Header {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	c := client(srv, false)
	anon := client(srv, false)
	anon.Header = nil

	tests := []struct {
		name   string
		c      *easclient.Client
		cmd    string
		body   []byte
		ct     string
		status int
		msg    string
	}{
		{"no identity", anon, "Sync", nil, "", 401, "no X-Remote-User"},
		{"not wbxml", c, "Sync", []byte("<Sync/>"), easclient.ContentType, 400, "version byte 0x3c"},
		{"wrong content type", c, "Sync", easclient.SyncRequest("0", "1"), "text/xml", 415, `content type "text/xml"`},
		{"too large", c, "Sync", bytes.Repeat([]byte{0}, 65), easclient.ContentType, 413, "body larger than 64 bytes"},
		{"not implemented", c, "Search", nil, "", 501, "Search is not implemented"},
	}
	for _, tt := range tests {
		status, body := do(tt.c, tt.cmd, tt.body, tt.ct)
		if status != tt.status || !strings.Contains(body, tt.msg) {
			t.Errorf("%s: %d %q, want %d %q", tt.name, status, body, tt.status, tt.msg)
		}
	}

	for _, raw := range []string{"Cmd=Sync&User=a&user=b", "DeviceId=x", "jAAJ"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/Microsoft-Server-ActiveSync?"+raw, nil)
		req.Header.Set("X-Remote-User", alice)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("query %q: status %d, want 400", raw, resp.StatusCode)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/Microsoft-Server-ActiveSync", nil)
	req.Header.Set("X-Remote-User", alice)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "OPTIONS,POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestFolderSync(t *testing.T) {
	srv, _ := server(t, easbackend.Options{})
	resp, err := client(srv, true).FolderSync(context.Background(), "0")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := easclient.ReadWBXML(resp)
	if err != nil {
		t.Fatal(err)
	}
	if n := doc.Find(wbxml.PageFolderHierarchy, wbxml.FolderDisplayName); n == nil || n.Text != "Inbox" {
		t.Errorf("FolderSync answer %+v", doc)
	}
}

// manualTimer replaces time.After: the test sees the hold begin and decides
// when it ends.
type manualTimer struct {
	asked chan time.Duration
	fire  chan time.Time
}

func newManualTimer() *manualTimer {
	return &manualTimer{asked: make(chan time.Duration, 1), fire: make(chan time.Time)}
}

func (m *manualTimer) after(d time.Duration) <-chan time.Time {
	m.asked <- d
	return m.fire
}

func TestPingHeldThenAnswered(t *testing.T) {
	timer := newManualTimer()
	srv, _ := server(t, easbackend.Options{PingHold: 7 * time.Minute, After: timer.after})
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client(srv, false).Ping(context.Background(), 480*time.Second)
		done <- result{resp, err}
	}()

	if d := <-timer.asked; d != 7*time.Minute {
		t.Errorf("held for %v, want the configured 7m", d)
	}
	select {
	case r := <-done:
		t.Fatalf("Ping answered before its hold ended: %+v", r)
	default:
	}
	timer.fire <- time.Time{}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", r.resp.StatusCode)
	}
	doc, err := easclient.ReadWBXML(r.resp)
	if err != nil {
		t.Fatal(err)
	}
	if n := doc.Find(wbxml.PagePing, wbxml.PingStatus); n == nil || n.Text != "1" {
		t.Errorf("Ping answer %+v, want Status 1", doc)
	}
}

func TestPingCancelledWhenClientGoesAway(t *testing.T) {
	timer := newManualTimer()
	returned := make(chan error, 1)
	h := easbackend.Handler(nil, easbackend.Options{After: timer.after})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		returned <- r.Context().Err()
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	clientErr := make(chan error, 1)
	go func() {
		resp, err := client(srv, true).Ping(ctx, time.Hour)
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-timer.asked // the backend is holding the Ping
	cancel()
	if err := <-clientErr; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	// The timer never fires: the handler can only have returned because
	// the request's context ended when the client hung up.
	if err := <-returned; !errors.Is(err, context.Canceled) {
		t.Errorf("handler returned with context error %v, want context.Canceled", err)
	}
}

func TestAutodiscover(t *testing.T) {
	srv, _ := server(t, easbackend.Options{})
	body := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>alice@contoso.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/AutoDiscover/AutoDiscover.xml", strings.NewReader(body))
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("X-Remote-User", "a<b@contoso.com")
	req.Header.Set("X-Forwarded-Host", "mail.contoso.com")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	var doc struct {
		Response struct {
			User struct {
				EMailAddress string
			}
			Action struct {
				Settings struct {
					Server []struct {
						Type string
						URL  string `xml:"Url"`
					}
				}
			}
		}
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.Response.User.EMailAddress != "a<b@contoso.com" {
		t.Errorf("EMailAddress %q", doc.Response.User.EMailAddress)
	}
	s := doc.Response.Action.Settings.Server
	if len(s) != 1 || s[0].Type != "MobileSync" || s[0].URL != "https://mail.contoso.com/Microsoft-Server-ActiveSync" {
		t.Errorf("servers %+v", s)
	}
}

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/eas/easbackend"
	"github.com/certgate/certgate/examples/eas/easclient"
	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy/eas"
)

// This file drives an EAS route end to end: the example EAS client and
// curl talk through a real certgate to the example EAS backend.

const aliceUPN = "alice@contoso.com"

func aliceLeaf(t *testing.T, e *env) *pkigen.Leaf {
	return e.inter.Leaf(t, "Alice", pkigen.UPN(aliceUPN), pkigen.Email(aliceUPN))
}

// mtlsConfig presents leaf (nil: no certificate) and trusts the env's root;
// protos is the ALPN list, http/1.1 when empty.
func (e *env) mtlsConfig(leaf *pkigen.Leaf, protos ...string) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(e.root.Cert)
	if len(protos) == 0 {
		protos = []string{"http/1.1"}
	}
	c := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: protos}
	if leaf != nil {
		var raw [][]byte
		for _, x := range leaf.Chain[:len(leaf.Chain)-1] {
			raw = append(raw, x.Raw)
		}
		c.Certificates = []tls.Certificate{{Certificate: raw, PrivateKey: leaf.Key, Leaf: leaf.Cert}}
	}
	return c
}

// mtlsClient is an HTTP client presenting leaf over one connection at a
// time, so requests on it are handled one after the other by certgate.
func (e *env) mtlsClient(leaf *pkigen.Leaf, h2 bool) *http.Client {
	tc := e.mtlsConfig(leaf)
	if h2 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: h2, MaxConnsPerHost: 1, DisableCompression: true}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// gathered sums the samples (counter values, histogram sample counts) of
// the series of name whose labels include labels.
func (e *env) gathered(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.inst.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			switch {
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// easSeen is what the EAS backend received.
type easSeen struct {
	method, path, rawQuery string
	header                 http.Header
}

// easFront is certgate with an EAS route in front of the example backend.
type easFront struct {
	*env
	srv     *httptest.Server
	blogs   *syncBuffer
	arrived chan *http.Request // every Ping, as the backend gets it

	mu   sync.Mutex
	seen []easSeen
}

// easRoute is the route the EAS tests use.
func easRoute(backend string) string {
	return fmt.Sprintf(`  - name: eas
    kind: eas
    pathPrefix: /Microsoft-Server-ActiveSync
    autodiscover: true
    netbiosDomain: CONTOSO
    backend: %s
`, backend)
}

func newEASFront(t *testing.T, opts easbackend.Options, ec envConfig) *easFront {
	t.Helper()
	f := &easFront{blogs: &syncBuffer{}, arrived: make(chan *http.Request, 16)}
	opts.OnRequest = func(r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, easSeen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone()})
		f.mu.Unlock()
		if q, _ := eas.ParseQuery(r.URL.RawQuery); q.Cmd == "Ping" {
			select {
			case f.arrived <- r:
			default:
			}
		}
	}
	f.srv = httptest.NewServer(easbackend.Handler(slog.New(slog.NewTextHandler(f.blogs, nil)), opts))
	t.Cleanup(f.srv.Close)
	if ec.routes == "" {
		ec.routes = easRoute(f.srv.URL)
	}
	f.env = newEnv(t, ec)
	return f
}

func (f *easFront) received() []easSeen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]easSeen(nil), f.seen...)
}

func (f *easFront) client(leaf *pkigen.Leaf, user string, b64 bool) *easclient.Client {
	return &easclient.Client{HTTP: f.mtlsClient(leaf, false), URL: f.url("/Microsoft-Server-ActiveSync"),
		User: user, DeviceID: "E2EDevice1", DeviceType: "iPhone", Base64Query: b64}
}

// at once makes the backend answer a Ping without holding it.
func atOnce(time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// never makes the backend hold a Ping until the request goes away.
func never(time.Duration) <-chan time.Time { return nil }

func readAllClose(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawEAS sends one raw HTTP/1.1 request over an mTLS connection and
// returns the response bytes exactly as certgate wrote them.
func (e *env) rawEAS(t *testing.T, leaf *pkigen.Leaf, req string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), e.mtlsConfig(leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second)) // a bound: a hang fails the test
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the raw response: %v (so far %q)", err, b)
	}
	return string(b)
}

func (e *env) hostHeader() string {
	addr := e.inst.proxyAddr()
	return "localhost:" + addr[strings.LastIndex(addr, ":")+1:]
}

func TestEASClientThroughCertgate(t *testing.T) {
	f := newEASFront(t, easbackend.Options{After: atOnce}, envConfig{})
	alice := aliceLeaf(t, f.env)
	ctx := context.Background()
	c := f.client(alice, aliceUPN, false)

	t.Run("OPTIONS", func(t *testing.T) {
		resp, err := c.Options(ctx)
		if err != nil {
			t.Fatal(err)
		}
		readAllClose(t, resp)
		if resp.StatusCode != 200 || resp.Header.Get("MS-ASProtocolVersions") != easbackend.ProtocolVersions ||
			resp.Header.Get("MS-ASProtocolCommands") != easbackend.ProtocolCommands || resp.Header.Get(easbackend.SeenHeader) != aliceUPN {
			t.Errorf("status %d header %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("Sync with a WBXML body", func(t *testing.T) {
		body := easclient.SyncRequest("0", "1")
		resp, err := c.Sync(ctx, body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, readAllClose(t, resp))
		}
		doc, err := easclient.ReadWBXML(resp)
		if err != nil {
			t.Fatal(err)
		}
		// The backend echoes the byte count it read and the identity it got.
		if n := doc.Find(wbxml.PageAirSync, wbxml.AirSyncSyncKey); n == nil || n.Text != strconv.Itoa(len(body)) {
			t.Errorf("backend read %+v bytes, sent %d", n, len(body))
		}
		if n := doc.Find(wbxml.PageAirSync, wbxml.AirSyncCollectionID); n == nil || n.Text != aliceUPN {
			t.Errorf("backend identity %+v", n)
		}
	})
	t.Run("FolderSync and Ping", func(t *testing.T) {
		for cmd, check := range map[string]func(*wbxml.Node) bool{
			"FolderSync": func(n *wbxml.Node) bool {
				d := n.Find(wbxml.PageFolderHierarchy, wbxml.FolderDisplayName)
				return d != nil && d.Text == "Inbox"
			},
			"Ping": func(n *wbxml.Node) bool {
				s := n.Find(wbxml.PagePing, wbxml.PingStatus)
				return s != nil && s.Text == "1"
			},
		} {
			var resp *http.Response
			var err error
			if cmd == "Ping" {
				resp, err = c.Ping(ctx, time.Minute)
			} else {
				resp, err = c.FolderSync(ctx, "0")
			}
			if err != nil {
				t.Fatal(err)
			}
			doc, err := easclient.ReadWBXML(resp)
			if err != nil || resp.StatusCode != 200 || !check(doc) {
				t.Errorf("%s: status %d, %v, %+v", cmd, resp.StatusCode, err, doc)
			}
		}
	})

	// Every name of alice in both query forms; none of anyone else's.
	users := map[string]bool{
		aliceUPN: true, "ALICE@Contoso.COM": true, "alice": true, "a.smith@contoso.com": true,
		`CONTOSO\alice`: true, `contoso\ALICE`: true, "CONTOSO/alice": true,
		"bob@contoso.com": false, "bob": false, `FABRIKAM\alice`: false, "alice@fabrikam.com": false,
		"SMTP:alice@contoso.com": false, "alice@contoso.com.evil": false, "dave@contoso.com": false,
	}
	for user, ok := range users {
		for _, b64 := range []bool{false, true} {
			t.Run(fmt.Sprintf("User %s base64=%v", user, b64), func(t *testing.T) {
				before := len(f.received())
				resp, err := f.client(alice, user, b64).FolderSync(ctx, "0")
				if err != nil {
					t.Fatal(err)
				}
				body := readAllClose(t, resp)
				reached := len(f.received()) - before
				switch {
				case ok && (resp.StatusCode != 200 || reached != 1):
					t.Errorf("status %d, backend reached %d times: %s", resp.StatusCode, reached, body)
				case !ok && (resp.StatusCode != 403 || !strings.Contains(body, "eas_user_mismatch") || reached != 0):
					t.Errorf("status %d %q, backend reached %d times", resp.StatusCode, body, reached)
				}
			})
		}
	}
	t.Run("base64 form without User relies on the binding", func(t *testing.T) {
		resp, err := f.client(alice, "", true).Sync(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		readAllClose(t, resp)
		last := f.received()[len(f.received())-1]
		q, err := eas.ParseQuery(last.rawQuery)
		if resp.StatusCode != 200 || err != nil || !q.Base64 || q.User != "" || last.header.Get("X-Remote-User") != aliceUPN {
			t.Errorf("status %d, backend saw %+v (%v) as %q", resp.StatusCode, q, err, last.header.Get("X-Remote-User"))
		}
	})

	// The raw query reaches the backend byte for byte: base64 '+' and '/'
	// and the plain form's escapes are not re-encoded.
	t.Run("raw query unchanged", func(t *testing.T) {
		// These policy key bytes encode as '+' and '/'; the user's length
		// leaves '=' padding.
		b64, err := eas.EncodeBase64Query(eas.Query{Cmd: "Sync", User: aliceUPN, DeviceID: "Dev1", DeviceType: "Android", PolicyKey: 0xFBEFBEFB})
		if err != nil || !strings.Contains(b64, "/") || !strings.Contains(b64, "+") || !strings.HasSuffix(b64, "=") {
			t.Fatalf("test query %q lacks '+', '/' or '=' (%v)", b64, err)
		}
		for _, raw := range []string{
			b64,
			"Cmd=Sync&User=CONTOSO%5calice&DeviceId=Dev1&DeviceType=Android+Phone&Extra=%7e",
			"cmd=sync&user=Alice%40Contoso.com&deviceid=Dev1&devicetype=x;y",
		} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, nil)
			req.URL.RawQuery = raw
			resp, err := c.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readAllClose(t, resp)
			got := f.received()[len(f.received())-1].rawQuery
			if resp.StatusCode != 200 || got != raw {
				t.Errorf("status %d, sent %q, backend got %q", resp.StatusCode, raw, got)
			}
		}
	})

	// A query certgate cannot read is refused as a User it cannot match,
	// whatever the method: the backend might read it another way.
	t.Run("unreadable query", func(t *testing.T) {
		good, _ := eas.EncodeBase64Query(eas.Query{Cmd: "Sync", User: aliceUPN, DeviceID: "Dev1"})
		for _, raw := range []string{
			"Cmd=Sync&User=alice&user=bob@contoso.com&DeviceId=d&DeviceType=t",
			"Cmd=Sync&User=alice%ZZ&DeviceId=d&DeviceType=t",
			good[:len(good)-8],
			"User=alice&User=bob",
		} {
			for _, method := range []string{http.MethodPost, http.MethodOptions} {
				before := len(f.received())
				req, _ := http.NewRequestWithContext(ctx, method, c.URL, nil)
				req.URL.RawQuery = raw
				resp, err := c.HTTP.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body := readAllClose(t, resp)
				if resp.StatusCode != 403 || !strings.Contains(body, "eas_user_mismatch") || len(f.received()) != before {
					t.Errorf("%s ?%s: status %d %q, backend reached %d times", method, raw, resp.StatusCode, body, len(f.received())-before)
				}
			}
		}
	})

	t.Run("autodiscover", func(t *testing.T) {
		const reqXML = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>alice@contoso.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006</AcceptableResponseSchema></Request></Autodiscover>`
		// IIS matches the path case-insensitively and devices rely on it.
		resp, err := c.HTTP.Post(f.url("/AutoDiscover/AutoDiscover.xml"), "text/xml", strings.NewReader(reqXML))
		if err != nil {
			t.Fatal(err)
		}
		body := readAllClose(t, resp)
		want := "<Url>https://" + f.hostHeader() + "/Microsoft-Server-ActiveSync</Url>"
		if resp.StatusCode != 200 || !strings.Contains(body, want) || !strings.Contains(body, "<EMailAddress>alice@contoso.com</EMailAddress>") {
			t.Errorf("status %d, want %s in\n%s", resp.StatusCode, want, body)
		}
	})

	if !strings.Contains(f.logs.String(), `"reason":"eas_user_mismatch"`) {
		t.Error("no eas_user_mismatch decision in the log")
	}
	if got := f.gathered("certgate_auth_decisions_total", map[string]string{"reason": "eas_user_mismatch"}); got < 1 {
		t.Errorf("eas_user_mismatch counted %v times", got)
	}
}

// TestEASHeaderCaseOnTheWire reads certgate's raw response bytes: the
// MS-AS* headers must keep the case the backend sent (some devices match
// them case-sensitively), which Go's canonicalisation would change.
func TestEASHeaderCaseOnTheWire(t *testing.T) {
	f := newEASFront(t, easbackend.Options{}, envConfig{})
	alice := aliceLeaf(t, f.env)
	host := f.hostHeader()
	body := easclient.FolderSyncRequest("0")
	for name, req := range map[string]string{
		"OPTIONS": "OPTIONS /Microsoft-Server-ActiveSync HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n",
		"FolderSync": "POST /Microsoft-Server-ActiveSync?Cmd=FolderSync&User=alice&DeviceId=Raw1&DeviceType=raw HTTP/1.1\r\nHost: " + host +
			"\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nMS-ASProtocolVersion: 14.1\r\nContent-Length: " + strconv.Itoa(len(body)) +
			"\r\nConnection: close\r\n\r\n" + string(body),
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.rawEAS(t, alice, req)
			head, _, _ := strings.Cut(resp, "\r\n\r\n")
			head += "\r\n"
			if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
				t.Fatalf("response:\n%s", head)
			}
			want := []string{"\r\nMS-Server-ActiveSync: " + easbackend.ServerVersion + "\r\n", "\r\nX-Seen-Remote-User: " + aliceUPN + "\r\n"}
			if name == "OPTIONS" {
				want = append(want, "\r\nMS-ASProtocolVersions: "+easbackend.ProtocolVersions+"\r\n",
					"\r\nMS-ASProtocolCommands: "+easbackend.ProtocolCommands+"\r\n")
			}
			for _, w := range want {
				if !strings.Contains(head, w) {
					t.Errorf("%q not on the wire:\n%s", strings.TrimSpace(w), head)
				}
			}
			for _, bad := range []string{"Ms-Asprotocolversions", "Ms-Asprotocolcommands", "Ms-Server-Activesync"} {
				if strings.Contains(head, bad) {
					t.Errorf("canonicalised %s on the wire", bad)
				}
			}
		})
	}
}

// TestEASExpectContinue: a device asks before sending a large body. certgate
// answers 100 only for a request it will forward, and refuses a mismatched
// User without reading the body at all.
func TestEASExpectContinue(t *testing.T) {
	f := newEASFront(t, easbackend.Options{}, envConfig{})
	alice := aliceLeaf(t, f.env)
	body := easclient.SyncRequest("0", strings.Repeat("7", 4000))
	head := func(user string) string {
		return "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=" + user + "&DeviceId=Exp1&DeviceType=raw HTTP/1.1\r\nHost: " + f.hostHeader() +
			"\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nMS-ASProtocolVersion: 14.1\r\nContent-Length: " + strconv.Itoa(len(body)) +
			"\r\nExpect: 100-continue\r\n\r\n"
	}
	dial := func() (*tls.Conn, *bufio.Reader) {
		conn, err := tls.Dial("tcp", f.inst.proxyAddr(), f.mtlsConfig(alice))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		return conn, bufio.NewReader(conn)
	}

	// Exactly one 100: ReverseProxy forwards the backend's while net/http
	// sends its own, and which goes first is a race, so try a few times.
	for i := range 20 {
		t.Run(fmt.Sprintf("forwarded %d", i), func(t *testing.T) {
			conn, br := dial()
			if _, err := io.WriteString(conn, head("alice")); err != nil {
				t.Fatal(err)
			}
			// Only the headers are out; the body follows the interim answer.
			line, err := br.ReadString('\n')
			if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			if blank, _ := br.ReadString('\n'); blank != "\r\n" {
				t.Fatalf("after 100: %q", blank)
			}
			if _, err := conn.Write(body); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			readAllClose(t, resp)
			if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Body-Bytes") != strconv.Itoa(len(body)) {
				t.Errorf("status %d, backend read %q bytes of %d", resp.StatusCode, resp.Header.Get("X-Seen-Body-Bytes"), len(body))
			}
		})
	}
	t.Run("refused before the body", func(t *testing.T) {
		before := len(f.received())
		conn, br := dial()
		if _, err := io.WriteString(conn, head("bob@contoso.com")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := readAllClose(t, resp)
		if resp.StatusCode != 403 || !strings.Contains(b, "eas_user_mismatch") {
			t.Errorf("status %d %q (a 100 here would ask for a body certgate then refuses)", resp.StatusCode, b)
		}
		if n := len(f.received()) - before; n != 0 {
			t.Errorf("backend reached %d times", n)
		}
	})
}

// TestEASPingHeldPastProxyTimeouts holds a Ping in the backend for three
// seconds, longer than every connection timeout certgate is given here: a
// long poll is bounded only by the route's timeout.
func TestEASPingHeldPastProxyTimeouts(t *testing.T) {
	const hold = 3 * time.Second
	f := newEASFront(t, easbackend.Options{PingHold: hold}, envConfig{
		extraYAML: "limits:\n  handshakeTimeout: 1s\n  readHeaderTimeout: 1s\n  idleTimeout: 1s\n",
	})
	c := f.client(aliceLeaf(t, f.env), aliceUPN, false)
	start := time.Now()
	resp, err := c.Ping(context.Background(), hold)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := easclient.ReadWBXML(resp)
	if err != nil {
		t.Fatal(err)
	}
	held := time.Since(start)
	if s := doc.Find(wbxml.PagePing, wbxml.PingStatus); resp.StatusCode != 200 || s == nil || s.Text != "1" {
		t.Fatalf("status %d, Ping %+v", resp.StatusCode, doc)
	}
	// A lower bound only: the backend answers after its hold, never before.
	if held < hold {
		t.Errorf("Ping answered after %v, before the backend's %v hold", held, hold)
	}
	t.Logf("Ping held %v through certgate", held.Round(time.Millisecond))
}

// TestEASLongPollsStayOutOfLatencyHistogram: Ping and Sync may be held for
// up to an hour, so certgate_upstream_request_duration_seconds leaves them
// out (proxy/eas.IsLongPoll: every Sync, since Wait is in the body, which
// the proxy does not read); other commands are observed, and every command
// is counted.
func TestEASLongPollsStayOutOfLatencyHistogram(t *testing.T) {
	f := newEASFront(t, easbackend.Options{After: atOnce}, envConfig{})
	alice := aliceLeaf(t, f.env)
	ctx := context.Background()
	c := f.client(alice, aliceUPN, false)
	send := func(do func() (*http.Response, error)) {
		t.Helper()
		resp, err := do()
		if err != nil {
			t.Fatal(err)
		}
		readAllClose(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	send(func() (*http.Response, error) { return c.Options(ctx) })
	send(func() (*http.Response, error) { return c.FolderSync(ctx, "0") })
	send(func() (*http.Response, error) { return c.Sync(ctx, easclient.SyncRequest("0", "1")) })
	send(func() (*http.Response, error) { return c.Sync(ctx, nil) })
	send(func() (*http.Response, error) { return c.Ping(ctx, time.Minute) })
	// certgate handles one connection's requests in turn, so once this
	// answer is here every metric of the requests above is recorded. No
	// route serves the path: it adds no sample of its own.
	resp, err := c.HTTP.Get(f.url("/no-route-here"))
	if err != nil {
		t.Fatal(err)
	}
	readAllClose(t, resp)
	if resp.StatusCode != 404 {
		t.Fatalf("barrier request: %d", resp.StatusCode)
	}

	if got := f.gathered("certgate_upstream_request_duration_seconds", map[string]string{"route": "eas"}); got != 2 {
		t.Errorf("latency samples on the eas route: %v, want 2 (OPTIONS and FolderSync; no Ping, no Sync)", got)
	}
	for cmd, want := range map[string]float64{"none": 1, "FolderSync": 1, "Sync": 2, "Ping": 1} {
		if got := f.gathered("certgate_eas_requests_total", map[string]string{"cmd": cmd}); got != want {
			t.Errorf("certgate_eas_requests_total{cmd=%q} = %v, want %v", cmd, got, want)
		}
	}
}

// TestEASPingDeadClientIsNoticed: a phone that drops off the network while
// its Ping is held must not leave the backend holding it for an hour.
func TestEASPingDeadClientIsNoticed(t *testing.T) {
	f := newEASFront(t, easbackend.Options{After: never}, envConfig{})
	c := f.client(aliceLeaf(t, f.env), aliceUPN, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := c.Ping(ctx, time.Hour)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	var held *http.Request
	select {
	case held = <-f.arrived:
	case err := <-done:
		t.Fatalf("Ping ended before reaching the backend: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Ping never reached the backend")
	}
	cancel() // the client's connection closes
	select {
	case <-held.Context().Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the backend still holds the Ping of a client that went away")
	}
	if err := <-done; err == nil {
		t.Error("cancelled Ping returned a response")
	}
}

// TestEASPingDeadBackendIsNoticed: a backend that dies while holding a
// Ping gives the device a 502 at once, not an hour of silence.
func TestEASPingDeadBackendIsNoticed(t *testing.T) {
	f := newEASFront(t, easbackend.Options{After: never}, envConfig{})
	c := f.client(aliceLeaf(t, f.env), aliceUPN, false)
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Ping(context.Background(), time.Hour)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-f.arrived:
	case r := <-done:
		t.Fatalf("Ping ended before reaching the backend: %+v", r)
	case <-time.After(20 * time.Second):
		t.Fatal("Ping never reached the backend")
	}
	f.srv.CloseClientConnections()
	r := <-done // bounded by the client's 30 s timeout
	if r.err != nil || r.code != http.StatusBadGateway || !strings.Contains(r.body, "backend_unavailable") {
		t.Errorf("got %+v, want 502 backend_unavailable", r)
	}
}

// TestEASCurlSmoke runs the README's curl lines for the EAS route.
func TestEASCurlSmoke(t *testing.T) {
	requireCurl(t)
	f := newEASFront(t, easbackend.Options{After: atOnce}, envConfig{})
	cert, key := f.writeLeaf("alice", aliceLeaf(t, f.env))
	eas := f.url("/Microsoft-Server-ActiveSync")

	// EAS devices speak HTTP/1.1, where header case is on the wire (HTTP/2
	// lower-cases every name).
	res := f.curl(cert, key, "--http1.1", "-i", "-X", "OPTIONS", eas)
	if res.code != 200 || !strings.Contains(res.body, "\r\nMS-ASProtocolVersions: "+easbackend.ProtocolVersions+"\r\n") {
		t.Errorf("OPTIONS: %d\n%s\n%s", res.code, res.body, res.stderr)
	}

	// The README's Sync body, byte for byte.
	sync := []byte("\x03\x01\x6a\x00\x45\x5c\x4f\x4b\x03\x30\x00\x01\x52\x03\x31\x00\x01\x01\x01\x01")
	if _, err := wbxml.Decode(sync); err != nil {
		t.Fatalf("the README's Sync body is not WBXML: %v", err)
	}
	syncFile := filepath.Join(f.dir, "sync.wbxml")
	must(t, os.WriteFile(syncFile, sync, 0o644))
	res = f.curl(cert, key, "--http1.1", "-i", "-H", "Content-Type: application/vnd.ms-sync.wbxml", "-H", "MS-ASProtocolVersion: 14.1",
		"--data-binary", "@"+syncFile, eas+"?Cmd=Sync&User=alice@contoso.com&DeviceId=curl1&DeviceType=curl")
	_, respBody, _ := strings.Cut(res.body, "\r\n\r\n")
	doc, err := wbxml.Decode([]byte(respBody))
	if res.code != 200 || err != nil || !strings.Contains(res.body, "\r\nX-Seen-Body-Bytes: 20\r\n") {
		t.Fatalf("Sync: %d %v\n%q", res.code, err, res.body)
	}
	if n := doc.Find(wbxml.PageAirSync, wbxml.AirSyncCollectionID); n == nil || n.Text != aliceUPN {
		t.Errorf("Sync answered for %+v", n)
	}

	for _, tc := range []struct {
		query string
		code  int
	}{
		{"Cmd=FolderSync&User=CONTOSO%5Calice&DeviceId=curl1&DeviceType=curl", 200},
		{"jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l", 200}, // MS-ASHTTP's own base64 example
		{"Cmd=Ping&User=alice&DeviceId=curl1&DeviceType=curl", 200},
		{"Cmd=Sync&User=bob@contoso.com&DeviceId=curl1&DeviceType=curl", 403},
	} {
		res := f.curl(cert, key, "-X", "POST", eas+"?"+tc.query)
		if res.code != tc.code || (tc.code == 403 && !strings.Contains(res.body, "eas_user_mismatch")) {
			t.Errorf("?%s: %d %q %s", tc.query, res.code, res.body, res.stderr)
		}
	}
	// A spoofed identity header never reaches the backend.
	res = f.curl(cert, key, "--http1.1", "-i", "-H", "X-Remote-User: bob@contoso.com", "-H", "X_Remote_User: bob", "-X", "OPTIONS", eas)
	if !strings.Contains(res.body, "\r\nX-Seen-Remote-User: "+aliceUPN+"\r\n") {
		t.Errorf("spoofed identity:\n%s", res.body)
	}
}

// TestEASBodiesStreamBothWays: certgate neither collects a request body
// before forwarding it nor a response body before answering. The backend
// sees the first part of a chunked WBXML body while the device still holds
// the rest, and the device gets the flushed start of the answer while the
// backend still holds the rest.
func TestEASBodiesStreamBothWays(t *testing.T) {
	parts := make(chan string, 4)
	release := make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				parts <- string(buf[:n])
			}
			if err != nil {
				break
			}
		}
		w.Header()["MS-Server-ActiveSync"] = []string{"16.1"}
		w.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
		_, _ = io.WriteString(w, "first|")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second")
	}))
	t.Cleanup(be.Close)
	t.Cleanup(func() { close(release) })
	f := newEASFront(t, easbackend.Options{}, envConfig{routes: easRoute(be.URL)})
	conn, err := tls.Dial("tcp", f.inst.proxyAddr(), f.mtlsConfig(aliceLeaf(t, f.env)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, _ = io.WriteString(conn, "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=Stream1&DeviceType=raw HTTP/1.1\r\nHost: "+
		f.hostHeader()+"\r\nContent-Type: application/vnd.ms-sync.wbxml\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n")
	wait := func(what string) string {
		t.Helper()
		select {
		case p := <-parts:
			return p
		case <-time.After(20 * time.Second):
			t.Fatalf("the backend never got %s", what)
			return ""
		}
	}
	if p := wait("the first chunk"); p != "chunk" {
		t.Fatalf("backend read %q first", p)
	}
	// The second chunk exists only now, after the backend read the first.
	_, _ = io.WriteString(conn, "3\r\ntwo\r\n0\r\n\r\n")
	if p := wait("the second chunk"); p != "two" {
		t.Fatalf("backend read %q second", p)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first|"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first|" {
		t.Fatalf("start of the answer: %q, %v", first, err)
	}
	select {
	case release <- struct{}{}:
	case <-time.After(20 * time.Second):
		t.Fatal("the backend stopped waiting")
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest of the answer: %q, %v", rest, err)
	}
}

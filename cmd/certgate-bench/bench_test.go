package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newPKI makes a bench PKI with a small "big" CRL, so tests stay fast.
func newPKI(t *testing.T, entries int) *benchPKI {
	t.Helper()
	p, err := makePKI(t.TempDir(), entries)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b, err := startBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newInproc(t *testing.T, p *benchPKI, b *backend, crlURL string, admin bool) *inproc {
	t.Helper()
	o := inprocOptions{dir: p.dir, listen: "127.0.0.1:0", backend: "http://" + b.Addr(), crlURL: crlURL}
	if admin {
		o.admin = "127.0.0.1:0"
	}
	ip, err := startInproc(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ip.Close)
	return ip
}

func fileURL(path string) string { return (&url.URL{Scheme: "file", Path: path}).String() }

// bench runs one mode and decodes its JSON line into v.
func bench(t *testing.T, v any, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out.String())
	}
	first, human, _ := strings.Cut(out.String(), "\n")
	if err := json.Unmarshal([]byte(first), v); err != nil {
		t.Fatalf("%v: %v: %q", args, err, out.String())
	}
	if !strings.HasPrefix(human, "# ") {
		t.Fatalf("no human line after the JSON: %q", out.String())
	}
	return human
}

func clientArgs(p *benchPKI, ip *inproc, cert, key string) []string {
	_, port, _ := net.SplitHostPort(ip.Addr())
	return []string{"--url", "https://localhost:" + port + "/", "--cert", filepath.Join(p.dir, cert),
		"--key", filepath.Join(p.dir, key), "--cacert", filepath.Join(p.dir, fileRoot)}
}

func TestBackendEchoesIdentityAndKeepsFraming(t *testing.T) {
	b := newBackend(t)
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// Three pipelined requests on one connection: a GET, a chunked POST
	// whose body must be skipped, and a GET asking to close.
	reqs := "GET / HTTP/1.1\r\nHost: b\r\nx-remote-user: alice@contoso.com\r\n\r\n" +
		"POST /x HTTP/1.1\r\nHost: b\r\nX-Remote-User: bob\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: b\r\nX-Remote-User: carol\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"hello alice@contoso.com\n", "hello bob\n", "hello carol\n"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed after Connection: close: %v", err)
	}

	// A request head that is not HTTP gets a 400, not a hang.
	c2, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "garbage\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("garbage: %v %v", resp, err)
	}
}

func TestLoadModesAgainstInProcessCertgate(t *testing.T) {
	p := newPKI(t, 1000)
	b := newBackend(t)
	ip := newInproc(t, p, b, fileURL(filepath.Join(p.dir, fileSmallDER)), false)
	good := clientArgs(p, ip, fileClient, fileClientKey)
	common := []string{"--duration", "30s", "--workers", "4", "--expect", benchUser, "--tls13"}

	t.Run("handshakes", func(t *testing.T) {
		var r loadResult
		bench(t, &r, append(append([]string{"handshakes"}, good...), append(common, "--max", "40", "--curves", "X25519", "--pid", "1")...)...)
		if r.OK != 40 || r.Errors != 0 || r.Resumed != 0 {
			t.Fatalf("ok=%d errors=%d resumed=%d (%s), want 40 full handshakes", r.OK, r.Errors, r.Resumed, r.FirstError)
		}
		if r.Group != "X25519" || r.TLSVersion != "TLS1.3" || r.Latency.N != 40 || r.Latency.P99 <= 0 {
			t.Fatalf("group %q version %q latency %+v", r.Group, r.TLSVersion, r.Latency)
		}
		if r.ServerCPU < 0 || r.ServerWait < 0 {
			t.Fatalf("server CPU or wait of pid 1 not read: %v %v", r.ServerCPU, r.ServerWait)
		}
	})
	t.Run("hybrid group", func(t *testing.T) {
		var r loadResult
		bench(t, &r, append(append([]string{"handshakes"}, good...), append(common, "--max", "8", "--curves", "X25519MLKEM768")...)...)
		if r.OK != 8 || r.Group != "X25519MLKEM768" {
			t.Fatalf("ok=%d group %q (%s)", r.OK, r.Group, r.FirstError)
		}
	})
	t.Run("resumed", func(t *testing.T) {
		var r loadResult
		bench(t, &r, append(append([]string{"resumed"}, good...), append(common, "--max", "40")...)...)
		// Each worker's first handshake is full; every later one resumes.
		if r.OK != 40 || r.Resumed < 40-4 {
			t.Fatalf("ok=%d resumed=%d (%s)", r.OK, r.Resumed, r.FirstError)
		}
	})
	for _, h2 := range []bool{false, true} {
		name, extra, proto := "keepalive h1", []string{}, "http/1.1"
		if h2 {
			name, extra, proto = "keepalive h2", []string{"--h2"}, "h2"
		}
		t.Run(name, func(t *testing.T) {
			var r loadResult
			bench(t, &r, append(append(append([]string{"keepalive"}, good...), append(common, "--max", "400")...), extra...)...)
			if r.OK != 400 || r.Errors != 0 || r.Proto != proto || r.Reconnects != 0 {
				t.Fatalf("ok=%d errors=%d proto=%s reconnects=%d (%s)", r.OK, r.Errors, r.Proto, r.Reconnects, r.FirstError)
			}
		})
	}
	t.Run("idle", func(t *testing.T) {
		var r idleResult
		bench(t, &r, append(append([]string{"idle"}, good...), append(common, "--conns", "25", "--settle", "0s", "--pid", itoa(os.Getpid()))...)...)
		if r.Opened != 25 || r.OpenAtEnd != 25 || r.RSSBeforeKB <= 0 || r.RSSAfterKB <= 0 {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("revoked client is counted as errors", func(t *testing.T) {
		var r loadResult
		bad := clientArgs(p, ip, fileRevoked, fileRevokedKey)
		bench(t, &r, append(append([]string{"handshakes"}, bad...), append(common, "--max", "5")...)...)
		if r.OK != 0 || r.Errors != 5 || r.FirstError == "" {
			t.Fatalf("revoked client: ok=%d errors=%d first=%q", r.OK, r.Errors, r.FirstError)
		}
	})
	t.Run("wrong identity is counted as errors", func(t *testing.T) {
		var r loadResult
		args := append(append([]string{"keepalive"}, good...), "--max", "5", "--workers", "1", "--expect", "bob@contoso.com")
		bench(t, &r, args...)
		if r.OK != 0 || r.Errors != 5 || !strings.Contains(r.FirstError, "lacks") {
			t.Fatalf("ok=%d errors=%d first=%q", r.OK, r.Errors, r.FirstError)
		}
	})
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func TestCRLRefreshModeInstallsNewCRLs(t *testing.T) {
	p := newPKI(t, 2000)
	srv, err := newCRLServer(p.maker, 8, 1000)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	b := newBackend(t)
	ip := newInproc(t, p, b, hs.URL+"/crl.der", true)
	var r refreshResult
	args := append([]string{"crl-refresh"}, clientArgs(p, ip, fileClient, fileClientKey)...)
	bench(t, &r, append(args, "--admin", ip.AdminURL(), "--slice", "200ms", "--refreshes", "3",
		"--duration", "3s", "--workers", "2", "--expect", benchUser)...)
	if r.Refreshes < 1 || r.RefreshErrors != 0 || r.Errors != 0 {
		t.Fatalf("refreshes=%d refresh_errors=%d errors=%d (%s)", r.Refreshes, r.RefreshErrors, r.Errors, r.FirstError)
	}
	if r.Baseline.N == 0 || r.Latency.N != r.Baseline.N+r.DuringRefresh.N {
		t.Fatalf("baseline %+v during %+v all %+v", r.Baseline, r.DuringRefresh, r.Latency)
	}
	st := ip.rev.Status()
	if len(st) != 1 || st[0].Number <= "1000" || st[0].Entries != 2000 {
		t.Fatalf("the refreshes did not install newer CRLs: %+v", st)
	}
}

func TestCRLMakerSignsVerifiableCRLs(t *testing.T) {
	p := newPKI(t, 10)
	extra := p.revoked.Cert.SerialNumber
	m, err := newCRLMaker(p.root, 300, 1, extra)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{5, 6} {
		der, err := m.sign(n, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := rl.CheckSignatureFrom(p.root.Cert); err != nil {
			t.Fatal(err)
		}
		if rl.Number.Int64() != n || len(rl.RevokedCertificateEntries) != 300 {
			t.Fatalf("number %v entries %d", rl.Number, len(rl.RevokedCertificateEntries))
		}
		if rl.RevokedCertificateEntries[0].SerialNumber.Cmp(extra) != 0 {
			t.Fatal("the listed serial is not first")
		}
		got, err := listedSerials(der, 3)
		if err != nil || len(got) != 3 || got[0].Cmp(extra) != 0 || got[1].Cmp(m.sample[0]) != 0 {
			t.Fatalf("listedSerials: %v %v", got, err)
		}
	}
	// Zero entries: the list must be absent, not empty.
	empty, err := newCRLMaker(p.root, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	der, err := empty.sign(1, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rl, err := x509.ParseRevocationList(der); err != nil || len(rl.RevokedCertificateEntries) != 0 {
		t.Fatalf("empty CRL: %v", err)
	}
	if _, err := newCRLMaker(p.root, 0, 1, extra); err == nil {
		t.Fatal("a CRL of 0 entries holding 1 serial was accepted")
	}
}

func TestCRLModeMeasuresIngestAndLookup(t *testing.T) {
	var r crlResult
	bench(t, &r, "crl", "--entries", "20000", "--lookup-time", "1ms", "--label", "t")
	if r.Entries != 20000 || r.IngestS <= 0 || r.DERBytes < 20000*35 || r.PerEntryB <= 0 {
		t.Fatalf("%+v", r)
	}
	if r.LookupMissNs <= 0 || r.LookupHitNs <= 0 {
		t.Fatalf("lookups not measured: %+v", r)
	}
	// The same through --crl/--ca, with the serials read back from the file.
	p := newPKI(t, 3000)
	var r2 crlResult
	bench(t, &r2, "crl", "--crl", filepath.Join(p.dir, fileBigDER), "--ca", filepath.Join(p.dir, fileRoot), "--lookup-time", "1ms")
	if r2.Entries != 3000 || r2.LookupHitNs <= 0 {
		t.Fatalf("%+v", r2)
	}
}

func TestSummarizeMediansRatiosAndTargets(t *testing.T) {
	lines := []string{
		`{"mode":"handshakes","label":"certgate/hs-small/1","ok":10,"rate_per_s":1500,"server_cpu_cores":0.98,"group":"X25519","latency":{"p99_ms":4}}`,
		`{"mode":"handshakes","label":"certgate/hs-small/2","ok":10,"rate_per_s":1700,"server_cpu_cores":0.99,"group":"X25519","latency":{"p99_ms":5}}`,
		`{"mode":"handshakes","label":"certgate/hs-small/3","ok":10,"rate_per_s":9000,"server_cpu_cores":0.97,"group":"X25519","latency":{"p99_ms":6}}`,
		`{"mode":"handshakes","label":"nginx/hs-small/1","ok":10,"rate_per_s":600,"server_cpu_cores":1,"group":"X25519","latency":{"p99_ms":9}}`,
		`{"mode":"handshakes","label":"certgate/hs-big/1","ok":10,"rate_per_s":1650,"group":"X25519"}`,
		`{"mode":"handshakes","label":"nginx/hs-big/1","ok":10,"rate_per_s":30,"group":"X25519"}`,
		`{"mode":"idle","label":"certgate/idle/1","bytes_per_conn":40000}`,
		`{"mode":"idle","label":"nginx/idle/1","bytes_per_conn":25000}`,
		`# a human line`,
	}
	var out bytes.Buffer
	if err := summarizeLines(strings.NewReader(strings.Join(lines, "\n")), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| hs-small | full handshakes/s | 1700 | 600 | 2.83× | ≥ 2.5× nginx | yes |", // the median, not the outlier
		"| hs-big | full handshakes/s, big CRL | 1650 | 30.00 | 55.00× | ≥ 50× nginx | yes |",
		"| idle | bytes per idle keep-alive conn | 40000 | 25000 | 1.60× | ≤ 1.2× nginx | **no** |",
		"| hs-big/hs-small | certgate big-CRL rate / small-CRL rate | 0.97× |",
		"| hs-small | server CPU µs per handshake | 582 | 1667 | 0.35× | ≤ 0.40× nginx (= 2.5× rate) | yes |",
		"| hs-small | certgate | 3 | 0.980 | – | X25519 | 0 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in\n%s", want, s)
		}
	}
	if err := summarizeLines(strings.NewReader("{not json"), io.Discard); err == nil {
		t.Fatal("a broken line was accepted")
	}
}

func TestBadInputIsAUsageError(t *testing.T) {
	p := newPKI(t, 1)
	cert, key, ca := filepath.Join(p.dir, fileClient), filepath.Join(p.dir, fileClientKey), filepath.Join(p.dir, fileRoot)
	for _, args := range [][]string{
		{},
		{"nope"},
		{"handshakes"},
		{"handshakes", "--url", "http://x/", "--cert", cert, "--key", key, "--cacert", ca},
		{"handshakes", "--url", "https://x/", "--cert", cert, "--key", key},
		{"handshakes", "--url", "https://x/", "--cert", cert, "--key", key, "--cacert", ca, "--tls12", "--tls13"},
		{"handshakes", "--url", "https://x/", "--cert", cert, "--key", key, "--cacert", ca, "--curves", "X448"},
		{"handshakes", "--url", "https://x/", "--cert", cert, "--key", key, "--cacert", ca, "--workers", "0"},
		{"crl-refresh", "--url", "https://x/", "--cert", cert, "--key", key, "--cacert", ca},
		{"handshakes", "--url", "https://x/", "--cert", cert, "--key", key, "--cacert", ca, "--h2"},
		{"crl", "--crl", "x.der"},
		{"pki"},
		{"pki", "--dir", t.TempDir(), "--entries", "0"},
		{"crl-serve", "--dir", p.dir, "--count", "0"},
		{"serve-inproc", "--dir", p.dir},
		{"backend", "extra"},
	} {
		err := run(context.Background(), args, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	// A missing file is an error that names it, not a panic.
	err := run(context.Background(), []string{"handshakes", "--url", "https://127.0.0.1:1/", "--cert", "/nonexistent.pem", "--key", key, "--cacert", ca}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nonexistent.pem") {
		t.Fatalf("missing cert: %v", err)
	}
}

// TestSideBySideSmoke runs the side-by-side script with tiny settings. It
// needs nginx and takes about a minute, so it runs only when asked
// (CERTGATE_BENCH_SMOKE=1); CI does not run the comparison.
func TestSideBySideSmoke(t *testing.T) {
	if os.Getenv("CERTGATE_BENCH_SMOKE") == "" {
		t.Skip("set CERTGATE_BENCH_SMOKE=1 to run the side-by-side script (needs nginx)")
	}
	for _, tool := range []string{"nginx", "taskset", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed", tool)
		}
	}
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "sidebyside.sh")
	cmd.Env = append(os.Environ(), "ROUNDS=1", "DURATION=1s", "IDLE_CONNS=100", "BIG_ENTRIES=5000",
		"WORK="+work, "PORT_BASE=29440")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sum, err := os.ReadFile(filepath.Join(work, "summary.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{"| hs-small | full handshakes/s |", "| ka-h2 | keep-alive req/s HTTP/2 |", "| idle |", "| crl-refresh |"} {
		if !strings.Contains(string(sum), row) {
			t.Errorf("summary lacks %q:\n%s", row, sum)
		}
	}
	if strings.Contains(string(out), "failed (see above)") {
		t.Errorf("a load failed:\n%s", out)
	}
}

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// soak runs a real certgate binary for a bounded time under a mix of good,
// revoked, unmapped and certificate-less clients while its config is
// reloaded and its CRL replaced every few seconds, and checks every single
// decision. It reports errors by kind and the process's goroutines, open
// file descriptors and RSS at the start and the end, read from /metrics.
type soakFlags struct {
	binary    string
	duration  time.Duration
	clients   int
	crlEvery  time.Duration
	reloadEvy time.Duration
	dir       string
	settle    time.Duration
}

const soakKinds = 4 // good, revoked, unmapped, no certificate

var soakKindNames = [soakKinds]string{"good", "revoked", "unmapped", "nocert"}

// soakExpect is what certgate must answer each kind (rejectWith: http, so
// every refusal carries its reason).
var soakExpect = [soakKinds]struct {
	code int
	body string
}{
	{200, "hello alice@contoso.com"},
	{495, "SSL Certificate Error: revoked: "},
	{403, "Forbidden: identity_unmapped: "},
	{496, "SSL Certificate Required: no_certificate: "},
}

func parseSoakFlags(args []string) (*soakFlags, error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &soakFlags{}
	fs.StringVar(&f.binary, "certgate", "", "the certgate binary to run (required)")
	fs.DurationVar(&f.duration, "duration", 10*time.Minute, "how long the load runs (at most 10m)")
	fs.IntVar(&f.clients, "clients", 2000, "concurrent clients (at most 5000)")
	fs.DurationVar(&f.crlEvery, "crl-every", 3*time.Second, "how often a new CRL is published")
	fs.DurationVar(&f.reloadEvy, "reload-every", 5*time.Second, "how often the config is rewritten (a reload)")
	fs.StringVar(&f.dir, "dir", "", "work folder (default: a new temporary folder)")
	fs.DurationVar(&f.settle, "settle", 100*time.Second, "wait after the load before the last sample (past the 90 s backend idle timeout)")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("soak: %v", err)
	}
	switch {
	case f.binary == "":
		return nil, usagef("soak: --certgate BINARY is required")
	case f.duration <= 0 || f.duration > 10*time.Minute:
		return nil, usagef("soak: --duration must be in (0, 10m]")
	case f.clients <= 0 || f.clients > 5000:
		return nil, usagef("soak: --clients must be in [1, 5000]")
	case f.crlEvery < 100*time.Millisecond || f.reloadEvy < 100*time.Millisecond:
		return nil, usagef("soak: --crl-every and --reload-every must be at least 100ms")
	}
	return f, nil
}

// soakReport is the JSON line soak prints.
type soakReport struct {
	Duration       string            `json:"duration"`
	Clients        int               `json:"clients"`
	Requests       map[string]int64  `json:"requests"`        // by client kind
	WrongDecisions map[string]int64  `json:"wrong_decisions"` // by client kind: must be 0
	Errors         map[string]int64  `json:"errors"`          // transport errors by kind
	CRLsPublished  int64             `json:"crls_published"`
	Reloads        map[string]string `json:"reloads"`
	ErrorExamples  map[string]string `json:"error_examples,omitempty"`
	Start          procSample        `json:"start"`
	// Warm is taken once the load has run a while: backend connection
	// pools are full by then, so a leak shows as growth from Warm to End.
	Warm procSample `json:"warm"`
	End  procSample `json:"end"`
	// Settled is taken --settle after the load: with every client gone and
	// idle pools timed out, what is left is what certgate leaked.
	Settled procSample `json:"settled"`
}

type procSample struct {
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
	RSSBytes   float64 `json:"rss_bytes"`
}

func runSoak(ctx context.Context, args []string, out io.Writer) error {
	f, err := parseSoakFlags(args)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "certgate-soak-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}

	// PKI: alice good, bob revoked on the intermediate's CRL, mallory unmapped.
	root, err := pkigen.NewRoot("soak root")
	if err != nil {
		return err
	}
	inter, err := root.NewIntermediate("soak intermediate")
	if err != nil {
		return err
	}
	server, err := inter.NewServer([]string{"localhost", "127.0.0.1"})
	if err != nil {
		return err
	}
	bobSerial := big.NewInt(0xb0b)
	leaves := [3]*pkigen.Leaf{}
	for i, spec := range []struct {
		cn   string
		opts []pkigen.Option
	}{
		{"alice", []pkigen.Option{pkigen.UPN("alice@contoso.com")}},
		{"bob", []pkigen.Option{pkigen.UPN("bob@contoso.com"), pkigen.Serial(bobSerial)}},
		{"mallory", []pkigen.Option{pkigen.UPN("mallory@fabrikam.com")}},
	} {
		if leaves[i], err = inter.NewLeaf(spec.cn, spec.opts...); err != nil {
			return err
		}
	}
	if err := pkigen.WriteCert(filepath.Join(dir, "root.pem"), root.Cert); err != nil {
		return err
	}
	if err := pkigen.WriteCert(filepath.Join(dir, "inter.pem"), inter.Cert); err != nil {
		return err
	}
	if err := pkigen.WriteLeaf(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), server, true); err != nil {
		return err
	}
	users := "users:\n  - userPrincipalName: alice@contoso.com\n  - userPrincipalName: bob@contoso.com\n"
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users), 0o644); err != nil {
		return err
	}

	// The CRL server publishes a new CRL every crlEvery; bob stays revoked,
	// and a changing decoy serial makes each CRL differ.
	var crlMu sync.Mutex
	var crlNumber atomic.Int64
	var current, rootCRL []byte
	publish := func() error {
		n := crlNumber.Add(1)
		now := time.Now()
		der, err := inter.CRL(pkigen.CRLOptions{Number: n, ThisUpdate: now.Add(-time.Second), NextUpdate: now.Add(time.Hour),
			Revoked: pkigen.Revoke(now.Add(-time.Hour), bobSerial, big.NewInt(1_000_000+n))})
		if err != nil {
			return err
		}
		rder, err := root.CRL(pkigen.CRLOptions{Number: n, ThisUpdate: now.Add(-time.Second), NextUpdate: now.Add(time.Hour)})
		if err != nil {
			return err
		}
		crlMu.Lock()
		current, rootCRL = der, rder
		crlMu.Unlock()
		return nil
	}
	if err := publish(); err != nil {
		return err
	}
	crlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	crlSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		crlMu.Lock()
		der := current
		if r.URL.Path == "/root.crl" {
			der = rootCRL
		}
		crlMu.Unlock()
		w.Write(der)
	})}
	go crlSrv.Serve(crlLn)
	defer crlSrv.Close()

	be, err := startBackend("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer be.Close()

	proxyPort, err := freePort()
	if err != nil {
		return err
	}
	adminPort, err := freePort()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "certgate.yaml")
	writeConfig := func(gen int) error {
		cfg := fmt.Sprintf(`# soak generation %d
listen: "127.0.0.1:%d"
admin: {listen: "127.0.0.1:%d"}
serverTLS: {certFile: server.pem, keyFile: server-key.pem}
clientAuth: {rejectWith: http}
trustedCertificateAuthorities:
  - {authorityType: root, trustedCertificate: root.pem, crlDistributionPoint: "http://%s/root.crl"}
  - {authorityType: intermediate, trustedCertificate: inter.pem, crlDistributionPoint: "http://%s/inter.crl"}
revocation: {minRefresh: 1s, maxRefresh: 2s, cacheDir: crl-cache}
identity:
  directory: {file: users.yaml}
routes:
  - {name: web, pathPrefix: /, backend: "http://%s"}
logging: {level: warn}
reload: {pollInterval: 1s}
# One address plays the whole fleet, refused clients included.
limits: {maxConnections: 20000, maxUnauthenticatedPerIP: 20000}
`, gen, proxyPort, adminPort, crlLn.Addr(), crlLn.Addr(), be.Addr())
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, cfgPath)
	}
	if err := writeConfig(0); err != nil {
		return err
	}

	cmd := exec.CommandContext(ctx, f.binary, "serve", "--config", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "certgate.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
		}
	}()
	adminURL := fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	if err := waitReady(ctx, adminURL+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("certgate did not become ready: %w (log: %s)", err, filepath.Join(dir, "certgate.log"))
	}
	start, err := sampleProc(adminURL)
	if err != nil {
		return err
	}

	rep := soakReport{Duration: f.duration.String(), Clients: f.clients, Requests: map[string]int64{},
		WrongDecisions: map[string]int64{}, Errors: map[string]int64{}, Start: start}
	var requests, wrong [soakKinds]atomic.Int64
	var errMu sync.Mutex
	rep.ErrorExamples = map[string]string{}
	noteErr := func(kind string, err error) {
		errMu.Lock()
		rep.Errors[kind]++
		if _, ok := rep.ErrorExamples[kind]; !ok && err != nil {
			rep.ErrorExamples[kind] = err.Error()
		}
		errMu.Unlock()
	}

	loadCtx, cancel := context.WithTimeout(ctx, f.duration)
	defer cancel()
	var wg sync.WaitGroup
	// Config and CRL churn.
	wg.Add(1)
	go func() {
		defer wg.Done()
		crlT, cfgT := time.NewTicker(f.crlEvery), time.NewTicker(f.reloadEvy)
		defer crlT.Stop()
		defer cfgT.Stop()
		gen := 0
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-crlT.C:
				if err := publish(); err != nil {
					noteErr("crl_sign", err)
				}
				rep.CRLsPublished++
			case <-cfgT.C:
				gen++
				if err := writeConfig(gen); err != nil {
					noteErr("config_write", err)
				}
			}
		}
	}()

	roots := x509.NewCertPool()
	roots.AddCert(root.Cert)
	addr := fmt.Sprintf("127.0.0.1:%d", proxyPort)
	for i := 0; i < f.clients; i++ {
		kind := i % soakKinds
		cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}}
		if kind < 3 {
			l := leaves[kind]
			cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{l.Cert.Raw, inter.Cert.Raw}, PrivateKey: l.Key, Leaf: l.Cert}}
		}
		wg.Add(1)
		go func(kind int, cfg *tls.Config) {
			defer wg.Done()
			soakClient(loadCtx, addr, cfg, kind, &requests[kind], &wrong[kind], noteErr)
		}(kind, cfg)
	}
	warmAt := min(time.Minute, f.duration/4)
	select {
	case <-loadCtx.Done():
	case <-time.After(warmAt):
		rep.Warm, _ = sampleProc(adminURL)
	}
	wg.Wait()
	end, err := sampleProc(adminURL)
	if err != nil {
		return err
	}
	rep.End = end
	select {
	case <-ctx.Done():
	case <-time.After(f.settle):
	}
	if rep.Settled, err = sampleProc(adminURL); err != nil {
		return err
	}
	rep.Reloads, _ = scrapeReloads(adminURL)
	var totalWrong int64
	for k := 0; k < soakKinds; k++ {
		rep.Requests[soakKindNames[k]] = requests[k].Load()
		rep.WrongDecisions[soakKindNames[k]] = wrong[k].Load()
		totalWrong += wrong[k].Load()
	}
	b, _ := json.Marshal(rep)
	fmt.Fprintln(out, string(b))
	fmt.Fprintf(out, "soak %s, %d clients: requests %v, wrong decisions %v, errors %v, CRLs %d, reloads %v\n",
		rep.Duration, rep.Clients, rep.Requests, rep.WrongDecisions, rep.Errors, rep.CRLsPublished, rep.Reloads)
	st := rep.Settled
	fmt.Fprintf(out, "certgate start/warm/end/settled: goroutines %.0f/%.0f/%.0f/%.0f, fds %.0f/%.0f/%.0f/%.0f, RSS %.1f/%.1f/%.1f/%.1f MiB\n",
		start.Goroutines, rep.Warm.Goroutines, end.Goroutines, st.Goroutines, start.OpenFDs, rep.Warm.OpenFDs, end.OpenFDs, st.OpenFDs,
		start.RSSBytes/(1<<20), rep.Warm.RSSBytes/(1<<20), end.RSSBytes/(1<<20), st.RSSBytes/(1<<20))
	if totalWrong > 0 {
		return fmt.Errorf("%d wrong decisions", totalWrong)
	}
	return nil
}

// soakClient loops until ctx ends: a few requests per connection, then a
// new connection (a new handshake), and checks every answer.
func soakClient(ctx context.Context, addr string, cfg *tls.Config, kind int, requests, wrong *atomic.Int64, noteErr func(string, error)) {
	want := soakExpect[kind]
	d := &net.Dialer{Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() == nil {
				noteErr("dial", err)
				// Back off a little: a refused dial would otherwise spin.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
			continue
		}
		conn := tls.Client(raw, cfg)
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		for i := 0; i < 5 && ctx.Err() == nil; i++ {
			if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
				if ctx.Err() == nil {
					noteErr(classify(err), err)
				}
				break
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				if ctx.Err() == nil {
					noteErr(classify(err), err)
				}
				break
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			requests.Add(1)
			if resp.StatusCode != want.code || !strings.Contains(string(body), want.body) {
				wrong.Add(1)
				noteErr(fmt.Sprintf("wrong:%s:%d:%s", soakKindNames[kind], resp.StatusCode, strings.TrimSpace(string(body))), nil)
			}
			if resp.Close {
				break
			}
		}
		conn.Close()
	}
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	case strings.Contains(err.Error(), "tls:"):
		return "tls"
	default:
		return "other"
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("/readyz %d", resp.StatusCode)
			}
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sampleProc reads certgate's own view of itself from /metrics.
func sampleProc(adminURL string) (procSample, error) {
	m, err := scrape(adminURL)
	if err != nil {
		return procSample{}, err
	}
	return procSample{Goroutines: m["go_goroutines"], OpenFDs: m["process_open_fds"], RSSBytes: m["process_resident_memory_bytes"]}, nil
}

func scrape(adminURL string) (map[string]float64, error) {
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Fields(val)[0], 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}

func scrapeReloads(adminURL string) (map[string]string, error) {
	m, err := scrape(adminURL)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	keys := make([]string, 0)
	for k := range m {
		if strings.HasPrefix(k, "certgate_config_reloads_total") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out[strings.TrimPrefix(k, "certgate_config_reloads_total")] = strconv.FormatFloat(m[k], 'f', 0, 64)
	}
	return out, nil
}

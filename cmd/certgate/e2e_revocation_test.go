package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/trust"
)

// Revocation through the running proxy: CRLs served over HTTP on 127.0.0.1
// and switched by each test step, certgate's own fetcher, the real curl,
// and Go TLS clients where resumption or a kept-alive connection must be
// observed.

// revCRLHost is a CRL distribution point whose answers the test switches.
type revCRLHost struct {
	srv *httptest.Server

	mu      sync.Mutex
	bodies  map[string][]byte
	status  int // when non-zero every path answers it (the server is "down")
	hits    map[string]int
	numbers map[*pkigen.CA]int64 // CRL numbers only go up, base and delta alike
	// hitsAtPublish is hits[path] when path's current CRL was published:
	// a later hit was answered with it.
	hitsAtPublish map[string]int
}

func newRevCRLHost(t *testing.T) *revCRLHost {
	h := &revCRLHost{bodies: map[string][]byte{}, hits: map[string]int{}, numbers: map[*pkigen.CA]int64{}, hitsAtPublish: map[string]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		body, ok := h.bodies[r.URL.Path]
		status := h.status
		h.mu.Unlock()
		switch {
		case status != 0:
			w.WriteHeader(status)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/pkix-crl")
			w.Write(body)
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *revCRLHost) url(path string) string { return h.srv.URL + path }

func (h *revCRLHost) setStatus(code int) {
	h.mu.Lock()
	h.status = code
	h.mu.Unlock()
}

func (h *revCRLHost) hitCount(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

// publish signs the next CRL of ca listing the leaves and serves it at
// path; deltaBase > 0 makes it a delta CRL on that base number. It returns
// the CRL's number.
func (h *revCRLHost) publish(t *testing.T, path string, ca *pkigen.CA, thisUpdate time.Time, deltaBase int64, revoked ...*pkigen.Leaf) int64 {
	t.Helper()
	var serials []*big.Int
	for _, l := range revoked {
		serials = append(serials, l.Cert.SerialNumber)
	}
	h.mu.Lock()
	h.numbers[ca]++
	n := h.numbers[ca]
	h.mu.Unlock()
	der := ca.MustCRL(t, pkigen.CRLOptions{
		Number:     n,
		ThisUpdate: thisUpdate,
		NextUpdate: thisUpdate.Add(24 * time.Hour),
		Revoked:    pkigen.Revoke(thisUpdate.Add(-time.Minute), serials...),
		DeltaBase:  deltaBase,
	})
	h.mu.Lock()
	h.bodies[path] = der
	h.hitsAtPublish[path] = h.hits[path]
	h.mu.Unlock()
	return n
}

// fetchedSincePublish reports whether the CRL now at path has been served.
func (h *revCRLHost) fetchedSincePublish(path string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path] > h.hitsAtPublish[path]
}

// revClock is the proxy's clock in tests that need time to pass: it stands
// still until the test moves it.
type revClock struct{ ns atomic.Int64 }

func newRevClock(t time.Time) *revClock { c := &revClock{}; c.set(t); return c }
func (c *revClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *revClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }

// revEnv is an env whose two CAs have CRLs on a revCRLHost and no crlExempt.
type revEnv struct {
	*env
	crl   *revCRLHost
	clock *revClock // nil: real time
	ec    envConfig
}

type revOptions struct {
	rejectWith string
	delta      bool      // the intermediate also has a delta CRL URL
	cacheDir   bool      // revocation.cacheDir: crl-cache
	crlDown    bool      // the CRL server answers 500 from the start
	clock      *revClock // the proxy's clock
	users      string
	routes     string
	// setup runs before certgate starts, after the default CRLs (which
	// revoke nothing) are published.
	setup func(re *revEnv)
}

const (
	rootCRLPath   = "/root.crl"
	interCRLPath  = "/inter.crl"
	interDeltaCRL = "/inter-delta.crl"
)

func newRevEnv(t *testing.T, o revOptions) *revEnv {
	t.Helper()
	re := &revEnv{crl: newRevCRLHost(t), clock: o.clock}
	cas := fmt.Sprintf(`  - authorityType: root
    trustedCertificate: ca/root.pem
    crlDistributionPoint: %s
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlDistributionPoint: %s
`, re.crl.url(rootCRLPath), re.crl.url(interCRLPath))
	if o.delta {
		cas += "    deltaCrlDistributionPoint: " + re.crl.url(interDeltaCRL) + "\n"
	}
	extra := "revocation:\n  fetchTimeout: 5s\n"
	if o.cacheDir {
		extra += "  cacheDir: crl-cache\n"
	}
	re.ec = envConfig{
		rejectWith: o.rejectWith,
		caYAML:     cas,
		extraYAML:  extra,
		users:      o.users,
		routes:     o.routes,
		beforeStart: func(e *env) {
			re.env = e
			if o.crlDown {
				re.crl.setStatus(http.StatusInternalServerError)
			}
			tu := re.now().Add(-time.Minute)
			re.crl.publish(t, rootCRLPath, e.root, tu, 0)
			base := re.crl.publish(t, interCRLPath, e.inter, tu, 0)
			if o.delta {
				re.crl.publish(t, interDeltaCRL, e.inter, tu, base)
			}
			if o.setup != nil {
				o.setup(re)
			}
		},
	}
	if o.clock != nil {
		re.ec.now = o.clock.now
	}
	newEnv(t, re.ec)
	return re
}

func (re *revEnv) now() time.Time {
	if re.clock != nil {
		return re.clock.now()
	}
	return time.Now()
}

func (re *revEnv) cfgPath() string { return filepath.Join(re.dir, "certgate.yaml") }

// restart stops the running instance and starts a new one on the same
// files, as an operator's restart would.
func (re *revEnv) restart() {
	re.t.Helper()
	re.inst.close()
	inst, err := startFromConfig(context.Background(), re.cfgPath(), re.logs, instanceOptions{now: re.ec.now})
	if err != nil {
		re.t.Fatalf("restart: %v\nlogs:\n%s", err, re.logs)
	}
	re.inst = inst
	re.t.Cleanup(inst.close)
}

// refreshCRLs is an operator's POST /crl/refresh on the admin listener.
func (re *revEnv) refreshCRLs() {
	re.t.Helper()
	resp, err := http.Post("http://"+re.inst.adminAddr()+"/crl/refresh", "", nil)
	if err != nil {
		re.t.Fatalf("POST /crl/refresh: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		re.t.Fatalf("POST /crl/refresh: %d %s", resp.StatusCode, b)
	}
}

func (re *revEnv) adminGet(path string) (int, string) {
	re.t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get("http://" + re.inst.adminAddr() + path)
	if err != nil {
		re.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		re.t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(b)
}

// metric reads one sample from /metrics; series is the name with its
// labels as Prometheus prints them. Absent means 0.
func (re *revEnv) metric(series string) float64 {
	re.t.Helper()
	code, body := re.adminGet("/metrics")
	if code != http.StatusOK {
		re.t.Fatalf("/metrics: %d", code)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				re.t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// decisions counts the decision log lines about leaf with reason.
func (re *revEnv) decisions(leaf *pkigen.Leaf, reason string) int {
	n := 0
	serial := leaf.Cert.SerialNumber.Text(16)
	for _, line := range strings.Split(re.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["msg"] == "decision" && m["serial"] == serial && m["reason"] == reason {
			n++
		}
	}
	return n
}

// revDevice is a Go TLS client holding one certificate and a session cache,
// as a phone would; certShown counts full handshakes in which it presented
// its certificate (a resumed handshake never asks).
type revDevice struct {
	re        *revEnv
	cfg       *tls.Config
	certShown atomic.Int32
	keepAlive *http.Transport // for requests that must share a connection
}

func (re *revEnv) device(leaf *pkigen.Leaf, version uint16) *revDevice {
	roots := x509.NewCertPool()
	roots.AddCert(re.root.Cert)
	cert := tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw, re.inter.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
	d := &revDevice{re: re}
	d.cfg = &tls.Config{
		RootCAs:            roots,
		ServerName:         "localhost",
		MinVersion:         version,
		MaxVersion:         version,
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			d.certShown.Add(1)
			return &cert, nil
		},
	}
	d.keepAlive = &http.Transport{TLSClientConfig: d.cfg}
	re.t.Cleanup(d.keepAlive.CloseIdleConnections)
	return d
}

type revResult struct {
	code    int
	body    string
	resumed bool
	reused  bool // the request went over an already open connection
	err     error
}

// get makes one request on a new connection.
func (d *revDevice) get(path string) revResult {
	tr := &http.Transport{TLSClientConfig: d.cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	return d.do(tr, path)
}

// getKeepAlive makes one request on the device's kept-alive connection.
func (d *revDevice) getKeepAlive(path string) revResult { return d.do(d.keepAlive, path) }

func (d *revDevice) do(tr *http.Transport, path string) revResult {
	var reused atomic.Bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused.Store(i.Reused) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.re.url(path), nil)
	if err != nil {
		return revResult{err: err}
	}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return revResult{err: err, reused: reused.Load()}
	}
	defer resp.Body.Close()
	// Reading the body also reads the TLS 1.3 tickets sent before it.
	b, err := io.ReadAll(resp.Body)
	return revResult{code: resp.StatusCode, body: string(b), resumed: resp.TLS.DidResume, reused: reused.Load(), err: err}
}

func (d *revDevice) mustGet(t *testing.T, path string, wantResumed bool) revResult {
	t.Helper()
	r := d.get(path)
	if r.err != nil || r.code != http.StatusOK {
		t.Fatalf("GET %s: %d %q %v, want 200", path, r.code, r.body, r.err)
	}
	if r.resumed != wantResumed {
		t.Fatalf("GET %s: DidResume = %v, want %v", path, r.resumed, wantResumed)
	}
	return r
}

func revWantTLSRefusal(t *testing.T, r curlResult) {
	t.Helper()
	if r.code != 0 || r.exit == 0 {
		t.Fatalf("want a TLS failure, got HTTP %d %q exit %d", r.code, r.body, r.exit)
	}
}

func revWant200(t *testing.T, r curlResult, user string) {
	t.Helper()
	if r.code != http.StatusOK || !strings.Contains(r.body, "hello "+user) {
		t.Fatalf("want 200 hello %s, got %d %q (%s)", user, r.code, r.body, r.stderr)
	}
}

func revWant403(t *testing.T, r curlResult, reason string) {
	t.Helper()
	if r.code != proxy.RefusalStatus(reason) || !strings.Contains(r.body, reason) {
		t.Fatalf("want %d %s, got %d %q (%s)", proxy.RefusalStatus(reason), reason, r.code, r.body, r.stderr)
	}
}

// A certificate listed on its CA's CRL is refused, in the handshake (log
// line and metric with reason revoked) or with 403 revoked; a certificate of
// the same CA that is not listed is admitted.
func TestServeRevokedCertificateRefused(t *testing.T) {
	requireCurl(t)
	for _, mode := range []string{"handshake", "http"} {
		t.Run(mode, func(t *testing.T) {
			var good, bad *pkigen.Leaf
			re := newRevEnv(t, revOptions{rejectWith: mode, setup: func(re *revEnv) {
				good = re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
				bad = re.inter.Leaf(t, "Alice old", pkigen.UPN("alice@contoso.com"))
				re.crl.publish(t, interCRLPath, re.inter, re.now().Add(-time.Minute), 0, bad)
			}})
			gc, gk := re.writeLeaf("good", good)
			bc, bk := re.writeLeaf("bad", bad)
			res := re.curl(bc, bk)
			if mode == "http" {
				revWant403(t, res, "revoked")
			} else {
				revWantTLSRefusal(t, res)
			}
			if got := re.metric(`certgate_auth_decisions_total{reason="revoked"}`); got < 1 {
				t.Errorf(`certgate_auth_decisions_total{reason="revoked"} = %v, want >= 1`, got)
			}
			if re.decisions(bad, "revoked") == 0 {
				t.Errorf("no decision line with reason revoked for the revoked serial:\n%s", re.logs)
			}
			revWant200(t, re.curl(gc, gk), "alice@contoso.com")
			if n := len(re.backend.requests()); n != 1 {
				t.Fatalf("backend saw %d requests, want only the good one", n)
			}
		})
	}
}

// A serial revoked while certgate runs is refused once the new CRL is in
// (POST /crl/refresh, no restart), and so is the next request on a
// connection that was opened and admitted before the revocation: the
// per-connection decision is taken again when the CRL generation moves.
func TestServeRevocationWithoutRestart(t *testing.T) {
	requireCurl(t)
	re := newRevEnv(t, revOptions{})
	alice := re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	other := re.inter.Leaf(t, "Alice laptop", pkigen.UPN("alice@contoso.com"))
	ac, ak := re.writeLeaf("alice", alice)
	oc, ok := re.writeLeaf("other", other)
	revWant200(t, re.curl(ac, ak), "alice@contoso.com")

	phone := re.device(alice, 0)
	if r := phone.getKeepAlive("/"); r.err != nil || r.code != http.StatusOK {
		t.Fatalf("first request: %d %v", r.code, r.err)
	}
	gen := re.inst.rev.Generation()

	re.crl.publish(t, interCRLPath, re.inter, time.Now().Add(-time.Minute), 0, alice)
	re.refreshCRLs()
	if re.inst.rev.Generation() == gen {
		t.Fatal("the refresh installed no new CRL")
	}

	revWantTLSRefusal(t, re.curl(ac, ak))
	if re.decisions(alice, "revoked") == 0 {
		t.Errorf("no decision line with reason revoked:\n%s", re.logs)
	}
	r := phone.getKeepAlive("/")
	if !r.reused {
		t.Fatal("the second request did not reuse the open connection; the test proves nothing")
	}
	if r.err != nil || r.code != proxy.StatusCertificateError || !strings.Contains(r.body, "revoked") {
		t.Fatalf("open connection after revocation: %d %q %v, want 495 revoked", r.code, r.body, r.err)
	}
	revWant200(t, re.curl(oc, ok), "alice@contoso.com")
	if n := len(re.backend.requests()); n != 3 {
		t.Fatalf("backend saw %d requests, want 3 (two before the revocation, one by the other cert)", n)
	}
}

// A serial listed only in the delta CRL is refused; the base alone would
// admit it.
func TestServeRevokedInDeltaCRL(t *testing.T) {
	requireCurl(t)
	var good, bad *pkigen.Leaf
	re := newRevEnv(t, revOptions{delta: true, setup: func(re *revEnv) {
		good = re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
		bad = re.inter.Leaf(t, "Alice lost phone", pkigen.UPN("alice@contoso.com"))
		tu := re.now().Add(-time.Minute)
		base := re.crl.publish(t, interCRLPath, re.inter, tu, 0)
		re.crl.publish(t, interDeltaCRL, re.inter, tu, base, bad)
	}})
	bc, bk := re.writeLeaf("bad", bad)
	gc, gk := re.writeLeaf("good", good)
	revWantTLSRefusal(t, re.curl(bc, bk))
	if re.decisions(bad, "revoked") == 0 {
		t.Errorf("no decision line with reason revoked:\n%s", re.logs)
	}
	revWant200(t, re.curl(gc, gk), "alice@contoso.com")
	if re.crl.hitCount(interDeltaCRL) == 0 {
		t.Fatal("certgate never fetched the delta CRL")
	}
}

// With cacheDir, the last good CRLs survive a restart while the CRL server
// is down: revoked still refused, good admitted, /readyz 200. Without a
// cached CRL and with the server down, everyone is refused as
// crl_unavailable and /readyz says which CA lacks a CRL.
func TestServeRevocationCacheDir(t *testing.T) {
	requireCurl(t)
	t.Run("cached", func(t *testing.T) {
		var good, bad *pkigen.Leaf
		re := newRevEnv(t, revOptions{cacheDir: true, setup: func(re *revEnv) {
			good = re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
			bad = re.inter.Leaf(t, "Alice old", pkigen.UPN("alice@contoso.com"))
			re.crl.publish(t, interCRLPath, re.inter, re.now().Add(-time.Minute), 0, bad)
		}})
		gc, gk := re.writeLeaf("good", good)
		bc, bk := re.writeLeaf("bad", bad)
		revWantTLSRefusal(t, re.curl(bc, bk))
		cached, _ := filepath.Glob(filepath.Join(re.dir, "crl-cache", "*.crl"))
		if len(cached) != 2 {
			t.Fatalf("cache dir holds %q, want the root's and the intermediate's CRL", cached)
		}

		re.crl.setStatus(http.StatusInternalServerError)
		hits := re.crl.hitCount(interCRLPath)
		re.restart()
		if re.crl.hitCount(interCRLPath) == hits {
			t.Fatal("the restarted certgate did not try the CRL server")
		}
		before := re.decisions(bad, "revoked")
		revWantTLSRefusal(t, re.curl(bc, bk))
		if re.decisions(bad, "revoked") != before+1 {
			t.Errorf("the revoked certificate was not refused as revoked after the restart:\n%s", re.logs)
		}
		revWant200(t, re.curl(gc, gk), "alice@contoso.com")
		if code, body := re.adminGet("/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz = %d %q, want 200 from the cached CRLs", code, body)
		}
	})
	t.Run("empty", func(t *testing.T) {
		re := newRevEnv(t, revOptions{cacheDir: true, crlDown: true})
		alice := re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
		ac, ak := re.writeLeaf("alice", alice)
		revWantTLSRefusal(t, re.curl(ac, ak))
		if re.decisions(alice, "crl_unavailable") == 0 {
			t.Errorf("no decision line with reason crl_unavailable:\n%s", re.logs)
		}
		code, body := re.adminGet("/readyz")
		interSKI := hex.EncodeToString(trust.SubjectKeyID(re.inter.Cert))
		if code != http.StatusServiceUnavailable || !strings.Contains(body, interSKI) || !strings.Contains(body, "no CRL") {
			t.Fatalf("/readyz = %d %q, want 503 naming CA %s", code, body, interSKI)
		}
		if n := len(re.backend.requests()); n != 0 {
			t.Fatalf("backend saw %d requests with no CRL in force", n)
		}
	})
}

// `certgate check` decides a revoked certificate as serve does: it fetches
// the configured CRLs itself and exits 1 with reason revoked.
func TestCheckRevokedCertificate(t *testing.T) {
	var good, bad *pkigen.Leaf
	re := newRevEnv(t, revOptions{setup: func(re *revEnv) {
		good = re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
		bad = re.inter.Leaf(t, "Alice old", pkigen.UPN("alice@contoso.com"))
		re.crl.publish(t, interCRLPath, re.inter, re.now().Add(-time.Minute), 0, bad)
	}})
	bc, _ := re.writeLeaf("bad", bad)
	gc, _ := re.writeLeaf("good", good)
	hits := re.crl.hitCount(interCRLPath)
	code, out, errOut := runCLI(t, "check", "--config", re.cfgPath(), bc)
	if code != 1 || !strings.HasPrefix(out, "rejected: revoked") {
		t.Fatalf("check revoked: exit %d, stdout %q, stderr %q; want 1 rejected: revoked", code, out, errOut)
	}
	if re.crl.hitCount(interCRLPath) == hits {
		t.Fatal("check did not fetch the CRL")
	}
	code, out, errOut = runCLI(t, "check", "--config", re.cfgPath(), "--json", bc)
	var res checkResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Reason != "revoked" || res.Decision != "rejected" {
		t.Fatalf("check --json: exit %d, %+v (%v), stderr %q", code, res, err, errOut)
	}
	if code, out, errOut := runCLI(t, "check", "--config", re.cfgPath(), gc); code != 0 || !strings.HasPrefix(out, "accepted: alice@contoso.com") {
		t.Fatalf("check good: exit %d, %q %q", code, out, errOut)
	}
}

// A resumed TLS session is decided again: after the certificate is
// revoked, a client resuming with its cached session (no certificate
// presented) is refused, in the handshake or with 403, and the log shows
// reason revoked for it.
func TestServeResumedSessionOfRevokedCertificate(t *testing.T) {
	versions := []struct {
		name string
		v    uint16
	}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}}
	for _, mode := range []string{"handshake", "http"} {
		t.Run(mode, func(t *testing.T) {
			re := newRevEnv(t, revOptions{rejectWith: mode})
			var revoked []*pkigen.Leaf
			for _, ver := range versions {
				t.Run(ver.name, func(t *testing.T) {
					leaf := re.inter.Leaf(t, "Alice "+ver.name, pkigen.UPN("alice@contoso.com"))
					phone := re.device(leaf, ver.v)
					phone.mustGet(t, "/", false)
					phone.mustGet(t, "/", true)
					if n := phone.certShown.Load(); n != 1 {
						t.Fatalf("certificate presented %d times, want once (the resumption must not ask)", n)
					}

					revoked = append(revoked, leaf)
					re.crl.publish(t, interCRLPath, re.inter, time.Now().Add(-time.Minute), 0, revoked...)
					re.refreshCRLs()

					before := re.decisions(leaf, "revoked")
					r := phone.get("/")
					if mode == "http" {
						if r.err != nil || r.code != proxy.StatusCertificateError || !strings.Contains(r.body, "revoked") || !r.resumed {
							t.Fatalf("resumed after revocation: %d %q resumed=%v %v, want 495 revoked on a resumed session", r.code, r.body, r.resumed, r.err)
						}
					} else if r.err == nil {
						t.Fatalf("resumed after revocation: %d %q, want a TLS failure", r.code, r.body)
					}
					if n := phone.certShown.Load(); n != 1 {
						t.Fatalf("certificate presented %d times: the refused connection was a full handshake, not the resumption", n)
					}
					if re.decisions(leaf, "revoked") <= before {
						t.Fatalf("no decision line with reason revoked for the resumed handshake:\n%s", re.logs)
					}
				})
			}
			if n := len(re.backend.requests()); n != 2*len(versions) {
				t.Fatalf("backend saw %d requests, want %d (none after a revocation)", n, 2*len(versions))
			}
		})
	}
}

// revHoldBackend answers /hold only when the test releases that user's
// request or the request is cancelled; every other path answers at once.
type revHoldBackend struct {
	srv       *httptest.Server
	entered   chan string // the user of each /hold request that arrived
	cancelled chan string // the user of each /hold request cut upstream
	mu        sync.Mutex
	release   map[string]chan struct{}
}

func newRevHoldBackend(t *testing.T) *revHoldBackend {
	b := &revHoldBackend{entered: make(chan string, 16), cancelled: make(chan string, 16), release: map[string]chan struct{}{}}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("X-Remote-User")
		if r.URL.Path != "/hold" {
			fmt.Fprintf(w, "hello %s\n", user)
			return
		}
		b.entered <- user
		select {
		case <-b.releaseCh(user):
			fmt.Fprintf(w, "released %s\n", user)
		case <-r.Context().Done():
			b.cancelled <- user
		}
	}))
	t.Cleanup(func() {
		b.mu.Lock()
		for _, ch := range b.release {
			select {
			case <-ch:
			default:
				close(ch)
			}
		}
		b.mu.Unlock()
		b.srv.Close()
	})
	return b
}

func (b *revHoldBackend) releaseCh(user string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := b.release[user]
	if ch == nil {
		ch = make(chan struct{})
		b.release[user] = ch
	}
	return ch
}

func revWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// hold starts a long request on a connection of its own and returns where
// its outcome will arrive.
func (d *revDevice) hold() <-chan revResult {
	ch := make(chan revResult, 1)
	tr := &http.Transport{TLSClientConfig: d.cfg}
	d.re.t.Cleanup(tr.CloseIdleConnections)
	go func() { ch <- d.do(tr, "/hold") }()
	return ch
}

// SPEC step 4 end to end. `certgate user revoke-sessions` edits users.yaml;
// the running serve notices, cuts alice's open long poll (not bob's),
// stops resuming TLS sessions issued before the revocation, fetches a CRL
// at once, and refuses alice as session_revoked until a CRL published
// after the revocation is in force. Then alice is admitted again, with a
// full handshake for a device that held a session from before.
func TestServeRevokeSessions(t *testing.T) {
	requireCurl(t)
	// The proxy's clock stands still at t0 until the test moves it: the
	// connections and sessions set up below are then strictly older than
	// the whole-second revocation time, and the 10-second pacing of CRL
	// requests passes without waiting.
	t0 := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	clock := newRevClock(t0)
	hb := newRevHoldBackend(t)
	re := newRevEnv(t, revOptions{
		rejectWith: "http",
		clock:      clock,
		users: `users:
  - userPrincipalName: alice@contoso.com
    accountEnabled: true
  - userPrincipalName: bob@contoso.com
    accountEnabled: true
`,
		routes: fmt.Sprintf("  - name: web\n    kind: web\n    pathPrefix: /\n    backend: %s\n", hb.srv.URL),
	})
	alice := re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	bob := re.inter.Leaf(t, "Bob", pkigen.UPN("bob@contoso.com"))
	ac, ak := re.writeLeaf("alice", alice)
	bc, bk := re.writeLeaf("bob", bob)

	// Devices with TLS sessions from before the revocation; each resumes.
	phones := map[string]*revDevice{"TLS1.3": re.device(alice, tls.VersionTLS13), "TLS1.2": re.device(alice, tls.VersionTLS12)}
	for _, p := range phones {
		p.mustGet(t, "/", false)
		p.mustGet(t, "/", true)
	}
	aliceHold, bobHold := re.device(alice, 0).hold(), re.device(bob, 0).hold()
	got := map[string]bool{}
	for range 2 {
		got[revWait(t, hb.entered, "the long requests to reach the backend")] = true
	}
	if !got["alice@contoso.com"] || !got["bob@contoso.com"] {
		t.Fatalf("long requests from %v, want alice and bob", got)
	}

	fetches := re.crl.hitCount(interCRLPath)
	code, out, errOut := runCLI(t, "user", "revoke-sessions", "--config", re.cfgPath(), "alice@contoso.com")
	if code != 0 {
		t.Fatalf("revoke-sessions: exit %d %q %q", code, out, errOut)
	}
	users, err := trust.LoadUsers(filepath.Join(re.dir, "users.yaml"))
	must(t, err)
	vf := users.Users()[0].SessionsValidFrom
	if vf.IsZero() || !vf.After(t0) {
		t.Fatalf("stsRefreshTokensValidFrom = %v, want after %v", vf, t0)
	}

	// The open long poll is cut, in the proxy and upstream; bob's is not.
	r := revWait(t, aliceHold, "alice's long request to be cut")
	if r.err == nil {
		t.Fatalf("alice's long request completed (%d %q) after her sessions were revoked", r.code, r.body)
	}
	if u := revWait(t, hb.cancelled, "the backend to see alice's request cancelled"); u != "alice@contoso.com" {
		t.Fatalf("cancelled upstream: %s, want alice", u)
	}
	close(hb.releaseCh("bob@contoso.com"))
	if r := revWait(t, bobHold, "bob's long request"); r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, "released bob@contoso.com") {
		t.Fatalf("bob's long request: %d %q %v, want it to complete", r.code, r.body, r.err)
	}

	// certgate asks for a fresh CRL by itself, before alice knocks.
	deadline := time.Now().Add(10 * time.Second)
	for re.crl.hitCount(interCRLPath) == fetches {
		if time.Now().After(deadline) {
			t.Fatal("certgate did not fetch the CRL after the revocation")
		}
		time.Sleep(20 * time.Millisecond) // polling a background fetch
	}

	// Until a CRL published after the revocation is in, alice is refused.
	clock.set(vf.Add(time.Second))
	revWant403(t, re.curl(ac, ak), "session_revoked")
	if re.decisions(alice, "session_revoked") == 0 {
		t.Errorf("no decision line with reason session_revoked:\n%s", re.logs)
	}
	revWant200(t, re.curl(bc, bk), "bob@contoso.com")

	// A CRL published after the revocation: alice's knocks make certgate
	// fetch it (at most one request per CA every 10 seconds, hence the
	// clock moving 11s a knock), then she is admitted.
	re.crl.publish(t, interCRLPath, re.inter, vf.Add(time.Second), 0)
	now := vf.Add(time.Second)
	deadline = time.Now().Add(15 * time.Second)
	for {
		now = now.Add(11 * time.Second)
		clock.set(now)
		updated := re.inst.rev.Updated()
		res := re.curl(ac, ak)
		if res.code == http.StatusOK {
			revWant200(t, res, "alice@contoso.com")
			break
		}
		revWant403(t, res, "session_revoked")
		if time.Now().After(deadline) {
			t.Fatal("alice still refused 15s after a CRL newer than the revocation was published")
		}
		select {
		case <-updated:
		case <-time.After(2 * time.Second):
		}
	}
	if !re.crl.fetchedSincePublish(interCRLPath) {
		t.Fatal("alice admitted again without the new CRL being fetched")
	}

	// The devices' sessions from before the revocation are not resumed: a
	// full handshake, the certificate shown again, and alice admitted. The
	// session issued now resumes later.
	clock.set(vf.Add(10 * time.Minute))
	for name, p := range phones {
		t.Run(name, func(t *testing.T) {
			shown := p.certShown.Load()
			p.mustGet(t, "/", false)
			if p.certShown.Load() != shown+1 {
				t.Fatal("the old session was resumed: no certificate presented")
			}
			p.mustGet(t, "/", true)
		})
	}
}

// The session tickets certgate stamps survive a reload of the policy
// (which builds a new tls.Config) and the installation of shared ticket
// keys, so the revocation guard costs no resumption in normal operation.
func TestServeSessionsResumeAcrossReload(t *testing.T) {
	re := newRevEnv(t, revOptions{})
	alice := re.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			p := re.device(alice, v)
			p.mustGet(t, "/", false)
			reloads := re.metric(`certgate_config_reloads_total{result="ok"}`)
			users, err := os.ReadFile(filepath.Join(re.dir, "users.yaml"))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(re.dir, "users.yaml"), append(users, []byte("# touched\n")...), 0o644))
			deadline := time.Now().Add(10 * time.Second)
			for re.metric(`certgate_config_reloads_total{result="ok"}`) == reloads {
				if time.Now().After(deadline) {
					t.Fatal("no reload within 10s")
				}
				time.Sleep(20 * time.Millisecond) // polling the background watcher
			}
			p.mustGet(t, "/", true)

			var key [32]byte
			copy(key[:], bytes.Repeat([]byte{byte(v)}, 32))
			re.inst.srv.SetSessionTicketKeys([][32]byte{key})
			p.mustGet(t, "/", false) // sealed under the old keys
			p.mustGet(t, "/", true)
		})
	}
}

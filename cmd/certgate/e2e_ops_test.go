package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ocsp"
	"gopkg.in/yaml.v3"
)

// opsBackend answers /slow with a response that starts at once and ends
// only when the test releases it (a long poll in flight across a reload or
// a drain), and anything else with the identity headers it received.
type opsBackend struct {
	srv      *httptest.Server
	arrived  chan struct{}
	release  chan struct{}
	releaseO sync.Once
}

func newOpsBackend(t *testing.T) *opsBackend {
	b := &opsBackend{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			fmt.Fprintf(w, "slow start %s\n", r.Header.Get("X-Remote-User"))
			http.NewResponseController(w).Flush()
			b.arrived <- struct{}{}
			select {
			case <-b.release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "slow end\n")
			return
		}
		fmt.Fprintf(w, "hello %s|%s\n", r.Header.Get("X-Remote-User"), r.Header.Get("X-Auth-User"))
	}))
	t.Cleanup(func() {
		b.releaseAll()
		b.srv.Close()
	})
	return b
}

func (b *opsBackend) releaseAll() { b.releaseO.Do(func() { close(b.release) }) }

func (b *opsBackend) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-b.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the long request never reached the backend")
	}
}

func (b *opsBackend) routes() string {
	return fmt.Sprintf("  - name: web\n    kind: web\n    pathPrefix: /\n    backend: %s\n", b.srv.URL)
}

// opsEnv is newEnv with the ops backend and a copy of the root that
// signed the server certificate, so curl keeps trusting the server while
// a test replaces ca/root.pem.
type opsEnv struct {
	*env
	be         *opsBackend
	serverRoot string
}

func newOpsEnv(t *testing.T, ec envConfig) *opsEnv {
	t.Helper()
	be := newOpsBackend(t)
	if ec.routes == "" {
		ec.routes = be.routes()
	}
	e := newEnv(t, ec)
	o := &opsEnv{env: e, be: be, serverRoot: filepath.Join(e.dir, "tls", "server-root.pem")}
	must(t, pkigen.WriteCert(o.serverRoot, e.root.Cert))
	return o
}

// opsCurl runs the real curl; it never calls t.Fatal, so it may run in a
// goroutine of its own.
func (o *opsEnv) opsCurl(certPath, keyPath, path string, extra ...string) curlResult {
	args := []string{"-sS", "--max-time", "60", "--cacert", o.serverRoot, "-o", "-", "-w", "\n%{http_code}"}
	if certPath != "" {
		args = append(args, "--cert", certPath, "--key", keyPath)
	}
	args = append(args, extra...)
	args = append(args, o.url(path))
	var out, errb bytes.Buffer
	cmd := exec.Command("curl", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := curlResult{stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	} else if err != nil {
		res.exit, res.stderr = -1, err.Error()
	}
	s := out.String()
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		fmt.Sscanf(s[i+1:], "%d", &res.code)
		res.body = s[:i]
	}
	return res
}

// startSlow starts a long request as alice and returns once the backend
// holds it.
func (o *opsEnv) startSlow(t *testing.T, cert, key string) <-chan curlResult {
	t.Helper()
	ch := make(chan curlResult, 1)
	go func() { ch <- o.opsCurl(cert, key, "/slow") }()
	o.be.waitArrived(t)
	return ch
}

// finishSlow releases the backend and checks that the long request
// completed whole.
func (o *opsEnv) finishSlow(t *testing.T, ch <-chan curlResult, user string) {
	t.Helper()
	o.be.releaseAll()
	select {
	case res := <-ch:
		if res.code != 200 || !strings.Contains(res.body, "slow start "+user) || !strings.Contains(res.body, "slow end") {
			t.Fatalf("long request: want 200 with the whole body, got %d %q (exit %d, %s)", res.code, res.body, res.exit, res.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long request did not complete")
	}
}

func (o *opsEnv) adminURL(path string) string { return "http://" + o.inst.adminAddr() + path }

// opsWaitFor polls cond, which depends on certgate's background loops (the
// reload poller, the CRL refresher) or on another process, until it holds.
func opsWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func (o *opsEnv) reloads(t *testing.T, result string) float64 {
	t.Helper()
	return opsMetric(t, opsScrape(t, o.adminURL("/metrics")), "certgate_config_reloads_total", map[string]string{"result": result})
}

// opsScrape reads /metrics as Prometheus does (text format) and parses it.
func opsScrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// opsMetric is the value of the series of name with exactly these label
// values among its labels (a histogram gives its count); -1 if absent.
func opsMetric(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}

// opsWriteCRL publishes a CRL of ca (DER) where a file:// distribution point
// of the config finds it.
func opsWriteCRL(t *testing.T, path string, ca *pkigen.CA, number int64, revoked ...*big.Int) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	der := ca.MustCRL(t, pkigen.CRLOptions{Number: number, Revoked: pkigen.Revoke(time.Now().Add(-time.Minute), revoked...)})
	must(t, os.WriteFile(path, der, 0o644))
}

const opsCRLCAs = `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlDistributionPoint: file:crl/inter.crl
`

// newOpsCRLEnv is an ops env whose intermediate has a CRL listing one
// revoked serial, loaded through POST /crl/refresh (the PKI, and so the
// CRL, only exists once newEnv has started certgate).
func newOpsCRLEnv(t *testing.T, ec envConfig) (*opsEnv, *big.Int) {
	t.Helper()
	ec.caYAML = opsCRLCAs
	o := newOpsEnv(t, ec)
	revoked := big.NewInt(0xdead)
	opsWriteCRL(t, filepath.Join(o.dir, "crl", "inter.crl"), o.inter, 1, revoked)
	resp, err := http.Post(o.adminURL("/crl/refresh"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /crl/refresh: %s", resp.Status)
	}
	return o, revoked
}

func TestOpsMetricsExposeSpecSeries(t *testing.T) {
	requireCurl(t)
	o, revoked := newOpsCRLEnv(t, envConfig{})
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	rev, revKey := o.writeLeaf("revoked", o.inter.Leaf(t, "Revoked Alice", pkigen.UPN("alice@contoso.com"), pkigen.Serial(revoked)))
	if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
		t.Fatalf("alice: %d %s", res.code, res.stderr)
	}
	if res := o.opsCurl(rev, revKey, "/"); res.code != 0 {
		t.Fatalf("revoked client got HTTP %d", res.code)
	}
	if res := o.opsCurl("", "", "/"); res.code != 0 {
		t.Fatalf("client without certificate got HTTP %d", res.code)
	}
	mfs := opsScrape(t, o.adminURL("/metrics"))

	interSKI := hex.EncodeToString(o.inter.Cert.SubjectKeyId)
	rootSKI := hex.EncodeToString(o.root.Cert.SubjectKeyId)
	server, _ := os.ReadFile(filepath.Join(o.dir, "tls", "server.pem"))
	serverCert, err := config.ParseCertificate(server[:bytes.Index(server, []byte("-----END CERTIFICATE-----"))+25])
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		what   string
	}{
		{"certgate_auth_decisions_total", map[string]string{"reason": "ok"}, opsAtLeast(1), ">= 1"},
		{"certgate_auth_decisions_total", map[string]string{"reason": "revoked"}, opsAtLeast(1), ">= 1"},
		{"certgate_auth_decisions_total", map[string]string{"reason": "no_certificate"}, opsAtLeast(1), ">= 1"},
		{"certgate_tls_handshakes_total", map[string]string{"result": "ok"}, opsAtLeast(1), ">= 1"},
		{"certgate_tls_handshakes_total", map[string]string{"result": "rejected"}, opsAtLeast(2), ">= 2"},
		{"certgate_connections_active", nil, opsAtLeast(0), "present"},
		{"certgate_crl_entries", map[string]string{"issuer_ski": interSKI}, opsEq(1), "1"},
		{"certgate_crl_this_update_timestamp_seconds", map[string]string{"issuer_ski": interSKI}, opsNear(time.Now().Add(-time.Minute)), "about a minute ago"},
		{"certgate_crl_next_update_timestamp_seconds", map[string]string{"issuer_ski": interSKI}, opsNear(time.Now().Add(24 * time.Hour)), "in a day"},
		{"certgate_crl_last_success_timestamp_seconds", map[string]string{"issuer_ski": interSKI}, opsNear(time.Now()), "now"},
		{"certgate_crl_fetch_errors_total", map[string]string{"issuer_ski": interSKI, "kind": "http"}, opsAtLeast(0), "present at 0 or more"},
		{"certgate_upstream_request_duration_seconds", map[string]string{"route": "web", "code": "200"}, opsEq(1), "1 observation"},
		{"certgate_tls_handshake_duration_seconds", map[string]string{"result": "ok"}, opsAtLeast(1), ">= 1 observation"},
		{"certgate_tls_handshake_duration_seconds", map[string]string{"result": "rejected"}, opsAtLeast(1), ">= 1 observation"},
		{"certgate_config_reloads_total", map[string]string{"result": "error"}, opsEq(0), "0"},
		{"certgate_build_info", map[string]string{"version": version, "goversion": runtime.Version()}, opsEq(1), "1"},
		{"certgate_server_cert_not_after_timestamp_seconds", map[string]string{"name": "localhost"}, opsEq(float64(serverCert.NotAfter.Unix())), "the server cert's notAfter"},
		{"certgate_ca_not_after_timestamp_seconds", map[string]string{"issuer_ski": rootSKI, "type": "root"}, opsEq(float64(o.root.Cert.NotAfter.Unix())), "the root's notAfter"},
		{"certgate_ca_not_after_timestamp_seconds", map[string]string{"issuer_ski": interSKI, "type": "intermediate"}, opsEq(float64(o.inter.Cert.NotAfter.Unix())), "the intermediate's notAfter"},
		{"certgate_ocsp_checks_total", map[string]string{"result": "error"}, opsEq(0), "0"},
	}
	for _, c := range checks {
		if v := opsMetric(t, mfs, c.name, c.labels); !c.want(v) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.what)
		}
	}
	// No label may identify a person or a certificate.
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "certgate_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				n, v := strings.ToLower(lp.GetName()), strings.ToLower(lp.GetValue())
				if n == "user" || n == "serial" || n == "subject" || strings.Contains(v, "alice") || strings.Contains(v, "dead") && n != "issuer_ski" {
					t.Errorf("%s carries an identifying label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

func opsAtLeast(n float64) func(float64) bool { return func(v float64) bool { return v >= n } }
func opsEq(n float64) func(float64) bool      { return func(v float64) bool { return v == n } }
func opsNear(t time.Time) func(float64) bool {
	return func(v float64) bool { return v > 0 && v > float64(t.Unix())-120 && v < float64(t.Unix())+120 }
}

func TestOpsOCSPChecksCounted(t *testing.T) {
	requireCurl(t)
	var issuer *pkigen.CA
	var mu sync.Mutex
	revokedSerial := big.NewInt(0xbad)
	responder := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		ca := issuer
		mu.Unlock()
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		if req.SerialNumber.Cmp(revokedSerial) == 0 {
			tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, time.Now().Add(-time.Hour)
		}
		der, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	}))
	defer responder.Close()
	o := newOpsEnv(t, envConfig{
		caYAML: `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
    ocspUrl: ` + responder.URL + "\n",
		extraYAML: "revocation:\n  ocsp: hard\n",
	})
	mu.Lock()
	issuer = o.inter
	mu.Unlock()
	good, goodKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	bad, badKey := o.writeLeaf("revoked", o.inter.Leaf(t, "Revoked", pkigen.UPN("alice@contoso.com"), pkigen.Serial(revokedSerial)))
	if res := o.opsCurl(good, goodKey, "/"); res.code != 200 {
		t.Fatalf("good: %d %s", res.code, res.stderr)
	}
	if res := o.opsCurl(bad, badKey, "/"); res.code != 0 {
		t.Fatalf("OCSP-revoked client got HTTP %d", res.code)
	}
	mfs := opsScrape(t, o.adminURL("/metrics"))
	for result, want := range map[string]float64{"good": 1, "revoked": 1, "unknown": 0, "error": 0} {
		if v := opsMetric(t, mfs, "certgate_ocsp_checks_total", map[string]string{"result": result}); v != want {
			t.Errorf("certgate_ocsp_checks_total{result=%q} = %v, want %v", result, v, want)
		}
	}
}

func TestOpsDecisionLogLines(t *testing.T) {
	requireCurl(t)
	o := newOpsEnv(t, envConfig{})
	dave, daveKey := o.writeLeaf("dave", o.inter.Leaf(t, "Dave", pkigen.UPN("dave@contoso.com")))
	if res := o.opsCurl(dave, daveKey, "/"); res.code != 0 {
		t.Fatalf("disabled user got HTTP %d", res.code)
	}
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
		t.Fatalf("alice got HTTP %d", res.code)
	}
	find := func(marker string) map[string]any {
		for _, l := range strings.Split(o.logs.String(), "\n") {
			if strings.Contains(l, `"msg":"decision"`) && strings.Contains(l, marker) {
				var line map[string]any
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("decision line is not JSON: %v: %s", err, l)
				}
				return line
			}
		}
		t.Fatalf("no decision line with %s:\n%s", marker, o.logs)
		return nil
	}
	// A handshake refusal and an admission: SPEC's fields, remote included.
	for marker, fields := range map[string][]string{
		`"reason":"user_disabled"`: {"reason", "subject", "issuer_ski", "serial", "remote", "error"},
		`"reason":"ok"`:            {"reason", "subject", "issuer_ski", "serial", "user", "remote"},
	} {
		line := find(marker)
		for _, k := range fields {
			if s, _ := line[k].(string); s == "" {
				t.Errorf("decision line %s lacks %s: %v", marker, k, line)
			}
		}
	}
	if strings.Contains(o.logs.String(), "PRIVATE KEY") {
		t.Error("a private key reached the log")
	}
	// The level flag: bad values are usage errors.
	code, _, errs := runCLI(t, "serve", "--config", filepath.Join(o.dir, "certgate.yaml"), "--log-level", "chatty")
	if code != 2 || !strings.Contains(errs, "--log-level") {
		t.Errorf("serve --log-level chatty: exit %d %q", code, errs)
	}
}

func TestOpsStatusPage(t *testing.T) {
	requireCurl(t)
	o, _ := newOpsCRLEnv(t, envConfig{})
	eve, eveKey := o.writeLeaf("eve", pkigen.Root(t, "Foreign Root").Leaf(t, "Eve Intruder", pkigen.UPN("alice@contoso.com")))
	o.opsCurl(eve, eveKey, "/")
	dave, daveKey := o.writeLeaf("dave", o.inter.Leaf(t, "Dave Disabled", pkigen.UPN("dave@contoso.com")))
	o.opsCurl(dave, daveKey, "/")
	interSKI := strings.ToUpper(hex.EncodeToString(o.inter.Cert.SubjectKeyId))

	t.Run("json", func(t *testing.T) {
		resp, err := http.Get(o.adminURL("/status.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc statusDoc
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if !doc.Ready || len(doc.CAs) != 2 || doc.ServerTLS == nil || doc.ServerTLS.NotAfter.IsZero() {
			t.Errorf("status.json: ready %v, %d CAs, server %+v", doc.Ready, len(doc.CAs), doc.ServerTLS)
		}
		var crl bool
		for _, c := range doc.CRLs {
			if strings.EqualFold(c.IssuerSKI, interSKI) && c.Entries == 1 && !c.NextUpdate.IsZero() {
				crl = true
			}
		}
		if !crl {
			t.Errorf("status.json lacks the intermediate's CRL: %+v", doc.CRLs)
		}
		reasons := map[string]int{}
		for _, r := range doc.ByReason {
			reasons[r.Reason] = r.Count
		}
		if reasons["user_disabled"] != 1 || reasons["untrusted"] != 1 {
			t.Errorf("rejections by reason = %v", reasons)
		}
		if len(doc.Rejections) < 2 || doc.Rejections[0].Reason != "user_disabled" || !strings.Contains(doc.Rejections[0].Subject, "Dave Disabled") {
			t.Errorf("recent rejections (newest first) = %+v", doc.Rejections)
		}
	})

	t.Run("chromium", func(t *testing.T) {
		chromium := opsRequireChromium(t)
		dir := t.TempDir()
		shot := filepath.Join(dir, "status.png")
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--window-size=1400,1000"}
		run := func(extra ...string) []byte {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			args := append(append(slices.Clone(base), "--user-data-dir="+t.TempDir()), extra...)
			args = append(args, o.adminURL("/status"))
			cmd := exec.CommandContext(ctx, chromium, args...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
			}
			return out.Bytes()
		}
		run("--screenshot=" + shot)
		f, err := os.Open(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
			t.Fatalf("screenshot is %dx%d, want 1400x1000", b.Dx(), b.Dy())
		}
		colors := map[[3]uint32]int{}
		for y := 0; y < 1000; y += 4 {
			for x := 0; x < 1400; x += 4 {
				r, g, b, _ := img.At(x, y).RGBA()
				colors[[3]uint32{r >> 8, g >> 8, b >> 8}]++
			}
		}
		// A blank or error page has a handful of colours; the header bar,
		// badges, bars and text give many more.
		if len(colors) < 20 {
			t.Errorf("screenshot looks blank: %d distinct colours", len(colors))
		}
		// CERTGATE_SCREENSHOT=path keeps a copy for a person to look at.
		if keep := os.Getenv("CERTGATE_SCREENSHOT"); keep != "" {
			data, _ := os.ReadFile(shot)
			must(t, os.WriteFile(keep, data, 0o644))
		}

		dom := string(run("--dump-dom"))
		for _, want := range []string{"CN=Test Root CA", "CN=Test Intermediate CA", `class="crl fresh" data-ski="` + strings.ToLower(interSKI) + `"`,
			`data-reason="untrusted"`, `data-reason="user_disabled"`, "Dave Disabled", "CN=Eve Intruder", `class="bar base"`, "CN=localhost"} {
			if !strings.Contains(dom, want) {
				t.Errorf("DOM lacks %q", want)
			}
		}
		if t.Failed() {
			t.Logf("DOM:\n%s", dom)
		}
	})
}

// TestOpsRejectionRingKeepsLast100 refuses more clients than the status
// page keeps and checks that it shows the newest 100, newest first.
func TestOpsRejectionRingKeepsLast100(t *testing.T) {
	requireCurl(t)
	o := newOpsEnv(t, envConfig{})
	const n = 120
	for i := 0; i < n; i++ {
		// No client certificate: refused by crypto/tls, reported through
		// the server's error log.
		c, err := tls.Dial("tcp", o.inst.proxyAddr(), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
		if err == nil {
			c.Read(make([]byte, 1)) // TLS 1.3 reports the refusal on the first read
			c.Close()
		}
	}
	status := func() statusDoc {
		resp, err := http.Get(o.adminURL("/status.json"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc statusDoc
		must(t, json.NewDecoder(resp.Body).Decode(&doc))
		return doc
	}
	opsWaitFor(t, "every refusal to be counted", func() bool {
		return opsMetric(t, opsScrape(t, o.adminURL("/metrics")), "certgate_auth_decisions_total", map[string]string{"reason": "no_certificate"}) == n
	})
	doc := status()
	if len(doc.Rejections) != 100 || len(doc.ByReason) != 1 || doc.ByReason[0].Count != 100 {
		t.Fatalf("kept %d rejections, by reason %+v; want the last 100", len(doc.Rejections), doc.ByReason)
	}
	dave, daveKey := o.writeLeaf("dave", o.inter.Leaf(t, "Dave", pkigen.UPN("dave@contoso.com")))
	o.opsCurl(dave, daveKey, "/")
	opsWaitFor(t, "the newest refusal first", func() bool {
		d := status()
		return len(d.Rejections) == 100 && d.Rejections[0].Reason == "user_disabled" && d.Rejections[1].Reason == "no_certificate"
	})
	rs := status().Rejections
	for i, r := range rs[1:] {
		if r.Time.After(rs[i].Time) {
			t.Fatalf("rejection %d is newer than the one before it", i+1)
		}
	}
}

func opsRequireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (Debian package chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

// TestOpsReload changes each kind of watched file, first to something
// broken, then to something good, while a long request is in flight.
func TestOpsReload(t *testing.T) {
	requireCurl(t)

	t.Run("config", func(t *testing.T) {
		o := newOpsEnv(t, envConfig{})
		alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
		slow := o.startSlow(t, alice, aliceKey)
		cfgPath := filepath.Join(o.dir, "certgate.yaml")
		orig, _ := os.ReadFile(cfgPath)

		broken := bytes.Replace(orig, []byte("\nidentity:\n"), []byte("\nidentity:\n  headr: X-Auth-User\n"), 1)
		line := 1 + bytes.Count(broken[:bytes.Index(broken, []byte("headr"))], []byte("\n"))
		must(t, os.WriteFile(cfgPath, broken, 0o644))
		o.expectReloadError(t, fmt.Sprintf("certgate.yaml:%d", line), "headr")
		if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 || !strings.Contains(res.body, "hello alice@contoso.com|") {
			t.Fatalf("after a broken config the old one must serve: %d %q", res.code, res.body)
		}

		good := bytes.Replace(orig, []byte("\nidentity:\n"), []byte("\nidentity:\n  header: X-Auth-User\n"), 1)
		must(t, os.WriteFile(cfgPath, good, 0o644))
		opsWaitFor(t, "the new identity header", func() bool {
			res := o.opsCurl(alice, aliceKey, "/")
			return res.code == 200 && strings.Contains(res.body, "hello |alice@contoso.com")
		})
		o.finishSlow(t, slow, "alice@contoso.com")
	})

	t.Run("ca", func(t *testing.T) {
		o := newOpsEnv(t, envConfig{})
		alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
		slow := o.startSlow(t, alice, aliceKey)
		interPath := filepath.Join(o.dir, "ca", "inter.pem")

		must(t, os.WriteFile(interPath, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644))
		o.expectReloadError(t, "certgate.yaml:", "trustedCertificateAuthorities[1].trustedCertificate", "inter.pem")
		if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
			t.Fatalf("after a broken CA file the old trust must serve: %d %s", res.code, res.stderr)
		}

		// A new PKI replaces the old one: old clients become untrusted.
		root2 := pkigen.Root(t, "Second Root CA")
		inter2 := root2.Intermediate(t, "Second Intermediate CA")
		must(t, pkigen.WriteCert(interPath, inter2.Cert))
		must(t, pkigen.WriteCert(filepath.Join(o.dir, "ca", "root.pem"), root2.Cert))
		alice2, alice2Key := o.writeLeaf("alice2", inter2.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
		opsWaitFor(t, "the new CAs", func() bool { return o.opsCurl(alice2, alice2Key, "/").code == 200 })
		if res := o.opsCurl(alice, aliceKey, "/"); res.code != 0 {
			t.Fatalf("a client of the removed CA got HTTP %d", res.code)
		}
		o.finishSlow(t, slow, "alice@contoso.com")
	})

	t.Run("users", func(t *testing.T) {
		o := newOpsEnv(t, envConfig{})
		alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
		bob, bobKey := o.writeLeaf("bob", o.inter.Leaf(t, "Bob", pkigen.UPN("bob@contoso.com")))
		slow := o.startSlow(t, alice, aliceKey)
		usersPath := filepath.Join(o.dir, "users.yaml")

		must(t, os.WriteFile(usersPath, []byte(defaultUsers+"  - userPrincipalName: bob@contoso.com\n    mail: bob@contoso.com\n"), 0o644))
		o.expectReloadError(t, "users.yaml:9", "unknown key \\\"mail")
		if res := o.opsCurl(bob, bobKey, "/"); res.code != 0 {
			t.Fatalf("bob got HTTP %d from a broken users file", res.code)
		}
		if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
			t.Fatalf("after a broken users file the old directory must serve: %d", res.code)
		}

		must(t, os.WriteFile(usersPath, []byte(defaultUsers+"  - userPrincipalName: bob@contoso.com\n"), 0o644))
		opsWaitFor(t, "bob to be admitted", func() bool {
			res := o.opsCurl(bob, bobKey, "/")
			return res.code == 200 && strings.Contains(res.body, "hello bob@contoso.com")
		})
		o.finishSlow(t, slow, "alice@contoso.com")
	})

	t.Run("server_cert", func(t *testing.T) {
		o := newOpsEnv(t, envConfig{})
		alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
		slow := o.startSlow(t, alice, aliceKey)
		certPath, keyPath := filepath.Join(o.dir, "tls", "server.pem"), filepath.Join(o.dir, "tls", "server-key.pem")
		before := o.servedSerial(t, alice, aliceKey)

		other := o.inter.Server(t, []string{"localhost"})
		must(t, pkigen.WriteKey(keyPath, other.Key)) // no longer matches server.pem
		o.expectReloadError(t, "server.pem", "private key does not match")
		if got := o.servedSerial(t, alice, aliceKey); got != before {
			t.Fatalf("a broken key pair replaced the server certificate (%s, was %s)", got, before)
		}

		next := o.inter.Server(t, []string{"localhost", "127.0.0.1"})
		must(t, pkigen.WriteLeaf(certPath, keyPath, next, true))
		want := next.Cert.SerialNumber.Text(16)
		opsWaitFor(t, "the new server certificate", func() bool { return o.servedSerial(t, alice, aliceKey) == want })
		if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
			t.Fatalf("with the new server certificate: %d %s", res.code, res.stderr)
		}
		o.finishSlow(t, slow, "alice@contoso.com")
	})
}

// expectReloadError waits for a failed reload and checks that its log line
// opsNames where and why.
func (o *opsEnv) expectReloadError(t *testing.T, wants ...string) {
	t.Helper()
	opsWaitFor(t, "a failed reload", func() bool { return o.reloads(t, "error") >= 1 })
	var line string
	for _, l := range strings.Split(o.logs.String(), "\n") {
		if strings.Contains(l, "reload failed") {
			line = l
		}
	}
	for _, w := range wants {
		if !strings.Contains(line, w) {
			t.Errorf("reload failure log %q lacks %q", line, w)
		}
	}
	if o.inst.lastReload.Load() == nil || o.inst.lastReload.Load().OK {
		t.Errorf("status page's last reload = %+v, want a failure", o.inst.lastReload.Load())
	}
}

// servedSerial is the serial (hex) of the certificate the proxy presents.
func (o *opsEnv) servedSerial(t *testing.T, certPath, keyPath string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", o.inst.proxyAddr(), &tls.Config{
		ServerName: "localhost", InsecureSkipVerify: true, Certificates: []tls.Certificate{pair},
	})
	if err != nil {
		return "dial: " + err.Error()
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
}

// TestOpsKubernetesSymlinkSwap mounts users.yaml and the server key pair
// the way the kubelet does (files are symlinks through ..data, and an
// update renames a new ..data over the old) and checks that one swap of
// each is noticed.
func TestOpsKubernetesSymlinkSwap(t *testing.T) {
	requireCurl(t)
	o := newOpsEnv(t, envConfig{})
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	bob, bobKey := o.writeLeaf("bob", o.inter.Leaf(t, "Bob", pkigen.UPN("bob@contoso.com")))
	users, _ := os.ReadFile(filepath.Join(o.dir, "users.yaml"))
	serverPEM, _ := os.ReadFile(filepath.Join(o.dir, "tls", "server.pem"))
	serverKey, _ := os.ReadFile(filepath.Join(o.dir, "tls", "server-key.pem"))
	before := o.servedSerial(t, alice, aliceKey)

	// Turn the folders into kubelet-style mounts holding the same content
	// (no change yet), as a ConfigMap (users.yaml) and a Secret (tls/).
	cm := opsKubeMount(t, filepath.Join(o.dir, "cm"), map[string][]byte{"users.yaml": users})
	opsSymlink(t, filepath.Join(o.dir, "users.yaml"), "cm/users.yaml")
	secret := opsKubeMount(t, filepath.Join(o.dir, "tls"), map[string][]byte{"server.pem": serverPEM, "server-key.pem": serverKey})
	okBefore := o.reloads(t, "ok")

	next := o.inter.Server(t, []string{"localhost", "127.0.0.1"})
	keyPEM, err := pkigen.KeyPEM(next.Key)
	must(t, err)
	secret.swap(t, map[string][]byte{"server.pem": pkigen.CertPEM(next.Cert, o.inter.Cert), "server-key.pem": keyPEM})
	cm.swap(t, map[string][]byte{"users.yaml": append(users, []byte("  - userPrincipalName: bob@contoso.com\n")...)})

	opsWaitFor(t, "the swapped Secret", func() bool { return o.servedSerial(t, alice, aliceKey) == next.Cert.SerialNumber.Text(16) })
	opsWaitFor(t, "the swapped ConfigMap", func() bool { return o.opsCurl(bob, bobKey, "/").code == 200 })
	if o.reloads(t, "ok") <= okBefore {
		t.Error("no successful reload counted")
	}
	if before == next.Cert.SerialNumber.Text(16) {
		t.Fatal("test bug: same serial")
	}
}

// opsKubeMount lays out dir as the kubelet lays out a ConfigMap or Secret
// volume: the data in a timestamped folder, ..data pointing at it, and each
// key a symlink through ..data. Files already in dir are replaced.
type opsKubeDir struct {
	dir string
	n   int
}

func opsKubeMount(t *testing.T, dir string, files map[string][]byte) *opsKubeDir {
	t.Helper()
	k := &opsKubeDir{dir: dir}
	must(t, os.MkdirAll(dir, 0o755))
	k.swap(t, files)
	for name := range files {
		opsSymlink(t, filepath.Join(dir, name), filepath.Join("..data", name))
	}
	return k
}

// swap writes a new timestamped folder and renames a fresh ..data link over
// the old one, which is the one atomic step the kubelet takes.
func (k *opsKubeDir) swap(t *testing.T, files map[string][]byte) {
	t.Helper()
	k.n++
	ts := fmt.Sprintf("..2026_01_0%d_00_00_00.%d", k.n, k.n)
	must(t, os.MkdirAll(filepath.Join(k.dir, ts), 0o755))
	for name, data := range files {
		must(t, os.WriteFile(filepath.Join(k.dir, ts, name), data, 0o644))
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	os.Remove(tmp)
	must(t, os.Symlink(ts, tmp))
	must(t, os.Rename(tmp, filepath.Join(k.dir, "..data")))
}

func opsSymlink(t *testing.T, path, target string) {
	t.Helper()
	tmp := path + ".tmp-link"
	must(t, os.Symlink(target, tmp))
	must(t, os.Rename(tmp, path))
}

func TestOpsShutdownDrains(t *testing.T) {
	requireCurl(t)
	graceEntered, graceRelease := make(chan struct{}), make(chan struct{})
	o := newOpsEnv(t, envConfig{
		extraYAML: "shutdown:\n  drainTimeout: 60s\n  readyzGrace: 5s\n",
		readyzGrace: func(time.Duration) {
			close(graceEntered)
			<-graceRelease
		},
	})
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	slow := o.startSlow(t, alice, aliceKey)

	done := make(chan error, 1)
	go func() { done <- o.inst.shutdown() }()
	select {
	case <-graceEntered:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown never failed /readyz")
	}
	// /readyz fails while the proxy still accepts: balancers see it first.
	if code, body := opsGet(t, o.adminURL("/readyz")); code != 503 || !strings.Contains(body, "shutting down") {
		t.Fatalf("/readyz during the grace = %d %q", code, body)
	}
	c, err := net.Dial("tcp", o.inst.proxyAddr())
	if err != nil {
		t.Fatalf("the proxy stopped accepting before the readyz grace ended: %v", err)
	}
	c.Close()
	close(graceRelease)

	opsWaitFor(t, "new connections to be refused", func() bool {
		c, err := net.Dial("tcp", o.inst.proxyAddr())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-done:
		t.Fatalf("shutdown returned (%v) while a request was in flight", err)
	default:
	}
	o.finishSlow(t, slow, "alice@contoso.com")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown did not return after the last request")
	}
	if !strings.Contains(o.logs.String(), `"msg":"certgate stopped","drained":true`) {
		t.Errorf("no drained stop logged:\n%s", o.logs)
	}
}

func opsGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// opsBuildBinary builds the real binary into the test's temporary folder.
func opsBuildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "certgate")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestOpsServeSIGTERMSubprocess runs the real binary as a container would:
// its config folder read-only (when the test may make a mount namespace),
// no HOME, state only in the cache folder. SIGTERM with a request in
// flight must drain it and exit 0.
func TestOpsServeSIGTERMSubprocess(t *testing.T) {
	requireCurl(t)
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := opsBuildBinary(t)
	state := t.TempDir()
	o, _ := newOpsCRLEnv(t, envConfig{
		serverTLS: "  certFile: tls/server.pem\n  keyFile: tls/server-key.pem\n  storage: " + filepath.Join(state, "certmagic") + "\n",
		extraYAML: "shutdown:\n  drainTimeout: 60s\nrevocation:\n  cacheDir: " + filepath.Join(state, "crl") + "\n",
	})
	o.inst.close() // the files stay; the subprocess serves them
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	cfgPath := filepath.Join(o.dir, "certgate.yaml")

	args := []string{"serve", "--config", cfgPath, "--log-level", "info"}
	cmd := exec.Command(bin, args...)
	readOnly := false
	if unshare, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		// unshare execs sh, which execs certgate: the PID stays certgate's.
		readOnly = true
		cmd = exec.Command(unshare, append([]string{"-m", "sh", "-c",
			`mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift 2 && exec "$@"`, "sh", o.dir, "--", bin}, args...)...)
	}
	cmd.Env = append(os.Environ(), "HOME=/nonexistent")
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	addrs := make(chan [2]string, 1)
	var logs syncBuffer
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var l struct{ Msg, Listen, Admin string }
			if !sent && json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "certgate serving" {
				addrs <- [2]string{l.Listen, l.Admin}
				sent = true
			}
		}
	}()
	var proxyAddr, adminAddr string
	select {
	case a := <-addrs:
		proxyAddr, adminAddr = a[0], a[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("certgate serve did not start:\n%s", logs.String())
	}
	if code, body := opsGet(t, "http://"+adminAddr+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q (read-only config: %v)\n%s", code, body, readOnly, logs.String())
	}
	if ents, _ := os.ReadDir(filepath.Join(state, "crl")); len(ents) == 0 {
		t.Errorf("no CRL cached in the state folder (read-only config: %v)", readOnly)
	}

	port := proxyAddr[strings.LastIndex(proxyAddr, ":")+1:]
	ch := make(chan curlResult, 1)
	go func() {
		var out, errb bytes.Buffer
		c := exec.Command("curl", "-sS", "--max-time", "60", "--cacert", o.serverRoot, "--cert", alice, "--key", aliceKey,
			"-w", "\n%{http_code}", "https://localhost:"+port+"/slow")
		c.Stdout, c.Stderr = &out, &errb
		c.Run()
		res := curlResult{stderr: errb.String()}
		s := out.String()
		if i := strings.LastIndex(s, "\n"); i >= 0 {
			fmt.Sscanf(s[i+1:], "%d", &res.code)
			res.body = s[:i]
		}
		ch <- res
	}()
	o.be.waitArrived(t)

	must(t, cmd.Process.Signal(syscall.SIGTERM))
	opsWaitFor(t, "/readyz to fail after SIGTERM", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	opsWaitFor(t, "the proxy to refuse new connections", func() bool {
		c, err := net.Dial("tcp", proxyAddr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	o.finishSlow(t, ch, "alice@contoso.com")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("certgate serve exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("certgate serve did not exit after SIGTERM:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"drained":true`) {
		t.Errorf("no drained stop logged:\n%s", logs.String())
	}
}

// TestOpsCACommandsRoundTrip edits a commented config with `certgate ca`
// while serve runs on it.
func TestOpsCACommandsRoundTrip(t *testing.T) {
	requireCurl(t)
	o := newOpsEnv(t, envConfig{caYAML: `  # The corporate root; kept offline.
  - authorityType: root
    trustedCertificate: ca/root.pem   # PEM
    crlExempt: true
  # Issues the user certificates.
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true    # test PKI without CRL
`})
	cfgPath := filepath.Join(o.dir, "certgate.yaml")
	before, err := os.ReadFile(cfgPath)
	must(t, err)
	partner := pkigen.Root(t, "Partner Root CA")
	partnerPEM := filepath.Join(o.dir, "ca", "partner.pem")
	must(t, pkigen.WriteCert(partnerPEM, partner.Cert))
	eve, eveKey := o.writeLeaf("eve", partner.Leaf(t, "Alice at partner", pkigen.UPN("alice@contoso.com")))
	if res := o.opsCurl(eve, eveKey, "/"); res.code != 0 {
		t.Fatalf("a client of an unknown root got HTTP %d", res.code)
	}

	code, out, errs := runCLI(t, "ca", "add", "--config", cfgPath, "--type", "root", "--cert", partnerPEM, "--crl-exempt")
	if code != 0 {
		t.Fatalf("ca add: exit %d %s %s", code, out, errs)
	}
	after, err := os.ReadFile(cfgPath)
	must(t, err)
	added := opsInsertedLines(t, string(before), string(after))
	if !strings.Contains(added, "authorityType: root") || !strings.Contains(added, "partner.pem") {
		t.Errorf("ca add inserted %q", added)
	}
	opsWaitFor(t, "serve to trust the added root", func() bool { return o.opsCurl(eve, eveKey, "/").code == 200 })

	ski := hex.EncodeToString(partner.Cert.SubjectKeyId)
	code, out, _ = runCLI(t, "ca", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(strings.ToLower(out), ski) {
		t.Errorf("ca list: exit %d %q lacks %s", code, out, ski)
	}
	// Any case, with colons, as an operator copies it from openssl.
	var colons []string
	for i := 0; i < len(ski); i += 2 {
		colons = append(colons, strings.ToUpper(ski[i:i+2]))
	}
	if code, out, errs := runCLI(t, "ca", "remove", "--config", cfgPath, strings.Join(colons, ":")); code != 0 {
		t.Fatalf("ca remove: exit %d %s %s", code, out, errs)
	}
	restored, _ := os.ReadFile(cfgPath)
	if !bytes.Equal(restored, before) {
		t.Fatalf("add then remove did not restore the file byte for byte:\n--- before\n%s\n--- after\n%s", before, restored)
	}
	opsWaitFor(t, "serve to drop the removed root", func() bool { return o.opsCurl(eve, eveKey, "/").code == 0 })
	if o.reloads(t, "error") != 0 {
		t.Errorf("the CLI's edits made a reload fail:\n%s", o.logs)
	}
}

// opsInsertedLines checks that after is before with one block of lines
// inserted, and returns the block.
func opsInsertedLines(t *testing.T, before, after string) string {
	t.Helper()
	b, a := strings.SplitAfter(before, "\n"), strings.SplitAfter(after, "\n")
	p := 0
	for p < len(b) && p < len(a) && b[p] == a[p] {
		p++
	}
	s := 0
	for s < len(b)-p && s < len(a)-p && b[len(b)-1-s] == a[len(a)-1-s] {
		s++
	}
	if p+s != len(b) {
		t.Fatalf("the edit changed existing lines, not only added some:\n--- before\n%s\n--- after\n%s", before, after)
	}
	return strings.Join(a[p:len(a)-s], "")
}

func TestOpsHealthCommand(t *testing.T) {
	o := newOpsEnv(t, envConfig{extraYAML: ""})
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"health", "--url", o.adminURL("/healthz")}, 0, "ok"},
		{[]string{"health", "--url", o.adminURL("/readyz")}, 0, "ready"},
		{[]string{"health", "--url", o.adminURL("/nope")}, 1, "404"},
		{[]string{"health", "--url", "ftp://x"}, 2, "--url"},
		{[]string{"health", "--timeout", "0s", "--url", o.adminURL("/healthz")}, 2, "--timeout"},
		{[]string{"health", "extra"}, 2, "no arguments"},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d %q %q, want %d %q", c.args, code, out, errs, c.code, c.want)
		}
	}
	// A port nobody listens on: not healthy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	if code, _, _ := runCLI(t, "health", "--url", "http://"+addr+"/healthz"); code != 1 {
		t.Errorf("health against a closed port: exit %d, want 1", code)
	}
}

func TestOpsSmokeScript(t *testing.T) {
	requireCurl(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	o := newOpsEnv(t, envConfig{})
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	mallory, malloryKey := o.writeLeaf("mallory", o.inter.Leaf(t, "Mallory", pkigen.UPN("mallory@fabrikam.com")))
	run := func(cert, key string) (int, string) {
		cmd := exec.Command("bash", "../../examples/smoke.sh")
		cmd.Env = append(os.Environ(),
			"CERTGATE_URL="+o.url("/"), "CERTGATE_ADMIN=http://"+o.inst.adminAddr(),
			"CERTGATE_CACERT="+o.serverRoot, "CERTGATE_CERT="+cert, "CERTGATE_KEY="+key,
			"CERTGATE_EXPECT_USER=alice@contoso.com")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	if code, out := run(alice, aliceKey); code != 0 || !strings.Contains(out, "smoke test passed") {
		t.Fatalf("smoke.sh with a good certificate: exit %d\n%s", code, out)
	}
	if code, out := run(mallory, malloryKey); code == 0 {
		t.Fatalf("smoke.sh passed with an unmapped certificate:\n%s", out)
	}
}

// TestOpsKubernetesManifests checks examples/kubernetes without a cluster.
func TestOpsKubernetesManifests(t *testing.T) {
	requireCurl(t)
	dir := filepath.Join("..", "..", "examples", "kubernetes")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	must(t, err)
	if len(files) == 0 {
		t.Fatal("no manifests in examples/kubernetes")
	}
	known := map[string]string{ // kind: apiVersion
		"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Secret": "v1",
		"ServiceAccount": "v1", "NetworkPolicy": "networking.k8s.io/v1", "PodDisruptionBudget": "policy/v1",
	}
	var docs []map[string]any
	for _, f := range files {
		data, err := os.ReadFile(f)
		must(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var d map[string]any
			if err := dec.Decode(&d); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if d == nil {
				continue
			}
			kind, _ := d["kind"].(string)
			if want, ok := known[kind]; !ok || d["apiVersion"] != want {
				t.Errorf("%s: kind %q apiVersion %v is not a known pair", f, kind, d["apiVersion"])
			}
			if name, _ := opsDig(d, "metadata", "name").(string); name == "" {
				t.Errorf("%s: %s without metadata.name", f, kind)
			}
			docs = append(docs, d)
		}
	}
	byKind := map[string][]map[string]any{}
	for _, d := range docs {
		byKind[d["kind"].(string)] = append(byKind[d["kind"].(string)], d)
	}
	if len(byKind["Deployment"]) != 1 || len(byKind["Service"]) < 1 || len(byKind["ConfigMap"]) < 1 || len(byKind["Secret"]) < 1 {
		t.Fatalf("want a Deployment, a Service, a ConfigMap and a Secret; have %v", opsKeys(byKind))
	}
	dep := byKind["Deployment"][0]
	pod := opsDig(dep, "spec", "template", "spec").(map[string]any)
	volumes := map[string]map[string]any{}
	for _, v := range opsList(pod["volumes"]) {
		volumes[v["name"].(string)] = v
	}
	configMaps, secrets := opsNames(byKind["ConfigMap"]), opsNames(byKind["Secret"])
	for name, v := range volumes {
		if cm, ok := v["configMap"].(map[string]any); ok && !configMaps[cm["name"].(string)] {
			t.Errorf("volume %s mounts ConfigMap %v, which is not declared", name, cm["name"])
		}
		if s, ok := v["secret"].(map[string]any); ok && !secrets[s["secretName"].(string)] {
			t.Errorf("volume %s mounts Secret %v, which is not declared", name, s["secretName"])
		}
	}
	var certgate map[string]any
	for _, c := range opsList(pod["containers"]) {
		for _, m := range opsList(c["volumeMounts"]) {
			if volumes[m["name"].(string)] == nil {
				t.Errorf("container %s mounts undeclared volume %s", c["name"], m["name"])
			}
			if _, ok := m["subPath"]; ok {
				t.Errorf("container %s mounts %s with subPath, which never updates", c["name"], m["name"])
			}
		}
		if c["name"] == "certgate" {
			certgate = c
		}
	}
	if certgate == nil {
		t.Fatal("no container named certgate")
	}
	if opsDig(pod, "securityContext", "runAsNonRoot") != true && opsDig(certgate, "securityContext", "runAsNonRoot") != true {
		t.Error("runAsNonRoot is not set")
	}
	if opsDig(certgate, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("certgate's readOnlyRootFilesystem is not set")
	}
	if opsDig(certgate, "securityContext", "allowPrivilegeEscalation") != false {
		t.Error("certgate's allowPrivilegeEscalation is not false")
	}

	// The ConfigMap's certgate.yaml is a valid config whose admin port is
	// the one the probes use.
	var cfg *config.Config
	for _, cm := range byKind["ConfigMap"] {
		if s, ok := opsDig(cm, "data", "certgate.yaml").(string); ok {
			cfg, err = config.Decode([]byte(s), "configmap certgate.yaml")
			if err != nil {
				t.Fatalf("embedded certgate.yaml: %v", err)
			}
			if u, ok := opsDig(cm, "data", "users.yaml").(string); ok {
				if _, err := trust.ParseUsers([]byte(u), "configmap users.yaml"); err != nil {
					t.Errorf("embedded users.yaml: %v", err)
				}
			}
		}
	}
	if cfg == nil {
		t.Fatal("no ConfigMap holds certgate.yaml")
	}
	_, adminPort, err := net.SplitHostPort(cfg.Admin.Listen)
	if err != nil || cfg.Admin.Listen == "" {
		t.Fatalf("admin.listen %q", cfg.Admin.Listen)
	}
	if h, _, _ := net.SplitHostPort(cfg.Admin.Listen); h == "127.0.0.1" || h == "localhost" {
		t.Errorf("admin.listen %s is loopback; the kubelet's probes come from outside the pod's loopback", cfg.Admin.Listen)
	}
	ports := map[string]string{} // name → number
	for _, p := range opsList(certgate["ports"]) {
		ports[fmt.Sprint(p["name"])] = fmt.Sprint(p["containerPort"])
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		get, _ := opsDig(certgate, probe, "httpGet").(map[string]any)
		if get == nil || get["path"] != path {
			t.Errorf("%s: want opsGet %s, got %v", probe, path, opsDig(certgate, probe))
			continue
		}
		port := fmt.Sprint(get["port"])
		if n, ok := ports[port]; ok {
			port = n
		}
		if port != adminPort {
			t.Errorf("%s probes port %v, the admin listener is on %s", probe, get["port"], adminPort)
		}
	}
	for _, p := range []string{cfg.Revocation.CacheDir, cfg.ServerTLS.Storage} {
		if p == "" || !opsWritableMount(certgate, volumes, p) {
			t.Errorf("%q must be on a writable volume (emptyDir) with a read-only root", p)
		}
	}
	grace, _ := pod["terminationGracePeriodSeconds"].(int)
	if drain := cfg.Shutdown.DrainTimeout.Duration + cfg.Shutdown.ReadyzGrace.Duration; time.Duration(grace)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %d does not cover the drain (%s)", grace, drain)
	}
	svc := byKind["Service"][0]
	sel, _ := opsDig(svc, "spec", "selector").(map[string]any)
	labels, _ := opsDig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod labels %v", k, v, labels)
		}
	}

	// The dashboard queries only series certgate exposes.
	exposed := opsExposedMetrics(t)
	data, err := os.ReadFile(filepath.Join(dir, "grafana-dashboard.json"))
	must(t, err)
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	exprs := opsExprs(dash)
	if len(exprs) < 6 {
		t.Fatalf("dashboard has only %d queries", len(exprs))
	}
	metricRe := regexp.MustCompile(`\b(certgate|go|process)_[a-zA-Z0-9_]+`)
	for _, e := range exprs {
		found := metricRe.FindAllString(e, -1)
		if len(found) == 0 {
			t.Errorf("query %q references no certgate metric", e)
		}
		for _, m := range found {
			if !exposed[m] {
				t.Errorf("query %q references %s, which /metrics does not expose", e, m)
			}
		}
	}
}

// opsExposedMetrics scrapes a running certgate that has seen traffic and
// returns every series name a query can use (histograms with their
// _bucket, _sum and _count).
func opsExposedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	o, _ := newOpsCRLEnv(t, envConfig{})
	alice, aliceKey := o.writeLeaf("alice", o.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	if res := o.opsCurl(alice, aliceKey, "/"); res.code != 200 {
		t.Fatalf("alice: %d", res.code)
	}
	out := map[string]bool{}
	for name, mf := range opsScrape(t, o.adminURL("/metrics")) {
		out[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		}
	}
	return out
}

func opsExprs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if s, ok := c.(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, opsExprs(c)...)
		}
	case []any:
		for _, c := range x {
			out = append(out, opsExprs(c)...)
		}
	}
	return out
}

func opsWritableMount(c map[string]any, volumes map[string]map[string]any, path string) bool {
	for _, m := range opsList(c["volumeMounts"]) {
		mp, _ := m["mountPath"].(string)
		if path != mp && !strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if m["readOnly"] == true {
			return false
		}
		_, empty := volumes[m["name"].(string)]["emptyDir"]
		return empty
	}
	return false
}

func opsDig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func opsList(v any) []map[string]any {
	var out []map[string]any
	for _, x := range opsSlice(v) {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func opsSlice(v any) []any { s, _ := v.([]any); return s }

func opsNames(docs []map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, d := range docs {
		out[opsDig(d, "metadata", "name").(string)] = true
	}
	return out
}

func opsKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

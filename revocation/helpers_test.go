package revocation_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

// clock is an injectable, settable time.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) {
	c.ns.Add(int64(d))
}

// response is what the CRL server sends for one path.
type response struct {
	status int    // 0 means 200
	body   []byte // the CRL
	etag   string // sent, and honoured in If-None-Match
	hang   bool   // never answer: slower than any timeout
}

// crlServer is a real HTTP server on 127.0.0.1 whose answer each test step
// switches.
type crlServer struct {
	*httptest.Server
	mu      sync.Mutex
	paths   map[string]response
	hits    map[string]int
	lastINM map[string]string
}

func newCRLServer(t *testing.T) *crlServer {
	s := &crlServer{paths: map[string]response{}, hits: map[string]int{}, lastINM: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	resp, ok := s.paths[r.URL.Path]
	s.hits[r.URL.Path]++
	s.lastINM[r.URL.Path] = r.Header.Get("If-None-Match")
	s.mu.Unlock()
	switch {
	case !ok:
		http.NotFound(w, r)
	case resp.hang:
		<-r.Context().Done()
	case resp.status != 0 && resp.status != http.StatusOK:
		w.WriteHeader(resp.status)
	case resp.etag != "" && r.Header.Get("If-None-Match") == resp.etag:
		w.WriteHeader(http.StatusNotModified)
	default:
		if resp.etag != "" {
			w.Header().Set("ETag", resp.etag)
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(resp.body)
	}
}

func (s *crlServer) set(path string, r response) {
	s.mu.Lock()
	s.paths[path] = r
	s.mu.Unlock()
}

func (s *crlServer) serveCRL(path string, der []byte) { s.set(path, response{body: der}) }

func (s *crlServer) hitCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[path]
}

func (s *crlServer) url(path string) string { return s.URL + path }

// logBuf collects log output safely across goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustContain fails unless the log has a line containing every part.
func (l *logBuf) mustContain(t *testing.T, parts ...string) {
	t.Helper()
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				all = false
				break
			}
		}
		if all {
			return
		}
	}
	t.Fatalf("no log line with %q in:\n%s", parts, l.String())
}

// pki is a root, an intermediate issuing client certificates, and a few
// users.
type pki struct {
	t0          time.Time
	root, inter *pkigen.CA
	alice, bob  *pkigen.Leaf
	carol       *pkigen.Leaf
	interSKI    []byte
	interSKIHex string
}

func newPKI(t *testing.T) *pki {
	t0 := time.Now().Truncate(time.Second)
	root := pkigen.Root(t, "Root", pkigen.At(t0))
	inter := root.Intermediate(t, "Inter", pkigen.At(t0))
	p := &pki{
		t0:    t0,
		root:  root,
		inter: inter,
		alice: inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"), pkigen.At(t0)),
		bob:   inter.Leaf(t, "bob", pkigen.UPN("bob@contoso.com"), pkigen.At(t0)),
		carol: inter.Leaf(t, "carol", pkigen.UPN("carol@contoso.com"), pkigen.At(t0)),
	}
	p.interSKI = inter.Cert.SubjectKeyId
	p.interSKIHex = hex.EncodeToString(p.interSKI)
	return p
}

// crl signs a CRL of the intermediate valid from t0-1m to t0+24h.
func (p *pki) crl(t *testing.T, number int64, revoked ...*pkigen.Leaf) []byte {
	return p.inter.MustCRL(t, p.crlOpts(number, revoked...))
}

func (p *pki) crlOpts(number int64, revoked ...*pkigen.Leaf) pkigen.CRLOptions {
	var serials []*big.Int
	for _, l := range revoked {
		serials = append(serials, l.Cert.SerialNumber)
	}
	return pkigen.CRLOptions{
		Number:     number,
		ThisUpdate: p.t0.Add(-time.Minute),
		NextUpdate: p.t0.Add(24 * time.Hour),
		Revoked:    pkigen.Revoke(p.t0.Add(-time.Hour), serials...),
	}
}

// delta signs a delta CRL of the intermediate.
func (p *pki) delta(t *testing.T, number, base int64, revoked ...*pkigen.Leaf) []byte {
	o := p.crlOpts(number, revoked...)
	o.DeltaBase = base
	return p.inter.MustCRL(t, o)
}

type fixture struct {
	*pki
	srv          *crlServer
	clk          *clock
	logs         *logBuf
	c            *revocation.Checker
	opts         revocation.Options
	withDeltaURL bool
}

type fixtureOption func(*fixture)

func withDelta() fixtureOption { return func(f *fixture) { f.withDeltaURL = true } }
func withOpts(fn func(*revocation.Options)) fixtureOption {
	return func(f *fixture) { fn(&f.opts) }
}

// newFixture makes a Checker whose intermediate has a CRL at /inter.crl (and
// /inter-delta.crl with withDelta); the root is crlExempt.
func newFixture(t *testing.T, fo ...fixtureOption) *fixture {
	f := &fixture{pki: newPKI(t), srv: newCRLServer(t), logs: &logBuf{}}
	f.clk = newClock(f.t0)
	f.opts = revocation.Options{Logger: f.logs.logger(), Now: f.clk.now, FetchTimeout: 5 * time.Second}
	for _, o := range fo {
		o(f)
	}
	f.c = revocation.New(f.opts)
	f.c.SetSources(f.sources())
	return f
}

func (f *fixture) sources() []revocation.Source {
	inter := revocation.Source{Issuer: f.inter.Cert, CRLURL: f.srv.url("/inter.crl")}
	if f.withDeltaURL {
		inter.DeltaCRLURL = f.srv.url("/inter-delta.crl")
	}
	return []revocation.Source{{Issuer: f.root.Cert, Exempt: true}, inter}
}

// restart makes a second Checker with the same options, as after a restart.
func (f *fixture) restart() *revocation.Checker {
	c := revocation.New(f.opts)
	c.SetSources(f.sources())
	return c
}

func (f *fixture) refresh(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.c.RefreshNow(ctx)
}

func (f *fixture) mustRefresh(t *testing.T) {
	t.Helper()
	if err := f.refresh(t); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
}

func (f *fixture) status(t *testing.T) revocation.SourceStatus {
	t.Helper()
	for _, s := range f.c.Status() {
		if s.IssuerSKI == f.interSKIHex {
			return s
		}
	}
	t.Fatalf("no status for %s", f.interSKIHex)
	return revocation.SourceStatus{}
}

// admit and refuse assert Check's verdict on a leaf's chain.
func admit(t *testing.T, c *revocation.Checker, l *pkigen.Leaf, at time.Time) {
	t.Helper()
	if err := c.Check(l.Chain, at); err != nil {
		t.Fatalf("%s refused, want admitted: %v", l.Cert.Subject.CommonName, err)
	}
}

func refuse(t *testing.T, c *revocation.Checker, l *pkigen.Leaf, at time.Time, reason string) *revocation.Error {
	t.Helper()
	err := c.Check(l.Chain, at)
	var re *revocation.Error
	if !errors.As(err, &re) {
		t.Fatalf("%s: Check = %v, want *revocation.Error %s", l.Cert.Subject.CommonName, err, reason)
	}
	if re.ReasonCode() != reason {
		t.Fatalf("%s: reason %q, want %q (%v)", l.Cert.Subject.CommonName, re.ReasonCode(), reason, err)
	}
	return re
}

// fetchKind returns the Kind of the FetchError inside err.
func fetchKind(err error) string {
	var fe *revocation.FetchError
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return ""
}

// unknownCritical is an extension no CRL reader understands, marked critical.
var unknownCritical = pkix.Extension{Id: []int{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}

type x509RevocationEntry = x509.RevocationListEntry

func idpExtension(der []byte) pkix.Extension {
	return pkix.Extension{Id: []int{2, 5, 29, 28}, Critical: true, Value: der}
}

// reasonOf reads the reason code the way callers do, through ReasonCode.
func reasonOf(err error) string {
	var r interface{ ReasonCode() string }
	if errors.As(err, &r) {
		return r.ReasonCode()
	}
	return ""
}

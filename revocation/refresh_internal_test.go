package revocation

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestRetryBounds: a retry is never scheduled past the nextUpdate of the
// CRL in force; once that CRL is stale (or none is in force) at most a
// jittered minute passes between fetches; Retry-After is honoured within
// those bounds; file: URLs are polled every few seconds. Before, the
// backoff doubled to an hour whatever the CRL in force, and certgate could
// stay fail-closed for an hour after the CRL server came back.
func TestRetryBounds(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fresh := func(left time.Duration) *crl { return &crl{thisUpdate: now.Add(-time.Hour), nextUpdate: now.Add(left)} }
	stale := &crl{thisUpdate: now.Add(-3 * time.Hour), nextUpdate: now.Add(-time.Hour)}
	for _, tc := range []struct {
		name       string
		n          int
		retryAfter time.Duration
		cur        *crl
		file       bool
		lo, hi     time.Duration
	}{
		{"first failure, fresh CRL", 1, 0, fresh(24 * time.Hour), false, 7500 * time.Millisecond, 10 * time.Second},
		{"20th failure, fresh CRL: max", 20, 0, fresh(24 * time.Hour), false, 45 * time.Minute, time.Hour},
		{"20th failure, nextUpdate in 5m", 20, 0, fresh(5 * time.Minute), false, 5 * time.Minute, 5 * time.Minute},
		{"20th failure, stale CRL", 20, 0, stale, false, 45 * time.Second, time.Minute},
		{"20th failure, no CRL", 20, 0, nil, false, 45 * time.Second, time.Minute},
		{"nextUpdate just passed", 20, 0, fresh(0), false, 45 * time.Second, time.Minute},
		{"Retry-After honoured", 1, 10 * time.Minute, fresh(time.Hour), false, 10 * time.Minute, 10 * time.Minute},
		{"Retry-After past nextUpdate", 1, 2 * time.Hour, fresh(time.Hour), false, time.Hour, time.Hour},
		{"Retry-After past max", 1, 3 * time.Hour, fresh(5 * time.Hour), false, time.Hour, time.Hour},
		{"Retry-After while stale", 1, time.Hour, stale, false, 45 * time.Second, time.Minute},
		{"short Retry-After while stale", 5, 5 * time.Second, stale, false, 5 * time.Second, 5 * time.Second},
		{"file", 20, 0, fresh(time.Hour), true, filePoll, filePoll},
	} {
		for _, u := range []float64{0, 0.5, 0.999} {
			got := retryDelay(now, tc.n, tc.retryAfter, tc.cur, tc.file, time.Hour, u)
			if got < tc.lo || got > tc.hi {
				t.Errorf("%s (u=%v): %v, want in [%v, %v]", tc.name, u, got, tc.lo, tc.hi)
			}
		}
	}
	c := New(Options{Now: func() time.Time { return now }, MinRefresh: time.Minute, MaxRefresh: time.Hour})
	for _, tc := range []struct {
		name   string
		f      feed
		lo, hi time.Duration
	}{
		{"minRefresh never past nextUpdate", feed{url: "http://x/a.crl", crl: fresh(20 * time.Second)}, 20 * time.Second, 20 * time.Second},
		{"stale CRL re-served", feed{url: "http://x/a.crl", crl: stale}, 45 * time.Second, time.Minute},
		{"fresh CRL", feed{url: "http://x/a.crl", crl: &crl{thisUpdate: now, nextUpdate: now.Add(time.Hour)}}, 43 * time.Minute, 53 * time.Minute},
		{"file CRL", feed{url: "file:///x/a.crl", crl: fresh(24 * time.Hour)}, filePoll, filePoll},
	} {
		for range 20 {
			if got := c.refreshDelay(now, &tc.f); got < tc.lo || got > tc.hi {
				t.Errorf("%s: %v, want in [%v, %v]", tc.name, got, tc.lo, tc.hi)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"120": 2 * time.Minute, " 5 ": 5 * time.Second, "": 0, "soon": 0, "-3": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func leafChain(l *pkigen.Leaf, root *pkigen.CA) []*x509.Certificate {
	return []*x509.Certificate{l.Cert, root.Cert}
}

// fakeClock is a settable clock for the Checker.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// dueFeeds runs what the scheduler would run now, as Run does, and returns
// how many feeds were due.
func dueFeeds(t *testing.T, c *Checker) int {
	t.Helper()
	jobs, _ := c.due()
	for _, j := range jobs {
		_ = c.fetchFeed(context.Background(), j.s, j.w)
		c.mu.Lock()
		j.s.feeds[j.w].running = false
		c.mu.Unlock()
	}
	return len(jobs)
}

func feedOf(c *Checker) *feed {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.sources {
		return &s.feeds[baseCRL]
	}
	return nil
}

// TestRecoveryAfterOutage: a CRL server down past the CRL's nextUpdate
// (503 with a long Retry-After) is asked again within a minute once the
// CRL is stale, and its first good answer is in force at the next due
// fetch — not an hour later.
func TestRecoveryAfterOutage(t *testing.T) {
	root := pkigen.Root(t, "Outage Root")
	leaf := root.Leaf(t, "alice")
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	var mu sync.Mutex
	body := root.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)})
	down := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.Header().Set("Retry-After", "7200")
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	c := New(Options{Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
	c.SetSources([]Source{{Issuer: root.Cert, CRLURL: srv.URL + "/root.crl"}})
	if n := dueFeeds(t, c); n != 1 {
		t.Fatalf("%d feeds due at start", n)
	}
	if err := c.Check(leafChain(leaf, root), t0); err != nil {
		t.Fatalf("fresh CRL: %v", err)
	}
	if next := feedOf(c).next.Sub(clk.now()); next > time.Hour {
		t.Fatalf("next fetch in %v, past nextUpdate", next)
	}

	mu.Lock()
	down = true
	mu.Unlock()
	// Two hours of outage, driven by the schedule itself.
	fetches := 0
	for clk.now().Before(t0.Add(3 * time.Hour)) {
		f := feedOf(c)
		c.mu.Lock()
		wait := f.next.Sub(clk.now())
		c.mu.Unlock()
		if clk.now().After(t0.Add(time.Hour)) && wait > time.Minute {
			t.Fatalf("at %v (CRL stale) the next fetch is in %v", clk.now().Sub(t0), wait)
		}
		clk.add(max(wait, 0))
		if dueFeeds(t, c) != 1 {
			t.Fatal("the scheduled fetch was not due")
		}
		fetches++
	}
	var re *Error
	if err := c.Check(leafChain(leaf, root), clk.now()); !errors.As(err, &re) || re.Reason != ReasonCRLStale {
		t.Fatalf("during the outage: %v, want crl_stale", err)
	}
	if fetches < 2*60 || fetches > 2*80+5 { // every 45 to 60 s
		t.Errorf("%d fetches in two hours of outage, want about one a minute", fetches)
	}

	mu.Lock()
	down = false
	body = root.MustCRL(t, pkigen.CRLOptions{Number: 2, ThisUpdate: clk.now(), NextUpdate: clk.now().Add(24 * time.Hour)})
	mu.Unlock()
	f := feedOf(c)
	c.mu.Lock()
	wait := f.next.Sub(clk.now())
	c.mu.Unlock()
	if wait > time.Minute {
		t.Fatalf("server back, next fetch in %v", wait)
	}
	clk.add(wait)
	dueFeeds(t, c)
	if err := c.Check(leafChain(leaf, root), clk.now()); err != nil {
		t.Fatalf("after the server came back: %v", err)
	}
}

// TestFileCRLWatched: an edited file: CRL applies at the next poll, a few
// seconds later, not at the CRL's next scheduled refresh.
func TestFileCRLWatched(t *testing.T) {
	root := pkigen.Root(t, "File Root")
	leaf := root.Leaf(t, "bob")
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: t0}
	path := filepath.Join(t.TempDir(), "root.crl")
	if err := os.WriteFile(path, root.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour)}), 0o644); err != nil {
		t.Fatal(err)
	}
	c := New(Options{Now: clk.now, Logger: slog.New(slog.DiscardHandler)})
	c.SetSources([]Source{{Issuer: root.Cert, CRLURL: "file://" + path}})
	dueFeeds(t, c)
	if err := c.Check(leafChain(leaf, root), t0); err != nil {
		t.Fatal(err)
	}
	revoked := root.MustCRL(t, pkigen.CRLOptions{Number: 2, ThisUpdate: t0, NextUpdate: t0.Add(7 * 24 * time.Hour),
		Revoked: pkigen.Revoke(t0, leaf.Cert.SerialNumber)})
	if err := os.WriteFile(path, revoked, 0o644); err != nil {
		t.Fatal(err)
	}
	// The modification time may not have moved on a coarse file system;
	// the size has (one entry more).
	clk.add(filePoll)
	if n := dueFeeds(t, c); n != 1 {
		t.Fatalf("%d feeds due %v after the edit", n, filePoll)
	}
	var re *Error
	if err := c.Check(leafChain(leaf, root), clk.now()); !errors.As(err, &re) || re.Reason != ReasonRevoked {
		t.Fatalf("after editing the file: %v, want revoked", err)
	}
}

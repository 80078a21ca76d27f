package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

const (
	// backoffMin is the first retry delay after a failed fetch; it doubles
	// up to Options.MaxRefresh, and up to staleRetry while no current CRL
	// is in force.
	backoffMin = 10 * time.Second
	// staleRetry is the longest wait between fetches while the CRL in force
	// is stale or missing: certgate is then failing closed (or open), so
	// the CRL server's return must be noticed within a minute, not at the
	// end of an hour-long backoff.
	staleRetry = time.Minute
	// filePoll is how often a file: CRL is looked at (a stat, and a read
	// only when its modification time or size changed), so that an edited
	// file applies within seconds.
	filePoll = 2 * time.Second
	// requestFreshInterval limits RequestFresh to one fetch per CA per
	// interval, since every handshake of a user with revoked sessions asks.
	requestFreshInterval = 10 * time.Second
)

// flightGroup runs at most one call per key at a time; later callers wait
// for the running call and share its result (a minimal singleflight).
type flightGroup[T any] struct {
	mu sync.Mutex
	m  map[string]*flight[T]
}

type flight[T any] struct {
	done chan struct{}
	val  T
	err  error
}

func (g *flightGroup[T]) do(ctx context.Context, key string, fn func(context.Context) (T, error)) (T, error) {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
	if g.m == nil {
		g.m = map[string]*flight[T]{}
	}
	f := &flight[T]{done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()

	f.val, f.err = fn(ctx)

	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	close(f.done)
	return f.val, f.err
}

// nextRefresh is the delay until a CRL is fetched again: 80% of its validity
// window from thisUpdate, ±10% jitter (u in [0,1)), earlier if the CA
// announced a Next CRL Publish time, clamped to [min, max] from now. The
// jitter spreads replicas that share a nextUpdate (the thundering herd).
func nextRefresh(now time.Time, c *crl, minD, maxD time.Duration, u float64) time.Duration {
	target := c.thisUpdate.Add(c.nextUpdate.Sub(c.thisUpdate) * 8 / 10)
	d := target.Sub(now)
	d = time.Duration(float64(d) * (0.9 + 0.2*u))
	if !c.nextPublish.IsZero() && c.nextPublish.After(now) && c.nextPublish.Sub(now) < d {
		d = c.nextPublish.Sub(now)
	}
	return max(minD, min(d, maxD))
}

// bound caps a delay d chosen at now for a feed whose CRL in force is cur
// (nil: none). A fetch is never scheduled past cur's nextUpdate, since
// after it the CA is refused (or admitted unchecked); once cur is stale or
// absent, at most about staleRetry passes between fetches, jittered
// downward by u in [0,1) so that replicas do not retry in step. file: URLs
// are polled every filePoll.
func bound(now time.Time, d time.Duration, cur *crl, isFile bool, u float64) time.Duration {
	if cur == nil || !now.Before(cur.nextUpdate) {
		d = min(d, time.Duration(float64(staleRetry)*(0.75+0.25*u)))
	} else {
		d = min(d, cur.nextUpdate.Sub(now))
	}
	if isFile {
		d = min(d, filePoll)
	}
	return max(d, 0)
}

// retryDelay is the wait after the n-th consecutive failed fetch of a feed
// whose CRL in force is cur: the backoff, or the server's Retry-After when
// it sent one, within the bounds of [bound].
func retryDelay(now time.Time, n int, retryAfter time.Duration, cur *crl, isFile bool, maxD time.Duration, u float64) time.Duration {
	d := time.Duration(float64(backoff(n, maxD)) * (0.75 + 0.25*u))
	if retryAfter > 0 {
		d = min(retryAfter, maxD)
	}
	return bound(now, d, cur, isFile, u)
}

func isFileURL(u string) bool { return strings.HasPrefix(u, "file:") }

// refreshDelay is [nextRefresh] within the bounds of [bound].
func (c *Checker) refreshDelay(now time.Time, f *feed) time.Duration {
	u := rand.Float64()
	return bound(now, nextRefresh(now, f.crl, c.opts.MinRefresh, c.opts.MaxRefresh, u), f.crl, isFileURL(f.url), u)
}

// backoff is the delay after the n-th consecutive failure (n >= 1).
func backoff(n int, maxD time.Duration) time.Duration {
	d := backoffMin
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	return min(d, maxD)
}

// Run refreshes every CRL in the background until ctx is done: each feed is
// fetched when due (at once for a new source), at most one fetch per URL at
// a time, and each result is swapped in atomically. It returns after the
// fetches it started have ended.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, wait := c.due()
		for _, j := range due {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.fetchFeed(ctx, j.s, j.w)
				c.mu.Lock()
				j.s.feeds[j.w].running = false
				c.mu.Unlock()
				c.poke()
			}()
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.wake:
		}
	}
}

type job struct {
	s *source
	w which
}

// due marks and returns the feeds whose time has come, and how long to
// wait for the next one.
func (c *Checker) due() ([]job, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	wait := time.Hour
	var jobs []job
	for _, s := range c.sources {
		for w := range s.feeds {
			f := &s.feeds[w]
			if f.url == "" || f.running {
				continue
			}
			if !f.next.After(now) {
				f.running = true
				jobs = append(jobs, job{s, which(w)})
				continue
			}
			wait = min(wait, f.next.Sub(now))
		}
	}
	return jobs, wait
}

// RefreshNow fetches every CRL of every source now (base, then delta), waits,
// and returns the failures joined. It backs `certgate check` and
// POST /crl/refresh. A fetch already in progress for a URL is joined, not
// repeated.
func (c *Checker) RefreshNow(ctx context.Context) error {
	return c.RefreshWhere(ctx, nil)
}

// RefreshWhere is [Checker.RefreshNow] for the sources whose base CRL URL
// keep accepts (nil: all); `certgate validate` reads file: CRLs always and
// fetches http(s) ones only when asked.
func (c *Checker) RefreshWhere(ctx context.Context, keep func(crlURL string) bool) error {
	c.mu.Lock()
	srcs := make([]*source, 0, len(c.sources))
	for _, s := range c.sources {
		if s.feeds[baseCRL].url != "" && (keep == nil || keep(s.feeds[baseCRL].url)) {
			srcs = append(srcs, s)
		}
	}
	c.mu.Unlock()
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() { errs[i] = c.refreshSource(ctx, s) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Checker) refreshSource(ctx context.Context, s *source) error {
	errBase := c.fetchFeed(ctx, s, baseCRL)
	var errDelta error
	if s.feeds[deltaCRL].url != "" {
		errDelta = c.fetchFeed(ctx, s, deltaCRL)
	}
	return errors.Join(errBase, errDelta)
}

// RequestFresh supports instant revocation: unless the revocation
// information in force for the CA has a thisUpdate after `after`, it starts
// a fetch of the CA's CRLs now, in the background (joined with any fetch in
// progress, and at most one per CA key every 10 seconds, since every
// handshake of the affected user may ask). The CRLs of the CA's other keys
// that ThisUpdate counts are fetched too when they are not recent enough.
// Callers keep refusing until ThisUpdate passes `after`.
func (c *Checker) RequestFresh(issuerSKI []byte, after time.Time) {
	c.mu.Lock()
	s := c.sources[string(issuerSKI)]
	if s == nil || s.removed {
		c.mu.Unlock()
		return
	}
	snap := c.snap.Load()
	if v := snap.cas[s.key]; v == nil || c.ThisUpdate(issuerSKI).After(after) {
		c.mu.Unlock()
		return
	}
	now := c.now()
	var due []*source
	for _, k := range c.byName[s.dn] {
		o, ov := c.sources[k], snap.cas[k]
		if o == nil || ov == nil || o.feeds[baseCRL].url == "" {
			continue
		}
		if k != s.key {
			if b := ov.base; b != nil && (!b.scope.mayCoverEndEntities() || ov.thisUpdate().After(after)) {
				continue
			}
		} else if ov.thisUpdate().After(after) {
			continue
		}
		if !o.lastRequested.IsZero() && now.Sub(o.lastRequested) < requestFreshInterval {
			continue
		}
		o.lastRequested = now
		due = append(due, o)
	}
	c.mu.Unlock()
	for _, o := range due {
		c.bg.Go(func() { _ = c.refreshSource(context.Background(), o) })
	}
}

// fetchFeed fetches one CRL of a source (deduplicated per URL), verifies
// it, and installs it if it moves forward.
func (c *Checker) fetchFeed(ctx context.Context, s *source, w which) error {
	url := s.feeds[w].url // immutable for the source's life
	_, err := c.flights.do(ctx, w.String()+"\x00"+s.key+"\x00"+url, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.doFetch(ctx, s, w, url)
	})
	return err
}

func (c *Checker) doFetch(ctx context.Context, s *source, w which, url string) error {
	c.mu.Lock()
	cond := s.feeds[w].cond
	s.feeds[w].lastAttempt = c.now()
	c.mu.Unlock()

	res, err := c.fetch(ctx, url, cond)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return err // shutting down: not the CRL server's fault
		}
		return c.failed(s, w, err)
	}
	if res.notModified {
		c.mu.Lock()
		f := &s.feeds[w]
		now := c.now()
		s.lastFetch, s.lastSuccess, s.lastErr = now, now, ""
		f.failures = 0
		if f.crl != nil {
			f.next = now.Add(c.refreshDelay(now, f))
		}
		c.mu.Unlock()
		level := slog.LevelInfo
		if isFileURL(url) {
			level = slog.LevelDebug // polled every few seconds
		}
		c.log.Log(ctx, level, "CRL not modified", "issuer_ski", s.skiHex, "url", url, "crl", w.String(), "kind", "not_modified")
		return nil
	}
	// The body buffer is reused by the next fetch (fetch.go).
	defer putBody(res.body)
	parsed, err := parseCRL(res.body, s.iss, newPacer(c.opts.IngestShare))
	if err == nil {
		err = checkKind(parsed, w)
	}
	if err == nil {
		err = parsed.checkTimes(c.now(), c.opts.Skew, true)
	}
	if err != nil {
		var fe *FetchError
		if errors.As(err, &fe) && fe.URL == "" {
			fe.URL = url
		}
		return c.failed(s, w, err)
	}
	changed, err := c.install(s, w, parsed, res.validator, false)
	if err != nil {
		return c.failed(s, w, &FetchError{Kind: KindRollback, URL: url, Err: err})
	}
	c.log.Info("CRL fetched", "issuer_ski", s.skiHex, "url", url, "crl", w.String(), "kind", "ok",
		"entries", parsed.entries, "number", numberString(parsed.number),
		"this_update", parsed.thisUpdate, "next_update", parsed.nextUpdate, "changed", changed)
	if changed {
		c.writeCache(s, w, res.body)
	}
	return nil
}

// checkKind refuses a delta served at the base URL and the reverse: a base
// taken for a delta would hide every revocation older than it.
func checkKind(c *crl, w which) error {
	if w == baseCRL && c.isDelta() {
		return fetchErrorf(KindParse, "a delta CRL was served at the base CRL URL")
	}
	if w == deltaCRL && !c.isDelta() {
		return fetchErrorf(KindParse, "a complete CRL was served at the delta CRL URL")
	}
	return nil
}

// install puts a verified CRL in force unless it goes back. It reports
// whether the state changed (an identical re-serve does not).
func (c *Checker) install(s *source, w which, n *crl, cond validator, fromCache bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := &s.feeds[w]
	now := c.now()
	if !fromCache {
		s.lastFetch = now
	}
	if s.removed {
		return false, nil
	}
	if cur := f.crl; cur != nil {
		switch cmp := compareNumber(n, cur); {
		case cmp < 0:
			return false, fmt.Errorf("CRL number %s is older than %s in force", numberString(n.number), numberString(cur.number))
		case cmp == 0 && n.digest != cur.digest:
			return false, fmt.Errorf("CRL number %s in force has different content", numberString(n.number))
		case cmp == 0:
			n = nil // the same CRL again
		}
	}
	if !fromCache {
		s.lastSuccess, s.lastErr = now, ""
		f.failures = 0
		f.cond = cond
	}
	if n == nil {
		f.next = now.Add(c.refreshDelay(now, f))
		return false, nil
	}
	f.crl, f.fromCache = n, fromCache
	if w == baseCRL {
		s.baseErr.Store(nil)
	}
	f.next = now.Add(c.refreshDelay(now, f))
	if fromCache {
		f.next = time.Time{} // fetch at once: the network may know more
	}
	base, delta := s.feeds[baseCRL].crl, s.feeds[deltaCRL].crl
	if delta != nil && base != nil && !deltaApplies(base, delta) {
		c.log.Warn("delta CRL does not apply to the base in force; using the base alone",
			"issuer_ski", s.skiHex, "base_number", numberString(base.number),
			"delta_number", numberString(delta.number), "delta_base", numberString(delta.deltaBase))
		if base.number != nil && delta.deltaBase.Cmp(base.number) > 0 && !fromCache {
			s.feeds[baseCRL].next = now // the delta is for a newer base: get it
		}
	}
	c.publishLocked()
	return true, nil
}

// failed records a failed fetch and schedules the retry.
func (c *Checker) failed(s *source, w which, err error) error {
	kind := KindHTTP
	url := s.feeds[w].url
	var fe *FetchError
	if errors.As(err, &fe) {
		kind = fe.Kind
	}
	c.mu.Lock()
	now := c.now()
	f := &s.feeds[w]
	s.lastFetch = now
	s.lastErr = err.Error()
	if w == baseCRL && f.crl == nil {
		msg := err.Error()
		s.baseErr.Store(&msg)
	}
	s.fetchErrors[kind]++
	f.failures++
	var retryAfter time.Duration
	if fe != nil {
		retryAfter = fe.RetryAfter
	}
	f.next = now.Add(retryDelay(now, f.failures, retryAfter, f.crl, isFileURL(url), c.opts.MaxRefresh, rand.Float64()))
	c.mu.Unlock()
	c.log.Warn("CRL fetch failed", "issuer_ski", s.skiHex, "url", url, "crl", w.String(), "kind", kind, "err", err)
	return err
}

func numberString(n *big.Int) string {
	if n == nil {
		return ""
	}
	return n.String()
}

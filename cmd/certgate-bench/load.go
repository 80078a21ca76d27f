package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is the JSON line of a load mode.
type loadResult struct {
	Mode       string  `json:"mode"`
	Label      string  `json:"label,omitempty"`
	Target     string  `json:"target"`
	Proto      string  `json:"proto"`
	TLSVersion string  `json:"tls_version,omitempty"`
	Group      string  `json:"group,omitempty"`
	Workers    int     `json:"workers"`
	DurationS  float64 `json:"duration_s"`
	OK         int64   `json:"ok"`
	Errors     int64   `json:"errors"`
	Resumed    int64   `json:"resumed"`
	Reconnects int64   `json:"reconnects,omitempty"`
	Rate       float64 `json:"rate_per_s"`
	Latency    summary `json:"latency"`
	// ServerCPU is the server's CPU use in cores over the run (-1 unknown):
	// well below 1 on a server pinned to one core means the load
	// generator, not the server, set the rate.
	ServerCPU float64 `json:"server_cpu_cores"`
	// ServerWait is the time the server's threads were runnable but
	// waiting for a CPU, in cores (-1 unknown): other processes' share.
	ServerWait float64 `json:"server_wait_cores"`
	ClientCPU  float64 `json:"client_cpu_cores"`
	FirstError string  `json:"first_error,omitempty"`
}

// runState is shared by the workers of one run.
type runState struct {
	lf      *loadFlags
	cfg     *tls.Config
	expect  []byte
	started atomic.Int64
	ok      atomic.Int64
	errs    atomic.Int64
	resumed atomic.Int64
	reconn  atomic.Int64

	mu       sync.Mutex
	firstErr string
	version  uint16
	group    tls.CurveID
}

// over reports whether the run's bound has passed. A dial's own timer can
// fire a moment before the context reports its deadline, so both are
// checked: a failure after the bound is the bound's, not the server's.
func over(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// take reserves one operation under --max.
func (st *runState) take() bool { return st.started.Add(1) <= int64(st.lf.max) }

func (st *runState) fail(err error) {
	st.errs.Add(1)
	st.mu.Lock()
	if st.firstErr == "" {
		st.firstErr = err.Error()
	}
	st.mu.Unlock()
}

func (st *runState) seen(cs tls.ConnectionState) {
	if cs.DidResume {
		st.resumed.Add(1)
	}
	st.mu.Lock()
	if st.version == 0 {
		st.version, st.group = cs.Version, cs.CurveID
	}
	st.mu.Unlock()
}

const (
	dialTimeout = 10 * time.Second
	ioTimeout   = 30 * time.Second
)

func (st *runState) dial(ctx context.Context, cfg *tls.Config) (*tls.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	raw, err := d.DialContext(ctx, "tcp", st.lf.addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// oneShot is a full or resumed handshake, one request, and the close.
func (st *runState) oneShot(ctx context.Context, cfg *tls.Config, req []byte, buf []byte) error {
	tc, err := st.dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := tc.Write(req); err != nil {
		return err
	}
	br := bufio.NewReaderSize(tc, 4096)
	if _, _, err := readH1Response(br, st.expect, buf); err != nil {
		return err
	}
	// Wait for the server's close, so that the server, which asked for it,
	// keeps the TIME_WAIT. What the read returns does not matter: the
	// request was served.
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var one [1]byte
	_, _ = br.Read(one[:])
	st.seen(tc.ConnectionState())
	return nil
}

func runLoad(ctx context.Context, mode string, lf *loadFlags, out io.Writer) error {
	cfg, err := lf.tlsConfig()
	if err != nil {
		return err
	}
	if mode == "idle" {
		return runIdle(ctx, lf, cfg, out)
	}
	st := &runState{lf: lf, cfg: cfg, expect: []byte(lf.expect)}
	res := loadResult{Mode: mode, Label: lf.label, Target: lf.url.String(), Proto: "http/1.1", Workers: lf.workers}
	if lf.h2 {
		res.Proto = "h2"
	}
	if lf.h2 && mode != "keepalive" {
		return usagef("%s: --h2 applies to keepalive and idle only", mode)
	}
	runCtx, cancel := until(ctx, lf.duration)
	defer cancel()
	perWorker := max(lf.samples/lf.workers, 1)
	lats := make([]*latencies, lf.workers)
	var extra func() any
	cpu := startCPU(lf.pid)
	self0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	switch mode {
	case "handshakes", "resumed":
		for i := range lats {
			lats[i] = newLatencies(perWorker)
			wg.Go(func() { st.handshakeWorker(runCtx, mode == "resumed", lats[i]) })
		}
	case "keepalive":
		for i := range lats {
			lats[i] = newLatencies(perWorker)
			wg.Go(func() { st.keepaliveWorker(runCtx, lats[i]) })
		}
	case "crl-refresh":
		extra = st.crlRefresh(runCtx, &wg, perWorker)
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.ServerCPU, res.ServerWait = cpu.cores(), cpu.waitCores()
	res.ClientCPU = round3((selfCPU() - self0).Seconds() / elapsed.Seconds())
	res.DurationS = round3(elapsed.Seconds())
	res.OK, res.Errors, res.Resumed, res.Reconnects = st.ok.Load(), st.errs.Load(), st.resumed.Load(), st.reconn.Load()
	res.Rate = round3(float64(res.OK) / elapsed.Seconds())
	res.FirstError = st.firstErr
	res.TLSVersion, res.Group = versionName(st.version), groupName(st.group)
	if st.version == 0 {
		res.TLSVersion = ""
	}
	if extra != nil {
		r := extra().(*refreshResult)
		lat := r.Latency
		r.loadResult = res
		r.Latency = lat
		return emit(out, r, r.human())
	}
	res.Latency = summarize(lats...)
	human := fmt.Sprintf("%s %s %s: %.0f/s ok=%d errors=%d resumed=%d p50=%.2fms p99=%.2fms group=%s %s server_cpu=%.2f server_wait=%.2f client_cpu=%.2f",
		mode, res.Proto, res.Target, res.Rate, res.OK, res.Errors, res.Resumed, res.Latency.P50, res.Latency.P99,
		res.Group, res.TLSVersion, res.ServerCPU, res.ServerWait, res.ClientCPU)
	if res.FirstError != "" {
		human += " first_error=" + res.FirstError
	}
	return emit(out, res, human)
}

func (st *runState) handshakeWorker(ctx context.Context, resume bool, lat *latencies) {
	cfg := st.cfg
	if resume {
		cfg = st.cfg.Clone()
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	}
	req := h1Request(st.lf.hostHeader, st.lf.url.RequestURI(), true)
	buf := make([]byte, 0, 4096)
	for ctx.Err() == nil && st.take() {
		t0 := time.Now()
		err := st.oneShot(ctx, cfg, req, buf)
		if err != nil {
			if over(ctx) {
				return // the run's bound cut it short: not the server's failure
			}
			st.fail(err)
			continue
		}
		lat.add(time.Since(t0))
		st.ok.Add(1)
	}
}

// keepConn is one kept-alive connection, HTTP/1.1 or h2.
type keepConn struct {
	tc  *tls.Conn
	br  *bufio.Reader
	req []byte
	buf []byte
	h2  *h2Client
}

func (st *runState) openKeep(ctx context.Context) (*keepConn, error) {
	tc, err := st.dial(ctx, st.cfg)
	if err != nil {
		return nil, err
	}
	cs := tc.ConnectionState()
	st.seen(cs)
	k := &keepConn{tc: tc}
	if st.lf.h2 {
		if cs.NegotiatedProtocol != "h2" {
			tc.Close()
			return nil, errNotH2
		}
		if k.h2, err = newH2Client(tc, st.lf.hostHeader, st.lf.url.RequestURI()); err != nil {
			tc.Close()
			return nil, err
		}
		return k, nil
	}
	k.br = bufio.NewReaderSize(tc, 16<<10)
	k.req = h1Request(st.lf.hostHeader, st.lf.url.RequestURI(), false)
	k.buf = make([]byte, 0, 4096)
	return k, nil
}

// do runs one request; closed reports that the connection cannot be
// reused.
func (k *keepConn) do(expect []byte) (closed bool, err error) {
	k.tc.SetDeadline(time.Now().Add(ioTimeout))
	if k.h2 != nil {
		err := k.h2.do(expect)
		return err != nil && !errors.Is(err, errBadResponse), err
	}
	if _, err := k.tc.Write(k.req); err != nil {
		return true, err
	}
	_, closed, err = readH1Response(k.br, expect, k.buf)
	if err != nil && !errors.Is(err, errBadResponse) {
		closed = true
	}
	return closed, err
}

func (st *runState) keepaliveWorker(ctx context.Context, lat *latencies) {
	var k *keepConn
	var cur atomic.Pointer[tls.Conn]
	defer func() {
		if k != nil {
			k.tc.Close()
		}
	}()
	// The connection is unblocked when the run ends, so a request waiting
	// on a stalled server does not outlive the bound.
	stop := context.AfterFunc(ctx, func() {
		if c := cur.Load(); c != nil {
			c.SetDeadline(time.Now())
		}
	})
	defer stop()
	for ctx.Err() == nil && st.take() {
		if k == nil {
			var err error
			if k, err = st.openKeep(ctx); err != nil {
				if !over(ctx) {
					st.fail(err)
				}
				k = nil
				continue
			}
			cur.Store(k.tc)
		}
		t0 := time.Now()
		closed, err := k.do(st.expect)
		if err != nil && over(ctx) {
			return
		}
		if err != nil {
			st.fail(err)
		} else {
			lat.add(time.Since(t0))
			st.ok.Add(1)
		}
		if closed {
			k.tc.Close()
			k = nil
			st.reconn.Add(1)
		}
	}
}

// idleResult is the JSON line of the idle mode.
type idleResult struct {
	Mode        string  `json:"mode"`
	Label       string  `json:"label,omitempty"`
	Target      string  `json:"target"`
	Proto       string  `json:"proto"`
	Group       string  `json:"group,omitempty"`
	Conns       int     `json:"conns"`
	Opened      int64   `json:"opened"`
	OpenAtEnd   int64   `json:"open_at_end"`
	Errors      int64   `json:"errors"`
	OpenSeconds float64 `json:"open_s"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	RSSAfterKB  int64   `json:"rss_after_kb"`
	// BytesPerConn is the server's RSS growth divided by the connections
	// opened.
	BytesPerConn float64 `json:"bytes_per_conn"`
	FirstError   string  `json:"first_error,omitempty"`
}

// runIdle opens --conns connections, each after one request (so the
// server has set up everything a live client costs), leaves them idle, as
// EAS devices between Pings, and reads the server's RSS before and after.
func runIdle(ctx context.Context, lf *loadFlags, cfg *tls.Config, out io.Writer) error {
	st := &runState{lf: lf, cfg: cfg, expect: []byte(lf.expect)}
	res := idleResult{Mode: "idle", Label: lf.label, Target: lf.url.String(), Proto: "http/1.1", Conns: lf.conns}
	if lf.h2 {
		res.Proto = "h2"
	}
	var err error
	if lf.pid > 0 {
		if res.RSSBeforeKB, err = statusKB(lf.pid, "VmRSS"); err != nil {
			return fmt.Errorf("idle: --pid %d: %w", lf.pid, err)
		}
	}
	runCtx, cancel := until(ctx, lf.duration)
	defer cancel()
	conns := make([]*keepConn, lf.conns)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range lf.workers {
		wg.Go(func() {
			for runCtx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				k, err := st.openKeep(runCtx)
				if err == nil {
					_, err = k.do(st.expect)
					if err != nil {
						k.tc.Close()
					}
				}
				if err != nil {
					if !over(runCtx) {
						st.fail(err)
					}
					continue
				}
				k.tc.SetDeadline(time.Time{})
				conns[i] = k
				st.ok.Add(1)
			}
		})
	}
	wg.Wait()
	res.OpenSeconds = round3(time.Since(start).Seconds())
	defer func() {
		for _, k := range conns {
			if k != nil {
				k.tc.Close()
			}
		}
	}()
	select {
	case <-time.After(lf.settle):
	case <-ctx.Done():
		return ctx.Err()
	}
	if lf.pid > 0 {
		if res.RSSAfterKB, err = statusKB(lf.pid, "VmRSS"); err != nil {
			return fmt.Errorf("idle: --pid %d: %w", lf.pid, err)
		}
	}
	res.Opened = st.ok.Load()
	// Prove they are still open: one more request on each.
	probeCtx, cancelProbe := until(ctx, lf.duration)
	defer cancelProbe()
	var alive atomic.Int64
	next.Store(0)
	for range lf.workers {
		wg.Go(func() {
			for probeCtx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				if k := conns[i]; k != nil {
					if _, err := k.do(st.expect); err == nil {
						alive.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	res.OpenAtEnd = alive.Load()
	res.Errors = st.errs.Load()
	res.FirstError = st.firstErr
	res.Group = groupName(st.group)
	if res.Opened > 0 && lf.pid > 0 {
		res.BytesPerConn = round3(float64(res.RSSAfterKB-res.RSSBeforeKB) * 1024 / float64(res.Opened))
	}
	human := fmt.Sprintf("idle %s %s: opened=%d open_at_end=%d errors=%d rss %d -> %d kB = %.0f bytes/conn",
		res.Proto, res.Target, res.Opened, res.OpenAtEnd, res.Errors, res.RSSBeforeKB, res.RSSAfterKB, res.BytesPerConn)
	if res.FirstError != "" {
		human += " first_error=" + res.FirstError
	}
	return emit(out, res, human)
}

// refreshResult is the JSON line of crl-refresh: handshake latency in
// baseline slices against the slices in which a CRL refresh ran.
type refreshResult struct {
	loadResult
	Baseline      summary `json:"baseline"`
	DuringRefresh summary `json:"during_refresh"`
	BaselineRate  float64 `json:"baseline_rate_per_s"`
	RefreshRate   float64 `json:"refresh_rate_per_s"`
	P99DeltaPct   float64 `json:"p99_delta_pct"`
	Refreshes     int     `json:"refreshes"`
	RefreshErrors int     `json:"refresh_errors"`
	RefreshMeanS  float64 `json:"refresh_mean_s"`
}

func (r *refreshResult) human() string {
	s := fmt.Sprintf("crl-refresh %s: baseline p99=%.2fms (%.0f/s), during refresh p99=%.2fms (%.0f/s): %+.1f%%; %d refreshes of %.2fs mean, %d failed; errors=%d group=%s server_cpu=%.2f",
		r.Target, r.Baseline.P99, r.BaselineRate, r.DuringRefresh.P99, r.RefreshRate, r.P99DeltaPct,
		r.Refreshes, r.RefreshMeanS, r.RefreshErrors, r.Errors, r.Group, r.ServerCPU)
	if r.FirstError != "" {
		s += " first_error=" + r.FirstError
	}
	return s
}

// crlRefresh runs full handshakes while alternating baseline slices with
// refreshes triggered through the admin port. A handshake that overlaps a
// refresh at all counts as "during".
func (st *runState) crlRefresh(ctx context.Context, wg *sync.WaitGroup, perWorker int) func() any {
	var epoch atomic.Int64 // odd while a refresh runs
	base := make([]*latencies, st.lf.workers)
	during := make([]*latencies, st.lf.workers)
	var baseTime, duringTime time.Duration
	var baseOK, duringOK atomic.Int64
	res := &refreshResult{}
	var refreshTotal time.Duration
	req := h1Request(st.lf.hostHeader, st.lf.url.RequestURI(), true)
	for i := range base {
		base[i], during[i] = newLatencies(perWorker), newLatencies(perWorker)
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for ctx.Err() == nil && st.take() {
				e0 := epoch.Load()
				t0 := time.Now()
				err := st.oneShot(ctx, st.cfg, req, buf)
				if err != nil {
					if over(ctx) {
						return
					}
					st.fail(err)
					continue
				}
				d := time.Since(t0)
				st.ok.Add(1)
				if e1 := epoch.Load(); e0 == e1 && e0%2 == 0 {
					base[i].add(d)
					baseOK.Add(1)
				} else {
					during[i].add(d)
					duringOK.Add(1)
				}
			}
		})
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	wg.Go(func() {
		for n := 0; n < st.lf.maxCycle && ctx.Err() == nil; n++ {
			t := time.Now()
			select {
			case <-time.After(st.lf.slice):
			case <-ctx.Done():
			}
			baseTime += time.Since(t)
			if ctx.Err() != nil {
				return
			}
			epoch.Add(1)
			t = time.Now()
			err := postRefresh(ctx, client, st.lf.admin)
			d := time.Since(t)
			epoch.Add(1)
			if ctx.Err() != nil && err != nil {
				duringTime += d
				return
			}
			duringTime += d
			if err != nil {
				res.RefreshErrors++
				st.fail(fmt.Errorf("refresh: %w", err))
				continue
			}
			res.Refreshes++
			refreshTotal += d
		}
	})
	return func() any {
		res.Baseline, res.DuringRefresh = summarize(base...), summarize(during...)
		res.Latency = summarize(append(base, during...)...)
		if baseTime > 0 {
			res.BaselineRate = round3(float64(baseOK.Load()) / baseTime.Seconds())
		}
		if duringTime > 0 {
			res.RefreshRate = round3(float64(duringOK.Load()) / duringTime.Seconds())
		}
		if res.Baseline.P99 > 0 {
			res.P99DeltaPct = round3((res.DuringRefresh.P99/res.Baseline.P99 - 1) * 100)
		}
		if res.Refreshes > 0 {
			res.RefreshMeanS = round3(refreshTotal.Seconds() / float64(res.Refreshes))
		}
		return res
	}
}

func postRefresh(ctx context.Context, client *http.Client, admin string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, admin+"/crl/refresh", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /crl/refresh: %s: %s", resp.Status, truncate(body))
	}
	return nil
}

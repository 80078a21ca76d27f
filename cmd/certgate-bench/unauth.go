package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// The unauth mode answers: how many connections a second without an
// admitted certificate does certgate absorb before admitted users notice?
// Attackers open TLS connections without a client certificate at stepped
// rates (with rejectWith: http the handshake completes); each sends only
// the HTTP/2 preface (or, with --attack-h1, nothing) and holds the
// connection until the server closes it. Meanwhile --workers admitted
// clients make requests over kept-alive connections and --hs-workers make
// a full handshake and one request each time, and their latency and
// errors are reported per step.

type unauthStep struct {
	Rate         int     `json:"rate_target_per_s"`
	Opened       int64   `json:"attack_opened"`
	OpenedRate   float64 `json:"attack_opened_per_s"`
	Refused      int64   `json:"attack_refused"` // closed before or during the handshake
	HeldMax      int64   `json:"attack_held_max"`
	HeldMeanS    float64 `json:"attack_held_mean_s"` // how long the server kept them
	KeepOK       int64   `json:"users_keepalive_ok"`
	KeepErr      int64   `json:"users_keepalive_errors"`
	Keep         summary `json:"users_keepalive_latency"`
	HandshakeOK  int64   `json:"users_handshake_ok"`
	HandshakeErr int64   `json:"users_handshake_errors"`
	Handshake    summary `json:"users_handshake_latency"`
	Noticed      bool    `json:"users_noticed"`
	FirstError   string  `json:"first_error,omitempty"`
}

type unauthResult struct {
	Mode      string       `json:"mode"`
	Label     string       `json:"label,omitempty"`
	Target    string       `json:"target"`
	Attack    string       `json:"attack"`
	Sources   int          `json:"sources"`
	Steps     []unauthStep `json:"steps"`
	Absorbed  int          `json:"absorbed_rate_per_s"` // the highest step below the first one users noticed
	ServerCPU float64      `json:"server_cpu_cores"`
}

// stepStats collects one step's numbers from all goroutines.
type stepStats struct {
	opened, refused, heldMax, heldNs, closedN atomic.Int64
	keepOK, keepErr, hsOK, hsErr              atomic.Int64
	mu                                        sync.Mutex
	keep, hs                                  *latencies
	firstErr                                  string
}

func (s *stepStats) fail(err error) {
	s.mu.Lock()
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
	s.mu.Unlock()
}

func (s *stepStats) add(l **latencies, d time.Duration) {
	s.mu.Lock()
	(*l).add(d)
	s.mu.Unlock()
}

func runUnauth(ctx context.Context, lf *loadFlags, ratesFlag string, step time.Duration, sources, hsWorkers, maxHeld int, attackH1 bool, out io.Writer) error {
	var rates []int
	for _, f := range strings.Split(ratesFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 100_000 {
			return usagef("unauth: --rates %q: want comma-separated rates from 0 to 100000", ratesFlag)
		}
		rates = append(rates, n)
	}
	if sources < 1 || sources > 250 || step <= 0 || maxHeld < 1 {
		return usagef("unauth: --sources (1..250), --step and --max-held must be positive")
	}
	cfg, err := lf.tlsConfig()
	if err != nil {
		return err
	}
	attackCfg := cfg.Clone()
	attackCfg.Certificates = nil
	attackCfg.NextProtos = []string{"h2"}
	if attackH1 {
		attackCfg.NextProtos = []string{"http/1.1"}
	}
	userCfg := cfg.Clone()
	userCfg.NextProtos = []string{"http/1.1"}
	st := &runState{lf: lf, cfg: userCfg, expect: []byte(lf.expect)}
	lf.max = 1 << 62 // the steps bound the run

	host, port, _ := net.SplitHostPort(lf.addr)
	loopback := net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback() || host == "localhost"
	if sources > 1 && !loopback {
		return usagef("unauth: --sources > 1 needs a loopback target (127.0.0.x source addresses)")
	}
	total := time.Duration(len(rates)) * step
	runCtx, cancel := until(ctx, total+ioTimeout)
	defer cancel()
	var cur atomic.Pointer[stepStats]
	cur.Store(&stepStats{keep: newLatencies(1024), hs: newLatencies(1024)})

	// Admitted users, for the whole run.
	usersCtx, stopUsers := context.WithCancel(runCtx)
	defer stopUsers()
	var users sync.WaitGroup
	for range lf.workers {
		users.Go(func() {
			var k *keepConn
			defer func() {
				if k != nil {
					k.tc.Close()
				}
			}()
			for usersCtx.Err() == nil {
				s := cur.Load()
				if k == nil {
					var err error
					if k, err = st.openKeep(usersCtx); err != nil {
						if usersCtx.Err() == nil {
							s.keepErr.Add(1)
							s.fail(fmt.Errorf("user connect: %w", err))
							time.Sleep(10 * time.Millisecond)
						}
						k = nil
						continue
					}
				}
				t0 := time.Now()
				closed, err := k.do(st.expect)
				switch {
				case usersCtx.Err() != nil:
				case err != nil:
					s.keepErr.Add(1)
					s.fail(fmt.Errorf("user request: %w", err))
				default:
					s.keepOK.Add(1)
					s.add(&s.keep, time.Since(t0))
				}
				if closed || err != nil {
					k.tc.Close()
					k = nil
				}
			}
		})
	}
	req := h1Request(lf.hostHeader, lf.url.RequestURI(), true)
	for range hsWorkers {
		users.Go(func() {
			buf := make([]byte, 0, 4096)
			for usersCtx.Err() == nil {
				s := cur.Load()
				t0 := time.Now()
				err := st.oneShot(usersCtx, userCfg, req, buf)
				switch {
				case usersCtx.Err() != nil:
				case err != nil:
					s.hsErr.Add(1)
					s.fail(fmt.Errorf("user handshake: %w", err))
				default:
					s.hsOK.Add(1)
					s.add(&s.hs, time.Since(t0))
				}
			}
		})
	}

	var held atomic.Int64
	var attackers sync.WaitGroup
	attack := func(s *stepStats, src int) {
		defer attackers.Done()
		d := net.Dialer{Timeout: dialTimeout}
		if sources > 1 {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+src%sources))}
		}
		raw, err := d.DialContext(runCtx, "tcp", net.JoinHostPort(host, port))
		if err != nil {
			s.refused.Add(1)
			return
		}
		defer raw.Close()
		tc := tls.Client(raw, attackCfg)
		tc.SetDeadline(time.Now().Add(ioTimeout))
		if err := tc.Handshake(); err != nil {
			s.refused.Add(1)
			return
		}
		s.opened.Add(1)
		n := held.Add(1)
		defer held.Add(-1)
		for {
			m := s.heldMax.Load()
			if n <= m || s.heldMax.CompareAndSwap(m, n) {
				break
			}
		}
		t0 := time.Now()
		if !attackH1 {
			tc.Write([]byte(http2.ClientPreface))
			http2.NewFramer(tc, tc).WriteSettings()
		}
		// Hold it: read (and drop) until the server closes it or the
		// bound passes.
		io.Copy(io.Discard, tc)
		s.heldNs.Add(int64(time.Since(t0)))
		s.closedN.Add(1)
	}

	cpu := startCPU(lf.pid)
	res := unauthResult{Mode: "unauth", Label: lf.label, Target: lf.url.String(), Attack: "h2 preface only", Sources: sources}
	if attackH1 {
		res.Attack = "http/1.1, nothing sent"
	}
	var baseP99, baseRate float64
	src := 0
	var all []*stepStats
	noticed := false // absorbed is the highest rate below the first noticed step
	for _, rate := range rates {
		s := &stepStats{keep: newLatencies(4096), hs: newLatencies(1024)}
		all = append(all, s)
		cur.Store(s)
		start := time.Now()
		end := start.Add(step)
		launched := 0
		tick := time.NewTicker(10 * time.Millisecond)
		for now := time.Now(); now.Before(end) && runCtx.Err() == nil; now = <-tick.C {
			due := int(float64(rate) * now.Sub(start).Seconds())
			for ; launched < due; launched++ {
				if held.Load() >= int64(maxHeld) {
					continue // bounded: the client's own cap
				}
				attackers.Add(1)
				src++
				go attack(s, src)
			}
		}
		tick.Stop()
		elapsed := time.Since(start).Seconds()
		r := unauthStep{Rate: rate, Opened: s.opened.Load(), Refused: s.refused.Load(), HeldMax: s.heldMax.Load(),
			KeepOK: s.keepOK.Load(), KeepErr: s.keepErr.Load(), HandshakeOK: s.hsOK.Load(), HandshakeErr: s.hsErr.Load()}
		r.OpenedRate = round3(float64(r.Opened) / elapsed)
		s.mu.Lock()
		r.Keep, r.Handshake, r.FirstError = summarize(s.keep), summarize(s.hs), s.firstErr
		s.mu.Unlock()
		served := float64(r.KeepOK+r.HandshakeOK) / elapsed
		if len(res.Steps) == 0 {
			baseP99, baseRate = max(r.Keep.P99, r.Handshake.P99), served
		}
		// Noticed: an admitted user got an error, the slower of the two
		// p99s more than doubled (and by more than 5 ms), or the users
		// got less than half their requests through, against the first
		// step.
		worst := max(r.Keep.P99, r.Handshake.P99)
		r.Noticed = r.KeepErr+r.HandshakeErr > 0 || worst > 2*baseP99 && worst-baseP99 > 5 || served < baseRate/2
		if !r.Noticed && !noticed && rate > res.Absorbed {
			res.Absorbed = rate
		}
		noticed = noticed || r.Noticed
		res.Steps = append(res.Steps, r)
		fmt.Fprintf(out, "# step %d/s: attack opened %.0f/s (refused %d, held max %d) | users keepalive ok=%d err=%d p50=%.2fms p99=%.2fms | handshake ok=%d err=%d p50=%.2fms p99=%.2fms | noticed=%v %s\n",
			rate, r.OpenedRate, r.Refused, r.HeldMax, r.KeepOK, r.KeepErr, r.Keep.P50, r.Keep.P99,
			r.HandshakeOK, r.HandshakeErr, r.Handshake.P50, r.Handshake.P99, r.Noticed, r.FirstError)
	}
	stopUsers()
	users.Wait()
	res.ServerCPU = cpu.cores()
	// The held connections end when the server closes them (or at the
	// run's bound); their mean hold time is the figure that matters.
	attackers.Wait()
	for i, s := range all {
		if n := s.closedN.Load(); n > 0 {
			res.Steps[i].HeldMeanS = round3(time.Duration(s.heldNs.Load() / n).Seconds())
		}
	}
	return emit(out, res, fmt.Sprintf("unauth %s: users did not notice up to %d new cert-less connections/s (%s, %d source addresses)", res.Target, res.Absorbed, res.Attack, sources))
}

// runUnauthFlags parses the unauth mode's own flags around the common
// load flags.
func runUnauthFlags(ctx context.Context, args []string, out io.Writer) error {
	var rest []string
	rates, step, sources, hsWorkers, maxHeld, h1 := "0,50,100,200,400,800", 3*time.Second, 1, 2, 20000, false
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", usagef("unauth: --%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "rates":
			rates, err = next()
		case "step":
			if v, err = next(); err == nil {
				step, err = time.ParseDuration(v)
			}
		case "sources", "hs-workers", "max-held":
			if v, err = next(); err == nil {
				var n int
				n, err = strconv.Atoi(v)
				switch name {
				case "sources":
					sources = n
				case "hs-workers":
					hsWorkers = n
				default:
					maxHeld = n
				}
			}
		case "attack-h1":
			h1 = true
		default:
			rest = append(rest, args[i])
		}
		if err != nil {
			return usagef("unauth: --%s: %v", name, err)
		}
	}
	lf, err := parseLoadFlags("unauth", rest)
	if err != nil {
		return err
	}
	return runUnauth(ctx, lf, rates, step, sources, hsWorkers, maxHeld, h1, out)
}

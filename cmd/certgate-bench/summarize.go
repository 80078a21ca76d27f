package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// line is the union of the JSON lines the modes print, as summarize reads
// them back.
type line struct {
	Mode      string  `json:"mode"`
	Label     string  `json:"label"`
	Group     string  `json:"group"`
	OK        int64   `json:"ok"`
	Errors    int64   `json:"errors"`
	Rate      float64 `json:"rate_per_s"`
	ServerCPU float64 `json:"server_cpu_cores"`
	// ServerWait is absent from older lines.
	ServerWait *float64 `json:"server_wait_cores"`
	Latency    summary  `json:"latency"`
	// idle
	BytesPerConn float64 `json:"bytes_per_conn"`
	OpenAtEnd    int64   `json:"open_at_end"`
	Opened       int64   `json:"opened"`
	// crl-refresh
	P99DeltaPct float64 `json:"p99_delta_pct"`
	Baseline    summary `json:"baseline"`
	During      summary `json:"during_refresh"`
	Refreshes   int     `json:"refreshes"`
	// crl
	IngestS    float64  `json:"ingest_s"`
	IngestCPU  *float64 `json:"ingest_cpu_s"`
	LookupCPU  *float64 `json:"lookup_not_revoked_cpu_ns"`
	PerEntry   float64  `json:"retained_bytes_per_entry"`
	PeakGrowth float64  `json:"peak_rss_growth_over_der"`
	LookupNs   float64  `json:"lookup_not_revoked_ns"`
	LookupAllo float64  `json:"lookup_not_revoked_allocs"`
}

// metric is one row of the table: how to read it from a line, and the
// target it is held to.
type metric struct {
	scenario, name string
	get            func(*line) float64
	// ratio: certgate/nginx must be >= ratio (or <= when lower is better);
	// limit: certgate's own value must be below it. Zero means none.
	ratio       float64
	lowerBetter bool
	limit       float64
	target      string
}

var metrics = []metric{
	{scenario: "hs-small", name: "full handshakes/s", get: rate, ratio: 2.5, target: "≥ 2.5× nginx"},
	{scenario: "hs-big", name: "full handshakes/s, big CRL", get: rate, ratio: 50, target: "≥ 50× nginx"},
	{scenario: "hs-small", name: "server CPU µs per handshake", get: cpuPerOp, ratio: 0.4, lowerBetter: true, target: "≤ 0.40× nginx (= 2.5× rate)"},
	{scenario: "hs-big", name: "server CPU µs per handshake, big CRL", get: cpuPerOp, ratio: 0.02, lowerBetter: true, target: "≤ 0.02× nginx (= 50× rate)"},
	{scenario: "hs-small", name: "handshake p99 ms", get: p99, lowerBetter: true},
	{scenario: "hs-mlkem", name: "full handshakes/s, X25519MLKEM768", get: rate},
	{scenario: "resumed", name: "resumed handshakes/s", get: rate},
	{scenario: "ka-h1", name: "keep-alive req/s HTTP/1.1", get: rate, ratio: 1.0, target: "≥ 1.0× nginx"},
	{scenario: "ka-h1", name: "server CPU µs per request HTTP/1.1", get: cpuPerOp, ratio: 1.0, lowerBetter: true, target: "≤ nginx"},
	{scenario: "ka-h1", name: "keep-alive p99 ms HTTP/1.1", get: p99, ratio: 1.0, lowerBetter: true, target: "≤ nginx"},
	{scenario: "ka-h2", name: "keep-alive req/s HTTP/2", get: rate, ratio: 1.0, target: "≥ 1.0× nginx"},
	{scenario: "ka-h2", name: "server CPU µs per request HTTP/2", get: cpuPerOp, ratio: 1.0, lowerBetter: true, target: "≤ nginx"},
	{scenario: "ka-h2", name: "keep-alive p99 ms HTTP/2", get: p99, ratio: 1.0, lowerBetter: true, target: "≤ nginx"},
	{scenario: "idle", name: "bytes per idle keep-alive conn", get: func(l *line) float64 { return l.BytesPerConn }, ratio: 1.2, lowerBetter: true, target: "≤ 1.2× nginx"},
	{scenario: "crl-refresh", name: "handshake p99 change during refresh %", get: func(l *line) float64 { return l.P99DeltaPct }, limit: 5, target: "< 5%"},
	{scenario: "crl", name: "big CRL ingest s", get: func(l *line) float64 { return l.IngestS }, limit: 1.5, target: "< 1.5 s"},
	{scenario: "crl", name: "big CRL ingest CPU s", get: func(l *line) float64 { return orNaN(l.IngestCPU) }, limit: 1.5, target: "< 1.5 s"},
	{scenario: "crl", name: "big CRL retained bytes/entry", get: func(l *line) float64 { return l.PerEntry }, limit: 48, target: "< 48"},
	{scenario: "crl", name: "big CRL peak RSS growth / DER size", get: func(l *line) float64 { return l.PeakGrowth }, limit: 3, target: "< 3×"},
	{scenario: "crl", name: "big CRL lookup ns", get: func(l *line) float64 { return l.LookupNs }, limit: 100, target: "< 100 ns"},
	{scenario: "crl", name: "big CRL lookup CPU ns", get: func(l *line) float64 { return orNaN(l.LookupCPU) }, limit: 100, target: "< 100 ns"},
	{scenario: "crl", name: "big CRL lookup allocs", get: func(l *line) float64 { return l.LookupAllo }, limit: 0.01, target: "0"},
}

func rate(l *line) float64 { return l.Rate }

// orNaN reads a field older lines may lack: absent is unknown, not zero.
func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// cpuPerOp is the server's CPU time per operation. Unlike the rate it does
// not depend on how much of its core the server got, so it still compares
// on a machine where other processes take CPU.
func cpuPerOp(l *line) float64 {
	if l.ServerCPU <= 0 || l.Rate <= 0 {
		return math.NaN()
	}
	return l.ServerCPU * 1e6 / l.Rate
}

func p99(l *line) float64 { return l.Latency.P99 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runSummarize prints the Markdown table of BENCHMARKS.md from the JSON
// lines of labelled runs ("server/scenario/round").
func runSummarize(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	var in io.Reader = os.Stdin
	if fs.NArg() > 0 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	return summarizeLines(in, out)
}

func summarizeLines(in io.Reader, out io.Writer) error {
	type key struct{ server, scenario string }
	runs := map[key][]*line{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(t, "{") {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(t), &l); err != nil {
			return fmt.Errorf("summarize: %w: %s", err, truncate([]byte(t)))
		}
		parts := strings.Split(l.Label, "/")
		if len(parts) < 2 {
			continue
		}
		k := key{parts[0], parts[1]}
		runs[k] = append(runs[k], &l)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	med := func(server string, m metric) (float64, int) {
		var v []float64
		for _, l := range runs[key{server, m.scenario}] {
			if l.Mode == "crl" || l.Mode == "crl-refresh" || l.Mode == "idle" || l.OK > 0 {
				if x := m.get(l); !math.IsNaN(x) {
					v = append(v, x)
				}
			}
		}
		return median(v), len(v)
	}
	fmt.Fprintln(out, "| scenario | metric | certgate | nginx | certgate/nginx | target | met |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---|---|")
	for _, m := range metrics {
		cg, n := med("certgate", m)
		if n == 0 {
			continue
		}
		ng, nn := med("nginx", m)
		ratio := math.NaN()
		if nn > 0 && ng != 0 {
			ratio = cg / ng
		}
		verdict := ""
		switch {
		case m.limit != 0:
			verdict = yesNo(cg < m.limit)
		case m.ratio != 0 && !math.IsNaN(ratio) && m.lowerBetter:
			verdict = yesNo(ratio <= m.ratio)
		case m.ratio != 0 && !math.IsNaN(ratio):
			verdict = yesNo(ratio >= m.ratio)
		case m.ratio != 0:
			verdict = "n/a"
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s | %s |\n", m.scenario, m.name, num(cg), num(ng), ratioStr(ratio), m.target, verdict)
	}
	// certgate's own big-CRL rate against its small-CRL rate.
	big, nb := med("certgate", metrics[1])
	small, ns := med("certgate", metrics[0])
	if nb > 0 && ns > 0 && small > 0 {
		fmt.Fprintf(out, "| hs-big/hs-small | certgate big-CRL rate / small-CRL rate | %s | | | ≥ 0.95 | %s |\n", ratioStr(big/small), yesNo(big/small >= 0.95))
	}
	// Saturation and groups: a rate is the server's only if its core was busy.
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| scenario | server | runs | median server CPU (cores) | median server run-queue wait (cores) | groups | errors |")
	fmt.Fprintln(out, "|---|---|---:|---:|---:|---|---:|")
	keys := make([]key, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.scenario, b.scenario); c != 0 {
			return c
		}
		return strings.Compare(a.server, b.server)
	})
	for _, k := range keys {
		var cpu, wait []float64
		groups := map[string]bool{}
		var errs int64
		for _, l := range runs[k] {
			if l.ServerCPU >= 0 && l.Mode != "crl" && l.Mode != "idle" {
				cpu = append(cpu, l.ServerCPU)
			}
			if l.ServerWait != nil && *l.ServerWait >= 0 && l.Mode != "crl" && l.Mode != "idle" {
				wait = append(wait, *l.ServerWait)
			}
			if l.Group != "" {
				groups[l.Group] = true
			}
			errs += l.Errors
		}
		gs := slices.Sorted(func(yield func(string) bool) {
			for g := range groups {
				if !yield(g) {
					return
				}
			}
		})
		fmt.Fprintf(out, "| %s | %s | %d | %s | %s | %s | %d |\n", k.scenario, k.server, len(runs[k]), num(median(cpu)), num(median(wait)), strings.Join(gs, ","), errs)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

func num(f float64) string {
	switch {
	case math.IsNaN(f):
		return "–"
	case math.Abs(f) >= 100:
		return fmt.Sprintf("%.0f", f)
	case math.Abs(f) >= 1:
		return fmt.Sprintf("%.2f", f)
	}
	return fmt.Sprintf("%.3f", f)
}

func ratioStr(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	if r < 0.1 {
		return fmt.Sprintf("%.4f×", r)
	}
	return fmt.Sprintf("%.2f×", r)
}

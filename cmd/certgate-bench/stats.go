package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// latencies collects one worker's samples; the cap bounds memory on long
// runs (a sample past it is counted, not kept).
type latencies struct {
	d   []time.Duration
	cap int
}

func newLatencies(capacity int) *latencies {
	return &latencies{d: make([]time.Duration, 0, min(capacity, 1<<16)), cap: capacity}
}

func (l *latencies) add(d time.Duration) {
	if len(l.d) < l.cap {
		l.d = append(l.d, d)
	}
}

// summary is the latency part of a result, in milliseconds.
type summary struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
	N   int     `json:"samples"`
}

func summarize(all ...*latencies) summary {
	var d []time.Duration
	for _, l := range all {
		d = append(d, l.d...)
	}
	if len(d) == 0 {
		return summary{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return ms(d[i])
	}
	return summary{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms(d[len(d)-1]), N: len(d)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTicks reads utime+stime of a process (clock ticks); the server's CPU
// use over a run tells whether it was saturated, and so whether the rate is
// the server's or the load generator's.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces; fields start after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return ut + st, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuMeter measures the CPU a process used over an interval, in cores,
// and how long its threads waited for a CPU while runnable.
type cpuMeter struct {
	pid       int
	start     int64
	waitStart int64
	at        time.Time
	ok        bool
	waitOK    bool
}

func startCPU(pid int) cpuMeter {
	if pid <= 0 {
		return cpuMeter{}
	}
	t, err := cpuTicks(pid)
	w, werr := runDelayNs(pid)
	return cpuMeter{pid: pid, start: t, waitStart: w, at: time.Now(), ok: err == nil, waitOK: werr == nil}
}

// waitCores returns the time the process's threads spent runnable but not
// running, per second of wall time (-1 unknown). A server that used 0.5
// cores and waited 0.5 was starved by other processes, not idle.
func (m cpuMeter) waitCores() float64 {
	if !m.waitOK {
		return -1
	}
	w, err := runDelayNs(m.pid)
	if err != nil {
		return -1
	}
	wall := time.Since(m.at).Seconds()
	if wall <= 0 {
		return -1
	}
	return round3(float64(w-m.waitStart) / 1e9 / wall)
}

// runDelayNs sums the run-queue wait of every thread of pid
// (/proc/PID/task/TID/schedstat, second field).
func runDelayNs(pid int) (int64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		sum += v
	}
	return sum, nil
}

// cores returns the CPU used since start divided by the wall time, or -1
// when unknown.
func (m cpuMeter) cores() float64 {
	if !m.ok {
		return -1
	}
	t, err := cpuTicks(m.pid)
	if err != nil {
		return -1
	}
	wall := time.Since(m.at).Seconds()
	if wall <= 0 {
		return -1
	}
	return round3(float64(t-m.start) / clockTicks / wall)
}

// selfCPU is the load generator's own CPU time, for the same reason.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statusKB reads a "Field: N kB" line of /proc/PID/status.
func statusKB(pid int, field string) (int64, error) {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s line", p, field)
}

func round3(f float64) float64 {
	return float64(int64(f*1000+0.5)) / 1000
}

package testsogo

import (
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Tap is a TCP relay in front of sogod that keeps a copy of every byte
// sent to it: requests exactly as SOGo reads them, header names in the
// case and spelling they arrived in.
type Tap struct {
	ln     net.Listener
	target string

	mu sync.Mutex
	// conns holds what each connection sent, apart: connections run at
	// the same time, and their bytes must not interleave.
	conns []*bytes.Buffer
}

// connLog is one connection's share of the tap.
type connLog struct {
	t *Tap
	b *bytes.Buffer
}

func (c connLog) Write(p []byte) (int, error) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	return c.b.Write(p)
}

func newTap(tb testing.TB, target string) *Tap {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	t := &Tap{ln: ln, target: target}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); t.relay(c) }()
		}
	}()
	return t
}

// Addr is the tap's host:port.
func (t *Tap) Addr() string { return t.ln.Addr().String() }

func (t *Tap) relay(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", t.target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(c, up)
		// sogod closed (or the client went away): end both directions.
		c.Close()
		close(done)
	}()
	log := connLog{t: t, b: &bytes.Buffer{}}
	t.mu.Lock()
	t.conns = append(t.conns, log.b)
	t.mu.Unlock()
	_, _ = io.Copy(up, io.TeeReader(c, log))
	up.Close()
	<-done
}

// Bytes returns everything sent to sogod so far, connection after
// connection, each followed by CRLF.
func (t *Tap) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []byte
	for _, b := range t.conns {
		out = append(out, b.Bytes()...)
		out = append(out, '\r', '\n')
	}
	return out
}

// HeaderValues returns the value of every header line sent to sogod whose
// name, compared without case and with '_' read as '-', is name. Bodies
// are scanned too; a test looks for values it chose.
func (t *Tap) HeaderValues(name string) []string {
	want := strings.ReplaceAll(strings.ToLower(name), "_", "-")
	var out []string
	for _, line := range strings.Split(string(t.Bytes()), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "_", "-") != want {
			continue
		}
		out = append(out, strings.TrimSpace(v))
	}
	return out
}

var requestLine = regexp.MustCompile(`(?m)^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|PROPFIND|PROPPATCH|REPORT|MKCOL|MOVE|COPY) \S+ HTTP/1\.[01]\r$`)

// Requests counts the HTTP/1 request lines sent to sogod.
func (t *Tap) Requests() int {
	return len(requestLine.FindAllIndex(t.Bytes(), -1))
}

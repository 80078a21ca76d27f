package ldapdir_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// forwarder is a TCP relay in front of slapd that counts the connections
// the client opens and how many are open at once; TLS passes through it
// end to end.
type forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu       sync.Mutex
	accepted int
	open     int
	peak     int
	live     map[net.Conn]bool
}

func newForwarder(t testing.TB, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{ln: ln, target: target, live: make(map[net.Conn]bool)}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// Stats returns the connections accepted so far and the most open at once.
func (f *forwarder) Stats() (accepted, peak int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted, f.peak
}

// DropAll cuts every open connection, as a server's idle timeout or a
// firewall would.
func (f *forwarder) DropAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.live {
		c.Close()
	}
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.accepted++
		f.open++
		f.peak = max(f.peak, f.open)
		f.live[c] = true
		f.mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() { f.mu.Lock(); f.open--; delete(f.live, c); f.mu.Unlock() }()
			defer c.Close()
			up, err := net.Dial("tcp", f.target)
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{})
			go func() { _, _ = io.Copy(up, c); up.Close(); close(done) }()
			_, _ = io.Copy(c, up)
			c.Close()
			<-done
		}()
	}
}

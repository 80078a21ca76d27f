package proxy

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// A connection is unauthenticated from accept until its handshake admits
// a client certificate. Such connections are what a client without any
// certificate can open at will, so they are made cheap and short: one
// source address may hold only so many at once (unauthListener), and one
// that completes the handshake without an admitted certificate
// (rejectWith: http) keeps it only until the header timeout, over HTTP/1.1
// and HTTP/2 alike, whatever net/http or its HTTP/2 server later asks of
// the connection's deadlines (guardConn).

// DefaultMaxUnauthenticatedPerIP is the per-source cap when Limits leaves
// it zero.
const DefaultMaxUnauthenticatedPerIP = 128

type unauthListener struct {
	net.Listener
	max     int
	metrics *Metrics

	mu    sync.Mutex
	count map[string]int
}

func newUnauthListener(ln net.Listener, max int, m *Metrics) *unauthListener {
	return &unauthListener{Listener: ln, max: max, metrics: m, count: make(map[string]int)}
}

func (l *unauthListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := sourceIP(c.RemoteAddr())
		l.mu.Lock()
		n := l.count[ip]
		if n >= l.max {
			l.mu.Unlock()
			// Counted before the close, so that whoever sees the refusal
			// finds it in the metrics; closed before any TLS work, the
			// cheapest refusal there is.
			l.metrics.handshake("capped")
			c.Close()
			continue
		}
		l.count[ip] = n + 1
		l.mu.Unlock()
		return &guardConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *unauthListener) release(ip string) {
	l.mu.Lock()
	if l.count[ip] <= 1 {
		delete(l.count, ip)
	} else {
		l.count[ip]--
	}
	l.mu.Unlock()
}

// sourceIP is the key of a source: its IPv4 address, or its IPv6 /64 (one
// host commonly holds a whole /64, so single IPv6 addresses would give an
// attacker 2^64 budgets).
func sourceIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ta.IP.To4() == nil && len(ta.IP) == net.IPv6len {
			return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
		}
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// guardConn is an accepted connection while it is, or once it turned out
// to be, without an admitted certificate.
type guardConn struct {
	net.Conn
	l        *unauthListener
	ip       string
	released atomic.Bool
	// limit, when set (UnixNano), is the latest deadline any read or write
	// on the connection may have.
	limit atomic.Int64
}

// admitted takes the connection out of its source's unauthenticated count.
func (c *guardConn) admitted() {
	if c.released.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
}

// refused caps every later deadline at t: the connection gets its error
// answer and is closed by then.
func (c *guardConn) refused(t time.Time) {
	c.limit.Store(t.UnixNano())
	c.Conn.SetReadDeadline(t)
	c.Conn.SetWriteDeadline(t)
}

func (c *guardConn) capped(t time.Time) time.Time {
	n := c.limit.Load()
	if n == 0 {
		return t
	}
	if lim := time.Unix(0, n); t.IsZero() || t.After(lim) {
		return lim
	}
	return t
}

func (c *guardConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.capped(t)) }
func (c *guardConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.capped(t)) }
func (c *guardConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.capped(t)) }

func (c *guardConn) Close() error {
	err := c.Conn.Close()
	c.admitted()
	return err
}

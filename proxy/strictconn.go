package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/certgate/certgate/proxy/h1"
)

// strictConn holds every HTTP/1.1 request head net/http reads to the
// fast path's framing rules (proxy/h1): net/http itself accepts a few
// forms RFC 9112 lets a server refuse (Content-Length with
// Transfer-Encoding, obs-fold), and the two paths must refuse the same
// requests. It reads each head whole before net/http sees a byte of it,
// answers a malformed one with 400 and closes, and follows the body's
// framing to find the next head. After an upgrade request it passes
// bytes through: what follows may be a tunnel.
type strictConn struct {
	net.Conn
	s       *Server
	head    []byte // a head being read, or a validated one being passed on
	pending []byte // validated bytes not yet returned
	state   uint8
	remain  int64 // body bytes left (stateBody)
	chunks  h1.ChunkScanner
	req     *h1.Request
	limit   int
	buf     []byte // body and tunnel reads; pending aliases it
}

const (
	stateHead uint8 = iota
	stateBody
	stateChunked
	stateThrough
)

var errRefused = errors.New("certgate: malformed request refused")

func newStrictConn(c net.Conn, s *Server, prefix []byte) *strictConn {
	limit := s.opts.Limits.MaxHeaderBytes + 4096 // net/http's own allowance above the limit
	sc := &strictConn{Conn: c, s: s, limit: limit}
	if len(prefix) > 0 {
		sc.head = append(sc.head, prefix...)
	}
	return sc
}

func (c *strictConn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return n, nil
}

// fill makes pending non-empty or fails.
func (c *strictConn) fill() error {
	switch c.state {
	case stateThrough:
		return c.readThrough()
	case stateBody, stateChunked:
		return c.readThrough()
	}
	// stateHead: read until the head is complete, then judge it.
	if c.req == nil {
		c.req = new(h1.Request)
	}
	for {
		if len(c.head) > 0 {
			err := h1.ParseRequest(c.head, c.req)
			var bad *h1.Malformed
			switch {
			case errors.As(err, &bad):
				c.s.log.Debug("malformed request", "remote", c.RemoteAddr().String(), "reason", bad.Reason)
				writeSimple(c.Conn, http.StatusBadRequest, "bad_request: "+bad.Reason, true)
				return errRefused
			case err == nil || err == h1.ErrHandoff:
				c.pending, c.head = c.head, nil
				c.startBody()
				return nil
			}
			if len(c.head) >= c.limit {
				// net/http answers 431 itself.
				c.pending, c.head = c.head, nil
				c.state = stateThrough
				return nil
			}
		}
		if cap(c.head)-len(c.head) < 1024 {
			c.head = append(c.head, make([]byte, 4096)...)[:len(c.head)]
		}
		n, err := c.Conn.Read(c.head[len(c.head):cap(c.head)])
		c.head = c.head[:len(c.head)+n]
		if n == 0 && err != nil {
			return err
		}
	}
}

// startBody sets the state for the body of the head now in pending, and
// splits off what of pending is already past the head.
func (c *strictConn) startBody() {
	r := c.req
	rest := c.pending[r.HeadLen:]
	upgrade := false
	chunked := false
	for i := 0; i < r.NFields; i++ {
		name := c.pending[r.Fields[i].Name.Start:r.Fields[i].Name.End]
		if h1.EqualFold(name, "upgrade") {
			upgrade = true
		}
		if h1.EqualFold(name, "transfer-encoding") {
			chunked = true
		}
	}
	switch {
	case upgrade || r.Target.End == 0:
		c.state = stateThrough
		return
	case chunked:
		c.state, c.chunks = stateChunked, h1.ChunkScanner{}
	case r.ContentLength > 0:
		c.state, c.remain = stateBody, r.ContentLength
	default:
		c.state = stateHead
	}
	// Bytes past the head: part body, part next head.
	c.pending = c.pending[:r.HeadLen]
	c.consume(rest)
}

// consume takes bytes read past the current position: the body's share
// goes to pending, anything after starts the next head.
func (c *strictConn) consume(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case stateBody:
			n := int64(len(b))
			if n > c.remain {
				n = c.remain
			}
			c.add(b[:n])
			b = b[n:]
			c.remain -= n
			if c.remain == 0 {
				c.state = stateHead
			}
		case stateChunked:
			n, done, err := c.chunks.Scan(b)
			c.add(b[:n])
			b = b[n:]
			if err != nil {
				// net/http refuses the bad chunk itself; pass the rest.
				c.state = stateThrough
			} else if done {
				c.state = stateHead
			}
		case stateThrough:
			c.add(b)
			return
		default: // stateHead: the next request, judged when net/http reads on
			c.head = append(c.head, b...)
			return
		}
	}
}

// add appends b to pending, aliasing it when pending is empty (b is then
// c.buf, not read again until pending is drained).
func (c *strictConn) add(b []byte) {
	if len(c.pending) == 0 {
		c.pending = b
		return
	}
	c.pending = append(c.pending, b...)
}

// readThrough reads body or tunnel bytes straight into pending.
func (c *strictConn) readThrough() error {
	if c.buf == nil {
		c.buf = make([]byte, 16<<10)
	}
	buf := c.buf
	want := len(buf)
	if c.state == stateBody && c.remain < int64(want) {
		want = int(c.remain)
	}
	n, err := c.Conn.Read(buf[:want])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	b := buf[:n]
	if c.state == stateThrough {
		c.pending = b
		return nil
	}
	c.consume(b)
	return nil
}

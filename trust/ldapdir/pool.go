package ldapdir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// errClosed is returned by operations on a closed Directory.
var errClosed = errors.New("directory closed")

// conn is one pooled, bound connection.
type conn struct {
	l   *ldap.Conn
	raw net.Conn // under TLS; deadlines set here bound every layer above
}

// pool hands out at most size connections at a time and keeps the idle
// ones for reuse. Its zero value is not usable; see newPool.
type pool struct {
	s    *settings
	tls  *tls.Config
	sem  chan struct{}
	mu   sync.Mutex
	idle []*conn
	shut bool
}

func newPool(s *settings) *pool {
	return &pool{
		s: s,
		tls: &tls.Config{
			RootCAs:    s.RootCAs,
			ServerName: s.ServerName,
			MinVersion: tls.VersionTLS12,
		},
		sem: make(chan struct{}, s.PoolSize),
	}
}

// get returns a connection, reused if one is idle, and whether it was
// reused (a reused one may have been closed by the server meanwhile).
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("waiting for a connection: %w", ctx.Err())
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		<-p.sem
		return nil, false, errClosed
	}
	var live *conn
	var dead []*conn
	for live == nil && len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.l.IsClosing() { // the server hung up while it was idle
			dead = append(dead, c)
		} else {
			live = c
		}
	}
	p.mu.Unlock()
	for _, c := range dead {
		c.close()
	}
	if live != nil {
		return live, true, nil
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.sem
		return nil, false, err
	}
	return c, false, nil
}

// put returns c to the pool, or closes it when it is broken or the pool is
// shut.
func (p *pool) put(c *conn, broken bool) {
	p.mu.Lock()
	if broken || p.shut || c.l.IsClosing() {
		p.mu.Unlock()
		c.close()
	} else {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.sem
}

func (p *pool) close() {
	p.mu.Lock()
	p.shut = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

// dial connects, secures and binds a new connection, all within one
// Timeout.
func (p *pool) dial(ctx context.Context) (*conn, error) {
	s := p.s
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	d := net.Dialer{Timeout: s.Timeout}
	raw, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	if err := raw.SetDeadline(deadline); err != nil {
		raw.Close()
		return nil, err
	}
	var nc net.Conn = raw
	if s.ldaps {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", s.addr, err)
		}
		nc = tc
	}
	l := ldap.NewConn(nc, s.ldaps)
	l.Start()
	l.SetTimeout(s.Timeout)
	c := &conn{l: l, raw: raw}
	if s.StartTLS {
		if err := l.StartTLS(p.tls); err != nil {
			c.close()
			return nil, fmt.Errorf("StartTLS with %s: %w", s.addr, err)
		}
	}
	if s.BindDN != "" {
		// The error names the DN and LDAP's result, never the password.
		if err := l.Bind(s.BindDN, s.Password); err != nil {
			c.close()
			return nil, fmt.Errorf("bind as %q: %w", s.BindDN, err)
		}
	}
	if err := raw.SetDeadline(time.Time{}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// search runs one search with a socket deadline of Timeout, so that a
// server that stops answering breaks the connection instead of hanging it.
func (c *conn) search(req *ldap.SearchRequest, timeout time.Duration) (*ldap.SearchResult, error) {
	if err := c.raw.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	res, err := c.l.Search(req)
	if derr := c.raw.SetDeadline(time.Time{}); err == nil && derr != nil {
		err = derr
	}
	return res, err
}

func (c *conn) close() { _ = c.l.Close() }

// serverResult reports whether err is a result the server sent (the
// connection is fine) rather than a network, timeout or decoding failure
// (the connection must go).
func serverResult(err error) bool {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return false
	}
	// go-ldap numbers its client-side failures from 200 (ErrorNetwork) on.
	return le.ResultCode < ldap.ErrorNetwork
}

package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/certgate/certgate/proxy/clientcert"
	"github.com/certgate/certgate/proxy/eas"
	"github.com/certgate/certgate/proxy/h1"
	"github.com/certgate/certgate/trust"
)

// The HTTP/1.1 fast path (Options.FastPath).
//
// certgate accepts and handshakes itself. HTTP/2 connections go to
// net/http as before. An HTTP/1.1 connection is served by a loop that reads
// each request head into a pooled buffer, parses it once (proxy/h1,
// strictly), and when the request is a plain one that certgate admits and
// routes to an http or unix backend, writes the rewritten head and copies
// the bodies between the client and a pooled backend connection, in the
// connection's own goroutine, with no allocation in the steady state.
// Anything else — upgrades, Expect, chunked request bodies, HTTP/1.0, a
// refused client, a 421, an https backend, a head bigger than a buffer —
// hands the connection, with the bytes already read, to net/http's server,
// which serves it for the rest of its life exactly as without the fast
// path; refusals are therefore answered by the same code either way.
//
// Between requests the loop waits in a one-byte read and holds no buffer;
// while a backend holds a response (an EAS Ping) it waits the same way.

// headBufSize is the buffer a request or response head must fit in; a
// request head that does not is handed to net/http (which applies
// limits.maxHeaderBytes), a response head that does not is a 502.
const headBufSize = 8 << 10

// exchange is the per-request state, pooled.
type exchange struct {
	req   h1.Request
	resp  h1.Response
	in    [headBufSize]byte
	out   [headBufSize]byte
	chunk h1.ChunkScanner
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// fastServer is the accept loop and the set of live fast-path connections.
type fastServer struct {
	s      *Server
	ln     net.Listener
	netln  *chanListener // what net/http serves: HTTP/2 and handed-off connections
	pools  sync.Map      // *Route -> *backendPool
	mu     sync.Mutex
	conns  map[*fastConn]struct{}
	closed atomic.Bool
	wg     sync.WaitGroup
}

// fastConn is one HTTP/1.1 client connection on the fast path.
type fastConn struct {
	f       *fastServer
	tc      *tls.Conn
	ci      *connInfo
	remote  string
	ip      string
	sni     string
	certs   []*x509.Certificate
	idle    atomic.Bool
	backend atomic.Pointer[backendConn] // in use, so that a cut also ends it
	x       *exchange                   // the request's buffers; nil between requests
	carry   []byte                      // pipelined bytes read past a request
}

func (s *Server) serveFast(ln net.Listener) error {
	f := s.fast
	f.mu.Lock()
	if f.closed.Load() {
		// Shut down before Serve got here.
		f.mu.Unlock()
		ln.Close()
		return nil
	}
	f.ln = ln
	f.netln = newChanListener(ln.Addr())
	f.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(f.netln) }()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closed.Load() {
				f.netln.Close()
				<-errc
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			f.netln.Close()
			<-errc
			return err
		}
		delay = 0
		go f.handshake(c)
	}
}

// handshake runs the TLS handshake under the header timeout (as net/http
// does) and sends the connection its way.
func (f *fastServer) handshake(c net.Conn) {
	s := f.s
	tc := tls.Server(c, s.base)
	_ = c.SetDeadline(time.Now().Add(s.opts.Limits.ReadHeaderTimeout))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			re.Conn.Close()
			return
		}
		fmt.Fprintf(&serverErrorLog{s: s}, "http: TLS handshake error from %s: %v", c.RemoteAddr(), err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol == "h2" {
		f.netln.push(tc)
		return
	}
	fc := &fastConn{f: f, tc: tc, remote: c.RemoteAddr().String(), sni: cs.ServerName, certs: cs.PeerCertificates}
	fc.ip = remoteHost(fc.remote)
	fc.ci = &connInfo{conn: cutConn{Conn: tc, fc: fc}, accepted: s.now(), tls: &cs}
	if !f.add(fc) {
		tc.Close()
		return
	}
	fc.serve()
}

func (f *fastServer) add(fc *fastConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed.Load() {
		return false
	}
	f.conns[fc] = struct{}{}
	f.wg.Add(1)
	s := f.s
	s.conns.mu.Lock()
	s.conns.byConn[fc.ci.conn] = fc.ci
	s.conns.mu.Unlock()
	s.metrics.connOpen(1)
	return true
}

// remove forgets fc (closed, or handed to net/http).
func (f *fastServer) remove(fc *fastConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
	s := f.s
	s.conns.mu.Lock()
	delete(s.conns.byConn, fc.ci.conn)
	s.conns.mu.Unlock()
	s.metrics.connOpen(-1)
	f.wg.Done()
}

// shutdown stops accepting, closes idle connections, and waits for the
// busy ones to finish their request (they close after it) until ctx ends.
// closeListener stops accepting.
func (f *fastServer) closeListener() {
	f.mu.Lock()
	f.closed.Store(true)
	ln := f.ln
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
}

func (f *fastServer) shutdown(ctx context.Context) error {
	f.closeListener()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		f.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			f.closeAll()
			<-done
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (f *fastServer) closeIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		if fc.idle.Load() {
			fc.tc.Close()
		}
	}
}

func (f *fastServer) closeAll() {
	f.closeListener()
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		fc.ci.conn.Close()
	}
}

// cutConn is the connection the registry closes on revoke-sessions: the
// client's, and the backend connection a long poll is waiting on.
type cutConn struct {
	net.Conn
	fc *fastConn
}

func (c cutConn) Close() error {
	err := c.Conn.Close()
	if bc := c.fc.backend.Load(); bc != nil {
		bc.Close()
	}
	return err
}

// serve is the connection's request loop.
func (fc *fastConn) serve() {
	s := fc.f.s
	lim := s.opts.Limits
	wait := lim.ReadHeaderTimeout // the first request, as net/http
	for {
		var first [1]byte
		if len(fc.carry) == 0 {
			fc.idle.Store(true)
			if fc.f.closed.Load() {
				break
			}
			_ = fc.tc.SetReadDeadline(time.Now().Add(wait))
			if _, err := io.ReadFull(fc.tc, first[:]); err != nil {
				break
			}
			fc.idle.Store(false)
		}
		wait = lim.IdleTimeout
		fc.x = exchanges.Get().(*exchange)
		keep, handoff := fc.exchange(first[0])
		exchanges.Put(fc.x)
		fc.x = nil
		if handoff != nil {
			// net/http's ConnContext takes over the same connInfo.
			fc.f.remove(fc)
			fc.f.netln.push(handoff)
			return
		}
		if !keep || fc.f.closed.Load() {
			break
		}
	}
	fc.f.remove(fc)
	fc.tc.Close()
}

// exchange serves one request. It returns whether the connection stays
// open, or the connection to hand to net/http.
func (fc *fastConn) exchange(first byte) (keep bool, handoff net.Conn) {
	s := fc.f.s
	x := fc.x
	n := 0
	if len(fc.carry) > 0 {
		n = copy(x.in[:], fc.carry)
		fc.carry = fc.carry[:0]
	} else {
		x.in[0] = first
		n = 1
	}
	_ = fc.tc.SetReadDeadline(time.Now().Add(s.opts.Limits.ReadHeaderTimeout))
	var err error
	for {
		err = h1.ParseRequest(x.in[:n], &x.req)
		if err != h1.ErrIncomplete {
			break
		}
		if n == len(x.in) {
			err = h1.ErrHandoff // a big head: net/http applies maxHeaderBytes
			break
		}
		m, rerr := fc.tc.Read(x.in[n:])
		n += m
		if rerr != nil && m == 0 {
			return false, nil
		}
	}
	_ = fc.tc.SetReadDeadline(time.Time{})
	var bad *h1.Malformed
	switch {
	case errors.As(err, &bad):
		s.log.Debug("malformed request", "remote", fc.remote, "reason", bad.Reason)
		writeSimple(fc.tc, http.StatusBadRequest, "bad_request: "+bad.Reason, true)
		return false, nil
	case err == h1.ErrHandoff:
		return false, fc.handoffConn(x.in[:n])
	}
	req := &x.req
	b := x.in[:n]
	host := hostBytes(b[req.Host.Start:req.Host.End])
	path := b[req.Path.Start:req.Path.End] // plain: no escapes (h1)
	p := s.policy.Load()
	if fc.sni != "" && !equalFoldASCII(host, fc.sni) {
		return false, fc.handoffConn(b) // 421, written by the net/http path
	}
	if p.JWKSPath != "" && string(path) == p.JWKSPath {
		return false, fc.handoffConn(b) // the public keys, served by serveHTTP
	}
	d := s.decideConn(p, fc.ci, fc.certs, fc.remote)
	if !d.OK() {
		return false, fc.handoffConn(b)
	}
	rt := findRoute(p, host, path)
	if rt == nil || rt.target.Scheme != "http" {
		return false, fc.handoffConn(b)
	}
	if rt.Kind != KindEAS && maybeEASPath(path) {
		// An ActiveSync path on another route still gets the EAS checks
		// (IsEASPath): the net/http path decides it exactly.
		return false, fc.handoffConn(b)
	}
	cmd := ""
	if rt.Kind == KindEAS {
		q, err := eas.ParseQuery(string(b[req.Query.Start:req.Query.End]))
		if err == nil {
			err = eas.CheckUser(q, d.Identity.User.UserPrincipalName, d.Identity.User.ProxyAddresses, rt.NetbiosDomain)
		}
		if err != nil {
			return false, fc.handoffConn(b)
		}
		cmd = q.Cmd
	}
	var tok string
	if rt.Assertion != nil {
		var err error
		if tok, err = s.assertionFor(fc.ci, rt, d); err != nil {
			return false, fc.handoffConn(b) // refused there with the same 500
		}
	}
	// Past this point the request is the fast path's to answer.
	extra := b[req.HeadLen:]
	if req.ContentLength >= 0 && int64(len(extra)) > req.ContentLength {
		fc.carry = append(fc.carry[:0], extra[req.ContentLength:]...)
		extra = extra[:req.ContentLength]
	} else if req.ContentLength < 0 && len(extra) > 0 {
		fc.carry = append(fc.carry[:0], extra...)
		extra = nil
	}
	var line *accessLine
	if p.AccessLog != nil {
		line = fc.accessLine(b, req) // the head's buffer is reused for the response
	}
	head := fc.rewrite(x, p, rt, d, b, tok)
	start := time.Now()
	isHead := h1.EqualFold(b[req.Method.Start:req.Method.End], "head")
	closeAfter := req.Close
	// x (and so req and b) may be swapped during a long wait: not used below.
	status, sent, keep := fc.roundTrip(x, rt, head, extra, req.ContentLength, isHead)
	if closeAfter {
		keep = false
	}
	if rt.Kind != KindEAS || !eas.IsLongPoll(eas.Query{Cmd: cmd}) {
		s.metrics.upstream(rt.Name, statusCode(status), time.Since(start))
	}
	if rt.Kind == KindEAS {
		s.metrics.easRequest(eas.CommandLabel(cmd))
	}
	if line != nil {
		p.AccessLog.writeFast(line, status, sent, start, d.Identity.User.UserPrincipalName, rt.Name)
	}
	return keep, nil
}

// handoffConn is the connection as net/http must see it: the bytes read
// so far, then the rest, every request head still held to the fast path's
// framing rules (strictConn).
func (fc *fastConn) handoffConn(read []byte) net.Conn {
	return &handoffConn{strictConn: newStrictConn(fc.tc, fc.f.s, read), ci: fc.ci}
}

// rewrite writes the backend's request head into x.out.
func (fc *fastConn) rewrite(x *exchange, p *Policy, rt *Route, d *Decision, b []byte, assertion string) []byte {
	req := &x.req
	o := x.out[:0]
	o = append(o, b[req.Method.Start:req.Method.End]...)
	o = append(o, ' ')
	o = appendJoinedPath(o, rt.target.Path, b[req.Path.Start:req.Path.End])
	if req.Query.End > req.Query.Start || (req.Path.End < req.Target.End) {
		o = append(o, '?')
		o = append(o, b[req.Query.Start:req.Query.End]...)
	}
	o = append(o, " HTTP/1.1\r\nHost: "...)
	o = append(o, rt.target.Host...)
	o = append(o, "\r\n"...)
	for i := 0; i < req.NFields; i++ {
		f := req.Fields[i]
		if req.Kinds[i] == h1.KindHopByHop || req.Kinds[i] == h1.KindHost {
			continue
		}
		name := b[f.Name.Start:f.Name.End]
		if p.strip.hasBytes(name) {
			continue
		}
		o = append(o, name...)
		o = append(o, ": "...)
		o = append(o, b[f.Value.Start:f.Value.End]...)
		o = append(o, "\r\n"...)
	}
	o = append(o, "X-Forwarded-For: "...)
	o = append(o, fc.ip...)
	o = append(o, "\r\nX-Forwarded-Host: "...)
	o = append(o, b[req.Host.Start:req.Host.End]...)
	o = append(o, "\r\nX-Forwarded-Proto: https\r\n"...)
	o = append(o, p.IdentityHeader...)
	o = append(o, ": "...)
	o = append(o, d.Identity.User.UserPrincipalName...)
	o = append(o, "\r\n"...)
	if assertion != "" {
		o = append(o, rt.Assertion.Header()...)
		o = append(o, ": "...)
		o = append(o, assertion...)
		o = append(o, "\r\n"...)
	}
	switch p.ForwardClientCert {
	case "rfc9440":
		cert, chain := clientcert.RFC9440(d.Chain)
		o = append(o, "Client-Cert: "...)
		o = append(o, cert...)
		o = append(o, "\r\n"...)
		if chain != "" {
			o = append(o, "Client-Cert-Chain: "...)
			o = append(o, chain...)
			o = append(o, "\r\n"...)
		}
	case "xfcc":
		upns, _ := trust.UPNs(d.Chain[0])
		o = append(o, "X-Forwarded-Client-Cert: "...)
		o = append(o, clientcert.XFCC(d.Chain, "", upns, d.Chain[0].EmailAddresses)...)
		o = append(o, "\r\n"...)
	}
	return append(o, "\r\n"...)
}

// roundTrip sends the request to the backend and copies the response
// back. It returns the status sent, the body bytes sent, and whether the
// client connection can take another request.
func (fc *fastConn) roundTrip(x *exchange, rt *Route, head, extra []byte, length int64, isHead bool) (int, int64, bool) {
	pool := fc.f.pool(rt)
	buffered := length <= int64(len(extra))
	var bc *backendConn
	var err error
	for attempt := 0; ; attempt++ {
		bc, err = pool.get(rt)
		if err != nil {
			break
		}
		if bc.reused && !bc.alive() {
			bc.Close()
			attempt--
			continue
		}
		fc.backend.Store(bc)
		err = fc.send(bc, head, extra, length)
		if err == nil {
			err = fc.awaitResponse(bc, rt, x)
			x = fc.x
		}
		// A pooled connection the backend closed meanwhile fails before
		// any answer: retry once on a new one when the whole request is
		// still in the buffers (head, and a body that came with it).
		if err != nil && bc.reused && attempt <= 0 && buffered && !isTimeout(err) && !bc.watched {
			fc.backend.Store(nil)
			bc.Close()
			continue
		}
		break
	}
	if err != nil {
		if bc != nil {
			fc.backend.Store(nil)
			bc.Close()
		}
		code, why := errorStatus(err)
		fc.f.s.log.Warn("backend error", "route", rt.Name, "error", err, "status", code)
		if length > 0 {
			// The client's body may be half read: the connection cannot
			// carry another request.
			writeSimple(fc.tc, code, why, true)
			return code, 0, false
		}
		writeSimple(fc.tc, code, why, false)
		return code, 0, true
	}
	status, sent, keepClient, keepBackend := fc.copyResponse(x, bc, isHead)
	fc.backend.Store(nil)
	if keepBackend {
		pool.put(rt, bc)
	} else {
		bc.Close()
	}
	return status, sent, keepClient
}

// send writes the head and the request body.
func (fc *fastConn) send(bc *backendConn, head, extra []byte, length int64) error {
	_ = bc.SetWriteDeadline(time.Now().Add(fc.f.s.opts.Limits.ReadHeaderTimeout))
	complete := length <= 0 || int64(len(extra)) == length
	if complete && len(extra) > 0 && len(head)+len(extra) <= cap(head) {
		// One write for the head and a body that came with it.
		head = append(head, extra...)
		extra = nil
	}
	if _, err := bc.Write(head); err != nil {
		return err
	}
	if len(extra) > 0 {
		if _, err := bc.Write(extra); err != nil {
			return err
		}
	}
	// The rest of a streamed body has no deadline: the client sets the pace.
	_ = bc.SetWriteDeadline(time.Time{})
	if complete {
		return nil
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	_, err := io.CopyBuffer(bc, io.LimitReader(fc.tc, length-int64(len(extra))), buf)
	return err
}

// quickResponse is how long a backend may take before the fast path
// starts watching the client: a device that goes away during a Ping must
// not leave the backend holding it for an hour.
const quickResponse = 200 * time.Millisecond

// awaitResponse waits for the first byte of the response without holding
// a buffer (a Ping waits here for up to an hour), under the route timeout.
// A response slower than quickResponse gets a watcher goroutine that reads
// the client meanwhile: its end (or reset) closes the backend connection,
// as net/http's background read cancels a request.
func (fc *fastConn) awaitResponse(bc *backendConn, rt *Route, x *exchange) error {
	deadline := time.Now().Add(rt.Timeout)
	_ = bc.SetReadDeadline(time.Now().Add(min(rt.Timeout, quickResponse)))
	bc.pre, bc.hasFirst, bc.watched = 0, false, false
	// A quick answer is read straight into the exchange (the request head
	// there has been sent; a retry only follows an error, which reads
	// nothing).
	n, err := bc.Read(x.out[:])
	if n > 0 {
		bc.pre = n
		_ = bc.SetReadDeadline(deadline) // the rest of the head, under the route timeout
		return nil
	}
	if err == nil || !isTimeout(err) || !time.Now().Before(deadline) {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	var one [1]byte
	if err := fc.awaitWatched(bc, deadline, one[:]); err != nil {
		return err
	}
	_ = bc.SetReadDeadline(deadline)
	bc.first, bc.hasFirst = one[0], true
	return nil
}

// awaitWatched waits for a slow response's first byte while a watcher
// goroutine reads the client. The exchange goes back to the pool for the
// wait: a connection held in a Ping keeps no buffer.
func (fc *fastConn) awaitWatched(bc *backendConn, deadline time.Time, one []byte) error {
	bc.watched = true
	exchanges.Put(fc.x)
	fc.x = nil
	defer func() { fc.x = exchanges.Get().(*exchange) }()
	var stopped atomic.Bool
	var got [1]byte
	gotByte := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := fc.tc.Read(got[:])
		if n == 1 {
			gotByte = true // the next request, pipelined: kept for the loop
			return
		}
		if err != nil && !stopped.Load() {
			bc.Close() // the client went away
		}
	}()
	_ = bc.SetReadDeadline(deadline)
	_, err := io.ReadFull(bc, one)
	stopped.Store(true)
	_ = fc.tc.SetReadDeadline(time.Unix(1, 0)) // wake the watcher
	<-done
	_ = fc.tc.SetReadDeadline(time.Time{})
	if gotByte {
		fc.carry = append(fc.carry, got[0])
	}
	return err
}

// copyResponse reads the response head, writes it rewritten, and copies
// the body by its framing.
func (fc *fastConn) copyResponse(x *exchange, bc *backendConn, isHead bool) (status int, sent int64, keepClient, keepBackend bool) {
	n := bc.pre
	if bc.hasFirst {
		x.out[0] = bc.first
		n, bc.hasFirst = 1, false
	}
	bc.pre = 0
	resp := &x.resp
	for {
		var err error
		for {
			err = h1.ParseResponse(x.out[:n], resp)
			if err != h1.ErrIncomplete {
				break
			}
			if n == len(x.out) {
				err = h1.ErrBadResponse
				break
			}
			m, rerr := bc.Read(x.out[n:])
			n += m
			if rerr != nil && m == 0 {
				err = rerr
				break
			}
		}
		if err != nil {
			code, why := errorStatus(err)
			if err == h1.ErrBadResponse {
				code, why = http.StatusBadGateway, "backend_unavailable"
			}
			fc.f.s.log.Warn("backend error", "error", err, "status", code)
			writeSimple(fc.tc, code, why, false)
			return code, 0, true, false
		}
		if resp.Status == http.StatusSwitchingProtocols {
			// Nothing asked to switch (upgrades go through net/http): a
			// backend that does anyway gets no tunnel to the client.
			fc.f.s.log.Warn("backend error", "error", "101 Switching Protocols to a request without Upgrade", "status", http.StatusBadGateway)
			writeSimple(fc.tc, http.StatusBadGateway, "backend_unavailable", true)
			return http.StatusBadGateway, 0, false, false
		}
		if resp.Status >= 200 {
			break
		}
		// 1xx (103 Early Hints): pass it on and read the real answer.
		if _, err := fc.tc.Write(x.out[:resp.HeadLen]); err != nil {
			return resp.Status, 0, false, false
		}
		n = copy(x.out[:], x.out[resp.HeadLen:n])
	}
	_ = bc.SetReadDeadline(time.Time{})
	b := x.out[:n]
	body := b[resp.HeadLen:]
	noBody := resp.NoBody(isHead)
	closeDelimited := !noBody && !resp.Chunked && resp.ContentLength < 0
	keepClient = !closeDelimited && !fc.f.closed.Load()
	keepBackend = !resp.Close && !closeDelimited

	// The head: status line and the backend's fields but hop-by-hop ones;
	// Transfer-Encoding stays, as the chunks are copied as they are.
	o := x.in[:0] // the request head is no longer needed
	o = append(o, b[resp.StatusLine.Start:resp.StatusLine.End]...)
	o = append(o, "\r\n"...)
	for i := 0; i < resp.NFields; i++ {
		if resp.Hop[i] {
			continue
		}
		f := resp.Fields[i]
		o = append(o, b[f.Name.Start:f.Name.End]...)
		o = append(o, ": "...)
		o = append(o, b[f.Value.Start:f.Value.End]...)
		o = append(o, "\r\n"...)
	}
	if !keepClient {
		o = append(o, "Connection: close\r\n"...)
	}
	o = append(o, "\r\n"...)
	status = resp.Status

	if noBody {
		if len(body) > 0 {
			keepBackend = false // bytes the backend should not have sent
		}
		_, err := fc.tc.Write(o)
		return status, 0, keepClient && err == nil, keepBackend
	}
	// The body bytes read with the head go out with it.
	var first []byte
	remaining := resp.ContentLength
	done := false
	switch {
	case resp.Chunked:
		x.chunk = h1.ChunkScanner{}
		m, end, err := x.chunk.Scan(body)
		if err != nil {
			return fc.abort(status)
		}
		first, done = body[:m], end
		if m < len(body) {
			keepBackend = false
		}
	case remaining >= 0:
		if int64(len(body)) > remaining {
			body = body[:remaining]
			keepBackend = false
		}
		first = body
		remaining -= int64(len(body))
		done = remaining == 0
	default:
		first = body
	}
	if len(o)+len(first) <= cap(o) {
		o = append(o, first...)
		first = nil
	}
	if _, err := fc.tc.Write(o); err != nil {
		return status, 0, false, false
	}
	sent = int64(len(body))
	if len(first) > 0 {
		if _, err := fc.tc.Write(first); err != nil {
			return status, sent, false, false
		}
	}
	if done {
		return status, sent, keepClient, keepBackend
	}
	// The rest streams: every read is written at once (EAS and SSE rely on
	// it), with a pooled copy buffer.
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		want := len(buf)
		if !resp.Chunked && remaining >= 0 && remaining < int64(want) {
			want = int(remaining)
		}
		m, rerr := bc.Read(buf[:want])
		if m > 0 {
			chunk := buf[:m]
			if resp.Chunked {
				k, end, err := x.chunk.Scan(chunk)
				if err != nil {
					return fc.abort(status)
				}
				chunk, done = chunk[:k], end
				if k < m {
					keepBackend = false
				}
			} else if remaining >= 0 {
				remaining -= int64(m)
				done = remaining == 0
			}
			if _, err := fc.tc.Write(chunk); err != nil {
				return status, sent, false, false
			}
			sent += int64(len(chunk))
		}
		if done {
			return status, sent, keepClient, keepBackend
		}
		if rerr != nil {
			if closeDelimited && rerr == io.EOF {
				return status, sent, false, false
			}
			return fc.abort(status)
		}
	}
}

// abort ends a response cut short by the backend: the client sees the
// connection close before the framing said the body ends.
func (fc *fastConn) abort(status int) (int, int64, bool, bool) {
	return status, 0, false, false
}

// writeSimple writes a short text/plain answer as http.Error does.
func writeSimple(w io.Writer, code int, msg string, close bool) {
	var b [512]byte
	o := append(b[:0], "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(code), 10)
	o = append(o, ' ')
	o = append(o, http.StatusText(code)...)
	o = append(o, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	o = strconv.AppendInt(o, int64(len(msg)+1), 10)
	if close {
		o = append(o, "\r\nConnection: close"...)
	}
	o = append(o, "\r\n\r\n"...)
	o = append(o, msg...)
	o = append(o, '\n')
	_, _ = w.Write(o)
}

// backendConn is one pooled connection to a route's backend.
type backendConn struct {
	net.Conn
	reused   bool
	idleFrom time.Time
	first    byte
	hasFirst bool
	pre      int  // response bytes already read into the exchange's out buffer
	watched  bool // the wait released the exchange: the request cannot be resent
}

// alive reports whether an idle connection is still open: a peek that
// does not wait finds the backend's FIN (or stray bytes, as bad). A
// backend that closes idle keep-alive connections (SOGo, IIS after its
// timeout) would otherwise get the next request on a dead one. One
// recv(2), no deadline: Go checks an expired deadline before reading.
func (bc *backendConn) alive() bool {
	sc, ok := bc.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ok = true
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return ok
}

// backendPool keeps a route's idle backend connections, newest first.
type backendPool struct {
	mu   sync.Mutex
	idle []*backendConn
}

// backendIdleTimeout is how long an idle backend connection is kept, as
// the net/http path's Transport does.
const backendIdleTimeout = 90 * time.Second

func (f *fastServer) pool(rt *Route) *backendPool {
	if p, ok := f.pools.Load(rt); ok {
		return p.(*backendPool)
	}
	p, _ := f.pools.LoadOrStore(rt, &backendPool{})
	return p.(*backendPool)
}

func (p *backendPool) get(rt *Route) (*backendConn, error) {
	now := time.Now()
	p.mu.Lock()
	for len(p.idle) > 0 {
		bc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(bc.idleFrom) < backendIdleTimeout {
			p.mu.Unlock()
			bc.reused = true
			return bc, nil
		}
		bc.Close()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rt.transport.DialContext(ctx, "tcp", rt.target.Host)
	if err != nil {
		return nil, err
	}
	return &backendConn{Conn: c}, nil
}

func (p *backendPool) put(rt *Route, bc *backendConn) {
	if rt.retired.Load() {
		bc.Close()
		p.closeIdle()
		return
	}
	bc.idleFrom = time.Now()
	p.mu.Lock()
	if len(p.idle) >= 256 {
		p.mu.Unlock()
		bc.Close()
		return
	}
	p.idle = append(p.idle, bc)
	p.mu.Unlock()
}

func (p *backendPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, bc := range idle {
		bc.Close()
	}
}

// retire closes a replaced route's idle backend connections; the ones in
// use are closed when their request ends (put sees the route retired).
func (f *fastServer) retire(rt *Route) {
	if p, ok := f.pools.LoadAndDelete(rt); ok {
		p.(*backendPool).closeIdle()
	}
}

// closePools closes every idle backend connection (shutdown).
func (f *fastServer) closePools() {
	f.pools.Range(func(_, v any) bool {
		v.(*backendPool).closeIdle()
		return true
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// handoffConn gives net/http a connection the fast path began to read.
type handoffConn struct {
	*strictConn
	ci *connInfo
}

// chanListener is the listener net/http serves: connections certgate
// accepted and handshook itself.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// hostBytes strips the port from a Host value.
func hostBytes(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		for i := range h {
			if h[i] == ']' {
				return h[1:i]
			}
		}
		return h
	}
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == ':' {
			return h[:i]
		}
	}
	return h
}

// maybeEASPath reports whether a plain path's first segment could be one
// IsEASPath takes for ActiveSync or Autodiscover: it begins, in any case,
// with either name. A superset, so that no such request skips the checks.
func maybeEASPath(path []byte) bool {
	seg := path
	if len(seg) > 0 && seg[0] == '/' {
		seg = seg[1:]
	}
	for _, name := range [...]string{easSegment, "autodiscover"} {
		if hasPrefixFold(seg, name) {
			return true
		}
	}
	return false
}

// appendJoinedPath joins the backend's base path and the request path as
// ReverseProxy's SetURL does.
func appendJoinedPath(o []byte, base string, path []byte) []byte {
	if base == "" {
		return append(o, path...)
	}
	aslash := strings.HasSuffix(base, "/")
	bslash := len(path) > 0 && path[0] == '/'
	switch {
	case aslash && bslash:
		o = append(o, base...)
		return append(o, path[1:]...)
	case !aslash && !bslash:
		o = append(o, base...)
		o = append(o, '/')
		return append(o, path...)
	}
	o = append(o, base...)
	return append(o, path...)
}

var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return
}()

// statusCode is strconv.Itoa(code) without allocating, for the metrics label.
func statusCode(code int) string {
	if code >= 0 && code < len(statusTexts) {
		return statusTexts[code]
	}
	return strconv.Itoa(code)
}

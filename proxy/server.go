package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/proxy/assertion"
)

// Policy is everything the data plane needs to decide and route, built by
// the caller from configuration. A Policy is immutable once given to
// [Server.SetPolicy].
type Policy struct {
	Trust      Verifier
	ClientCAs  *x509.CertPool // the CA names sent in the CertificateRequest
	Revocation RevocationChecker
	Binder     Binder
	Routes     []*Route
	// IdentityHeader carries the bound user's userPrincipalName.
	IdentityHeader string
	// StripHeaders are removed from every client request like the
	// identity header (identity.stripHeaders).
	StripHeaders []string
	// ForwardClientCert is "none", "rfc9440" or "xfcc".
	ForwardClientCert string
	// RejectWithHTTP completes the handshake for refused clients and
	// answers 403 with the reason, instead of a TLS alert.
	RejectWithHTTP bool
	MinVersion     uint16
	// AccessLog, when set, gets one line per request.
	AccessLog *AccessLog
	// IdentityFromCertificate is the no-directory mode: the identity is
	// the certificate value itself, so a certificate with several values
	// for the matching binding is ambiguous.
	IdentityFromCertificate bool
	// JWKS is the public half of every route's assertion keys. JWKSPath,
	// when set, also serves it on the client listener.
	JWKS     *assertion.KeySet
	JWKSPath string

	gen   uint64
	strip headerSet
	tls   *tls.Config
}

// Limits bound what one client can hold.
type Limits struct {
	// ReadHeaderTimeout also bounds the TLS handshake (net/http applies it
	// to the handshake).
	ReadHeaderTimeout    time.Duration
	IdleTimeout          time.Duration
	MaxHeaderBytes       int
	MaxConnections       int
	MaxConcurrentStreams int
	// MaxUnauthenticatedPerIP caps the connections one source address may
	// hold before (or without) an admitted certificate; 0 means
	// DefaultMaxUnauthenticatedPerIP.
	MaxUnauthenticatedPerIP int
}

// Options configure a Server.
type Options struct {
	Logger  *slog.Logger
	Metrics *Metrics
	// GetCertificate serves the proxy's own certificate (certmagic's).
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ChallengeConfig, when set, answers ClientHellos that offer only
	// acme-tls/1: the TLS-ALPN-01 validator presents no client certificate.
	ChallengeConfig *tls.Config
	Limits          Limits
	// Now is the clock for validity checks; nil means time.Now.
	Now func() time.Time
	// FastPath serves HTTP/1.1 through the forwarding loop of fastpath.go
	// instead of net/http's server and ReverseProxy.
	FastPath bool
}

// Server is the mTLS listener and its HTTP handler.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time
	policy  atomic.Pointer[Policy]
	gen     atomic.Uint64
	http    *http.Server
	conns   connRegistry

	ticketMu   sync.Mutex
	ticketKeys [][32]byte
	base       *tls.Config
	sessions   sessionGuard // session.go: when tickets stop resuming
	fast       *fastServer  // nil without Options.FastPath
}

// NewServer returns a Server; call SetPolicy before Serve.
func NewServer(opts Options) *Server {
	s := &Server{opts: opts, log: opts.Logger, metrics: opts.Metrics, now: opts.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(nil)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.conns.byConn = make(map[net.Conn]*connInfo)
	if opts.FastPath {
		s.fast = &fastServer{s: s, conns: make(map[*fastConn]struct{})}
	}
	lim := opts.Limits
	if lim.ReadHeaderTimeout <= 0 {
		lim.ReadHeaderTimeout = 10 * time.Second
	}
	if lim.IdleTimeout <= 0 {
		lim.IdleTimeout = 120 * time.Second
	}
	if lim.MaxHeaderBytes <= 0 {
		lim.MaxHeaderBytes = 64 << 10
	}
	if lim.MaxConcurrentStreams <= 0 {
		lim.MaxConcurrentStreams = 250
	}
	if lim.MaxUnauthenticatedPerIP <= 0 {
		lim.MaxUnauthenticatedPerIP = DefaultMaxUnauthenticatedPerIP
	}
	s.opts.Limits = lim
	s.base = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		GetConfigForClient: s.configForClient,
		GetCertificate:     opts.GetCertificate,
	}
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.handle),
		TLSConfig:         s.base,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// No ReadTimeout or WriteTimeout: EAS Ping and Sync hold a request
		// open for up to an hour, and bodies stream both ways.
		ConnContext: s.connContext,
		ConnState:   s.connState,
		ErrorLog:    log.New(&serverErrorLog{s: s}, "", 0),
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: lim.MaxConcurrentStreams},
	}
	return s
}

// SetPolicy installs p for every new handshake and request. Live
// connections are re-decided under p on their next request.
func (s *Server) SetPolicy(p *Policy) error {
	if p == nil || p.Trust == nil || p.Binder == nil {
		return errors.New("proxy: policy needs a trust store and a binder")
	}
	if p.IdentityHeader == "" {
		p.IdentityHeader = "X-Remote-User"
	}
	if p.MinVersion == 0 {
		p.MinVersion = tls.VersionTLS12
	}
	for _, rt := range p.Routes {
		if rt.proxy == nil {
			rt.proxy = s.newReverseProxy(rt)
		}
	}
	p.gen = s.gen.Add(1)
	stripped := append([]string{p.IdentityHeader}, pathOverrideHeaders...)
	stripped = append(stripped, p.StripHeaders...)
	for _, rt := range p.Routes {
		if rt.Assertion != nil {
			stripped = append(stripped, rt.Assertion.Header())
			s.metrics.assertions.touch(rt.Name)
		}
	}
	// Every route's assertion header is stripped on every route: a forged
	// assertion must not reach any backend, whichever route it was meant for.
	p.strip = newHeaderSet(stripped...)
	c := &tls.Config{
		MinVersion:     p.MinVersion,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: s.opts.GetCertificate,
		ClientCAs:      p.ClientCAs,
		// certgate verifies every chain itself in VerifyConnection, which
		// also runs on resumed sessions (VerifyPeerCertificate does not):
		// configured intermediates are path-building material, never
		// anchors, and a critical UPN-only SAN must verify, neither of which
		// Go's built-in client verification allows.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: s.verifyConnection(p),
		// Tickets carry their issue time, so sessions from before a
		// revocation of sessions are not resumed (session.go).
		WrapSession:   s.wrapSession,
		UnwrapSession: s.unwrapSession,
	}
	if p.RejectWithHTTP {
		c.ClientAuth = tls.RequestClientCert
	}
	s.ticketMu.Lock()
	if len(s.ticketKeys) > 0 {
		c.SetSessionTicketKeys(s.ticketKeys)
	}
	p.tls = c
	old := s.policy.Swap(p)
	s.ticketMu.Unlock()
	if old != nil {
		// The old routes get no new requests: close their idle backend
		// connections now instead of after the transport's idle timeout,
		// or every reload would leave a pool of them (and two goroutines
		// each) behind for 90 s. In-flight requests finish on theirs.
		for _, rt := range old.Routes {
			if !slices.Contains(p.Routes, rt) {
				rt.transport.CloseIdleConnections()
				rt.retired.Store(true)
				if s.fast != nil {
					s.fast.retire(rt)
				}
			}
		}
	}
	return nil
}

// SetSessionTicketKeys shares session-ticket keys (the first encrypts) so
// replicas behind one L4 balancer resume each other's sessions.
func (s *Server) SetSessionTicketKeys(keys [][32]byte) {
	s.ticketMu.Lock()
	defer s.ticketMu.Unlock()
	s.ticketKeys = keys
	if p := s.policy.Load(); p != nil && len(keys) > 0 {
		p.tls.SetSessionTicketKeys(keys)
	}
	if len(keys) > 0 {
		s.base.SetSessionTicketKeys(keys)
	}
}

// Policy returns the policy in force.
func (s *Server) Policy() *Policy { return s.policy.Load() }

func (s *Server) configForClient(chi *tls.ClientHelloInfo) (*tls.Config, error) {
	if s.opts.ChallengeConfig != nil && len(chi.SupportedProtos) == 1 && chi.SupportedProtos[0] == "acme-tls/1" && chi.ServerName != "" {
		return s.opts.ChallengeConfig, nil
	}
	p := s.policy.Load()
	if p == nil {
		return nil, errors.New("certgate: no policy loaded")
	}
	return s.handshakeConfig(p, chi), nil
}

// verifyConnection is the handshake gate; it runs on full handshakes and on
// resumptions alike.
func (s *Server) verifyConnection(p *Policy) func(tls.ConnectionState) error {
	verify := s.verifyConnectionFrom(p, "", nil)
	return func(cs tls.ConnectionState) error {
		if err := verify(cs); err != errRefuseOverHTTP {
			return err
		}
		return nil
	}
}

// errRefuseOverHTTP is what verifyConnectionFrom returns for a refused
// client with rejectWith: http: the handshake goes on (the handler answers
// with the reason), but the connection's config must not issue it a
// session ticket.
var errRefuseOverHTTP = errors.New("certgate: refused, answered over HTTP")

// verifyConnectionFrom is verifyConnection for a client at remote, which
// the decision log names.
func (s *Server) verifyConnectionFrom(p *Policy, remote string, gc *guardConn) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		now := s.now()
		d := p.Decide(context.Background(), cs.PeerCertificates, now, now)
		result := "ok"
		if cs.DidResume {
			result = "resumed"
		}
		if !d.OK() {
			if p.RejectWithHTTP {
				// The handler answers 403 with the reason; the decision is
				// logged there, once. The connection is good for that
				// answer only, within the header timeout (unauth.go).
				if gc != nil {
					gc.refused(time.Now().Add(s.opts.Limits.ReadHeaderTimeout))
				}
				return errRefuseOverHTTP
			}
			result = "rejected"
			s.metrics.handshake(result)
			s.metrics.decision(d.Reason)
			if len(d.Chain) == 0 && len(cs.PeerCertificates) > 0 {
				// An unverified chain still names who tried: log the
				// presented leaf's subject and serial.
				d.Chain = cs.PeerCertificates[:1]
			}
			s.logDecision(&d, cs.ServerName, "", remote)
			return &handshakeRefusal{reason: d.Reason}
		}
		s.metrics.handshake(result)
		if gc != nil {
			gc.admitted()
		}
		return nil
	}
}

// handshakeRefusal is what VerifyConnection returns; crypto/tls turns any
// such error into a bad_certificate alert, and the server error log sees
// the marker so the refusal is not counted twice.
type handshakeRefusal struct{ reason string }

func (e *handshakeRefusal) Error() string { return "certgate refused: " + e.reason }

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if s.policy.Load() == nil {
		return errors.New("proxy: Serve before SetPolicy")
	}
	if n := s.opts.Limits.MaxConnections; n > 0 {
		ln = newLimitListener(ln, n)
	}
	// Outermost, so the TLS handshake sees the guardConn (unauth.go).
	ln = newUnauthListener(ln, s.opts.Limits.MaxUnauthenticatedPerIP, s.metrics)
	var err error
	if s.fast != nil {
		err = s.serveFast(ln)
	} else {
		err = s.http.ServeTLS(ln, "", "")
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what is left (EAS long polls cannot be waited out; devices
// reconnect).
func (s *Server) Shutdown(ctx context.Context) error {
	var ferr error
	if s.fast != nil {
		ferr = s.fast.shutdown(ctx)
	}
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	if s.fast != nil {
		s.fast.closePools()
		if err == nil {
			err = ferr
		}
	}
	if p := s.policy.Load(); p != nil {
		for _, rt := range p.Routes {
			rt.Close()
		}
	}
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	if s.fast != nil {
		s.fast.closeAll()
		s.fast.closePools()
	}
	return s.http.Close()
}

// RevokeSessions closes the user's connections established before
// validFrom (EAS Ping long polls included) and returns how many it closed.
// TLS sessions issued before validFrom are no longer resumed, for every
// user (see [Server.RefuseSessionsIssuedBefore]).
func (s *Server) RevokeSessions(upn string, validFrom time.Time) int {
	// Tickets first: a client cut off here reconnects at once and must not
	// resume.
	s.RefuseSessionsIssuedBefore(validFrom)
	return s.conns.closeUser(upn, validFrom)
}

// serverErrorLog turns net/http's error log into structured log lines and
// counts the handshakes that failed before certgate's own checks ran.
type serverErrorLog struct{ s *Server }

func (w *serverErrorLog) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	const prefix = "http: TLS handshake error from "
	if rest, ok := strings.CutPrefix(msg, prefix); ok {
		remote, why, _ := strings.Cut(rest, ": ")
		switch {
		case strings.Contains(why, "certgate refused"):
			// Counted and logged by verifyConnection.
		case strings.Contains(why, "didn't provide a certificate"):
			w.s.metrics.handshake("rejected")
			w.s.metrics.decision(ReasonNoCertificate)
			w.s.log.Info("decision", "reason", ReasonNoCertificate, "remote", remote)
			w.s.rejected(Rejection{Reason: ReasonNoCertificate, Remote: remote})
		case strings.Contains(why, "failed to parse client certificate"):
			// crypto/tls refuses a certificate crypto/x509 cannot parse
			// before certgate sees it; it is still a client refused.
			const reason = "malformed_certificate" // trust.MalformedCertificate; server.go does not import trust
			w.s.metrics.handshake("rejected")
			w.s.metrics.decision(reason)
			w.s.log.Info("decision", "reason", reason, "remote", remote, "error", why)
			w.s.rejected(Rejection{Reason: reason, Remote: remote})
		default:
			w.s.metrics.handshake("error")
			w.s.log.Debug("tls handshake failed", "remote", remote, "error", why)
		}
		return len(b), nil
	}
	w.s.log.Warn("http server", "error", msg)
	return len(b), nil
}

// connInfo is what certgate knows of one client connection.
type connInfo struct {
	conn     net.Conn
	accepted time.Time

	mu       sync.Mutex
	decision *Decision
	gen      [2]uint64 // policy and revocation generations the decision was taken under
	user     string
	// tls is the connection's TLS state when net/http cannot see it: a
	// connection the fast path handed over (fastpath.go).
	tls *tls.ConnectionState
	// assertions are the connection's reusable assertions (assertion.go).
	assertions []cachedAssertion
}

type connRegistry struct {
	mu     sync.Mutex
	byConn map[net.Conn]*connInfo
}

type connKey struct{}

func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{conn: c, accepted: s.now()}
	if hc, ok := c.(*handoffConn); ok {
		ci = hc.ci // accepted when the fast path accepted it
	}
	s.conns.mu.Lock()
	s.conns.byConn[c] = ci
	s.conns.mu.Unlock()
	return context.WithValue(ctx, connKey{}, ci)
}

func (s *Server) connState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.metrics.connOpen(1)
	case http.StateClosed, http.StateHijacked:
		s.metrics.connOpen(-1)
		s.conns.mu.Lock()
		delete(s.conns.byConn, c)
		s.conns.mu.Unlock()
	}
}

func (r *connRegistry) closeUser(upn string, validFrom time.Time) int {
	r.mu.Lock()
	var victims []*connInfo
	for _, ci := range r.byConn {
		ci.mu.Lock()
		if ci.user != "" && strings.EqualFold(ci.user, upn) && ci.accepted.Before(validFrom) {
			victims = append(victims, ci)
		}
		ci.mu.Unlock()
	}
	r.mu.Unlock()
	for _, ci := range victims {
		ci.conn.Close()
	}
	return len(victims)
}

func (r *connRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byConn)
}

// limitListener caps concurrent connections; Accept waits for a free slot
// so the kernel backlog, not certgate's memory, absorbs a flood.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func newLimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (s *Server) String() string {
	return fmt.Sprintf("certgate proxy (%d connections)", s.conns.count())
}

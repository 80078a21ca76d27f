package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/proxy/clientcert"
	"github.com/certgate/certgate/proxy/eas"
	"github.com/certgate/certgate/trust"
)

type requestKey struct{}

// requestState carries the decision and route from serveHTTP to Rewrite.
type requestState struct {
	policy    *Policy
	route     *Route
	decision  *Decision
	assertion string // signed for this request; "" when the route signs none
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := s.policy.Load()
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	if r.TLS == nil || ci == nil {
		http.Error(w, "certgate serves TLS only", http.StatusBadRequest)
		return
	}
	host := hostOnly(r.Host)
	// A connection authenticated for one name must not be reused for
	// another (HTTP/2 coalescing, domain fronting).
	if sni := r.TLS.ServerName; sni != "" && !strings.EqualFold(sni, host) {
		s.metrics.decision(ReasonMisdirected)
		s.log.Info("decision", "reason", ReasonMisdirected, "sni", sni, "host", host, "remote", r.RemoteAddr)
		s.rejected(Rejection{Reason: ReasonMisdirected, Remote: r.RemoteAddr})
		writeRefusal(w, ReasonMisdirected)
		return
	}
	if p.JWKSPath != "" && r.URL.Path == p.JWKSPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		// Public keys: served to any client that passed the handshake.
		serveJWKS(w, p.JWKS)
		return
	}
	d := s.decideConn(p, ci, r.TLS.PeerCertificates, r.RemoteAddr)
	if !d.OK() {
		writeRefusal(w, d.Reason)
		return
	}
	if chunkedHTTP1(r) {
		// net/http drops Content-Length when Transfer-Encoding is chunked,
		// so a request that carried both cannot be told apart here; RFC
		// 9112 §6.3 requires closing after such a request, so every
		// chunked HTTP/1 request closes its connection after the answer.
		w.Header().Set("Connection", "close")
	}
	if r.Method == http.MethodConnect {
		// A tunnel (HTTP/1 CONNECT, or RFC 8441's extended CONNECT should
		// GODEBUG turn it on) would skip every per-request check.
		http.Error(w, "CONNECT is not served", http.StatusMethodNotAllowed)
		return
	}
	norm, err := NormalizePath(requestPath(r))
	if err != nil {
		s.log.Info("bad path", "remote", r.RemoteAddr, "error", err.Error())
		http.Error(w, "bad_path: "+err.Error(), http.StatusBadRequest)
		return
	}
	decoded, err := url.PathUnescape(norm)
	if err != nil {
		http.Error(w, "bad_path", http.StatusBadRequest)
		return
	}
	rt := p.route(host, decoded)
	noteAccess(w, d.Identity.User.UserPrincipalName, rt)
	if rt == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	// The backend gets exactly the path routed on (plus the backend's own
	// base path): never a spelling it could resolve to another route.
	r.URL.Path, r.URL.RawPath = decoded, norm
	// Exchange serves ActiveSync on this path whatever route certgate
	// chose for it (a catch-all web route in front of the same server, a
	// host the EAS route does not name): the EAS checks follow the path.
	easPath, viaUnicode := IsEASPath(norm)
	if viaUnicode {
		// "/Microſoft-Server-ActiveSync" is ActiveSync to a server that
		// maps ſ to S, and no route's prefix to certgate.
		http.Error(w, "bad_path: ambiguous path: names ActiveSync only through Unicode case mapping", http.StatusBadRequest)
		return
	}
	easLike := rt.Kind == KindEAS || easPath
	if !allowUpgrade(r, rt, easLike) {
		// The connection switches protocols only where the route promised
		// it (WebSocket on web routes); any other Upgrade, h2c's included,
		// is dropped with its settings header and the request goes on as
		// a plain one (ReverseProxy then sends no Upgrade either).
		r.Header.Del("Upgrade")
		r.Header.Del("HTTP2-Settings")
	}
	cmd := ""
	if easLike {
		q, err := eas.ParseQuery(r.URL.RawQuery)
		if err == nil {
			// An absent User (the base64 form need not carry one) leaves the
			// binding as the only identity, which is what the backend gets.
			err = eas.CheckUser(q, d.Identity.User.UserPrincipalName, d.Identity.User.ProxyAddresses, rt.NetbiosDomain)
		}
		if err != nil {
			// A query that cannot be read (truncated base64, a User given
			// twice) cannot be shown to name the bound user, and the backend
			// might read it differently: refused like a mismatch, whatever
			// the method, so OPTIONS is no way around the check.
			s.metrics.decision(ReasonEASUserMismatch)
			s.log.Info("decision", "reason", ReasonEASUserMismatch, "user", d.Identity.User.UserPrincipalName,
				"route", rt.Name, "remote", r.RemoteAddr, "error", err.Error())
			s.rejected(Rejection{Reason: ReasonEASUserMismatch, User: d.Identity.User.UserPrincipalName, Route: rt.Name, Remote: r.RemoteAddr})
			writeRefusal(w, ReasonEASUserMismatch)
			return
		}
		cmd = q.Cmd
		if rt.Kind == KindEAS {
			w = eas.NewHeaderCaseWriter(w)
		}
	}
	var tok string
	if rt.Assertion != nil {
		var err error
		if tok, err = s.assertionFor(ci, rt, d); err != nil {
			// Fail closed: a backend that relies on the assertion must
			// never get the request without one.
			s.log.Error("assertion signing failed; request refused", "route", rt.Name, "error", err)
			http.Error(w, "internal error: the identity assertion could not be signed", http.StatusInternalServerError)
			return
		}
	}
	rs := &requestState{policy: p, route: rt, decision: d, assertion: tok}
	ctx := context.WithValue(r.Context(), requestKey{}, rs)
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	rt.proxy.ServeHTTP(rec, r.WithContext(ctx))
	if rt.retired.Load() {
		rt.transport.CloseIdleConnections()
	}
	if rt.Kind != KindEAS || !eas.IsLongPoll(eas.Query{Cmd: cmd}) {
		// A 59-minute Ping would wreck every latency quantile.
		s.metrics.upstream(rt.Name, rec.code(), time.Since(start))
	}
	if rt.Kind == KindEAS {
		// OPTIONS and Autodiscover count as "none".
		s.metrics.easRequest(eas.CommandLabel(cmd))
	}
}

// decideConn returns the connection's decision, re-deciding when the policy
// or the CRLs changed since it was taken.
func (s *Server) decideConn(p *Policy, ci *connInfo, certs []*x509.Certificate, remote string) *Decision {
	var rgen uint64
	if p.Revocation != nil {
		rgen = p.Revocation.Generation()
	}
	gen := [2]uint64{p.gen, rgen}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	now := s.now()
	if ci.decision != nil && ci.gen == gen {
		d := ci.decision
		// Validity and the user's session cut-off are the only inputs that
		// move with time alone.
		if d.OK() && !d.Chain[0].NotAfter.Before(now) {
			return d
		}
	}
	d := p.Decide(context.Background(), certs, now, ci.accepted)
	ci.decision, ci.gen = &d, gen
	if d.OK() {
		ci.user = d.Identity.User.UserPrincipalName
	}
	s.metrics.decision(d.Reason)
	s.logDecision(&d, "", "", remote)
	return &d
}

func (p *Policy) route(host, path string) *Route { return findRoute(p, host, path) }

// findRoute is the first route that serves host and path, for either
// request path.
func findRoute[T ~string | ~[]byte](p *Policy, host, path T) *Route {
	for _, rt := range p.Routes {
		if routeMatches(rt, host, path) {
			return rt
		}
	}
	return nil
}

// newReverseProxy builds a route's proxy; the Rewrite hook reads the
// request's decision from its context.
func (s *Server) newReverseProxy(rt *Route) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:   s.rewrite,
		Transport: rt.transport,
		// 0, not -1: ReverseProxy already flushes every write of a body of
		// unknown length or of type text/event-stream, which is how EAS
		// and SSE stream; flushing known-length bodies at every write cost
		// a TLS record, a syscall and a timer per response (25% of the
		// keep-alive CPU in the profile in BENCHMARKS.md).
		FlushInterval: 0,
		BufferPool:    copyBuffers,
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ModifyResponse: func(resp *http.Response) error {
			// A 101 the request did not ask for as WebSocket is refused
			// before anything else looks at it.
			if err := checkSwitch(resp); err != nil {
				return err
			}
			// X-Forwarded-Host is the client's Host: SetXForwarded put it
			// there after the client's own copy was stripped.
			rewriteLocation(resp.Header, rt.target, resp.Request.Header.Get("X-Forwarded-Host"))
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			code, why := errorStatus(err)
			if errors.Is(err, errUnaskedSwitch) {
				w.Header().Set("Connection", "close")
				why = "backend_unavailable: " + errUnaskedSwitch.Error()
			}
			s.log.Warn("backend error", "route", rt.Name, "error", err, "status", code)
			if code == 499 {
				return
			}
			http.Error(w, why, code)
		},
	}
}

func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	rs := pr.In.Context().Value(requestKey{}).(*requestState)
	rt := rs.route
	// Hop-by-hop and X-Forwarded-* headers are already gone (Rewrite runs
	// after they are removed, so a client cannot list our header in
	// Connection to have it dropped after we set it).
	rs.policy.strip.strip(pr.Out.Header)
	// h2c's settings travel outside Connection when a client wants them
	// past a proxy; no upgrade certgate forwards uses them.
	pr.Out.Header.Del("HTTP2-Settings")
	pr.SetURL(rt.target)
	// SetURL re-encodes the query; the base64 EAS form must reach the
	// backend byte for byte.
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.SetXForwarded()
	d := rs.decision
	pr.Out.Header[rs.policy.IdentityHeader] = []string{d.Identity.User.UserPrincipalName}
	if rs.assertion != "" {
		pr.Out.Header.Set(rt.Assertion.Header(), rs.assertion)
	}
	switch rs.policy.ForwardClientCert {
	case "rfc9440":
		cert, chain := clientcert.RFC9440(d.Chain)
		pr.Out.Header["Client-Cert"] = []string{cert}
		if chain != "" {
			pr.Out.Header["Client-Cert-Chain"] = []string{chain}
		}
	case "xfcc":
		upns, _ := trust.UPNs(d.Chain[0])
		pr.Out.Header["X-Forwarded-Client-Cert"] = []string{clientcert.XFCC(d.Chain, "", upns, d.Chain[0].EmailAddresses)}
	}
}

func (s *Server) logDecision(d *Decision, sni, route, remote string) {
	if !d.OK() {
		s.rejected(rejectionOf(d, route, remote))
	}
	if !s.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("reason", d.Reason))
	if len(d.Chain) > 0 {
		leaf := d.Chain[0]
		attrs = append(attrs, slog.String("subject", certfmt.Subject(leaf)), slog.String("serial", leaf.SerialNumber.Text(16)))
		if len(d.Chain) > 1 {
			attrs = append(attrs, slog.String("issuer_ski", certfmt.SKI(issuerKey(d.Chain[1]))))
		}
	}
	if u := d.Identity.User.UserPrincipalName; u != "" {
		attrs = append(attrs, slog.String("user", u))
	}
	if route != "" {
		attrs = append(attrs, slog.String("route", route))
	}
	if sni != "" {
		attrs = append(attrs, slog.String("sni", sni))
	}
	if remote != "" {
		attrs = append(attrs, slog.String("remote", remote))
	}
	if d.Err != nil {
		attrs = append(attrs, slog.String("error", d.Err.Error()))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(hostport, "[]")
}

// statusRecorder remembers the status code for metrics while keeping the
// writer's optional interfaces reachable through Unwrap.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if code == http.StatusContinue {
		// net/http answers Expect: 100-continue itself when the request
		// body is first read, which the transport does once the backend
		// has sent its own 100. ReverseProxy also forwards the backend's
		// 100, racing the automatic one: the client would get two.
		return
	}
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) code() string {
	if r.status == 0 {
		return "0"
	}
	return strconv.Itoa(r.status)
}

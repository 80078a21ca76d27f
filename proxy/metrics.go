package proxy

import (
	"crypto/tls"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/certgate/certgate/internal/certfmt"
)

// Metrics are the data plane's Prometheus series. Labels are closed sets:
// never a user, serial, DN, device or path.
type Metrics struct {
	decisions    *prometheus.CounterVec
	handshakes   *prometheus.CounterVec
	handshakeDur *prometheus.HistogramVec
	active       prometheus.Gauge
	upstreamDur  *prometheus.HistogramVec
	easRequests  *prometheus.CounterVec
	assertions   assertionMetrics

	// rejections is not a metric (it names subjects and users) but lives
	// here because it is fed from the same points as the decision counter.
	rejections rejectionRing
}

// NewMetrics registers the series on reg (nil: a private registry, for
// tests and `certgate check`).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_auth_decisions_total",
			Help: "Client certificate decisions by reason code (ok or why the client was refused).",
		}, []string{"reason"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_tls_handshakes_total",
			Help: "TLS handshakes on the client listener by result: ok, resumed, rejected (certgate refused the client), error, or capped (closed at accept: the source address held limits.maxUnauthenticatedPerIP connections without an admitted certificate).",
		}, []string{"result"}),
		handshakeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "certgate_tls_handshake_duration_seconds",
			Help:                        "Time from the client's ClientHello to certgate's decision on its certificate, by result (ok, resumed, rejected).",
			Buckets:                     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "certgate_connections_active",
			Help: "Client connections currently open.",
		}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "certgate_upstream_request_duration_seconds",
			Help:                        "Time from forwarding a request to the end of the backend's response, by route and status code; EAS Ping and Sync long polls are left out.",
			Buckets:                     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			NativeHistogramBucketFactor: 1.1,
		}, []string{"route", "code"}),
		easRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_eas_requests_total",
			Help: "Exchange ActiveSync requests by command (a closed set; other commands count as other).",
		}, []string{"cmd"}),
	}
	reg.MustRegister(m.decisions, m.handshakes, m.handshakeDur, m.active, m.upstreamDur, m.easRequests)
	m.assertions = newAssertionMetrics(reg)
	for _, r := range []string{"ok", "no_certificate", "untrusted", "expired", "revoked"} {
		m.decisions.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "resumed", "rejected", "error"} {
		m.handshakes.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) decision(reason string)  { m.decisions.WithLabelValues(reason).Inc() }
func (m *Metrics) handshake(result string) { m.handshakes.WithLabelValues(result).Inc() }
func (m *Metrics) connOpen(delta float64)  { m.active.Add(delta) }
func (m *Metrics) easRequest(cmd string)   { m.easRequests.WithLabelValues(cmd).Inc() }

func (m *Metrics) upstream(route, code string, d time.Duration) {
	m.upstreamDur.WithLabelValues(route, code).Observe(d.Seconds())
}

// handshakeConfig returns the policy's TLS config for one handshake: a
// copy whose VerifyConnection knows the client's address (for the decision
// log) and when its ClientHello arrived (for the duration histogram). A
// copy per handshake carries both to VerifyConnection, which sees no
// connection; the alternative, a map from connection to state, would need
// a lock on every handshake and a cleanup on every close. Session tickets
// are unaffected: crypto/tls takes automatic ticket keys from the server's
// base config, and Clone copies explicit keys and the ticket hooks.
func (s *Server) handshakeConfig(p *Policy, chi *tls.ClientHelloInfo) *tls.Config {
	start := time.Now()
	remote := ""
	if chi.Conn != nil {
		remote = chi.Conn.RemoteAddr().String()
	}
	gc, _ := chi.Conn.(*guardConn)
	verify := s.verifyConnectionFrom(p, remote, gc)
	c := p.tls.Clone()
	refused := false
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verify(cs)
		if err == errRefuseOverHTTP {
			// c is this connection's own config: TLS 1.3 checks it after
			// VerifyConnection and sends no ticket.
			refused, c.SessionTicketsDisabled, err = true, true, nil
		}
		result := "ok"
		switch {
		case err != nil:
			result = "rejected"
		case cs.DidResume:
			result = "resumed"
		}
		s.metrics.handshakeDur.WithLabelValues(result).Observe(time.Since(start).Seconds())
		return err
	}
	if p.RejectWithHTTP {
		wrap := c.WrapSession
		c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			if refused {
				// TLS 1.2 promised a ticket in its ServerHello, before
				// the client certificate was seen: an empty one is how
				// RFC 5077 §3.3 takes the promise back.
				return nil, nil
			}
			return wrap(cs, ss)
		}
	}
	return c
}

// Rejection is one refused client as the operator's status page shows it.
// It names the certificate subject and the user, which is why it is kept
// here and never becomes a metric label.
type Rejection struct {
	Time      time.Time `json:"time"`
	Reason    string    `json:"reason"`
	Subject   string    `json:"subject,omitempty"`
	IssuerSKI string    `json:"issuerSki,omitempty"`
	User      string    `json:"user,omitempty"`
	Route     string    `json:"route,omitempty"`
	Remote    string    `json:"remote,omitempty"`
}

// recentRejections is how many refusals the status page can show; enough
// to see a pattern, small enough to cost nothing.
const recentRejections = 100

// rejectionRing keeps the last recentRejections refusals.
type rejectionRing struct {
	mu   sync.Mutex
	buf  [recentRejections]Rejection
	next int
	full bool
}

func (r *rejectionRing) add(x Rejection) {
	r.mu.Lock()
	r.buf[r.next] = x
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// list returns the kept refusals, newest first.
func (r *rejectionRing) list() []Rejection {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Rejection, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// rejected remembers a refusal for [Server.RecentRejections].
func (s *Server) rejected(x Rejection) {
	if x.Time.IsZero() {
		x.Time = s.now()
	}
	s.metrics.rejections.add(x)
}

// RecentRejections returns the last refused clients (at most 100), newest
// first, for the admin status page. The entries name subjects and users:
// they are for the admin listener only.
func (s *Server) RecentRejections() []Rejection { return s.metrics.rejections.list() }

func rejectionOf(d *Decision, route, remote string) Rejection {
	x := Rejection{Reason: d.Reason, User: d.Identity.User.UserPrincipalName, Route: route, Remote: remote}
	if len(d.Chain) > 0 {
		x.Subject = certfmt.Subject(d.Chain[0])
		if len(d.Chain) > 1 {
			x.IssuerSKI = certfmt.SKI(issuerKey(d.Chain[1]))
		}
	}
	return x
}

package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the data plane's Prometheus series. Labels are closed sets:
// never a user, serial, DN, device or path.
type Metrics struct {
	decisions   *prometheus.CounterVec
	handshakes  *prometheus.CounterVec
	active      prometheus.Gauge
	upstreamDur *prometheus.HistogramVec
	easRequests *prometheus.CounterVec
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
			Help: "TLS handshakes on the client listener by result: ok, resumed, rejected (certgate refused the client) or error.",
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
	reg.MustRegister(m.decisions, m.handshakes, m.active, m.upstreamDur, m.easRequests)
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

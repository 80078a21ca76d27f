package proxy

import (
	"net/http"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/proxy/assertion"
	"github.com/prometheus/client_golang/prometheus"
)

// cachedAssertion is a connection's last assertion for one route's signer.
type cachedAssertion struct {
	signer   *assertion.Signer
	decision *Decision
	token    string
	until    time.Time // reuse ends
}

// assertionFor returns the signed identity assertion for a request of the
// connection ci to route rt. With the route's reuse window set, the
// connection's last assertion for the route is reused while the window is
// open and the decision it was made for still stands: one signature costs
// several times a proxied keep-alive request, and the claims (user,
// certificate, route) are the same for every request of the connection.
// The price is that jti then names the window, not the request.
func (s *Server) assertionFor(ci *connInfo, rt *Route, d *Decision) (string, error) {
	sg := rt.Assertion
	now := s.now()
	reuse := sg.Reuse()
	if reuse > 0 {
		ci.mu.Lock()
		for _, c := range ci.assertions {
			// The decision pointer changes when the connection is
			// re-decided (reload, new CRL), the signer when the keys or
			// claims change: either way a new assertion is signed.
			if c.signer == sg && c.decision == d && now.Before(c.until) {
				tok := c.token
				ci.mu.Unlock()
				s.metrics.assertions.reused.WithLabelValues(rt.Name).Inc()
				return tok, nil
			}
		}
		ci.mu.Unlock()
	}
	sub := assertion.Subject{
		User:             d.Identity.User.UserPrincipalName,
		BindingField:     string(d.Identity.Binding.Field),
		BindingAttribute: string(d.Identity.Binding.Attribute),
		Leaf:             d.Chain[0].Raw,
	}
	if len(d.Chain) > 1 {
		sub.IssuerSKI = certfmt.SKI(issuerKey(d.Chain[1]))
	}
	tok, _, err := sg.Sign(sub, now)
	if err != nil {
		s.metrics.assertions.errors.WithLabelValues(rt.Name).Inc()
		return "", err
	}
	s.metrics.assertions.signed.WithLabelValues(rt.Name).Inc()
	if reuse > 0 {
		ci.mu.Lock()
		kept := ci.assertions[:0]
		for _, c := range ci.assertions {
			if c.signer != sg && now.Before(c.until) {
				kept = append(kept, c)
			}
		}
		ci.assertions = append(kept, cachedAssertion{signer: sg, decision: d, token: tok, until: now.Add(reuse)})
		ci.mu.Unlock()
	}
	return tok, nil
}

// serveJWKS answers with the public assertion keys.
func serveJWKS(w http.ResponseWriter, set *assertion.KeySet) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Verifiers refetch on an unknown kid; a short max-age keeps caches
	// from holding a removed key long.
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Write(set.JSON())
}

// JWKSHandler serves set() as a JWKS (the admin listener's
// /.well-known/jwks.json).
func JWKSHandler(set func() *assertion.KeySet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serveJWKS(w, set()) })
}

// assertionMetrics count signatures per route. The key ids in use are
// exported by the caller, which knows the configured keys.
type assertionMetrics struct {
	signed, reused, errors *prometheus.CounterVec
}

func newAssertionMetrics(reg prometheus.Registerer) assertionMetrics {
	m := assertionMetrics{
		signed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_assertions_signed_total",
			Help: "Identity assertions signed, by route.",
		}, []string{"route"}),
		reused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_assertions_reused_total",
			Help: "Requests that carried their connection's assertion again within the route's reuse window, by route.",
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "certgate_assertion_signing_errors_total",
			Help: "Identity assertions that could not be signed, by route; each request was refused with 500.",
		}, []string{"route"}),
	}
	reg.MustRegister(m.signed, m.reused, m.errors)
	return m
}

// touch creates a route's series at zero, so that rate() sees the first
// signature and the first error.
func (m assertionMetrics) touch(route string) {
	m.signed.WithLabelValues(route)
	m.reused.WithLabelValues(route)
	m.errors.WithLabelValues(route)
}

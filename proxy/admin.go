package proxy

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/proxy/assertion"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminOptions wire the admin listener to the rest of certgate.
type AdminOptions struct {
	Gatherer prometheus.Gatherer
	// Ready reports why certgate should not get traffic (nil: ready): no
	// valid CRL for a CA, a directory down past its cache, shutting down.
	Ready func() error
	// Status returns the data of /status.json (and of the /status page).
	Status func() any
	// StatusPage renders /status; nil serves the JSON only.
	StatusPage http.Handler
	// RefreshCRLs forces a re-fetch of every CRL (POST /crl/refresh).
	RefreshCRLs func(ctx context.Context) error

	// ListenAddr is the address the admin listener is bound to; it decides
	// whether the listener is loopback-only.
	ListenAddr string
	// AllowedHosts are the DNS names, besides IP literals and localhost,
	// that a request's Host may name.
	AllowedHosts []string
	// Token, when not empty, is the bearer token /status, /status.json and
	// every state-changing request require.
	Token string
	// JWKS returns the public assertion keys in force, served at
	// /.well-known/jwks.json (nil: not served).
	JWKS func() *assertion.KeySet
}

// Admin is the plain-HTTP operator endpoint. It is meant for loopback or a
// pod network and is never served on the client port.
type Admin struct {
	opts     AdminOptions
	draining atomic.Bool
}

// NewAdmin returns the admin handler.
func NewAdmin(opts AdminOptions) *Admin { return &Admin{opts: opts} }

// SetDraining makes /readyz fail, so a balancer stops sending new clients
// while in-flight requests finish.
func (a *Admin) SetDraining() { a.draining.Store(true) }

// Draining reports whether SetDraining was called.
func (a *Admin) Draining() bool { return a.draining.Load() }

// Handler returns the admin handler.
//
// The listener speaks plain HTTP on an address an operator's browser can
// reach, so a web page could reach it too: by DNS rebinding (a name of the
// page's that resolves to the listener) to read /status.json, which names
// subjects, users and remote addresses, and by a cross-site form to POST.
// Hence:
//   - Host must be an IP literal, localhost or one of AllowedHosts (a
//     rebinding page's Host is its own DNS name), else 421; /metrics is
//     exempt so scrapers that use a service name keep working: it carries
//     no user names, subjects or addresses by design.
//   - Requests that change state are refused when Origin or
//     Sec-Fetch-Site says another site sent them (net/http's
//     CrossOriginProtection).
//   - /status, /status.json and state-changing requests require the bearer
//     Token when one is configured, and are off on a non-loopback listener
//     without one. /metrics, /healthz and /readyz never need it (probes
//     and scrapers).
func (a *Admin) Handler() http.Handler {
	mux := a.mux()
	guarded := http.NewCrossOriginProtection().Handler(mux)
	loopback := IsLoopbackListen(a.opts.ListenAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" && !a.hostAllowed(r.Host) {
			http.Error(w, "admin: Host "+strconv.Quote(r.Host)+" does not name this listener (admin.allowedHosts)", http.StatusMisdirectedRequest)
			return
		}
		if sensitiveAdmin(r) {
			switch {
			case a.opts.Token != "":
				if !bearerMatches(r.Header.Get("Authorization"), a.opts.Token) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="certgate admin"`)
					http.Error(w, "admin: a bearer token is required (admin.tokenFile)", http.StatusUnauthorized)
					return
				}
			case !loopback:
				http.Error(w, "admin: status and control endpoints are off on a non-loopback listener without admin.tokenFile", http.StatusForbidden)
				return
			}
		}
		guarded.ServeHTTP(w, r)
	})
}

// sensitiveAdmin reports the requests that read who was refused or change
// state.
func sensitiveAdmin(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.URL.Path == "/status" || r.URL.Path == "/status.json"
	}
	return true
}

func bearerMatches(h, token string) bool {
	got, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) == 1
}

func (a *Admin) hostAllowed(hostport string) bool {
	h := hostOnly(hostport)
	if h == "" {
		return false
	}
	if net.ParseIP(h) != nil || strings.EqualFold(h, "localhost") {
		// An IP literal cannot be rebound to another address.
		return true
	}
	for _, allowed := range a.opts.AllowedHosts {
		if strings.EqualFold(allowed, h) || strings.EqualFold(allowed, hostport) {
			return true
		}
	}
	return false
}

// IsLoopbackListen reports a listen address only local processes reach.
func IsLoopbackListen(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (a *Admin) mux() *http.ServeMux {
	mux := http.NewServeMux()
	if a.opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Gatherer, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		// Alive means the process answers; dependencies belong to /readyz.
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if a.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if a.opts.Ready != nil {
			if err := a.opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Write([]byte("ready\n"))
	})
	if a.opts.Status != nil {
		mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(a.opts.Status())
		})
	}
	if a.opts.JWKS != nil {
		mux.Handle("GET /.well-known/jwks.json", JWKSHandler(a.opts.JWKS))
	}
	if a.opts.StatusPage != nil {
		mux.Handle("GET /status", a.opts.StatusPage)
	}
	if a.opts.RefreshCRLs != nil {
		mux.HandleFunc("POST /crl/refresh", func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
			defer cancel()
			if err := a.opts.RefreshCRLs(ctx); err != nil {
				http.Error(w, "refresh failed: "+err.Error(), http.StatusBadGateway)
				return
			}
			w.Write([]byte("refreshed\n"))
		})
	}
	return mux
}

package proxy

import (
	"context"
	"encoding/json"
	"net/http"
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

// Handler returns the admin mux.
func (a *Admin) Handler() http.Handler {
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

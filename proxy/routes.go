package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/proxy/assertion"
)

// Route kinds.
const (
	KindEAS = "eas"
	KindWeb = "web"
)

const autodiscoverPath = "/autodiscover/autodiscover.xml"

// RouteConfig describes one backend route.
type RouteConfig struct {
	Name       string
	Kind       string // eas | web
	Host       string // optional; compared case-insensitively without port
	PathPrefix string
	// Backend is http://host:port[/base], https://... or unix:/path.
	Backend string
	// BackendTLS is used for https backends (RootCAs, ServerName).
	BackendTLS *tls.Config
	// Timeout bounds the wait for the backend's response headers. EAS Ping
	// and Sync hold a request up to an hour, so EAS routes default to 3600s.
	Timeout       time.Duration
	NetbiosDomain string
	Autodiscover  bool
	// DisableWebSocket refuses WebSocket upgrades on a web route (they are
	// allowed by default there). EAS routes never switch protocols.
	DisableWebSocket bool
	// Assertion, when set, signs an identity assertion for every request;
	// a request it cannot sign one for is refused with 500.
	Assertion *assertion.Signer
	// NoKeepAlive opens a new backend connection for every request
	// (Apache's proxy-nokeepalive): some backends close each connection
	// after one response without a "Connection: close", and a request
	// sent on it in that moment fails with EOF.
	NoKeepAlive bool
}

// Route is a prepared RouteConfig with its pooled backend transport.
type Route struct {
	RouteConfig
	target    *url.URL
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	// retired is set when a reload replaced the route: a request that was
	// in flight then drops its backend connection when it ends instead of
	// parking it in a pool nobody will use again.
	retired atomic.Bool
}

// NewRoute validates rc and builds its transport.
func NewRoute(rc RouteConfig) (*Route, error) {
	if rc.Kind == "" {
		rc.Kind = KindWeb
	}
	if rc.Kind != KindEAS && rc.Kind != KindWeb {
		return nil, fmt.Errorf("route %q: kind %q is not eas or web", rc.Name, rc.Kind)
	}
	if rc.PathPrefix == "" {
		rc.PathPrefix = "/"
	}
	if rc.Timeout <= 0 {
		rc.Timeout = 60 * time.Second
		if rc.Kind == KindEAS {
			rc.Timeout = time.Hour
		}
	}
	rt := &Route{RouteConfig: rc}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil, // a reverse proxy never goes through the environment's forward proxy
		DialContext:           dialer.DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: rc.Timeout,
		// Transparent gzip would change bodies the client signed up for.
		DisableCompression: true,
		DisableKeepAlives:  rc.NoKeepAlive,
	}
	switch {
	case strings.HasPrefix(rc.Backend, "unix:"):
		path := strings.TrimPrefix(strings.TrimPrefix(rc.Backend, "unix:"), "//")
		if path == "" {
			return nil, fmt.Errorf("route %q: unix backend needs a socket path", rc.Name)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
		rt.target = &url.URL{Scheme: "http", Host: "localhost"}
	default:
		u, err := url.Parse(rc.Backend)
		if err != nil {
			return nil, fmt.Errorf("route %q: backend: %w", rc.Name, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("route %q: backend %q must be an http, https or unix backend", rc.Name, rc.Backend)
		}
		if u.Scheme == "https" {
			c := &tls.Config{MinVersion: tls.VersionTLS12}
			if rc.BackendTLS != nil {
				c = rc.BackendTLS.Clone()
			}
			tr.TLSClientConfig = c
			tr.ForceAttemptHTTP2 = true
		}
		rt.target = u
	}
	rt.transport = tr
	return rt, nil
}

// routeMatches reports whether the route serves host and path. It is the
// one route match of both request paths: the net/http path's strings and
// the fast path's request bytes. Letters fold as ASCII,
// as DNS names do (RFC 4343); the non-ASCII letters a Unicode-aware server
// would fold never get here (net/http refuses a non-ASCII Host, and
// IsEASPath refuses a path that is ActiveSync only through one).
func routeMatches[T ~string | ~[]byte](rt *Route, host, path T) bool {
	if rt.Host != "" && !equalFoldASCII(host, rt.Host) {
		return false
	}
	if rt.Kind == KindEAS {
		// IIS matches these paths case-insensitively and EAS clients rely on it.
		if rt.Autodiscover && equalFoldASCII(path, autodiscoverPath) {
			return true
		}
		return hasPrefixFold(path, rt.PathPrefix)
	}
	return len(path) >= len(rt.PathPrefix) && equalBytes(path[:len(rt.PathPrefix)], rt.PathPrefix)
}

func hasPrefixFold[T ~string | ~[]byte](s T, prefix string) bool {
	return len(s) >= len(prefix) && equalFoldASCII(s[:len(prefix)], prefix)
}

// equalFoldASCII compares a with b folding only A-Z.
func equalFoldASCII[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func equalBytes[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close releases the route's idle backend connections.
func (rt *Route) Close() { rt.transport.CloseIdleConnections() }

// errorStatus maps a transport error to 502 (unreachable) or 504 (too slow).
func errorStatus(err error) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "backend_timeout"
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this status.
		return 499, "client_closed"
	default:
		return http.StatusBadGateway, "backend_unavailable"
	}
}

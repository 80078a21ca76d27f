package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestAdminNonLoopbackNeedsToken: the status and control endpoints are off
// on a listener others can reach unless a token is configured; probes and
// /metrics never need one. (The end-to-end tests cover a loopback listener
// over a real socket; certgate's tests bind nothing but loopback.)
func TestAdminNonLoopbackNeedsToken(t *testing.T) {
	opts := AdminOptions{
		Status:      func() any { return map[string]string{"ok": "yes"} },
		RefreshCRLs: func(context.Context) error { return nil },
		ListenAddr:  "0.0.0.0:9090",
	}
	do := func(a *Admin, method, path, auth string) int {
		r := httptest.NewRequest(method, "http://10.0.0.7:9090"+path, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		a.Handler().ServeHTTP(w, r)
		return w.Code
	}
	open := NewAdmin(opts)
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/status.json", http.StatusForbidden},
		{"POST", "/crl/refresh", http.StatusForbidden},
		{"GET", "/healthz", http.StatusOK},
	} {
		if got := do(open, c.method, c.path, ""); got != c.want {
			t.Errorf("no token, %s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	opts.Token = "0123456789abcdef0123"
	tok := NewAdmin(opts)
	for _, c := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/status.json", "", http.StatusUnauthorized},
		{"GET", "/status.json", "Bearer 0123456789abcdef012", http.StatusUnauthorized},
		{"GET", "/status.json", "Basic 0123456789abcdef0123", http.StatusUnauthorized},
		{"GET", "/status.json", "Bearer 0123456789abcdef0123", http.StatusOK},
		{"POST", "/crl/refresh", "Bearer 0123456789abcdef0123", http.StatusOK},
		{"GET", "/healthz", "", http.StatusOK},
	} {
		if got := do(tok, c.method, c.path, c.auth); got != c.want {
			t.Errorf("token, %s %s %q: %d, want %d", c.method, c.path, c.auth, got, c.want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:9090": true, ":9090": false, "0.0.0.0:9090": false, "10.1.2.3:9090": false} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v", addr, got)
		}
	}
}

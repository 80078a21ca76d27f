package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestReloadClosesOldBackendPool: after a reload the old routes' idle
// backend connections are closed at once; before, every reload left a pool
// (and two goroutines per connection) behind until the idle timeout, which
// the soak run showed as goroutine growth.
func TestReloadClosesOldBackendPool(t *testing.T) {
	closed := make(chan struct{}, 16)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	be.Start()
	defer be.Close()
	routes := fmt.Sprintf("  - name: web\n    pathPrefix: /\n    backend: %s\n", be.URL)
	e := newEnv(t, envConfig{routes: routes})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	tr := &http.Transport{TLSClientConfig: e.clientTLS(alice)}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := client.Get(e.url("/"))
	must(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case <-closed:
		t.Fatal("the backend connection closed before any reload")
	default:
	}
	e.writeConfig(envConfig{routes: routes, extraYAML: "# touched\n"})
	must(t, e.inst.reload(t.Context(), "test"))
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the old route's idle backend connection is still open after the reload")
	}
	// The new route still works.
	resp, err = client.Get(e.url("/"))
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after reload: %d", resp.StatusCode)
	}
}

package proxy

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A route with NoKeepAlive opens one backend connection per request, as
// a backend that closes after every response (sogod) needs; a route
// without it reuses one.
func TestRouteNoKeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for _, tc := range []struct {
		noKeepAlive bool
		want        int32
	}{{false, 1}, {true, 3}} {
		conns.Store(0)
		rt, err := NewRoute(RouteConfig{Name: "r", Backend: srv.URL, NoKeepAlive: tc.noKeepAlive})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			resp, err := rt.transport.RoundTrip(httptestRequest(t, srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		rt.transport.CloseIdleConnections()
		if got := conns.Load(); got != tc.want {
			t.Errorf("NoKeepAlive %v: %d backend connections for 3 requests, want %d", tc.noKeepAlive, got, tc.want)
		}
	}
}

func httptestRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

package proxy

import (
	"net/http"
	"net/url"
	"strings"
)

// rewriteLocation maps a redirect that points at the backend's own address
// back to the address the client used, as nginx's "proxy_redirect
// default" and Apache's ProxyPassReverse do. A backend that builds
// absolute URLs from the Host header it received (SOGo does, for
// /SOGo/<user>/view) otherwise sends the browser to its internal address,
// around certgate: there the browser has no identity, and on a reachable
// network it would skip the certificate check altogether.
//
// target is the route's backend URL; clientHost is the Host the client
// asked for. Only a Location under target (same scheme, host and port,
// and under its path) changes; its target path is replaced by nothing,
// since certgate forwards the client's path after the target's.
func rewriteLocation(h http.Header, target *url.URL, clientHost string) {
	loc := h.Get("Location")
	if loc == "" || clientHost == "" {
		return
	}
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() || u.User != nil || !strings.EqualFold(u.Scheme, target.Scheme) || !sameHostPort(u, target) {
		return
	}
	p := u.EscapedPath()
	if base := strings.TrimSuffix(target.EscapedPath(), "/"); base != "" {
		if p != base && !strings.HasPrefix(p, base+"/") {
			return
		}
		p = strings.TrimPrefix(p, base)
	}
	if p == "" {
		p = "/"
	}
	out := "https://" + clientHost + p
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	h.Set("Location", out)
}

// sameHostPort compares hosts without case and ports with the scheme's
// default filled in.
func sameHostPort(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

package proxy

import (
	"errors"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// pathOverrideHeaders name a path other than the request line's to the
// backends that honour them (IIS URL Rewrite and ASP.NET read
// X-Original-URL, Symfony and Zend X-Rewrite-URL, Traefik-style auth
// X-Forwarded-Uri, Spring X-Forwarded-Prefix): sent by a client, they
// would make the backend serve a path certgate never routed or checked
// (an EAS mailbox behind a web route). They are removed like identity
// headers, whatever their case or underscore spelling.
var pathOverrideHeaders = []string{
	"x-original-url",
	"x-rewrite-url",
	"x-original-uri",
	"x-forwarded-uri",
	"x-forwarded-path",
	"x-forwarded-prefix",
}

// requestPath is the path as the client sent it, still percent-encoded:
// the request target for origin-form requests (HTTP/1.1 and HTTP/2's
// :path alike), net/url's reading of it for the absolute form.
func requestPath(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		p, _, _ := strings.Cut(r.RequestURI, "?")
		return p
	}
	return r.URL.EscapedPath()
}

// chunkedHTTP1 reports an HTTP/1 request framed by Transfer-Encoding.
func chunkedHTTP1(r *http.Request) bool {
	return r.ProtoMajor == 1 && len(r.TransferEncoding) > 0
}

// isWebSocketUpgrade reports a request asking for exactly WebSocket
// (RFC 6455 §4.1: Upgrade: websocket with Connection: Upgrade); a list of
// several protocols is not one.
func isWebSocketUpgrade(h http.Header) bool {
	up := h.Values("Upgrade")
	return len(up) == 1 && strings.EqualFold(strings.TrimSpace(up[0]), "websocket") &&
		httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade")
}

// allowUpgrade reports whether r may switch protocols on rt: only to
// WebSocket, only on a web route that allows it, and never on a path a
// backend would serve as ActiveSync (a tunnel would skip every per-request
// EAS check).
func allowUpgrade(r *http.Request, rt *Route, easLike bool) bool {
	return r.ProtoMajor == 1 && rt.Kind == KindWeb && !rt.DisableWebSocket && !easLike && isWebSocketUpgrade(r.Header)
}

// errUnaskedSwitch is a backend's 101 to a request that did not ask for a
// WebSocket: the client connection is closed after the 502, so nothing the
// backend meant as a tunnel is read as HTTP on it.
var errUnaskedSwitch = errors.New("backend switched protocols without a WebSocket upgrade request")

// checkSwitch refuses a 101 unless the outgoing request asked for
// WebSocket (ReverseProxy then also checks that the backend switched to
// the protocol asked for).
func checkSwitch(res *http.Response) error {
	if res.StatusCode == http.StatusSwitchingProtocols && (res.Request == nil || !isWebSocketUpgrade(res.Request.Header)) {
		return errUnaskedSwitch
	}
	return nil
}

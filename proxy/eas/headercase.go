package eas

import (
	"bufio"
	"net"
	"net/http"
)

// exactHeaders are the MS-ASHTTP header names (sections 2.2.1.1.2 and
// 2.2.2.1.2) whose spelling differs from Go's canonical form. Some EAS
// clients match them case-sensitively (mitmproxy#5, haproxy#561).
var exactHeaders = [...]string{
	"MS-ASProtocolVersions",
	"MS-ASProtocolCommands",
	"MS-Server-ActiveSync",
	"MS-ASProtocolVersion",
	"MS-ASAcceptMultiPart",
	"X-MS-PolicyKey",
	"X-MS-Location",
	"X-MS-RP",
	"X-MS-ASThrottle",
	"X-MS-Credential-Service-Url",
	"X-MS-Credentials-Expire",
	"X-BEServer",
	"X-FEServer",
	"request-id",
}

// FixHeaderCase moves the values of every canonicalised MS-AS* key of h
// (Ms-Asprotocolversions) to its exact MS-ASHTTP spelling
// (MS-ASProtocolVersions). net/http writes HTTP/1.x header keys as they are
// in the map, so this decides the bytes on the wire.
func FixHeaderCase(h http.Header) {
	for _, exact := range exactHeaders {
		canon := http.CanonicalHeaderKey(exact)
		if v, ok := h[canon]; ok {
			h[exact] = append(h[exact], v...)
			delete(h, canon)
		}
	}
}

// NewHeaderCaseWriter wraps w so that FixHeaderCase runs on its header map
// just before the header is written: on WriteHeader, or on the first Write
// or Flush that writes it implicitly. Fixing the map earlier is not enough:
// httputil.ReverseProxy copies the backend's headers into w with
// Header.Add, which canonicalises them again.
//
// The wrapper keeps http.Flusher and http.Hijacker (WebSocket upgrades
// pass through) and has Unwrap, so http.NewResponseController reaches the
// connection's deadlines through it.
func NewHeaderCaseWriter(w http.ResponseWriter) http.ResponseWriter {
	return &headerCaseWriter{rw: w}
}

type headerCaseWriter struct {
	rw    http.ResponseWriter
	wrote bool
}

var (
	_ http.Flusher  = (*headerCaseWriter)(nil)
	_ http.Hijacker = (*headerCaseWriter)(nil)
)

func (w *headerCaseWriter) Header() http.Header { return w.rw.Header() }

func (w *headerCaseWriter) WriteHeader(code int) {
	// Informational (1xx) headers are written too, and the final header
	// follows, so fix on every call.
	FixHeaderCase(w.rw.Header())
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.rw.WriteHeader(code)
}

func (w *headerCaseWriter) Write(b []byte) (int, error) {
	w.beforeImplicitHeader()
	return w.rw.Write(b)
}

func (w *headerCaseWriter) beforeImplicitHeader() {
	if !w.wrote {
		FixHeaderCase(w.rw.Header())
		w.wrote = true
	}
}

// FlushError is what http.ResponseController.Flush calls; it reports the
// error Flush cannot.
func (w *headerCaseWriter) FlushError() error {
	w.beforeImplicitHeader()
	return http.NewResponseController(w.rw).Flush()
}

func (w *headerCaseWriter) Flush() { _ = w.FlushError() }

func (w *headerCaseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.rw).Hijack()
}

// Unwrap returns the wrapped ResponseWriter for http.ResponseController.
func (w *headerCaseWriter) Unwrap() http.ResponseWriter { return w.rw }

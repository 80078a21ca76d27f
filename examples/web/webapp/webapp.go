package webapp

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configure the app. The zero value is usable.
type Options struct {
	// IdentityHeader names the header the proxy puts the user in; default
	// X-Remote-User.
	IdentityHeader string
	// Events feeds /events: each string it sends becomes one server-sent
	// event, until the channel closes or ctx ends. Default: the time, once
	// a second. Tests inject one they drive themselves.
	Events func(ctx context.Context) <-chan string
}

// Handler returns the app. A nil logger discards logs.
func Handler(logger *slog.Logger, opts Options) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdentityHeader == "" {
		opts.IdentityHeader = "X-Remote-User"
	}
	if opts.Events == nil {
		opts.Events = clockEvents
	}
	a := &app{log: logger, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.page)
	mux.HandleFunc("GET /whoami", a.whoami)
	mux.HandleFunc("GET /events", a.events)
	mux.HandleFunc("GET /ws", a.websocket)
	return a.requireUser(mux)
}

type app struct {
	log  *slog.Logger
	opts Options
}

type userKey struct{}

func (a *app) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get(a.opts.IdentityHeader)
		if user == "" {
			a.log.Warn("request without identity", "path", r.URL.Path, "remote", r.RemoteAddr)
			http.Error(w, "no "+a.opts.IdentityHeader+": this app serves only requests from its proxy", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
	})
}

func userOf(r *http.Request) string { s, _ := r.Context().Value(userKey{}).(string); return s }

// CertInfo is what the page shows of the forwarded client certificate.
type CertInfo struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"notAfter"`
	SHA256   string    `json:"sha256"`
	// Via names the header it came in: Client-Cert or X-Forwarded-Client-Cert.
	Via string `json:"via"`
}

// ForwardedCert reads the client certificate the proxy forwarded, from
// RFC 9440's Client-Cert or the Cert key of the first X-Forwarded-Client-Cert
// element. It returns nil, nil when neither header is present.
func ForwardedCert(h http.Header) (*CertInfo, error) {
	if v := h.Get("Client-Cert"); v != "" {
		der, err := byteSequence(v)
		if err != nil {
			return nil, fmt.Errorf("Client-Cert: %w", err)
		}
		return certInfo(der, "Client-Cert")
	}
	if v := h.Get("X-Forwarded-Client-Cert"); v != "" {
		enc, ok := xfccValue(v, "Cert")
		if !ok {
			return nil, errors.New("X-Forwarded-Client-Cert: no Cert key")
		}
		p, err := url.PathUnescape(enc)
		if err != nil {
			return nil, fmt.Errorf("X-Forwarded-Client-Cert: Cert: %w", err)
		}
		b, _ := pem.Decode([]byte(p))
		if b == nil || b.Type != "CERTIFICATE" {
			return nil, errors.New("X-Forwarded-Client-Cert: Cert is not a PEM certificate")
		}
		return certInfo(b.Bytes, "X-Forwarded-Client-Cert")
	}
	return nil, nil
}

// byteSequence decodes an RFC 8941 Byte Sequence, :base64:.
func byteSequence(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if len(v) < 2 || v[0] != ':' || v[len(v)-1] != ':' {
		return nil, errors.New("not a byte sequence (:base64:)")
	}
	return base64.StdEncoding.DecodeString(v[1 : len(v)-1])
}

// xfccValue returns the value of key in the first element of an XFCC
// header (the one the nearest proxy wrote), unquoted.
func xfccValue(h, key string) (string, bool) {
	var pairs []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case inQuote && c == '\\' && i+1 < len(h):
			i++
			cur.WriteByte(h[i])
			continue
		case c == '"':
			inQuote = !inQuote
			continue
		case !inQuote && c == ';':
			pairs = append(pairs, cur.String())
			cur.Reset()
			continue
		case !inQuote && c == ',':
			// The end of the first element.
			i = len(h)
			continue
		}
		cur.WriteByte(c)
	}
	pairs = append(pairs, cur.String())
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return v, true
		}
	}
	return "", false
}

func certInfo(der []byte, via string) (*CertInfo, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", via, err)
	}
	sum := sha256.Sum256(der)
	return &CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotAfter: c.NotAfter.UTC(),
		SHA256: hex.EncodeToString(sum[:]), Via: via}, nil
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>certgate web example</title></head>
<body>
<h1 id="hello">Hello, {{.User}}</h1>
<p>certgate checked your client certificate and told this app who you are.</p>
{{with .Cert}}<table id="cert">
<tr><th>Subject</th><td id="cert-subject">{{.Subject}}</td></tr>
<tr><th>Issuer</th><td>{{.Issuer}}</td></tr>
<tr><th>Valid until</th><td>{{.NotAfter.Format "2006-01-02 15:04 MST"}}</td></tr>
<tr><th>SHA-256</th><td><code>{{.SHA256}}</code></td></tr>
<tr><th>Forwarded in</th><td>{{.Via}}</td></tr>
</table>{{end}}{{with .CertError}}<p id="cert-error">Forwarded certificate unreadable: {{.}}</p>{{end}}
<p id="ws">WebSocket: connecting</p>
<script>
(function () {
  var out = document.getElementById("ws");
  var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = function () { ws.send("hello over WebSocket"); };
  ws.onmessage = function (e) { out.textContent = "WebSocket echo: " + e.data; ws.close(); };
  ws.onerror = function () { out.textContent = "WebSocket: error"; };
})();
</script>
</body>
</html>
`))

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	data := struct {
		User      string
		Cert      *CertInfo
		CertError string
	}{User: userOf(r)}
	ci, err := ForwardedCert(r.Header)
	if err != nil {
		data.CertError = err.Error()
	}
	data.Cert = ci
	a.log.Info("page", "identity", data.User, "proto", r.Proto)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page is the user's own; no one else may frame it.
	w.Header().Set("Content-Security-Policy", "frame-ancestors 'none'")
	if err := pageTmpl.Execute(w, data); err != nil {
		a.log.Warn("rendering the page", "err", err)
	}
}

// Whoami is the JSON /whoami answers.
type Whoami struct {
	User          string    `json:"user"`
	Cert          *CertInfo `json:"cert,omitempty"`
	ForwardedFor  string    `json:"forwardedFor,omitempty"`
	ForwardedHost string    `json:"forwardedHost,omitempty"`
	Proto         string    `json:"proto"`
}

func (a *app) whoami(w http.ResponseWriter, r *http.Request) {
	ci, err := ForwardedCert(r.Header)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(Whoami{User: userOf(r), Cert: ci, Proto: r.Proto,
		ForwardedFor: r.Header.Get("X-Forwarded-For"), ForwardedHost: r.Header.Get("X-Forwarded-Host")})
}

// events streams server-sent events: first a hello naming the user, then
// one event per value from Options.Events, each flushed as it comes.
func (a *app) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	if _, err := fmt.Fprintf(w, "event: hello\ndata: %s\n\n", oneLine(userOf(r))); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		a.log.Warn("events: cannot flush", "err", err)
		return
	}
	ctx := r.Context()
	ch := a.opts.Events(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			if _, err := fmt.Fprintf(w, "data: %s\n\n", oneLine(v)); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// oneLine keeps a value from ending its SSE field early.
func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

func clockEvents(ctx context.Context) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				select {
				case ch <- now.UTC().Format(time.RFC3339):
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch
}

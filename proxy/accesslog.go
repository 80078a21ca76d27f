package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/certgate/certgate/proxy/h1"
)

// Access log formats.
const (
	AccessLogJSON     = "json"
	AccessLogCombined = "combined"
)

// AccessLog writes one line per request: method, target, status, body
// bytes sent, duration, bound user and route. "combined" is nginx's and
// Apache's combined format exactly (the tools that read it stay happy;
// route and duration are in the JSON form only).
//
// Each line is one write, so lines from concurrent requests never
// interleave and a file opened with O_APPEND can be rotated by renaming.
type AccessLog struct {
	w        io.Writer
	combined bool
	mu       sync.Mutex
	errs     int
}

// NewAccessLog returns an access log writing format ("json" or
// "combined") lines to w.
func NewAccessLog(w io.Writer, format string) (*AccessLog, error) {
	switch format {
	case AccessLogJSON, "":
		return &AccessLog{w: w}, nil
	case AccessLogCombined:
		return &AccessLog{w: w, combined: true}, nil
	}
	return nil, errors.New("access log format must be json or combined")
}

// accessRecord is what one request leaves for its line; the handler fills
// user and route once they are known.
type accessRecord struct {
	start  time.Time
	status int
	bytes  int64
	user   string
	route  string
	buf    []byte
}

// accessWriter counts what reaches the client. It keeps the writer's
// optional interfaces (Flusher, Hijacker) reachable through Unwrap, which
// http.ResponseController and ReverseProxy use.
type accessWriter struct {
	http.ResponseWriter
	rec accessRecord
}

func (w *accessWriter) WriteHeader(code int) {
	if w.rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.rec.bytes += int64(n)
	return n, err
}

func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var accessWriters = sync.Pool{New: func() any { return &accessWriter{rec: accessRecord{buf: make([]byte, 0, 512)}} }}

// noteAccess records the bound user and the route for the access log line,
// when w is the access log's writer.
func noteAccess(w http.ResponseWriter, user string, rt *Route) {
	if aw, ok := w.(*accessWriter); ok {
		aw.rec.user = user
		if rt != nil {
			aw.rec.route = rt.Name
		}
	}
}

// handle is the server's handler: serveHTTP, wrapped for the access log
// when the policy has one. Without one it adds nothing.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		// A connection the fast path handed over: net/http saw a plain
		// connection, the TLS state is certgate's.
		if ci, _ := r.Context().Value(connKey{}).(*connInfo); ci != nil && ci.tls != nil {
			r.TLS = ci.tls
		}
	}
	al := s.policy.Load().AccessLog
	if al == nil {
		s.serveHTTP(w, r)
		return
	}
	aw := accessWriters.Get().(*accessWriter)
	aw.ResponseWriter = w
	aw.rec = accessRecord{start: time.Now(), buf: aw.rec.buf[:0]}
	defer func() {
		al.write(&aw.rec, r)
		aw.ResponseWriter = nil
		aw.rec.user, aw.rec.route = "", ""
		accessWriters.Put(aw)
	}()
	s.serveHTTP(aw, r)
}

// accessLine is what a line takes from the request.
type accessLine struct {
	method, uri, proto, remote, referer, userAgent string
}

func (l *AccessLog) write(rec *accessRecord, r *http.Request) {
	l.writeLine(rec, &accessLine{method: r.Method, uri: r.RequestURI, proto: r.Proto, remote: r.RemoteAddr,
		referer: r.Header.Get("Referer"), userAgent: r.Header.Get("User-Agent")})
}

// accessLine copies what the access log needs from a fast-path head.
func (fc *fastConn) accessLine(b []byte, req *h1.Request) *accessLine {
	line := &accessLine{method: string(b[req.Method.Start:req.Method.End]), uri: string(b[req.Target.Start:req.Target.End]),
		proto: "HTTP/1.1", remote: fc.remote}
	for i := 0; i < req.NFields; i++ {
		f := req.Fields[i]
		switch name := b[f.Name.Start:f.Name.End]; {
		case h1.EqualFold(name, "referer"):
			line.referer = string(b[f.Value.Start:f.Value.End])
		case h1.EqualFold(name, "user-agent"):
			line.userAgent = string(b[f.Value.Start:f.Value.End])
		}
	}
	return line
}

// writeFast logs a request the fast path served.
func (l *AccessLog) writeFast(line *accessLine, status int, sent int64, start time.Time, user, route string) {
	buf := accessBufs.Get().(*[]byte)
	rec := accessRecord{start: start, status: status, bytes: sent, user: user, route: route, buf: (*buf)[:0]}
	l.writeLine(&rec, line)
	*buf = rec.buf
	accessBufs.Put(buf)
}

var accessBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (l *AccessLog) writeLine(rec *accessRecord, r *accessLine) {
	end := time.Now()
	b := rec.buf[:0]
	if l.combined {
		b = appendCombined(b, rec, r, end)
	} else {
		b = appendJSONLine(b, rec, r, end)
	}
	rec.buf = b
	l.mu.Lock()
	if _, err := l.w.Write(b); err != nil {
		l.errs++ // a full disk must not stop the proxy
	}
	l.mu.Unlock()
}

// appendCombined writes
// $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent".
func appendCombined(b []byte, rec *accessRecord, r *accessLine, end time.Time) []byte {
	b = append(b, remoteHost(r.remote)...)
	b = append(b, " - "...)
	if rec.user != "" {
		b = appendLogText(b, rec.user)
	} else {
		b = append(b, '-')
	}
	b = append(b, " ["...)
	b = rec.start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendLogText(b, r.method)
	b = append(b, ' ')
	b = appendLogText(b, r.uri)
	b = append(b, ' ')
	b = appendLogText(b, r.proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, " \""...)
	b = appendLogTextOr(b, r.referer)
	b = append(b, "\" \""...)
	b = appendLogTextOr(b, r.userAgent)
	b = append(b, "\"\n"...)
	return b
}

func appendJSONLine(b []byte, rec *accessRecord, r *accessLine, end time.Time) []byte {
	b = append(b, `{"time":"`...)
	b = rec.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","remote":`...)
	b = appendJSONString(b, r.remote)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, r.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, r.uri)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, r.proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, rec.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(end.Sub(rec.start).Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, rec.user)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, rec.route)
	b = append(b, "}\n"...)
	return b
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// appendLogText escapes as nginx does in its text formats: '"', '\' and
// bytes outside printable ASCII become \xHH, so a request line cannot
// forge a field or a line.
func appendLogText(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

func appendLogTextOr(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return appendLogText(b, s)
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hex[r&15])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// Hijack passes through for upgrades that reach the writer directly.
func (w *accessWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.rec.status == 0 {
		// ReverseProxy writes the backend's 101 on the hijacked connection.
		w.rec.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Flush passes through; ReverseProxy flushes streamed bodies.
func (w *accessWriter) Flush() {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

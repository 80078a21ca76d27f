package webapp

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// The WebSocket endpoint is a minimal RFC 6455 echo server: whole text and
// binary messages up to MaxMessage bytes, ping, pong and close. It is
// enough to show that an upgrade passes through certgate, with no
// dependency outside the standard library.

// MaxMessage bounds one WebSocket message the echo endpoint accepts.
const MaxMessage = 64 << 10

// wsIdle is how long a WebSocket may stay silent before it is closed.
const wsIdle = 10 * time.Minute

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close codes (RFC 6455 section 7.4.1).
const (
	CloseNormal      = 1000
	CloseProtocol    = 1002
	CloseUnsupported = 1003
	CloseBadData     = 1007
	CloseTooBig      = 1009
)

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func (a *app) websocket(w http.ResponseWriter, r *http.Request) {
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this endpoint speaks WebSocket only", http.StatusUpgradeRequired)
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version", http.StatusUpgradeRequired)
		return
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "bad Sec-WebSocket-Key", http.StatusBadRequest)
		return
	}
	// The browser sends the client certificate to any page's WebSocket, so
	// a cross-site page could otherwise talk as the user (cross-site
	// WebSocket hijacking). Non-browser clients send no Origin.
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
		a.log.Warn("websocket from another origin", "origin", o, "identity", userOf(r))
		http.Error(w, "cross-origin WebSocket refused", http.StatusForbidden)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "WebSocket needs an HTTP/1.1 connection", http.StatusHTTPVersionNotSupported)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n")
	if err := brw.Flush(); err != nil {
		return
	}
	a.log.Info("websocket open", "identity", userOf(r))
	code := echo(conn, brw.Reader, brw.Writer)
	a.log.Info("websocket closed", "identity", userOf(r), "code", code)
}

// sameOrigin compares the Origin's host with the host the client used,
// which certgate passes in X-Forwarded-Host.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	return strings.EqualFold(u.Host, host)
}

func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

var (
	errProtocol = errors.New("websocket: protocol error")
	errTooBig   = errors.New("websocket: message too big")
)

// Frame is one WebSocket frame.
type Frame struct {
	Fin     bool
	Op      byte
	Payload []byte
}

// ReadFrame reads one frame. masked says whether the peer must mask
// (a server reads masked frames from clients, a client unmasked ones).
func ReadFrame(r io.Reader, masked bool) (Frame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, Op: h[0] & 0x0f}
	if h[0]&0x70 != 0 || (h[1]&0x80 != 0) != masked {
		// RSV bits need a negotiated extension; masking is mandatory from
		// clients and forbidden from servers.
		return Frame{}, errProtocol
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Frame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if f.Op >= OpClose && (!f.Fin || n > 125) {
		return Frame{}, errProtocol
	}
	if n > MaxMessage {
		return Frame{}, errTooBig
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return Frame{}, err
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		return Frame{}, err
	}
	if masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// WriteFrame writes one final frame, masked with maskKey when it is not
// nil (clients must mask, servers must not).
func WriteFrame(w io.Writer, op byte, payload []byte, maskKey []byte) error {
	b := make([]byte, 0, 14+len(payload))
	b = append(b, 0x80|op)
	var m byte
	if maskKey != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if maskKey != nil {
		b = append(b, maskKey[:4]...)
		for i, c := range payload {
			b = append(b, c^maskKey[i%4])
		}
	} else {
		b = append(b, payload...)
	}
	_, err := w.Write(b)
	return err
}

// CloseFrame is the payload of a close frame with code and reason.
func CloseFrame(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// echo runs the echo loop until the peer closes or breaks the protocol and
// returns the close code it sent or answered.
func echo(conn net.Conn, r *bufio.Reader, bw *bufio.Writer) int {
	send := func(op byte, p []byte) error {
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := WriteFrame(bw, op, p, nil); err != nil {
			return err
		}
		return bw.Flush()
	}
	closeWith := func(code int, reason string) int {
		_ = send(OpClose, CloseFrame(code, reason))
		return code
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(wsIdle))
		f, err := ReadFrame(r, true)
		switch {
		case errors.Is(err, errTooBig):
			return closeWith(CloseTooBig, "message too big")
		case errors.Is(err, errProtocol):
			return closeWith(CloseProtocol, "protocol error")
		case err != nil:
			return 0 // the connection is gone; nobody reads a close frame
		}
		switch f.Op {
		case OpText, OpBinary:
			if !f.Fin {
				return closeWith(CloseUnsupported, "fragmented messages are not supported")
			}
			if f.Op == OpText && !utf8.Valid(f.Payload) {
				return closeWith(CloseBadData, "text is not UTF-8")
			}
			if send(f.Op, f.Payload) != nil {
				return 0
			}
		case OpPing:
			if send(OpPong, f.Payload) != nil {
				return 0
			}
		case OpPong:
		case OpClose:
			code := CloseNormal
			if len(f.Payload) >= 2 {
				code = int(binary.BigEndian.Uint16(f.Payload))
			}
			_ = send(OpClose, CloseFrame(code, ""))
			return code
		default:
			return closeWith(CloseProtocol, "unexpected opcode")
		}
	}
}

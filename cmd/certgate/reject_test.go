package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

// ticketCache records the sessions a server's tickets produced.
type ticketCache struct {
	mu      sync.Mutex
	tickets [][]byte
}

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	t, _, _ := cs.ResumptionState()
	c.mu.Lock()
	c.tickets = append(c.tickets, t)
	c.mu.Unlock()
}

func (c *ticketCache) usable() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.tickets {
		if len(t) > 0 {
			n++
		}
	}
	return n
}

// getOnce sends one request on a fresh TLS connection and returns the
// status (0 when the handshake or request failed); reading the response
// also reads the TLS 1.3 tickets sent after the handshake.
func getOnce(t *testing.T, e *env, leaf *pkigen.Leaf, version uint16, cache tls.ClientSessionCache) int {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.root.Cert)
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: version, MaxVersion: version,
		ClientSessionCache: cache, NextProtos: []string{"http/1.1"}}
	if leaf != nil {
		// Sent whatever CAs the server names, as curl does.
		cert := &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), cfg)
	if err != nil {
		return 0
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRejectWithHTTPIssuesNoTicket: with rejectWith http the handshake
// completes for a refused client, but it gets no session ticket to resume
// with (TLS 1.3: none sent; TLS 1.2: the promised ticket is empty), while
// an admitted client gets one.
func TestRejectWithHTTPIssuesNoTicket(t *testing.T) {
	e := newEnv(t, envConfig{rejectWith: "http"})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	eve := pkigen.Root(t, "Foreign Root").Leaf(t, "eve", pkigen.UPN("alice@contoso.com"))
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := tls.VersionName(v)
		refused := &ticketCache{}
		if code := getOnce(t, e, eve, v, refused); code != 495 {
			t.Fatalf("%s: refused client got %d, want 495", name, code)
		}
		if code := getOnce(t, e, nil, v, refused); code != 496 {
			t.Fatalf("%s: client without certificate got %d, want 496", name, code)
		}
		if n := refused.usable(); n != 0 {
			t.Errorf("%s: %d session tickets issued to refused clients", name, n)
		}
		admitted := &ticketCache{}
		if code := getOnce(t, e, alice, v, admitted); code != 200 {
			t.Fatalf("%s: alice got %d", name, code)
		}
		if admitted.usable() == 0 {
			t.Errorf("%s: no session ticket for an admitted client (the test would prove nothing)", name)
		}
	}
	if n := len(e.backend.requests()); n != 2 {
		t.Errorf("backend saw %d requests, want alice's 2", n)
	}
}

// TestRejectWithHandshakeMode: rejectWith handshake still refuses in the
// handshake (no HTTP answer at all), and a config that says nothing gets
// the http mode.
func TestRejectWithHandshakeMode(t *testing.T) {
	e := newEnv(t, envConfig{rejectWith: "handshake"})
	eve := pkigen.Root(t, "Foreign Root").Leaf(t, "eve", pkigen.UPN("alice@contoso.com"))
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if code := getOnce(t, e, eve, v, nil); code != 0 {
			t.Errorf("%s: handshake mode answered HTTP %d", tls.VersionName(v), code)
		}
	}
	data, err := os.ReadFile(filepath.Join(e.dir, "certgate.yaml"))
	must(t, err)
	cfgPath := filepath.Join(e.dir, "default.yaml")
	must(t, os.WriteFile(cfgPath, []byte(strings.Replace(string(data), "  rejectWith: handshake\n", "", 1)), 0o644))
	cfg, err := config.Load(cfgPath)
	if err != nil || cfg.ClientAuth.RejectWith != config.RejectHTTP {
		t.Fatalf("default rejectWith: %v %v", cfg.ClientAuth.RejectWith, err)
	}
}

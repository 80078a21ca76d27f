package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
)

// liveConn is one kept-alive client connection.
type liveConn struct {
	conn *tls.Conn
	rd   *bufio.Reader
}

func openLive(t *testing.T, e *env, leaf *pkigen.Leaf, cache tls.ClientSessionCache) *liveConn {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(e.root.Cert)
	cert := &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
	c, err := tls.Dial("tcp", e.inst.proxyAddr(), &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"http/1.1"},
		ClientSessionCache: cache, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l := &liveConn{conn: c, rd: bufio.NewReader(c)}
	if code := l.get(); code != 200 {
		t.Fatalf("%s: first request got %d", leaf.Cert.Subject.CommonName, code)
	}
	return l
}

// get sends a request on the open connection: its status, or 0 when the
// connection was closed.
func (l *liveConn) get() int {
	l.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := l.conn.Write([]byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(l.rd, nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeLDAPChangesReachLiveConnections: with an LDAP directory, a user
// disabled, removed or with a raised sessionsValidFrom in the directory
// loses their open connections (and, for sessionsValidFrom, their TLS
// sessions) within the cache TTL, as a users.yaml edit does; other users
// keep theirs. Against the real slapd; the clock is moved, not waited.
func TestServeLDAPChangesReachLiveConnections(t *testing.T) {
	s := testldap.Start(t)
	alice := s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	bob := s.AddUser(testldap.User{CN: "bob", UPN: "bob@contoso.com"})
	carol := s.AddUser(testldap.User{CN: "carol", UPN: "carol@contoso.com"})
	s.AddUser(testldap.User{CN: "dave", UPN: "dave@contoso.com"})
	clock := newLDAPClock()
	e := newEnv(t, envConfig{rejectWith: "http", now: clock.Now,
		identity: ldapIdentity(t, s, t.TempDir(), "      attributes: {sessionsValidFrom: certgateSessionsValidFrom}\n")})
	leaf := func(name string) *pkigen.Leaf {
		return e.inter.Leaf(t, name, pkigen.UPN(name+"@contoso.com"))
	}
	carolTickets := tls.NewLRUClientSessionCache(4)
	conns := map[string]*liveConn{
		"alice": openLive(t, e, leaf("alice"), nil),
		"bob":   openLive(t, e, leaf("bob"), nil),
		"carol": openLive(t, e, leaf("carol"), carolTickets),
		"dave":  openLive(t, e, leaf("dave"), nil),
	}

	s.Replace(alice, "userAccountControl", "514")
	s.Replace(bob, "userPrincipalName", "robert@contoso.com")
	s.Replace(carol, "certgateSessionsValidFrom", clock.Now().Add(time.Second).UTC().Format("20060102150405Z"))

	// Within half the TTL the cached answers stand and nothing is asked.
	clock.Advance(10 * time.Second)
	searches := s.Searches("alice@contoso.com")
	e.inst.sweepDirectory(t.Context())
	if n := s.Searches("alice@contoso.com"); n != searches {
		t.Errorf("the sweep asked the directory about a fresh answer (%d searches, was %d)", n, searches)
	}
	for name, c := range conns {
		if code := c.get(); code != 200 {
			t.Fatalf("%s before the TTL: %d", name, code)
		}
	}

	// Half the TTL (1m) later the sweep asks again and acts.
	clock.Advance(25 * time.Second)
	e.inst.sweepDirectory(t.Context())
	for name, want := range map[string]int{"alice": 0, "bob": 0, "carol": 0, "dave": 200} {
		if code := conns[name].get(); code != want {
			t.Errorf("%s after the directory change: %d, want %d", name, code, want)
		}
	}
	// The disabled and removed users are refused when they come back;
	// carol's TLS session from before her sessionsValidFrom is not resumed.
	for name, want := range map[string]string{"alice": "user_disabled", "bob": "identity_unmapped"} {
		res := e.curl(e.writeLeaf(name, leaf(name)))
		if !strings.Contains(res.body, want) {
			t.Errorf("%s reconnecting: %d %q, want %s", name, res.code, res.body, want)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.root.Cert)
	cl := leaf("carol")
	cert := &tls.Certificate{Certificate: [][]byte{cl.Cert.Raw}, PrivateKey: cl.Key}
	c, err := tls.Dial("tcp", e.inst.proxyAddr(), &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: carolTickets,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }})
	if err == nil {
		if c.ConnectionState().DidResume {
			t.Error("carol resumed a TLS session from before her sessionsValidFrom")
		}
		c.Close()
	}
	if !strings.Contains(e.logs.String(), `"msg":"sessions revoked","user":"carol@contoso.com"`) {
		t.Errorf("no sessions revoked line for carol:\n%s", e.logs)
	}
}

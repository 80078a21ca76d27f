package main

import (
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

func TestServeAcceptsAndInjectsIdentity(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com"))
	cert, key := e.writeLeaf("alice", alice)
	res := e.curl(cert, key)
	if res.code != 200 || !strings.Contains(res.body, "hello alice@contoso.com") {
		t.Fatalf("want 200 hello alice, got %d %q (stderr %s)", res.code, res.body, res.stderr)
	}
	reqs := e.backend.requests()
	if len(reqs) != 1 {
		t.Fatalf("backend got %d requests, want 1", len(reqs))
	}
	h := reqs[0].Header
	if got := h.Values("X-Remote-User"); len(got) != 1 || got[0] != "alice@contoso.com" {
		t.Errorf("X-Remote-User = %q", got)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-For") != "127.0.0.1" || !strings.HasPrefix(h.Get("X-Forwarded-Host"), "localhost:") {
		t.Errorf("forwarded headers: proto %q for %q host %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Host"))
	}
}

func TestServeBindsByEmailWhenNoUPN(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{})
	// Only an email SAN, in another case and with the smtp: secondary address.
	l := e.inter.Leaf(t, "A Smith", pkigen.Email("A.Smith@Contoso.com"))
	cert, key := e.writeLeaf("asmith", l)
	res := e.curl(cert, key)
	if res.code != 200 || !strings.Contains(res.body, "hello alice@contoso.com") {
		t.Fatalf("got %d %q %s", res.code, res.body, res.stderr)
	}
}

func TestServeRefusesInHandshake(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{})
	foreign := pkigen.Root(t, "Foreign Root")
	now := time.Now()
	cases := []struct {
		name   string
		leaf   *pkigen.Leaf
		reason string
	}{
		{"untrusted", foreign.Leaf(t, "eve", pkigen.UPN("alice@contoso.com")), "untrusted"},
		{"expired", e.inter.Leaf(t, "old", pkigen.UPN("alice@contoso.com"), pkigen.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour))), "expired"},
		{"not_yet_valid", e.inter.Leaf(t, "new", pkigen.UPN("alice@contoso.com"), pkigen.Validity(now.Add(time.Hour), now.Add(48*time.Hour))), "not_yet_valid"},
		{"bad_usage", e.inter.Leaf(t, "srv", pkigen.UPN("alice@contoso.com"), pkigen.EKU(x509.ExtKeyUsageServerAuth)), "bad_usage"},
		{"unmapped", e.inter.Leaf(t, "mallory", pkigen.UPN("mallory@fabrikam.com")), "identity_unmapped"},
		{"disabled", e.inter.Leaf(t, "dave", pkigen.UPN("dave@contoso.com")), "user_disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := e.writeLeaf(tc.name, tc.leaf)
			res := e.curl(cert, key)
			if res.code != 0 || res.exit == 0 {
				t.Fatalf("want a TLS failure, got HTTP %d exit %d", res.code, res.exit)
			}
			if !strings.Contains(e.logs.String(), `"reason":"`+tc.reason+`"`) {
				t.Errorf("no decision line with reason %s in logs", tc.reason)
			}
		})
	}
	t.Run("no_certificate", func(t *testing.T) {
		res := e.curl("", "")
		if res.code != 0 || res.exit == 0 {
			t.Fatalf("want a TLS failure, got HTTP %d", res.code)
		}
	})
	if n := len(e.backend.requests()); n != 0 {
		t.Fatalf("a refused client reached the backend %d times", n)
	}
}

// TestServeRejectWithHTTPShowsReason: refused clients get nginx's
// statuses (496 no certificate, 495 a failing one, 403 no admissible user)
// with the reason code and a one-line hint, and are never forwarded.
func TestServeRejectWithHTTPShowsReason(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{rejectWith: "http"})
	foreign := pkigen.Root(t, "Foreign Root")
	cert, key := e.writeLeaf("eve", foreign.Leaf(t, "eve", pkigen.UPN("alice@contoso.com")))
	mcert, mkey := e.writeLeaf("mallory", e.inter.Leaf(t, "mallory", pkigen.UPN("mallory@fabrikam.com")))
	for _, tc := range []struct {
		cert, key string
		code      int
		want      string
	}{
		{cert, key, 495, "SSL Certificate Error: untrusted: the certificate was not issued by a certificate authority this site trusts\n"},
		{"", "", 496, "SSL Certificate Required: no_certificate: this site requires a client certificate"},
		{mcert, mkey, 403, "Forbidden: identity_unmapped: no user of this site is bound to this certificate\n"},
	} {
		res := e.curl(tc.cert, tc.key)
		if res.code != tc.code || !strings.Contains(res.body, tc.want) || strings.Count(res.body, "\n") != 1 {
			t.Errorf("want %d %q, got %d %q %s", tc.code, tc.want, res.code, res.body, res.stderr)
		}
	}
	if n := len(e.backend.requests()); n != 0 {
		t.Fatalf("a refused client reached the backend %d times", n)
	}
}

func TestServeStripsSpoofedHeaders(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{extraYAML: ""})
	cert, key := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	spoofs := []string{
		"X-Remote-User: admin@contoso.com",
		"x-remote-user: admin@contoso.com",
		"X_Remote_User: admin@contoso.com",
		"x_REMOTE-user: admin@contoso.com",
		"Client-Cert: :AAAA:",
		"Client_Cert_Chain: :AAAA:",
		"X-Forwarded-Client-Cert: By=spiffe://evil",
		"X-Forwarded-For: 10.6.6.6",
		"X_Forwarded_Host: evil.example",
		"Forwarded: for=10.6.6.6",
	}
	args := []string{}
	for _, h := range spoofs {
		args = append(args, "-H", h)
	}
	res := e.curl(cert, key, args...)
	if res.code != 200 {
		t.Fatalf("got %d %s", res.code, res.stderr)
	}
	h := e.backend.requests()[0].Header
	for k, v := range h {
		for _, x := range v {
			if strings.Contains(x, "admin@") || strings.Contains(x, "AAAA") || strings.Contains(x, "evil") || strings.Contains(x, "10.6.6.6") {
				t.Errorf("spoofed header reached the backend: %s: %s", k, x)
			}
		}
	}
	if got := h.Values("X-Remote-User"); len(got) != 1 || got[0] != "alice@contoso.com" {
		t.Errorf("X-Remote-User = %q", got)
	}
	// Underscore spellings are separate keys to Go but one name to CGI.
	for k := range h {
		if strings.Contains(k, "_") {
			t.Errorf("underscore header %q reached the backend", k)
		}
	}
}

func TestServeMisdirectedHost(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{})
	cert, key := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	res := e.curl(cert, key, "-H", "Host: mail.other.example")
	if res.code != http.StatusMisdirectedRequest {
		t.Fatalf("want 421, got %d %q", res.code, res.body)
	}
	if n := len(e.backend.requests()); n != 0 {
		t.Fatalf("a misdirected request reached the backend")
	}
}

// TestServeStripsConfiguredHeaders: identity.stripHeaders are removed like
// the identity header, in every case and underscore spelling, and nothing
// else is.
func TestServeStripsConfiguredHeaders(t *testing.T) {
	requireCurl(t)
	e := newEnv(t, envConfig{identity: `  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
  directory:
    file: users.yaml
  stripHeaders: [x-webobjects-server-url, X-Auth-Type]
`})
	cert, key := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	res := e.curl(cert, key,
		"-H", "x-webobjects-server-url: https://evil.example",
		"-H", "X_WebObjects_Server_URL: https://evil.example",
		"-H", "x-auth-type: evil",
		"-H", "X_AUTH_TYPE: evil",
		"-H", "X-Webobjects-Server-Name: kept.example")
	if res.code != 200 {
		t.Fatalf("got %d %s", res.code, res.stderr)
	}
	h := e.backend.requests()[0].Header
	for k, v := range h {
		for _, x := range v {
			if strings.Contains(x, "evil") {
				t.Errorf("configured header reached the backend: %s: %s", k, x)
			}
		}
	}
	if got := h.Get("X-Webobjects-Server-Name"); got != "kept.example" {
		t.Errorf("an unlisted header was removed too: %q", got)
	}
}

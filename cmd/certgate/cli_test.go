package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// runCLI runs certgate in process as main would and returns its exit code.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return code, out.String(), errb.String()
}

func TestCheckAndValidate(t *testing.T) {
	e := newEnv(t, envConfig{})
	cfg := filepath.Join(e.dir, "certgate.yaml")
	now := time.Now()
	alice, _ := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	expired, _ := e.writeLeaf("old", e.inter.Leaf(t, "old", pkigen.UPN("alice@contoso.com"), pkigen.Validity(now.Add(-48*time.Hour), now.Add(-30*time.Minute))))
	unmapped, _ := e.writeLeaf("mallory", e.inter.Leaf(t, "mallory", pkigen.UPN("mallory@fabrikam.com")))
	foreign, _ := e.writeLeaf("eve", pkigen.Root(t, "Foreign").Leaf(t, "eve", pkigen.UPN("alice@contoso.com")))

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"accepted", []string{"check", "--config", cfg, alice}, 0, "accepted: alice@contoso.com"},
		{"expired", []string{"check", "--config", cfg, expired}, 1, "rejected: expired"},
		{"expired ok in the past", []string{"check", "--config", cfg, "--at", now.Add(-45 * time.Minute).UTC().Format(time.RFC3339), expired}, 0, "accepted"},
		{"unmapped", []string{"check", "--config", cfg, unmapped}, 1, "rejected: identity_unmapped"},
		{"untrusted", []string{"check", "--config", cfg, foreign}, 1, "rejected: untrusted"},
		{"bad --at", []string{"check", "--config", cfg, "--at", "yesterday", alice}, 2, "RFC 3339"},
		{"no cert", []string{"check", "--config", cfg}, 2, "needs a certificate"},
		{"missing cert file", []string{"check", "--config", cfg, filepath.Join(e.dir, "nope.pem")}, 2, "nope.pem"},
		{"validate ok", []string{"validate", "--config", cfg}, 0, "OK (2 trusted CAs, 1 routes)"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errs, tc.want) {
				t.Fatalf("exit %d (want %d), output %q %q, want %q", code, tc.code, out, errs, tc.want)
			}
			if strings.Contains(errs, "goroutine ") || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
				t.Errorf("error output is not one line: %q", errs)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		code, out, _ := runCLI(t, "check", "--config", cfg, "--json", alice)
		var res checkResult
		if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
			t.Fatalf("exit %d, %v: %s", code, err, out)
		}
		if res.Decision != "accepted" || res.Reason != "ok" || res.User != "alice@contoso.com" || res.Binding != "PrincipalName->userPrincipalName" {
			t.Fatalf("unexpected %+v", res)
		}
	})

	t.Run("validate broken", func(t *testing.T) {
		bad := filepath.Join(e.dir, "bad.yaml")
		data, _ := os.ReadFile(cfg)
		os.WriteFile(bad, bytes.Replace(data, []byte("listen: \"127.0.0.1:0\""), []byte("listn: \"127.0.0.1:0\""), 1), 0o644)
		code, _, errs := runCLI(t, "validate", "--config", bad)
		if code != 2 || !strings.Contains(errs, "bad.yaml:2") || !strings.Contains(errs, "listn") {
			t.Fatalf("exit %d, %q", code, errs)
		}
	})
}

// TestRevokeSessionsUsersFlag edits a users.yaml directly, as in a GitOps
// checkout where the config's other paths do not exist.
func TestRevokeSessionsUsersFlag(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yaml")
	must(t, os.WriteFile(users, []byte("# kept\nusers:\n  - userPrincipalName: alice@contoso.com\n"), 0o644))
	code, out, errs := runCLI(t, "user", "revoke-sessions", "--users", users, "alice@contoso.com", "--at", "2026-11-25T10:00:00Z")
	if code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("exit %d %q %q", code, out, errs)
	}
	b, _ := os.ReadFile(users)
	if !strings.Contains(string(b), "# kept") || !strings.Contains(string(b), "stsRefreshTokensValidFrom") || !strings.Contains(string(b), "2026-11-25T10:00:00") {
		t.Fatalf("users.yaml now:\n%s", b)
	}
	if code, _, errs := runCLI(t, "user", "revoke-sessions", "--users", users, "nobody@contoso.com"); code != 2 || !strings.Contains(errs, "nobody@contoso.com") {
		t.Fatalf("unknown user: exit %d %q", code, errs)
	}
}

// TestCheckNeedsOnlyTheDecision runs check with the trust and identity
// parts of a config alone (as copied to a workstation): no serverTLS, no
// listeners, and routes whose backend CA file is on another machine. Before,
// check refused such a config for its missing serverTLS.
func TestCheckNeedsOnlyTheDecision(t *testing.T) {
	e := newEnv(t, envConfig{})
	alice, _ := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	cfg := filepath.Join(e.dir, "workstation.yaml")
	must(t, os.WriteFile(cfg, []byte(`trustedCertificateAuthorities:
  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
identity:
  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
  directory: {file: users.yaml}
routes:
  - name: web
    backend: https://owa.internal:8443
    backendCA: /etc/certgate/ca/owa-backend.pem
`), 0o644))
	if code, out, errs := runCLI(t, "check", "--config", cfg, alice); code != 0 || !strings.Contains(out, "accepted: alice@contoso.com") {
		t.Fatalf("check: exit %d %q %q", code, out, errs)
	}
	// What the decision needs is still checked.
	data, _ := os.ReadFile(cfg)
	must(t, os.WriteFile(cfg, bytes.Replace(data, []byte("users.yaml"), []byte("nousers.yaml"), 1), 0o644))
	if code, _, errs := runCLI(t, "check", "--config", cfg, alice); code != 2 || !strings.Contains(errs, "identity.directory.file") {
		t.Fatalf("missing users file: exit %d %q", code, errs)
	}
	// serve and validate still want the whole config.
	if code, _, errs := runCLI(t, "validate", "--config", cfg); code != 2 || !strings.Contains(errs, "serverTLS") {
		t.Fatalf("validate: exit %d %q", code, errs)
	}
}

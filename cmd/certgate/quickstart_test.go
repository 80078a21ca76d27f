package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickstartWithOpenSSL runs examples/quickstart/make-pki.sh with the
// real openssl and checks that certgate accepts what it made: the UPN
// otherName that openssl writes binds alice, and the file:// CRLs load.
func TestQuickstartWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	src := filepath.Join("..", "..", "examples", "quickstart")
	for _, f := range []string{"certgate.yaml", "users.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
	}
	pkiOut, err := exec.Command("bash", filepath.Join(src, "make-pki.sh"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make-pki.sh: %v\n%s", err, pkiOut)
	}
	cfg := filepath.Join(dir, "certgate.yaml")
	if code, out, errs := runCLI(t, "validate", "--config", cfg); code != 0 {
		t.Fatalf("validate: exit %d %s %s", code, out, errs)
	}
	code, out, errs := runCLI(t, "check", "--config", cfg, filepath.Join(dir, "clients", "alice.pem"))
	if code != 0 || !strings.Contains(out, "accepted: alice@contoso.com") || !strings.Contains(out, "PrincipalName") {
		t.Fatalf("check: exit %d %q %q", code, out, errs)
	}
	// A certificate the quickstart CA never issued is refused.
	code, out, _ = runCLI(t, "check", "--config", cfg, filepath.Join(dir, "tls", "server.pem"))
	if code != 1 || !strings.Contains(out, "rejected: bad_usage") {
		t.Fatalf("server cert as client cert: exit %d %q", code, out)
	}
}

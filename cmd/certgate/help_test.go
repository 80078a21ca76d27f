package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestEveryCommandAnswersHelp: --help (and -h) on every command and
// subcommand prints its usage to stdout and exits 0. `ca --help` was
// "unknown subcommand", exit 2.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, cmd := range []string{"demo", "serve", "check", "validate", "ca", "ca list", "ca add", "ca remove", "ca set",
		"user", "user revoke-sessions", "health", "tickets", "tickets new", "version", "help"} {
		for _, flag := range []string{"--help", "-h"} {
			args := append(strings.Fields(cmd), flag)
			code, out, errs := runCLI(t, args...)
			if code != 0 || errs != "" || !strings.Contains(out, "Usage:") || !strings.Contains(out, "certgate "+strings.Fields(cmd)[0]) && cmd != "help" {
				t.Errorf("certgate %s %s: exit %d, stdout %q, stderr %q", cmd, flag, code, out, errs)
			}
		}
	}
}

// TestMissingConfigNamesTheWays: a config file that is not there says how
// to name one, for every command that reads it.
func TestMissingConfigNamesTheWays(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("CERTGATE_CONFIG", "")
	must(t, pkigen.WriteCert(filepath.Join(dir, "x.pem"), pkigen.Root(t, "x").Cert))
	for _, args := range [][]string{{"serve"}, {"validate"}, {"check", "x.pem"}, {"ca", "list"}, {"user", "revoke-sessions", "alice"}} {
		code, _, errs := runCLI(t, args...)
		if code != 2 || !strings.Contains(errs, "no certgate.yaml in the current folder") || !strings.Contains(errs, "--config FILE or $CERTGATE_CONFIG") {
			t.Errorf("%v: exit %d %q", args, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "validate", "--config", "nope.yaml"); code != 2 || !strings.Contains(errs, "--config nope.yaml: no such file") {
		t.Errorf("--config nope.yaml: exit %d %q", code, errs)
	}
	t.Setenv("CERTGATE_CONFIG", "/etc/nope.yaml")
	if code, _, errs := runCLI(t, "ca", "remove", "AB"); code != 2 || !strings.Contains(errs, "$CERTGATE_CONFIG=/etc/nope.yaml: no such file") || strings.Contains(errs, "lstat") {
		t.Errorf("$CERTGATE_CONFIG: exit %d %q", code, errs)
	}
}

// TestKeyMismatchNamesFilesAndLine: a server key of another certificate
// is named with both files and the config line, by validate and serve.
func TestKeyMismatchNamesFilesAndLine(t *testing.T) {
	e := newEnv(t, envConfig{})
	other := e.inter.Leaf(t, "other")
	must(t, pkigen.WriteLeaf(filepath.Join(e.dir, "tls", "other.pem"), filepath.Join(e.dir, "tls", "other-key.pem"), other, false))
	data, err := os.ReadFile(filepath.Join(e.dir, "certgate.yaml"))
	must(t, err)
	cfg := filepath.Join(e.dir, "mismatch.yaml")
	must(t, os.WriteFile(cfg, []byte(strings.Replace(string(data), "keyFile: tls/server-key.pem", "keyFile: tls/other-key.pem", 1)), 0o644))
	line := lineOf(t, string(data), "keyFile:")
	want := cfg + ":" + line + ": serverTLS.keyFile: the key in tls/other-key.pem does not belong to the certificate in tls/server.pem"
	if code, _, errs := runCLI(t, "validate", "--config", cfg); code != 2 || !strings.Contains(errs, want) {
		t.Errorf("validate: exit %d %q, want %q", code, errs, want)
	}
	if _, err := startFromConfig(t.Context(), cfg, &syncBuffer{}, instanceOptions{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("serve: %v, want %q", err, want)
	}
}

// TestCARefusalQuotesNoLinesOfAnUnwrittenFile: a refused ca remove
// names keys of the config as it would have been, not lines of a file
// that was never written.
func TestCARefusalQuotesNoLinesOfAnUnwrittenFile(t *testing.T) {
	e := newEnv(t, envConfig{})
	cfg := filepath.Join(e.dir, "certgate.yaml")
	before, _ := os.ReadFile(cfg)
	code, _, errs := runCLI(t, "ca", "remove", "--config", cfg, strings.ToLower(testSKI(e.root)))
	if code != 2 || !strings.Contains(errs, "is unchanged); after it the config would not load") ||
		!strings.Contains(errs, "\ntrustedCertificateAuthorities: needs at least one CA with authorityType: root") || strings.Contains(errs, cfg+":") {
		t.Fatalf("exit %d %q", code, errs)
	}
	if after, _ := os.ReadFile(cfg); string(after) != string(before) {
		t.Fatal("the file changed")
	}
}

func testSKI(ca *pkigen.CA) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	for _, c := range ca.Cert.SubjectKeyId {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

func lineOf(t *testing.T, text, sub string) string {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("%q not in %s", sub, text)
	return ""
}

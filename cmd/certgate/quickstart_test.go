package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestExamplesEndToEnd serves each example's certgate.yaml as its README
// says (PKI from quickstart/make-pki.sh with the real openssl, --config
// typed as a relative path) and sends alice's certificate through every
// route with curl; the quickstart is also checked with examples/smoke.sh.
// Only the ports and backend addresses are changed. The quickstart's
// file://crl/ URLs passed validate and refused every client this way.
func TestExamplesEndToEnd(t *testing.T) {
	requireCurl(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	must(t, err)
	base := t.TempDir()
	backend := newRecorder(t)
	ports := regexp.MustCompile(`listen: "[^"]*:\d+"`)
	backends := regexp.MustCompile(`backend: http://127\.0\.0\.1:\d+`)
	paths := map[string][]string{
		"quickstart": {"/"},
		"web":        {"/"},
		"eas":        {"/", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice@contoso.com&DeviceId=d1&DeviceType=t"},
		"sogo":       {"/", "/SOGo.woa/WebServerResources/x.js", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice@contoso.com&DeviceId=d1&DeviceType=t"},
	}
	for _, name := range []string{"quickstart", "web", "eas", "sogo"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(base, name)
			must(t, os.MkdirAll(dir, 0o755))
			for _, f := range []string{"certgate.yaml", "users.yaml"} {
				b, err := os.ReadFile(filepath.Join(examples, name, f))
				must(t, err)
				if f == "certgate.yaml" {
					b = ports.ReplaceAll(b, []byte(`listen: "127.0.0.1:0"`))
					b = backends.ReplaceAll(b, []byte("backend: "+backend.srv.URL))
				}
				must(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
			}
			if out, err := exec.Command("bash", filepath.Join(examples, "quickstart", "make-pki.sh"), dir).CombinedOutput(); err != nil {
				t.Fatalf("make-pki.sh: %v\n%s", err, out)
			}
			t.Chdir(base)
			rel := filepath.Join(name, "certgate.yaml")
			if code, out, errs := runCLI(t, "validate", "--config", rel); code != 0 {
				t.Fatalf("validate: exit %d %s %s", code, out, errs)
			}
			logs := &syncBuffer{}
			inst, err := startFromConfig(context.Background(), rel, logs, instanceOptions{})
			if err != nil {
				t.Fatalf("serve: %v\n%s", err, logs)
			}
			t.Cleanup(inst.close)
			if err := inst.ready(); err != nil {
				t.Fatalf("not ready: %v\n%s", err, logs)
			}
			port := inst.proxyAddr()[strings.LastIndex(inst.proxyAddr(), ":")+1:]
			cert, key := filepath.Join(dir, "clients", "alice.pem"), filepath.Join(dir, "clients", "alice-key.pem")
			for _, p := range paths[name] {
				out, err := exec.Command("curl", "-sS", "--max-time", "20", "--cacert", filepath.Join(dir, "ca", "root.pem"),
					"--cert", cert, "--key", key, "-w", "\n%{http_code}", "https://localhost:"+port+p).CombinedOutput()
				if err != nil || !strings.HasSuffix(string(out), "\n200") {
					t.Fatalf("curl %s: %v\n%s\nlogs:\n%s", p, err, out, logs)
				}
				// The backend got the request with the example's identity
				// header (SOGo's is x-webobjects-remote-user).
				reqs := backend.requests()
				last := reqs[len(reqs)-1]
				if got := last.Header.Get(inst.built().cfg.Identity.Header); got != "alice@contoso.com" {
					t.Fatalf("curl %s: the backend saw %s: %q", p, inst.built().cfg.Identity.Header, got)
				}
			}
			if name != "quickstart" {
				return
			}
			cmd := exec.Command("bash", filepath.Join(examples, "smoke.sh"))
			cmd.Env = append(os.Environ(), "CERTGATE_URL=https://localhost:"+port+"/", "CERTGATE_ADMIN=http://"+inst.adminAddr(),
				"CERTGATE_CACERT="+filepath.Join(dir, "ca", "root.pem"), "CERTGATE_CERT="+cert, "CERTGATE_KEY="+key,
				"CERTGATE_EXPECT_USER=alice@contoso.com")
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "smoke test passed") {
				t.Fatalf("smoke.sh: %v\n%s", err, out)
			}
		})
	}
}

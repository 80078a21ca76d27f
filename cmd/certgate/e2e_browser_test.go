package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file opens the example web app through certgate in a real browser:
// headless Chromium with the client certificate in its NSS database,
// picked without a prompt by the AutoSelectCertificateForUrls policy.

// chromiumPolicyDir is where Debian's Chromium reads managed policies.
const chromiumPolicyDir = "/etc/chromium/policies/managed"

// requireTools skips (or, under CI, fails) when a tool is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI (Debian packages chromium, libnss3-tools, openssl)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
}

func runTool(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// browserProfile is a HOME whose NSS database trusts the test root and,
// when p12 is set, holds that PKCS#12 client certificate and key.
func browserProfile(t *testing.T, rootPEM, p12, p12Pass string) (env []string) {
	t.Helper()
	home := t.TempDir()
	nssdb := filepath.Join(home, ".pki", "nssdb")
	must(t, os.MkdirAll(nssdb, 0o700))
	env = append(os.Environ(), "HOME="+home)
	db := "sql:" + nssdb
	runTool(t, env, "certutil", "-N", "-d", db, "--empty-password")
	// C,, : a CA trusted to issue server certificates.
	runTool(t, env, "certutil", "-A", "-d", db, "-n", "certgate test root", "-t", "C,,", "-i", rootPEM)
	if p12 != "" {
		runTool(t, env, "pk12util", "-i", p12, "-d", db, "-W", p12Pass)
	}
	return env
}

// autoSelectPolicy makes Chromium present the client certificate to sites
// matching pattern without asking (headless, it cannot ask), and removes
// the policy when the test ends.
func autoSelectPolicy(t *testing.T, pattern string) {
	t.Helper()
	// The folders stay: another test binary may be using them right now.
	if err := os.MkdirAll(chromiumPolicyDir, 0o755); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot write the Chromium policy: %v", err)
		}
		t.Skipf("cannot write the Chromium policy (needs root): %v", err)
	}
	rnd := make([]byte, 6)
	_, _ = rand.Read(rnd)
	path := filepath.Join(chromiumPolicyDir, "certgate-e2e-"+hex.EncodeToString(rnd)+".json")
	rule, _ := json.Marshal(map[string]any{"pattern": pattern, "filter": map[string]any{}})
	policy, _ := json.Marshal(map[string]any{"AutoSelectCertificateForUrls": []string{string(rule)}})
	must(t, os.WriteFile(path, policy, 0o644))
	t.Cleanup(func() { os.Remove(path) })
}

// chromiumDOM loads url in headless Chromium and returns the DOM after the
// page's scripts ran.
func chromiumDOM(t *testing.T, env []string, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium",
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		// Lets the page's WebSocket finish before the DOM is dumped.
		"--virtual-time-budget=10000",
		"--dump-dom", url)
	cmd.Env = env
	// Chromium forks helpers; kill the whole group if it hangs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("chromium did not finish in time\nstderr:\n%s", errb.String())
	}
	if err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, errb.String())
	}
	return out.String()
}

func TestBrowserSeesPageForItsCertificate(t *testing.T) {
	requireTools(t, "chromium", "certutil", "pk12util", "openssl")
	app := startWebBackend(t, nil, nil)
	e := newEnv(t, envConfig{
		rejectWith: "http", // a browser user without a certificate sees why
		identity:   fmt.Sprintf(identityForward, "rfc9440"),
		routes:     webRoute("web", "/", app.srv.URL, ""),
	})
	alice := aliceLeaf(t, e)
	cert, key := e.writeLeaf("alice", alice)
	p12 := filepath.Join(e.dir, "clients", "alice.p12")
	const pass = "certgate-e2e"
	runTool(t, os.Environ(), "openssl", "pkcs12", "-export", "-in", cert, "-inkey", key, "-name", "Alice",
		"-out", p12, "-passout", "pass:"+pass)
	rootPEM := filepath.Join(e.dir, "ca", "root.pem")
	// Any port of localhost: test binaries running at the same time write
	// the same rule, so whichever file Chromium reads, it matches.
	autoSelectPolicy(t, "https://localhost")

	t.Run("with certificate", func(t *testing.T) {
		dom := chromiumDOM(t, browserProfile(t, rootPEM, p12, pass), e.url("/"))
		for _, want := range []string{
			`<h1 id="hello">Hello, alice@contoso.com</h1>`,
			`<td id="cert-subject">` + alice.Cert.Subject.String() + `</td>`, // from Client-Cert
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("the page lacks %s:\n%s", want, dom)
			}
		}
		// Virtual time does not wait for WebSocket frames, so the echo may
		// or may not be in the DOM yet when it is dumped (e2e_web_test.go
		// proves the WebSocket path); an error is always wrong.
		switch {
		case strings.Contains(dom, `<p id="ws">WebSocket echo: hello over WebSocket</p>`):
			t.Log("the browser's WebSocket echo came back through certgate")
		case strings.Contains(dom, `<p id="ws">WebSocket: connecting</p>`):
			t.Log("the DOM was dumped before the WebSocket echo came back")
		default:
			t.Errorf("the browser's WebSocket failed:\n%s", dom)
		}
	})
	t.Run("without certificate", func(t *testing.T) {
		before := len(app.requests())
		dom := chromiumDOM(t, browserProfile(t, rootPEM, "", ""), e.url("/"))
		if strings.Contains(dom, "Hello,") || !strings.Contains(dom, "no_certificate: this site requires a client certificate") {
			t.Errorf("without a certificate the browser got:\n%s", dom)
		}
		if n := len(app.requests()) - before; n != 0 {
			t.Errorf("the app served %d requests to a browser without a certificate", n)
		}
	})
}

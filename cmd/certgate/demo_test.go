package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemoCurlLinesDoWhatTheySay starts `certgate demo` and runs every curl
// line it prints, checking each against the comment printed above it.
func TestDemoCurlLinesDoWhatTheySay(t *testing.T) {
	requireCurl(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--dir", dir, "--listen", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	}()

	type step struct{ comment, cmd string }
	var steps []step
	sc := bufio.NewScanner(pr)
	comment := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "# ") {
			comment = line
		}
		if strings.HasPrefix(line, "curl ") {
			steps = append(steps, step{comment, line})
			if len(steps) == 5 {
				break
			}
		}
	}
	go io.Copy(io.Discard, pr)
	if len(steps) != 5 {
		t.Fatalf("demo printed %d curl lines, want 5", len(steps))
	}
	for _, s := range steps {
		out, _ := exec.Command("sh", "-c", s.cmd+" -sS --max-time 20").CombinedOutput()
		got := string(out)
		switch {
		case strings.Contains(s.comment, "accepted"):
			if !strings.Contains(got, "hello alice@contoso.com") {
				t.Errorf("%s\n%s\ngot %q", s.comment, s.cmd, got)
			}
			// The backend verified certgate's assertion (the spoofed one is
			// stripped) and shows its claims.
			if !strings.Contains(got, "the assertion verified against certgate's JWKS") || !strings.Contains(got, `"sub": "alice@contoso.com"`) ||
				!strings.Contains(got, `"x5t#S256"`) || strings.Contains(got, "REFUSED") {
				t.Errorf("%s\n%s\nthe backend did not verify the assertion: %q", s.comment, s.cmd, got)
			}
			if strings.Contains(s.comment, "spoofed") && strings.Contains(got, "admin@contoso.com") {
				t.Errorf("spoofed header reached the demo backend: %q", got)
			}
		case strings.Contains(s.comment, "495 revoked"):
			if !strings.Contains(got, "SSL Certificate Error: revoked: ") {
				t.Errorf("%s\n%s\ngot %q", s.comment, s.cmd, got)
			}
		case strings.Contains(s.comment, "496 no_certificate"):
			if !strings.Contains(got, "SSL Certificate Required: no_certificate: ") {
				t.Errorf("%s\n%s\ngot %q", s.comment, s.cmd, got)
			}
		case strings.Contains(s.comment, "403 identity_unmapped"):
			if !strings.Contains(got, "Forbidden: identity_unmapped: ") {
				t.Errorf("%s\n%s\ngot %q", s.comment, s.cmd, got)
			}
		default:
			t.Errorf("no expectation for %q", s.comment)
		}
	}
}

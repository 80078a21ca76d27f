package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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

// TestSecondDemoLeavesTheRunningOneAlone: a second `certgate demo` on the
// folder (or the port) of a running one fails before it writes anything
// there; the running demo keeps serving with its config and CRL cache.
func TestSecondDemoLeavesTheRunningOneAlone(t *testing.T) {
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
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	}()
	port := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "proxy    https://localhost:"); ok {
			port, _, _ = strings.Cut(p, " ")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if port == "" {
		t.Fatal("the first demo did not start")
	}
	snapshot := func() map[string]string {
		m := map[string]string{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				fi, _ := d.Info()
				m[p] = fmt.Sprintf("%x %v", sha256.Sum256(b), fi.ModTime().UnixNano())
			}
			return nil
		})
		return m
	}
	before := snapshot()
	if _, ok := before[filepath.Join(dir, "certgate.yaml")]; !ok {
		t.Fatal("the first demo wrote no config")
	}

	// Bounded: a second demo that wrongly started would run until then.
	second, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	var stderr bytes.Buffer
	err := run(second, []string{"demo", "--dir", dir, "--listen", "127.0.0.1:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "another certgate demo") {
		t.Fatalf("a second demo on the same folder: %v, want it refused", err)
	}
	other := t.TempDir()
	err = run(second, []string{"demo", "--dir", other, "--listen", "127.0.0.1:" + port}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("a second demo on the same port: %v, want it refused", err)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Errorf("the demo refused for its port still wrote %d entries into its folder", len(entries))
	}
	after := snapshot()
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed under the running demo", p)
		}
	}
}

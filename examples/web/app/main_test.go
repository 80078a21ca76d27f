package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "web.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, []string{"-unix", sock, "-identity-header", "X-User"}, &logs, func(a net.Addr) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		if a.String() != sock {
			t.Errorf("listening on %s", a)
		}
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://app/", nil)
	req.Header.Set("X-User", "alice@contoso.com")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello, alice@contoso.com") {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(logs.String(), "identity=alice@contoso.com") {
		t.Errorf("identity not logged:\n%s", logs.String())
	}
}

func TestRunBadFlags(t *testing.T) {
	for args, msg := range map[string]string{
		"-nope":                "flag provided but not defined",
		"extra":                `unexpected arguments ["extra"]`,
		"-listen 127.0.0.1:-1": "invalid port",
	} {
		err := run(context.Background(), strings.Fields(args), io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", args, err, msg)
		}
	}
}

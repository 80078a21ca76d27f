package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certgate/certgate/examples/eas/easbackend"
	"github.com/certgate/certgate/examples/eas/easclient"
)

func TestRunUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "eas.sock")
	ctx, cancel := context.WithCancel(context.Background())
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
	c := &easclient.Client{HTTP: hc, URL: "http://backend/Microsoft-Server-ActiveSync", DeviceID: "d",
		Header: http.Header{"X-User": {"alice@contoso.com"}}}
	resp, err := c.Options(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(easbackend.SeenHeader) != "alice@contoso.com" {
		t.Errorf("status %d, seen %q", resp.StatusCode, resp.Header.Get(easbackend.SeenHeader))
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
		"-ping-hold 0":            "-ping-hold must be positive",
		"-nope":                   "flag provided but not defined",
		"extra":                   `unexpected arguments ["extra"]`,
		"-listen 127.0.0.1:99999": "invalid port",
	} {
		var out bytes.Buffer
		err := run(context.Background(), strings.Fields(args), &out, nil)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", args, err, msg)
		}
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// defaultHealthURL is /healthz on the default admin listener.
const defaultHealthURL = "http://127.0.0.1:9090/healthz"

// runHealth asks the admin listener whether certgate is alive: exit 0 on
// 200, 1 otherwise. It exists for container health checks, because a
// distroless image has no curl or wget.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	target := fs.String("url", defaultHealthURL, "URL to ask (use /readyz to test readiness)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr("health takes no arguments, got %q", pos[0])
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErr("--url must be an http:// or https:// URL, got %q", *target)
	}
	if *timeout <= 0 {
		return usageErr("--timeout must be positive, got %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usageErr("--url: %v", err)
	}
	// No proxy from the environment: the admin listener is local, and a
	// proxy setting meant for the backends must not answer for it.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("health: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		return &exitError{code: 1, err: fmt.Errorf("health: %s answered %s: %s", u.Redacted(), resp.Status, firstLine(body))}
	}
	fmt.Fprintf(stdout, "%s: %s\n", u.Redacted(), firstLine(body))
	return nil
}

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return string(b[:i])
		}
	}
	return string(b)
}

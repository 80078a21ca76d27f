package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/proxy"
)

// errSilent ends a command with its exit code and nothing more to say (the
// command already printed its verdict).
var errSilent = errors.New("")

// checkResult is `certgate check --json`.
type checkResult struct {
	Decision string    `json:"decision"` // accepted | rejected
	Reason   string    `json:"reason"`
	Error    string    `json:"error,omitempty"`
	User     string    `json:"user,omitempty"`
	Binding  string    `json:"binding,omitempty"`
	Value    string    `json:"value,omitempty"`
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	Chain    []string  `json:"chain,omitempty"`
	At       time.Time `json:"at"`
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	atFlag := fs.String("at", "", "RFC 3339 time for validity checks (default now)")
	jsonOut := fs.Bool("json", false, "print the decision as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("check needs a certificate file: certgate check --config F CERT [CHAIN...]")
	}
	at := time.Now()
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usageErr("--at %q: not an RFC 3339 time (like 2026-11-25T10:00:00Z)", *atFlag)
		}
	}
	var certs []*x509.Certificate
	for _, p := range pos {
		cs, err := readCertificates(p)
		if err != nil {
			return usageErr("%v", err)
		}
		certs = append(certs, cs...)
	}
	// Only what the decision reads: no serverTLS, listeners or routes.
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	cfg, err := config.LoadDecision(path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	d, err := decideOffline(ctx, cfg, certs, at, stderr)
	if err != nil {
		return err
	}
	res := checkResult{Decision: "rejected", Reason: d.Reason, Subject: certfmt.Subject(certs[0]), Serial: strings.ToUpper(certs[0].SerialNumber.Text(16)), At: at.UTC()}
	if d.Err != nil {
		res.Error = d.Err.Error()
	}
	for _, c := range d.Chain {
		res.Chain = append(res.Chain, certfmt.Subject(c))
	}
	if d.OK() {
		res.Decision = "accepted"
		res.User = d.Identity.User.UserPrincipalName
		res.Binding = string(d.Identity.Binding.Field) + "->" + string(d.Identity.Binding.Attribute)
		res.Value = d.Identity.Value
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else if d.OK() {
		fmt.Fprintf(stdout, "accepted: %s (binding %s, value %s)\n", res.User, res.Binding, res.Value)
	} else {
		fmt.Fprintf(stdout, "rejected: %s: %s\n", res.Reason, strings.TrimPrefix(res.Error, res.Reason+": "))
	}
	if !d.OK() {
		return &exitError{code: 1, err: errSilent}
	}
	return nil
}

// decideOffline runs serve's pipeline once: it fetches the configured CRLs
// itself (failures are reported and then judged by the same policy).
func decideOffline(ctx context.Context, cfg *config.Config, certs []*x509.Certificate, at time.Time, stderr io.Writer) (proxy.Decision, error) {
	log := newLogger(cfg, io.Discard)
	rev := newRevocation(cfg, log, func() time.Time { return at })
	b, err := build(cfg, rev, log)
	if err != nil {
		return proxy.Decision{}, &exitError{code: 2, err: err}
	}
	defer b.close()
	rev.SetSources(b.sources)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := rev.RefreshNow(fctx); err != nil {
		fmt.Fprintf(stderr, "certgate: warning: fetching CRLs: %v\n", err)
	}
	return b.policy.Decide(ctx, certs, at, at), nil
}

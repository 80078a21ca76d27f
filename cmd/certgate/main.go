// Command certgate is a TLS-terminating reverse proxy that admits clients
// by X.509 certificate. See `certgate help` and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `certgate admits clients by X.509 certificate and forwards them to EAS or web backends.

Usage:
  certgate demo [--dir D] [--listen ADDR]     run a throwaway PKI, CRL server, backend and proxy
  certgate serve [--config F]                 run the proxy (F: $CERTGATE_CONFIG, then certgate.yaml)
  certgate check --config F [--at T] [--json] CERT [CHAIN...]
                                              decide one certificate offline (exit 0 accepted, 1 rejected)
  certgate validate --config F [--fetch] [--json]
                                              load and check the config and its CRL files without serving
  certgate ca list|add|remove|set --config F  manage the trusted CAs in the config file
  certgate user revoke-sessions (--config F | --users FILE) USER [--at T]
  certgate health [--url http://127.0.0.1:9090/healthz]
                                              exit 0 when the admin endpoint answers 200 (container health checks)
  certgate tickets new (--file F | --config C) [--keep N]
                                              create or rotate the fleet's session-ticket key file
  certgate version
`

// exitError carries an exit code through the command functions so that
// only main calls os.Exit.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a usage or configuration error: exit 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "certgate:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "certgate:", err)
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{code: 2, err: errors.New("no command given")}
	}
	err := dispatch(ctx, args, stdout, stderr)
	var h *helpRequested
	if errors.As(err, &h) {
		fmt.Fprint(stdout, h.text)
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(ctx, rest, stdout, stderr)
	case "validate":
		return runValidate(ctx, rest, stdout, stderr)
	case "ca":
		return runCA(ctx, rest, stdout, stderr)
	case "user":
		return runUser(ctx, rest, stdout, stderr)
	case "health":
		return runHealth(ctx, rest, stdout, stderr)
	case "tickets":
		return runTickets(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		if len(rest) > 0 && isHelp(rest[0]) {
			return &helpRequested{text: usageOf("version")}
		}
		return runVersion(stdout)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return usageErr("unknown command %q (certgate help lists the commands)", cmd)
	}
}

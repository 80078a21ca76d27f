package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const usage = `certgate-bench measures an mTLS HTTPS front (certgate, nginx) with a Go client.

Load modes (each prints one JSON line, then one human line):
  handshakes   full handshakes/s: a new connection and one request each, no resumption
  resumed      resumed handshakes/s (TLS session tickets)
  keepalive    requests/s and p50/p99 over kept-alive connections (--h2 for HTTP/2)
  idle         opens --conns idle keep-alive connections; --pid reads the server's VmRSS
  crl-refresh  handshake p99 while --admin's POST /crl/refresh re-ingests a big CRL
  crl          in-process: CRL ingest time, retained heap, peak RSS and lookup ns
  unauth       certificate-less connections at stepped --rates (each holds its
               connection until the server closes it) while --workers admitted
               keep-alive clients and --hs-workers handshaking clients measure
               latency: the highest rate they did not notice

Soak (issue: certgate under attack and failure):
  soak         runs a certgate binary (--certgate BIN) for --duration (at most
               10m) under --clients (2000) good, revoked, unmapped and
               certificate-less clients while its config is reloaded and its
               CRL replaced every few seconds; checks every decision and
               reports errors by kind, goroutines, open fds and RSS

Helpers:
  pki          writes a PKI (root, server, client, revoked client, 10-entry and
               big CRLs as DER and PEM) into --dir
  backend      an HTTP/1.1 echo backend: "hello <X-Remote-User>"
  crl-serve    serves the big CRL over HTTP, with a higher CRL number each fetch
  serve-inproc certgate's proxy built in process from its packages, with
               --cpuprofile/--memprofile (for pprof)
  summarize    reads the JSON lines of labelled runs (--label server/scenario/round)
               and prints medians, certgate/nginx ratios and the targets as Markdown

Common flags of the load modes:
  --url https://127.0.0.1:8443/ --cert C --key K --cacert CA --duration 10s
  --workers N --max N [--tls13|--tls12] [--curves P256|X25519|X25519MLKEM768]
  [--h2] [--pid SERVER_PID] [--expect SUBSTRING] [--label TEXT]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "certgate-bench:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is bad input on the command line: exit 2.
type usageError struct{ error }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usagef("no mode given\n%s", usage)
	}
	mode, rest := args[0], args[1:]
	switch mode {
	case "handshakes", "resumed", "keepalive", "idle", "crl-refresh":
		lf, err := parseLoadFlags(mode, rest)
		if err != nil {
			return err
		}
		return runLoad(ctx, mode, lf, out)
	case "unauth":
		return runUnauthFlags(ctx, rest, out)
	case "crl":
		return runCRL(ctx, rest, out)
	case "soak":
		return runSoak(ctx, rest, out)
	case "pki":
		return runPKI(rest, out)
	case "backend":
		return runBackend(ctx, rest, out)
	case "crl-serve":
		return runCRLServe(ctx, rest, out)
	case "serve-inproc":
		return runInproc(ctx, rest, out)
	case "summarize":
		return runSummarize(rest, out)
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return usagef("unknown mode %q\n%s", mode, usage)
}

// parse parses flags, turning flag's own errors into usage errors and
// refusing stray arguments.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// emit prints the machine-readable line and the human one.
func emit(out io.Writer, v any, human string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n# %s\n", b, strings.TrimSpace(human))
	return err
}

// until returns a context that ends after d (the run's bound).
func until(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}

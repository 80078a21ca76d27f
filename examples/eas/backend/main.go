// Command backend serves the example EAS backend (package easbackend) on a
// loopback address or a Unix socket, for certgate to front:
//
//	go run ./examples/eas/backend -listen 127.0.0.1:8081
//	go run ./examples/eas/backend -unix /run/certgate/eas.sock
//
// It trusts the identity header it is given, so it must be reachable only
// by the proxy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/certgate/certgate/examples/eas/easbackend"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(2)
	}
}

// run serves until ctx ends. ready, when set, gets the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "TCP address to listen on")
	unix := fs.String("unix", "", "Unix socket to listen on instead of -listen")
	header := fs.String("identity-header", "X-Remote-User", "request header that carries the user")
	hold := fs.Duration("ping-hold", 5*time.Second, "how long a Ping is held before the no-change answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *hold <= 0 {
		return fmt.Errorf("-ping-hold must be positive, got %v", *hold)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	var ln net.Listener
	var err error
	if *unix != "" {
		// A socket left by an earlier run would make Listen fail; anything
		// else at that path is not ours to remove.
		if fi, statErr := os.Lstat(*unix); statErr == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(*unix)
		}
		ln, err = net.Listen("unix", *unix)
	} else {
		ln, err = net.Listen("tcp", *listen)
	}
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: easbackend.Handler(logger, easbackend.Options{IdentityHeader: *header, PingHold: *hold}),
		// No WriteTimeout: Pings are held on purpose.
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving the example EAS backend", "addr", ln.Addr().String(), "identity_header", *header, "ping_hold", *hold)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Held Pings outlive the grace period; cut them.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

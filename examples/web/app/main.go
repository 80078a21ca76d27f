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

	"github.com/certgate/certgate/examples/web/webapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
}

// run serves until ctx ends. ready, when set, gets the listening address.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8082", "TCP address to listen on")
	unix := fs.String("unix", "", "Unix socket to listen on instead of -listen")
	header := fs.String("identity-header", "X-Remote-User", "request header that carries the user")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
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
		Handler: webapp.Handler(logger, webapp.Options{IdentityHeader: *header}),
		// No WriteTimeout: /events streams for as long as the page is open.
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving the example web app", "addr", ln.Addr().String(), "identity_header", *header)
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
		// Event streams outlive the grace period; cut them.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/revocation"
	"github.com/certgate/certgate/trust"
)

// inproc is certgate's data plane assembled in this process from its
// packages, the way cmd/certgate's serve wires them (trust store,
// revocation checker, binder without a directory, one web route,
// certmagic for the server certificate, metrics, the admin handler), so
// that pprof sees the handshake and request paths without the load
// generator's frames mixed in when the load runs in another process.
type inproc struct {
	srv     *proxy.Server
	ln      net.Listener
	adminLn net.Listener
	admin   *http.Server
	rev     *revocation.Checker
	cancel  context.CancelFunc
	done    chan struct{}
}

type inprocOptions struct {
	dir     string // a `pki` folder
	listen  string
	admin   string // "" = no admin listener
	backend string // http://host:port
	crlURL  string // http://, https:// or file://
	logOut  io.Writer
	fast    bool // the HTTP/1.1 fast path (http1.fastPath)
}

func startInproc(ctx context.Context, o inprocOptions) (*inproc, error) {
	certs, err := readPEMCerts(filepath.Join(o.dir, fileRoot))
	if err != nil {
		return nil, err
	}
	root := certs[0]
	if o.logOut == nil {
		o.logOut = io.Discard
	}
	// Info level and JSON, as serve's default: one decision line per
	// connection is part of the request path's cost.
	log := slog.New(slog.NewJSONHandler(o.logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	store, err := trust.NewStore([]trust.CA{{Type: trust.AuthorityRoot, Cert: root, CRLURL: o.crlURL}})
	if err != nil {
		return nil, err
	}
	rev := revocation.New(revocation.Options{Logger: log, MaxCRLSize: 256 << 20})
	rev.SetSources([]revocation.Source{{Issuer: root, CRLURL: o.crlURL}})
	fctx, cancelFetch := context.WithTimeout(ctx, time.Minute)
	err = rev.RefreshNow(fctx)
	cancelFetch()
	if err != nil {
		return nil, fmt.Errorf("initial CRL fetch: %w", err)
	}
	magic, err := newMagic(ctx, o.dir)
	if err != nil {
		return nil, err
	}
	route, err := proxy.NewRoute(proxy.RouteConfig{Name: "web", Kind: "web", PathPrefix: "/", Backend: o.backend})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	srv := proxy.NewServer(proxy.Options{
		Logger:         log,
		Metrics:        proxy.NewMetrics(reg),
		GetCertificate: magic.GetCertificate,
		Limits:         proxy.Limits{IdleTimeout: 10 * time.Minute},
		FastPath:       o.fast,
	})
	bindings := []trust.Binding{
		{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName},
		{Field: trust.FieldRFC822Name, Attribute: trust.AttrProxyAddresses},
	}
	if err := srv.SetPolicy(&proxy.Policy{
		Trust:          store,
		ClientCAs:      store.HintPool(),
		Revocation:     rev,
		Binder:         trust.NewBinder(bindings, nil),
		Routes:         []*proxy.Route{route},
		IdentityHeader: "X-Remote-User",
		MinVersion:     tls.VersionTLS12,
	}); err != nil {
		return nil, err
	}
	ip := &inproc{srv: srv, rev: rev, done: make(chan struct{})}
	if ip.ln, err = net.Listen("tcp", o.listen); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	ip.cancel = cancel
	go rev.Run(rctx)
	go func() {
		defer close(ip.done)
		if err := srv.Serve(ip.ln); err != nil {
			log.Error("proxy stopped", "error", err)
		}
	}()
	if o.admin != "" {
		if ip.adminLn, err = net.Listen("tcp", o.admin); err != nil {
			ip.Close()
			return nil, err
		}
		a := proxy.NewAdmin(proxy.AdminOptions{Gatherer: reg, Ready: rev.Ready, RefreshCRLs: rev.RefreshNow, ListenAddr: ip.adminLn.Addr().String()})
		ip.admin = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go ip.admin.Serve(ip.adminLn)
	}
	return ip, nil
}

// newMagic serves the pki's server certificate through certmagic, as serve
// does, so that its GetCertificate is on the profiled path.
func newMagic(ctx context.Context, dir string) (*certmagic.Config, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, fileServer))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, fileServerKey))
	if err != nil {
		return nil, err
	}
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	storage, err := os.MkdirTemp("", "certgate-bench-magic-")
	if err != nil {
		return nil, err
	}
	magic = certmagic.New(cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: storage}, Logger: zap.NewNop()})
	if _, err := magic.CacheUnmanagedCertificatePEMBytes(ctx, certPEM, keyPEM, []string{"certgate"}); err != nil {
		return nil, err
	}
	magic.DefaultServerName, magic.FallbackServerName = "localhost", "localhost"
	return magic, nil
}

func (ip *inproc) Addr() string { return ip.ln.Addr().String() }

// AdminURL is the admin base URL, "" without one.
func (ip *inproc) AdminURL() string {
	if ip.adminLn == nil {
		return ""
	}
	return "http://" + ip.adminLn.Addr().String()
}

// Close stops everything it started.
func (ip *inproc) Close() {
	ip.srv.Close()
	if ip.admin != nil {
		ip.admin.Close()
	}
	ip.cancel()
	<-ip.done
}

func runInproc(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve-inproc", flag.ContinueOnError)
	o := inprocOptions{}
	fs.StringVar(&o.dir, "dir", "", "a `pki` folder (required)")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "client (mTLS) address")
	fs.StringVar(&o.admin, "admin", "", "admin address (POST /crl/refresh); empty: none")
	fs.StringVar(&o.backend, "backend", "", "backend URL, http://host:port (required)")
	crl := fs.String("crl", "small", "small, big (the pki's CRL files) or a CRL URL")
	fs.BoolVar(&o.fast, "fastpath", false, "serve HTTP/1.1 on the fast path (http1.fastPath)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile here on exit")
	traceFile := fs.String("trace", "", "write a runtime execution trace here (go tool trace): scheduling latency during a CRL refresh")
	memProfile := fs.String("memprofile", "", "write an allocation profile here on exit")
	duration := fs.Duration("duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	logFile := fs.String("log", "", "write certgate's log lines here (default: discarded)")
	heapAt := fs.Duration("heap-at", 0, "with --heapprofile: when to write it, after the start (for example while idle connections are open)")
	heapProfile := fs.String("heapprofile", "", "write a heap (in-use) profile here at --heap-at, with the runtime's memory figures on stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.dir == "" || o.backend == "" {
		return usagef("serve-inproc: --dir and --backend are required")
	}
	switch *crl {
	case "small":
		o.crlURL = (&url.URL{Scheme: "file", Path: mustAbs(filepath.Join(o.dir, fileSmallDER))}).String()
	case "big":
		o.crlURL = (&url.URL{Scheme: "file", Path: mustAbs(filepath.Join(o.dir, fileBigDER))}).String()
	default:
		if !strings.Contains(*crl, "://") {
			return usagef("serve-inproc: --crl %q: want small, big or a URL", *crl)
		}
		o.crlURL = *crl
	}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.logOut = f
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 64 << 10
	}
	ip, err := startInproc(ctx, o)
	if err != nil {
		return fmt.Errorf("serve-inproc: %w", err)
	}
	defer ip.Close()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	fmt.Fprintf(out, "serve-inproc listening on %s admin %s pid %d\n", ip.Addr(), ip.AdminURL(), os.Getpid())
	if f, ok := out.(interface{ Sync() error }); ok {
		f.Sync()
	}
	wait := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *heapProfile != "" && *heapAt > 0 {
		t := time.AfterFunc(*heapAt, func() {
			if err := writeHeap(*heapProfile, out); err != nil {
				fmt.Fprintln(out, "serve-inproc: heap profile:", err)
			}
		})
		defer t.Stop()
	}
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	<-wait.Done()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	// Divide by the load's request count for allocations per request.
	fmt.Fprintf(out, "serve-inproc: %d allocations, %d bytes allocated while serving\n", m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc)
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// writeHeap writes an in-use heap profile after a GC, and prints the
// runtime's view of memory (heap, goroutine stacks, goroutines) so that
// RSS per connection can be split between them.
func writeHeap(path string, out io.Writer) error {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(out, "serve-inproc memory: heap_inuse=%d stack_inuse=%d sys=%d goroutines=%d\n",
		m.HeapInuse, m.StackInuse, m.Sys, runtime.NumGoroutine())
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/proxy/assertion"
	"github.com/certgate/certgate/revocation"
	"github.com/certgate/certgate/trust"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func configPath(flagValue string) (string, error) {
	path, from := flagValue, "--config "+flagValue
	if path == "" {
		path, from = os.Getenv("CERTGATE_CONFIG"), "$CERTGATE_CONFIG="+os.Getenv("CERTGATE_CONFIG")
	}
	if path == "" {
		path, from = "certgate.yaml", ""
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if from == "" {
			return "", usageErr("no certgate.yaml in the current folder: name the config file with --config FILE or $CERTGATE_CONFIG")
		}
		return "", usageErr("%s: no such file (the config file is named by --config FILE, else $CERTGATE_CONFIG, else ./certgate.yaml)", from)
	}
	return path, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	level := fs.String("log-level", "", "debug, info, warn or error (overrides logging.level)")
	format := fs.String("log-format", "", "json or text (overrides logging.format)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr("serve takes no arguments, got %q", pos[0])
	}
	switch config.LogLevel(*level) {
	case "", config.LevelDebug, config.LevelInfo, config.LevelWarn, config.LevelError:
	default:
		return usageErr("--log-level must be debug, info, warn or error, got %q", *level)
	}
	switch config.LogFormat(*format) {
	case "", config.LogJSON, config.LogText:
	default:
		return usageErr("--log-format must be json or text, got %q", *format)
	}
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	inst, err := startFromConfig(ctx, path, stderr, instanceOptions{logLevel: *level, logFormat: *format})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return inst.shutdown()
}

type instanceOptions struct {
	// now overrides the clock (tests).
	now func() time.Time
	// readyzGrace replaces the sleep between failing /readyz and closing
	// the listener (tests hold the drain there to observe it).
	readyzGrace func(time.Duration)
	// logLevel and logFormat override logging.level and logging.format
	// (serve's --log-level and --log-format).
	logLevel, logFormat string
	// challengeMaxVersion caps the TLS-ALPN-01 answer's TLS version, so a
	// test's validator can be made to speak TLS 1.2 (tests).
	challengeMaxVersion uint16
}

// instance is one running certgate: proxy, admin listener, revocation
// refresher and reload watcher.
type instance struct {
	log      *slog.Logger
	cfgPath  string
	reg      *prometheus.Registry
	reloads  *prometheus.CounterVec
	srv      *proxy.Server
	admin    *proxy.Admin
	adminSrv *http.Server
	cert     *serverCert
	rev      *revocation.Checker
	ln       net.Listener
	adminLn  net.Listener
	cancel   context.CancelFunc
	now      func() time.Time // instanceOptions.now, kept for reloads
	wg       sync.WaitGroup

	// readyzGrace waits out shutdown.readyzGrace (instanceOptions).
	readyzGrace func(time.Duration)
	lastReload  atomic.Pointer[reloadEvent] // for the status page
	closeOnce   sync.Once

	mu      sync.Mutex // serialises reloads
	current *built
	hashes  map[string][32]byte

	// sweepMu serialises sweepDirectory, which keeps in seenValidFrom the
	// last sessionsValidFrom it acted on per user (lower-case UPN).
	sweepMu       sync.Mutex
	seenValidFrom map[string]time.Time
}

// forceFastPath overrides http1.fastPath when set: tests run the whole
// suite on either HTTP/1.1 path (CERTGATE_TEST_FASTPATH=1 or 0).
var forceFastPath *bool

func fastPathFor(cfg *config.Config) bool {
	if forceFastPath != nil {
		return *forceFastPath
	}
	return cfg.HTTP1.FastPath
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.Logging.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Logging.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// loadConfig loads and validates; its errors are configuration errors
// (exit 2), already naming file, line and key.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return cfg, nil
}

func startFromConfig(ctx context.Context, path string, logOut io.Writer, opts instanceOptions) (*instance, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if opts.logLevel != "" {
		cfg.Logging.Level = config.LogLevel(opts.logLevel)
	}
	if opts.logFormat != "" {
		cfg.Logging.Format = config.LogFormat(opts.logFormat)
	}
	log := newLogger(cfg, logOut)
	ctx, cancel := context.WithCancel(ctx)
	inst := &instance{log: log, cfgPath: path, cancel: cancel, now: opts.now, readyzGrace: opts.readyzGrace}
	if inst.readyzGrace == nil {
		inst.readyzGrace = time.Sleep
	}
	ok := false
	defer func() {
		if !ok {
			inst.close()
		}
	}()

	inst.reg = prometheus.NewRegistry()
	inst.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
	inst.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "certgate_config_reloads_total",
		Help: "Configuration reloads by result (ok or error); on error the previous state keeps serving.",
	}, []string{"result"})
	inst.reloads.WithLabelValues("ok")
	inst.reloads.WithLabelValues("error")
	inst.reg.MustRegister(inst.reloads)
	metrics := proxy.NewMetrics(inst.reg)

	inst.rev = newRevocation(cfg, log, opts.now)
	b, err := buildAt(cfg, inst.rev, log, opts.now)
	if err == nil {
		b.policy.AccessLog, err = openAccessLog(cfg)
	}
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	inst.current = b
	inst.rev.SetSources(b.sources)
	inst.reg.MustRegister(newRevocationCollector(inst.rev), newOpsCollector(inst), newAssertionCollector(inst))
	// Fetch every CRL once before taking traffic, as nginx reads its CRL
	// files at start; a CRL server that is down delays the start by at most
	// the fetch timeout, and the cache dir and onUnavailable decide the rest.
	fetchCtx, cancelFetch := context.WithTimeout(ctx, cfg.Revocation.FetchTimeout.Duration+time.Second)
	if err := inst.rev.RefreshNow(fetchCtx); err != nil {
		log.Warn("initial CRL fetch incomplete", "error", err)
	}
	cancelFetch()

	var challenge *tls.Config
	if a := cfg.ServerTLS.ACME; a != nil {
		inst.cert = newServerCert(cfg.Path(a.Storage), log)
		if err := inst.cert.useACME(cfg); err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", cfg.File, err)}
		}
		challenge = inst.cert.challengeConfig(cfg.ServerTLS.TLSMinVersion(), opts.challengeMaxVersion)
	} else {
		inst.cert = newServerCert(storageDir(cfg), log)
		if _, err := inst.cert.loadFiles(ctx, cfg.Path(cfg.ServerTLS.CertFile), cfg.Path(cfg.ServerTLS.KeyFile)); err != nil {
			if kp := (*keyPairLoadError)(nil); errors.As(err, &kp) {
				return nil, &exitError{code: 2, err: keyPairError(cfg, kp)}
			}
			return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", cfg.File, err)}
		}
	}

	inst.srv = proxy.NewServer(proxy.Options{
		Logger:         log,
		Metrics:        metrics,
		GetCertificate: inst.cert.GetCertificate,
		// Answers TLS-ALPN-01 validators (nil without ACME).
		ChallengeConfig: challenge,
		Now:             opts.now,
		FastPath:        fastPathFor(cfg),
		Limits: proxy.Limits{
			ReadHeaderTimeout:    minPositive(cfg.Limits.ReadHeaderTimeout.Duration, cfg.Limits.HandshakeTimeout.Duration),
			IdleTimeout:          cfg.Limits.IdleTimeout.Duration,
			MaxHeaderBytes:       int(cfg.Limits.MaxHeaderBytes),
			MaxConnections:       cfg.Limits.MaxConnections,
			MaxConcurrentStreams: cfg.Limits.H2MaxConcurrentStreams,
			// Applied at start; a reload keeps the listener's value.
			MaxUnauthenticatedPerIP: cfg.Limits.MaxUnauthenticatedPerIP,
		},
	})
	if err := inst.srv.SetPolicy(b.policy); err != nil {
		return nil, err
	}
	if keys, err := ticketKeysFor(nil, cfg); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", cfg.File, err)}
	} else if keys != nil {
		inst.srv.SetSessionTicketKeys(keys)
	}
	// Shared ticket keys outlive the process: a session from before a
	// revocation already on file must not resume after a restart either.
	if b.users != nil {
		for _, u := range b.users.Users() {
			inst.srv.RefuseSessionsIssuedBefore(u.SessionsValidFrom)
		}
	}
	if inst.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	// ACME starts once the listener exists: the listener answers the challenge.
	if err := inst.cert.manageACME(ctx, inst.ln.Addr()); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	if cfg.Admin.Enabled() {
		if inst.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return nil, fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
		}
	}
	adminToken, err := readAdminToken(cfg)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	if inst.adminLn != nil && adminToken == "" && !proxy.IsLoopbackListen(inst.adminAddr()) {
		log.Warn("the admin listener is not on loopback and admin.tokenFile is not set: /status, /status.json and POST /crl/refresh are off (probes and /metrics answer)",
			"admin", inst.adminAddr())
	}
	inst.admin = proxy.NewAdmin(proxy.AdminOptions{
		Gatherer:     inst.reg,
		Ready:        inst.ready,
		Status:       inst.status,
		StatusPage:   inst.statusPage(),
		RefreshCRLs:  inst.rev.RefreshNow,
		ListenAddr:   inst.adminAddr(),
		AllowedHosts: cfg.Admin.AllowedHosts,
		Token:        adminToken,
		JWKS:         func() *assertion.KeySet { return inst.srv.Policy().JWKS },
	})
	inst.hashes = inst.watchedHashes(cfg)

	inst.wg.Add(1)
	go func() { defer inst.wg.Done(); inst.rev.Run(ctx) }()
	go func() {
		if err := inst.srv.Serve(inst.ln); err != nil {
			log.Error("proxy stopped", "error", err)
		}
	}()
	if inst.adminLn != nil {
		inst.adminSrv = &http.Server{Handler: inst.admin.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go inst.adminSrv.Serve(inst.adminLn)
	}
	inst.wg.Add(1)
	go func() { defer inst.wg.Done(); inst.watch(ctx, cfg.Reload.PollInterval.Duration) }()
	inst.wg.Add(1)
	go func() { defer inst.wg.Done(); inst.sweepDirectories(ctx) }()

	log.Info("certgate serving", "listen", inst.ln.Addr().String(), "admin", inst.adminAddr(), "config", path,
		"cas", len(cfg.CAs), "routes", len(cfg.Routes), "version", version)
	ok = true
	return inst, nil
}

func newRevocation(cfg *config.Config, log *slog.Logger, now func() time.Time) *revocation.Checker {
	return revocation.New(revocationOptions(cfg, log, now))
}

func revocationOptions(cfg *config.Config, log *slog.Logger, now func() time.Time) revocation.Options {
	policy, _ := revocation.ParsePolicy(string(cfg.Revocation.OnUnavailable))
	ocspMode, _ := revocation.ParseOCSPMode(string(cfg.Revocation.OCSP))
	cacheDir := ""
	if cfg.Revocation.CacheDir != "" {
		cacheDir = cfg.Path(cfg.Revocation.CacheDir)
	}
	return revocation.Options{
		OnUnavailable: policy,
		OCSP:          ocspMode,
		CacheDir:      cacheDir,
		MaxCRLSize:    int64(cfg.Revocation.MaxCRLSize),
		FetchTimeout:  cfg.Revocation.FetchTimeout.Duration,
		MinRefresh:    cfg.Revocation.MinRefresh.Duration,
		MaxRefresh:    cfg.Revocation.MaxRefresh.Duration,
		Logger:        log, // revocation.New adds "component"
		Now:           now,
	}
}

func storageDir(cfg *config.Config) string {
	if cfg.ServerTLS.Storage != "" {
		return cfg.Path(cfg.ServerTLS.Storage)
	}
	if cfg.Revocation.CacheDir != "" {
		return filepath.Join(cfg.Path(cfg.Revocation.CacheDir), "certmagic")
	}
	return filepath.Join(cfg.Dir, ".certgate", "certmagic")
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

func (inst *instance) proxyAddr() string { return inst.ln.Addr().String() }

func (inst *instance) adminAddr() string {
	if inst.adminLn == nil {
		return ""
	}
	return inst.adminLn.Addr().String()
}

func (inst *instance) ready() error {
	var errs []error
	if err := inst.rev.Ready(); err != nil {
		errs = append(errs, err)
	}
	if err := inst.cert.ready(); err != nil {
		errs = append(errs, err)
	}
	inst.mu.Lock()
	b := inst.current
	inst.mu.Unlock()
	if b.ldap != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := b.ldap.Ready(ctx); err != nil {
			errs = append(errs, fmt.Errorf("directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// watch reloads on SIGHUP and whenever the content of a watched file
// changes. Polling content hashes (not inotify) is what sees Kubernetes'
// ConfigMap and Secret updates, which swap a ..data symlink.
func (inst *instance) watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 2 * time.Second
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			inst.reload(ctx, "sighup")
		case <-t.C:
			inst.mu.Lock()
			cfg := inst.current.cfg
			old := inst.hashes
			inst.mu.Unlock()
			if changed := diffHashes(old, inst.watchedHashes(cfg)); changed != "" {
				inst.reload(ctx, "file changed: "+changed)
			}
		}
	}
}

// watchedFiles lists every file the running state was built from.
func watchedFiles(cfg *config.Config, path string) []string {
	files := []string{path}
	for _, c := range cfg.CAs {
		files = append(files, cfg.Path(c.TrustedCertificate))
	}
	if d := cfg.Identity.Directory; d != nil && d.File != "" {
		files = append(files, cfg.Path(d.File))
	}
	if cfg.ServerTLS.CertFile != "" {
		files = append(files, cfg.Path(cfg.ServerTLS.CertFile), cfg.Path(cfg.ServerTLS.KeyFile))
	}
	if f := cfg.ServerTLS.SessionTicketKeyFile; f != "" {
		files = append(files, cfg.Path(f))
	}
	for _, r := range cfg.Routes {
		if r.BackendClientCert != "" {
			files = append(files, cfg.Path(r.BackendClientCert), cfg.Path(r.BackendClientKey))
		}
		if a := r.Assertion; a != nil {
			for _, k := range a.Keys {
				files = append(files, cfg.Path(k))
			}
		}
	}
	return files
}

func (inst *instance) watchedHashes(cfg *config.Config) map[string][32]byte {
	m := make(map[string][32]byte)
	for _, f := range watchedFiles(cfg, inst.cfgPath) {
		b, err := os.ReadFile(f)
		if err != nil {
			// A missing file is a change too; the reload says why.
			m[f] = [32]byte{}
			continue
		}
		m[f] = sha256.Sum256(b)
	}
	return m
}

func diffHashes(old, cur map[string][32]byte) string {
	var changed []string
	for f, h := range cur {
		if oh, ok := old[f]; !ok || oh != h {
			changed = append(changed, f)
		}
	}
	return strings.Join(changed, ", ")
}

// reload builds a new state from the files and swaps it in, or keeps the
// old one and says why.
func (inst *instance) reload(ctx context.Context, why string) error {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	// Hash before reading: a file that changes while it is loaded (a cert
	// written before its key) then differs at the next poll and is loaded
	// again, instead of the half-written state being taken as seen.
	pre := inst.watchedHashes(inst.current.cfg)
	cfg, err := config.Load(inst.cfgPath)
	if err == nil {
		var b *built
		b, err = buildAt(cfg, inst.rev, inst.log, inst.now)
		if err == nil {
			if b.policy.AccessLog, err = openAccessLog(cfg); err != nil {
				b.close()
			}
		}
		if err == nil {
			keepDirectory(inst.current, b)
			var keys [][32]byte
			err = checkServerTLSReload(inst.current.cfg, cfg)
			if err == nil {
				keys, err = ticketKeysFor(inst.current.cfg, cfg)
			}
			if err == nil && cfg.ServerTLS.CertFile != "" {
				_, err = inst.cert.loadFiles(ctx, cfg.Path(cfg.ServerTLS.CertFile), cfg.Path(cfg.ServerTLS.KeyFile))
			}
			if err == nil {
				err = inst.srv.SetPolicy(b.policy)
			}
			if err == nil && keys != nil {
				inst.srv.SetSessionTicketKeys(keys)
			}
			if err != nil {
				b.close()
			} else {
				old := inst.current
				b.ldapBorrowed = false // b owns the directory from now on
				inst.current = b
				inst.rev.SetSources(b.sources)
				inst.revokeChangedSessions(old, b)
				if old.ldap != nil && old.ldap != b.ldap {
					old.close()
				}
			}
		}
	}
	// Keep the hashes even on failure, so one broken file is reported
	// once rather than at every poll.
	inst.hashes = pre
	if cfg != nil {
		for f, h := range inst.watchedHashes(cfg) {
			if _, ok := pre[f]; !ok {
				inst.hashes[f] = h
			}
		}
	}
	ev := &reloadEvent{Time: time.Now().UTC(), Trigger: why, OK: err == nil}
	if err != nil {
		ev.Error = err.Error()
	}
	inst.lastReload.Store(ev)
	if err != nil {
		inst.reloads.WithLabelValues("error").Inc()
		inst.log.Error("reload failed; the previous configuration keeps serving", "trigger", why, "error", err)
		return err
	}
	inst.reloads.WithLabelValues("ok").Inc()
	inst.log.Info("reloaded", "trigger", why)
	return nil
}

// revokeChangedSessions closes the connections of users whose
// stsRefreshTokensValidFrom moved forward in the new directory file.
func (inst *instance) revokeChangedSessions(old, cur *built) {
	if cur.users == nil {
		return
	}
	before := map[string]time.Time{}
	if old != nil && old.users != nil {
		for _, u := range old.users.Users() {
			before[strings.ToLower(u.UserPrincipalName)] = u.SessionsValidFrom
		}
	}
	var latest time.Time
	for _, u := range cur.users.Users() {
		vf := u.SessionsValidFrom
		if vf.IsZero() || !vf.After(before[strings.ToLower(u.UserPrincipalName)]) {
			continue
		}
		n := inst.srv.RevokeSessions(u.UserPrincipalName, vf)
		inst.log.Info("sessions revoked", "user", u.UserPrincipalName, "valid_from", vf.UTC().Format(time.RFC3339), "closed_connections", n)
		if vf.After(latest) {
			latest = vf
		}
	}
	inst.requestFreshCRLs(cur.sources, latest)
}

// requestFreshCRLs asks every CA with a CRL for one published after latest
// (zero: nothing was revoked). A user whose sessions were revoked is refused
// until such a CRL is in force (SPEC step 4): ask now rather than when the
// user next knocks. The directory does not say which CA issued the user's
// certificates, so every CA with a CRL is asked.
func (inst *instance) requestFreshCRLs(sources []revocation.Source, latest time.Time) {
	if latest.IsZero() {
		return
	}
	for _, src := range sources {
		if src.CRLURL != "" && !src.Exempt {
			inst.rev.RequestFresh(trust.SubjectKeyID(src.Issuer), latest)
		}
	}
}

// shutdown drains: /readyz fails at once, in-flight requests get the drain
// timeout, then everything closes.
func (inst *instance) shutdown() error {
	inst.admin.SetDraining()
	inst.mu.Lock()
	cfg := inst.current.cfg
	inst.mu.Unlock()
	if g := cfg.Shutdown.ReadyzGrace.Duration; g > 0 {
		inst.readyzGrace(g) // let the balancer see /readyz fail before the listener closes
	}
	drain := cfg.Shutdown.DrainTimeout.Duration
	if drain <= 0 {
		drain = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := inst.srv.Shutdown(ctx)
	inst.log.Info("certgate stopped", "drained", err == nil)
	inst.close()
	return nil
}

// close stops everything at once; it may be called more than once (after
// shutdown, by a test's cleanup).
func (inst *instance) close() { inst.closeOnce.Do(inst.closeNow) }

func (inst *instance) closeNow() {
	if inst.cancel != nil {
		inst.cancel()
	}
	if inst.srv != nil {
		inst.srv.Close()
	}
	if inst.ln != nil {
		inst.ln.Close()
	}
	if inst.adminSrv != nil {
		inst.adminSrv.Close()
	} else if inst.adminLn != nil {
		inst.adminLn.Close()
	}
	inst.wg.Wait()
	if inst.cert != nil {
		inst.cert.stop()
	}
	if inst.current != nil {
		inst.current.close()
	}
}

// readAdminToken reads admin.tokenFile (read at start; a changed token
// needs a restart). A token shorter than 16 characters is refused: it
// guards the status pages and POST endpoints of a listener others reach.
func readAdminToken(cfg *config.Config) (string, error) {
	if cfg.Admin.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(cfg.Path(cfg.Admin.TokenFile))
	if err != nil {
		return "", fmt.Errorf("%s: admin.tokenFile: %w", cfg.File, err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s: admin.tokenFile %s: want one token of at least 16 characters without spaces", cfg.File, cfg.Admin.TokenFile)
	}
	return tok, nil
}

package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certgate/certgate/config"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// serverCert serves the proxy's own certificate through certmagic, which
// staples OCSP for certificates that name a responder and keeps the staple
// fresh. Static files are re-read when their content changes.
type serverCert struct {
	magic *certmagic.Config
	cache *certmagic.Cache
	log   *slog.Logger

	mu       sync.Mutex
	certFile string
	keyFile  string
	sum      [32]byte
	hash     string // certmagic's cache key of the loaded certificate
	leaf     *x509.Certificate
	acme     *acmeState // set when the certificate comes from ACME (acme.go)
}

func newServerCert(storageDir string, log *slog.Logger) *serverCert {
	zl := zap.New(&slogCore{log: log, level: zapcore.WarnLevel})
	s := &serverCert{log: log}
	s.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return s.magic, nil },
		Logger:           zl,
	})
	// Storage is set explicitly: certmagic's default lives under $HOME,
	// which a read-only container root does not have.
	s.magic = certmagic.New(s.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storageDir},
		Logger:  zl,
	})
	return s
}

// loadFiles loads (or reloads, when the content changed) the static
// certificate and key. It returns whether anything changed; on error the
// certificate in service stays.
func (s *serverCert) loadFiles(ctx context.Context, certFile, keyFile string) (bool, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return false, fmt.Errorf("serverTLS.certFile: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return false, fmt.Errorf("serverTLS.keyFile: %w", err)
	}
	sum := sha256.Sum256(append(append([]byte{}, certPEM...), keyPEM...))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hash != "" && sum == s.sum && certFile == s.certFile && keyFile == s.keyFile {
		return false, nil
	}
	// Parse first so that a broken pair is refused with a clear reason
	// before certmagic sees it.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, &keyPairLoadError{fmt.Errorf("serverTLS: %s and %s: %w", certFile, keyFile, err)}
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return false, fmt.Errorf("serverTLS.certFile %s: %w", certFile, err)
		}
	}
	// Cache the new certificate, then drop the old one. (certmagic v0.25.6's
	// CacheUnmanagedCertificatePEMBytesAsReplacement deadlocks: it takes the
	// cache lock and then a read lock on the same mutex.)
	hash, err := s.magic.CacheUnmanagedCertificatePEMBytes(ctx, certPEM, keyPEM, []string{"certgate"})
	if err != nil {
		return false, fmt.Errorf("serverTLS: %w", err)
	}
	if s.hash != "" && s.hash != hash {
		s.cache.Remove([]string{s.hash})
	}
	// Clients that send no SNI, or another name, get this certificate as
	// nginx would serve its default; the client decides whether it fits.
	// Set once: certmagic reads these fields without a lock during handshakes.
	if name := firstName(leaf); name != "" && s.hash == "" {
		s.magic.DefaultServerName, s.magic.FallbackServerName = name, name
	}
	s.certFile, s.keyFile, s.sum, s.hash, s.leaf = certFile, keyFile, sum, hash, leaf
	return true, nil
}

func firstName(c *x509.Certificate) string {
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	if len(c.IPAddresses) > 0 {
		return c.IPAddresses[0].String()
	}
	return c.Subject.CommonName
}

// Leaf returns the certificate in service (for metrics and the status
// page), or nil while ACME has not obtained one yet.
func (s *serverCert) Leaf() *x509.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.acme != nil {
		return acmeLeaf(s.cache, s.acme.domains[0], time.Now())
	}
	return s.leaf
}

func (s *serverCert) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.magic.GetCertificate(hello)
}

func (s *serverCert) stop() { s.cache.Stop() }

// slogCore forwards certmagic's zap logs to certgate's slog logger, so an
// operator reads one log stream in one format.
type slogCore struct {
	log    *slog.Logger
	level  zapcore.Level
	fields []zapcore.Field
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.level }
func (c *slogCore) With(f []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, level: c.level, fields: append(append([]zapcore.Field{}, c.fields...), f...)}
}
func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}
func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field{}, c.fields...), fields...) {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, 2*len(enc.Fields)+2)
	attrs = append(attrs, "component", "certmagic")
	for k, v := range enc.Fields {
		attrs = append(attrs, k, v)
	}
	lvl := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == zapcore.DebugLevel:
		lvl = slog.LevelDebug
	}
	c.log.Log(context.Background(), lvl, e.Message, attrs...)
	return nil
}
func (c *slogCore) Sync() error { return nil }

// newServerCertCheck parses the static certificate and key without serving
// them (`certgate validate`).
func newServerCertCheck(cfg *config.Config) (*x509.Certificate, error) {
	certFile, keyFile := cfg.Path(cfg.ServerTLS.CertFile), cfg.Path(cfg.ServerTLS.KeyFile)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, keyPairError(cfg, err)
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// keyPairLoadError is a certificate and key that crypto/tls refused
// together; a caller with the config turns it into [keyPairError].
type keyPairLoadError struct{ err error }

func (e *keyPairLoadError) Error() string { return e.err.Error() }
func (e *keyPairLoadError) Unwrap() error { return e.err }

// keyPairError names the files and the config line of a certificate and
// key that do not load together; crypto/tls says only "private key does not
// match public key".
func keyPairError(cfg *config.Config, err error) error {
	certFile, keyFile := cfg.ServerTLS.CertFile, cfg.ServerTLS.KeyFile
	msg := err.Error()
	switch {
	case strings.Contains(msg, "does not match"):
		return cfg.Errorf("serverTLS.keyFile", "the key in %s does not belong to the certificate in %s (is it the key of another certificate?)", keyFile, certFile)
	case strings.Contains(msg, "failed to find any PEM data in certificate"), strings.Contains(msg, "failed to find certificate PEM data"):
		return cfg.Errorf("serverTLS.certFile", "%s holds no PEM certificate", certFile)
	case strings.Contains(msg, "failed to find any PEM data in key"), strings.Contains(msg, "failed to find PEM block with type ending in"):
		return cfg.Errorf("serverTLS.keyFile", "%s holds no PEM private key", keyFile)
	}
	return cfg.Errorf("serverTLS", "%s and %s: %v", certFile, keyFile, err)
}

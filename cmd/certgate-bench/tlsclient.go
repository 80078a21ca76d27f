package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// loadFlags are the flags of the load modes.
type loadFlags struct {
	url        *url.URL
	addr       string // host:port dialled
	hostHeader string
	serverName string
	certFile   string
	keyFile    string
	caFile     string
	duration   time.Duration
	workers    int
	max        int
	tls13      bool
	tls12      bool
	curves     []tls.CurveID
	h2         bool
	pid        int
	expect     string
	label      string
	samples    int

	// idle
	conns  int
	settle time.Duration

	// crl-refresh
	admin    string
	slice    time.Duration
	maxCycle int
}

func parseLoadFlags(mode string, args []string) (*loadFlags, error) {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	lf := &loadFlags{}
	rawURL := fs.String("url", "", "https://host:port/path of the server under test (required)")
	fs.StringVar(&lf.serverName, "server-name", "", "TLS server name (default: the URL's host)")
	fs.StringVar(&lf.certFile, "cert", "", "client certificate PEM (required)")
	fs.StringVar(&lf.keyFile, "key", "", "client key PEM (required)")
	fs.StringVar(&lf.caFile, "cacert", "", "CA PEM that the server certificate chains to (required)")
	fs.DurationVar(&lf.duration, "duration", 10*time.Second, "bound of the run")
	fs.IntVar(&lf.workers, "workers", 8, "concurrent workers (connections)")
	fs.IntVar(&lf.max, "max", 10_000_000, "bound on the operations of the run")
	fs.BoolVar(&lf.tls13, "tls13", false, "TLS 1.3 only")
	fs.BoolVar(&lf.tls12, "tls12", false, "TLS 1.2 only")
	curves := fs.String("curves", "", "key exchange groups, comma separated: X25519, P256, P384, X25519MLKEM768 (default: Go's)")
	fs.BoolVar(&lf.h2, "h2", false, "HTTP/2 (keepalive and idle modes)")
	fs.IntVar(&lf.pid, "pid", 0, "server process id: its CPU use (and for idle its VmRSS) is reported")
	fs.StringVar(&lf.expect, "expect", "", "substring every response body must contain (the identity the backend echoes)")
	fs.StringVar(&lf.label, "label", "", "free text copied into the JSON line")
	fs.IntVar(&lf.samples, "samples", 2_000_000, "latency samples kept at most")
	fs.IntVar(&lf.conns, "conns", 10_000, "idle: connections to open")
	fs.DurationVar(&lf.settle, "settle", 3*time.Second, "idle: wait after opening before reading the RSS")
	fs.StringVar(&lf.admin, "admin", "", "crl-refresh: the server's admin base URL (http://127.0.0.1:9090)")
	fs.DurationVar(&lf.slice, "slice", 2*time.Second, "crl-refresh: length of each baseline slice between refreshes")
	fs.IntVar(&lf.maxCycle, "refreshes", 100, "crl-refresh: bound on the refreshes triggered")
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	switch {
	case *rawURL == "":
		return nil, usagef("%s: --url is required", mode)
	case lf.certFile == "" || lf.keyFile == "":
		return nil, usagef("%s: --cert and --key are required", mode)
	case lf.caFile == "":
		return nil, usagef("%s: --cacert is required", mode)
	case lf.tls12 && lf.tls13:
		return nil, usagef("%s: --tls12 and --tls13 exclude each other", mode)
	case lf.workers < 1 || lf.max < 1 || lf.duration <= 0:
		return nil, usagef("%s: --workers, --max and --duration must be positive", mode)
	case mode == "crl-refresh" && lf.admin == "":
		return nil, usagef("%s: --admin is required", mode)
	case mode == "idle" && lf.conns < 1:
		return nil, usagef("%s: --conns must be positive", mode)
	}
	u, err := url.Parse(*rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, usagef("%s: --url %q: want https://host:port/path", mode, *rawURL)
	}
	lf.url = u
	lf.hostHeader = u.Host
	lf.addr = u.Host
	if u.Port() == "" {
		lf.addr = net.JoinHostPort(u.Hostname(), "443")
	}
	if lf.serverName == "" {
		lf.serverName = u.Hostname()
	}
	if lf.url.Path == "" {
		lf.url.Path = "/"
	}
	if lf.curves, err = parseCurves(*curves); err != nil {
		return nil, usageError{err}
	}
	return lf, nil
}

func parseCurves(s string) ([]tls.CurveID, error) {
	if s == "" {
		return nil, nil
	}
	var out []tls.CurveID
	for name := range strings.SplitSeq(s, ",") {
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "X25519":
			out = append(out, tls.X25519)
		case "P256", "P-256", "SECP256R1", "PRIME256V1":
			out = append(out, tls.CurveP256)
		case "P384", "P-384", "SECP384R1":
			out = append(out, tls.CurveP384)
		case "X25519MLKEM768":
			out = append(out, tls.X25519MLKEM768)
		default:
			return nil, fmt.Errorf("--curves: unknown group %q (X25519, P256, P384, X25519MLKEM768)", name)
		}
	}
	return out, nil
}

// tlsConfig builds the client configuration. The server's chain is
// verified against --cacert once per distinct leaf and then recognised by
// its hash: full x509 verification on every handshake would make the load
// generator, not the server, the bottleneck. The handshake signature, which
// proves the server holds the key, is checked by crypto/tls every time.
func (lf *loadFlags) tlsConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(lf.certFile, lf.keyFile)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(lf.caFile)
	if err != nil {
		return nil, fmt.Errorf("--cacert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--cacert %s: no PEM certificate", lf.caFile)
	}
	v := &serverVerifier{roots: roots, name: lf.serverName}
	cfg := &tls.Config{
		Certificates:       []tls.Certificate{pair},
		ServerName:         lf.serverName,
		InsecureSkipVerify: true, // replaced by v.verify, which caches
		VerifyConnection:   v.verify,
		MinVersion:         tls.VersionTLS12,
		CurvePreferences:   lf.curves,
		NextProtos:         []string{"http/1.1"},
	}
	if lf.h2 {
		cfg.NextProtos = []string{"h2"}
	}
	if lf.tls13 {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	}
	if lf.tls12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	return cfg, nil
}

type serverVerifier struct {
	roots *x509.CertPool
	name  string
	ok    sync.Map // [32]byte -> struct{}
}

func (v *serverVerifier) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	key := sha256.Sum256(leaf.Raw)
	if _, ok := v.ok.Load(key); ok {
		return nil
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: inter, DNSName: v.name}); err != nil {
		return err
	}
	v.ok.Store(key, struct{}{})
	return nil
}

func groupName(id tls.CurveID) string {
	if id == 0 {
		return ""
	}
	return id.String()
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS1.3"
	case tls.VersionTLS12:
		return "TLS1.2"
	}
	return fmt.Sprintf("0x%04x", v)
}

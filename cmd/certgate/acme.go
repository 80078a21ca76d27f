package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certgate/certgate/config"
)

// ACME (serverTLS.acme): certmagic obtains and renews the proxy's own
// certificate with the TLS-ALPN-01 challenge, answered on the proxy
// listener itself. The validator presents no client certificate, so the
// proxy answers ClientHellos that offer only "acme-tls/1" (with SNI) from
// a separate tls.Config without client authentication (challengeConfig);
// behind RequireAnyClientCert the challenge fails on TLS 1.2 (design notes,
// pitfall 4). Such a connection negotiates "acme-tls/1", which net/http
// has no handler for, so it closes after the handshake and serves no HTTP.
//
// Obtaining runs in the background (certmagic's ManageAsync, which retries
// with backoff): serve starts at once, handshakes fail until a certificate
// is there, and /readyz answers 503 until then, so a balancer sends no
// traffic to a replica that has nothing to serve.

// acmeChallengeProto is the ALPN protocol of TLS-ALPN-01 (RFC 8737).
const acmeChallengeProto = "acme-tls/1"

// useACME prepares certmagic for cfg's serverTLS.acme. It must run before
// the proxy serves; manageACME starts obtaining once the listener exists.
func (s *serverCert) useACME(cfg *config.Config) error {
	a := cfg.ServerTLS.ACME
	if a == nil || len(a.Domains) == 0 {
		return errors.New("serverTLS.acme: needs at least one domain")
	}
	var roots *x509.CertPool
	if a.TrustedRoots != "" {
		path := cfg.Path(a.TrustedRoots)
		pem, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("serverTLS.acme.trustedRoots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("serverTLS.acme.trustedRoots: %s holds no PEM certificate", path)
		}
	}
	domains := make([]string, len(a.Domains))
	for i, d := range a.Domains {
		domains[i] = strings.ToLower(d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acme = &acmeState{
		domains: domains,
		issuer: certmagic.ACMEIssuer{
			CA:           a.Directory,
			Email:        a.Email,
			Agreed:       true,
			TrustedRoots: roots,
			// Only TLS-ALPN-01: an HTTP-01 listener on port 80 is not
			// part of certgate, and DNS-01 needs a DNS provider.
			DisableHTTPChallenge: true,
			AltTLSALPNPort:       a.AltTLSALPNPort,
			Logger:               s.magic.Logger,
		},
	}
	// Clients without SNI (or with an IP) get the first domain's
	// certificate, as with static files.
	s.magic.DefaultServerName, s.magic.FallbackServerName = domains[0], domains[0]
	s.magic.OnEvent = s.onACMEEvent
	return nil
}

type acmeState struct {
	domains []string
	issuer  certmagic.ACMEIssuer // template; the port is set by manageACME
}

// manageACME starts obtaining and renewing in the background. proxyAddr is
// the proxy listener: unless serverTLS.acme.altTLSALPNPort names another
// port, certmagic is pointed at it, finds it in use and leaves the
// challenge to the proxy's own listener (through challengeConfig) rather
// than opening one of its own.
func (s *serverCert) manageACME(ctx context.Context, proxyAddr net.Addr) error {
	s.mu.Lock()
	st := s.acme
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	tmpl := st.issuer
	if tmpl.AltTLSALPNPort == 0 {
		tcp, ok := proxyAddr.(*net.TCPAddr)
		if !ok {
			return fmt.Errorf("serverTLS.acme: proxy listener %s is not TCP", proxyAddr)
		}
		tmpl.AltTLSALPNPort = tcp.Port
		if !tcp.IP.IsUnspecified() {
			tmpl.ListenHost = tcp.IP.String()
		}
	}
	s.magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(s.magic, tmpl)}
	s.log.Info("ACME: managing the server certificate", "domains", strings.Join(st.domains, ","),
		"directory", tmpl.CA, "tls_alpn_port", strconv.Itoa(tmpl.AltTLSALPNPort))
	return s.magic.ManageAsync(ctx, st.domains)
}

// onACMEEvent logs the certificate's life at info level; certmagic's own
// logs reach certgate's log at warn level and above only.
func (s *serverCert) onACMEEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		s.log.Info("ACME: certificate obtained", "identifier", data["identifier"], "renewal", data["renewal"])
	case "cert_failed":
		s.log.Warn("ACME: obtaining the certificate failed; certmagic retries with backoff",
			"identifier", data["identifier"], "renewal", data["renewal"], "error", fmt.Sprint(data["error"]))
	}
	return nil
}

// challengeConfig answers the TLS-ALPN-01 validator: certmagic's
// GetCertificate serves the challenge certificate for a hello offering
// only acme-tls/1, and fails the handshake when no challenge is active.
// No client certificate is asked for, and no session ticket is issued, so
// nothing from this config can be resumed into the mTLS side. maxVersion
// is 0 except in tests.
func (s *serverCert) challengeConfig(minVersion, maxVersion uint16) *tls.Config {
	return &tls.Config{
		GetCertificate:         s.magic.GetCertificate,
		NextProtos:             []string{acmeChallengeProto},
		ClientAuth:             tls.NoClientCert,
		SessionTicketsDisabled: true,
		MinVersion:             minVersion,
		MaxVersion:             maxVersion,
		// Only logs: a failed validation shows up at the ACME CA, and this
		// line tells the operator the validator did reach the proxy.
		VerifyConnection: func(cs tls.ConnectionState) error {
			s.log.Info("ACME: TLS-ALPN-01 challenge answered", "server_name", cs.ServerName,
				"tls_version", tlsVersionName(cs.Version))
			return nil
		},
	}
}

func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return tls.VersionName(v)
}

// ready fails while an ACME-managed name has no valid certificate yet.
func (s *serverCert) ready() error {
	s.mu.Lock()
	st := s.acme
	s.mu.Unlock()
	if st == nil {
		return nil
	}
	now := time.Now()
	var missing []string
	for _, d := range st.domains {
		if acmeLeaf(s.cache, d, now) == nil {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("server certificate: not yet obtained from ACME for %s", strings.Join(missing, ", "))
	}
	return nil
}

// acmeLeaf returns a cached, currently valid certificate for name.
func acmeLeaf(cache *certmagic.Cache, name string, now time.Time) *x509.Certificate {
	for _, c := range cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && now.Before(c.Leaf.NotAfter) && !now.Before(c.Leaf.NotBefore) {
			return c.Leaf
		}
	}
	return nil
}

// checkServerTLSReload refuses a reload that changes how the server
// certificate is obtained: certmagic's ACME management is set up once per
// process. Everything else in the file reloads as usual once the change
// is undone, or after a restart.
func checkServerTLSReload(old, cur *config.Config) error {
	oa, ca := old.ServerTLS.ACME, cur.ServerTLS.ACME
	switch {
	case oa == nil && ca == nil:
		return nil
	case oa == nil || ca == nil:
		return errors.New("serverTLS: switching between certFile/keyFile and acme needs a restart")
	case !reflect.DeepEqual(*oa, *ca):
		return errors.New("serverTLS.acme: changes need a restart")
	}
	return nil
}

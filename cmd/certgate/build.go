package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/proxy/assertion"
	"github.com/certgate/certgate/revocation"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/ldapdir"
)

// built is what one configuration turns into. Everything is built before
// anything is swapped in, so a broken file leaves the running state alone.
type built struct {
	cfg     *config.Config
	store   *trust.Store
	policy  *proxy.Policy
	sources []revocation.Source
	dir     trust.Directory
	users   *trust.FileDirectory // nil unless the directory is a file
	ldap    *ldapdir.Directory   // nil unless the directory is LDAP
	// ldapKey identifies the LDAP settings, CA file and password, so a
	// reload that leaves them alone keeps the directory and its cache.
	ldapKey [32]byte
	// ldapBorrowed: ldap belongs to the state in service until this one
	// replaces it, so a failed reload must not close it.
	ldapBorrowed bool
	bindings     []trust.Binding
}

func (b *built) close() {
	if b.ldap != nil && !b.ldapBorrowed {
		b.ldap.Close()
	}
}

// build turns a loaded config into a policy; rev is the revocation checker
// the policy consults (nil: none, for `validate`).
func build(cfg *config.Config, rev *revocation.Checker, log *slog.Logger) (*built, error) {
	return buildAt(cfg, rev, log, nil)
}

// buildAt is build with the clock an LDAP directory ages its cache and its
// staleness window by (nil: time.Now), so tests can move past cacheTTL and
// maxStale instead of waiting.
func buildAt(cfg *config.Config, rev *revocation.Checker, log *slog.Logger, now func() time.Time) (*built, error) {
	b := &built{cfg: cfg}
	cas := make([]trust.CA, 0, len(cfg.CAs))
	for _, c := range cfg.CAs {
		crl, err := cfg.ResolveCRLURL(c.CRL)
		if err != nil {
			return nil, err
		}
		delta, err := cfg.ResolveCRLURL(c.DeltaCRL)
		if err != nil {
			return nil, err
		}
		tc := trust.CA{
			Type:        trust.AuthorityType(c.AuthorityType),
			Cert:        c.Certificate,
			CRLURL:      crl,
			DeltaCRLURL: delta,
			OCSPURL:     c.OCSPURL,
			CRLExempt:   c.CRLExempt,
		}
		cas = append(cas, tc)
		b.sources = append(b.sources, revocation.Source{Issuer: c.Certificate, CRLURL: crl, DeltaCRLURL: delta, OCSPURL: c.OCSPURL, Exempt: c.CRLExempt})
	}
	var opts []trust.StoreOption
	if n := cfg.Limits.MaxChainLength; n > 0 {
		opts = append(opts, trust.MaxChainLength(n))
	}
	if n := cfg.Limits.MaxSANs; n > 0 {
		opts = append(opts, trust.MaxSANs(n))
	}
	if n := cfg.Limits.MinRSABits; n > 0 {
		opts = append(opts, trust.MinRSABits(n))
	}
	store, err := trust.NewStore(cas, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: trustedCertificateAuthorities: %w", cfg.File, err)
	}
	b.store = store
	for i := range b.sources {
		// A CRL signed by another key of a CA counts only when that key's
		// certificate passes path validation against this same store.
		b.sources[i].VerifySigner = store.CheckCRLSigner
	}
	clock := now
	if clock == nil {
		clock = time.Now
	}
	for i, st := range store.CAStatus(clock()) {
		if !st.Usable {
			// Not a config error (SPEC): certgate runs and refuses only the
			// chains that need this CA.
			log.Warn("trusted CA unusable", "ca", fmt.Sprintf("trustedCertificateAuthorities[%d]", i), "file", cfg.CAs[i].TrustedCertificate,
				"issuer_ski", config.FormatSKI(st.CA.SKI()), "reason", string(st.Reason), "defect", st.Defect)
		}
	}

	if d := cfg.Identity.Directory; d != nil {
		switch {
		case d.File != "":
			users, err := trust.LoadUsers(cfg.Path(d.File))
			if err != nil {
				return nil, err
			}
			b.users, b.dir = users, users
		case d.LDAP != nil:
			l, key, err := buildLDAP(cfg, d.LDAP, log, now)
			if err != nil {
				return nil, err
			}
			b.ldap, b.dir, b.ldapKey = l, l, key
		}
	}
	bindings := make([]trust.Binding, 0, len(cfg.Identity.Bindings))
	for _, bd := range cfg.Identity.Bindings {
		bindings = append(bindings, trust.Binding{Field: trust.Field(bd.CertificateField), Attribute: trust.Attribute(bd.UserAttribute)})
	}
	b.bindings = bindings

	if now == nil {
		now = time.Now
	}
	routes := make([]*proxy.Route, 0, len(cfg.Routes))
	var assertionKeys []*assertion.Key
	for i, r := range cfg.Routes {
		key := "routes[" + strconv.Itoa(i) + "]"
		rc := proxy.RouteConfig{
			Name:          r.Name,
			Kind:          string(r.Kind),
			Host:          r.Host,
			PathPrefix:    r.PathPrefix,
			Backend:       r.Backend,
			Timeout:       r.Timeout.Duration,
			NetbiosDomain: r.NetBIOSDomain,
			Autodiscover:  r.Autodiscover,
			// Web routes pass WebSocket upgrades unless the config says no.
			DisableWebSocket: r.WebSocket != nil && !*r.WebSocket,
			NoKeepAlive:      r.BackendKeepAlive != nil && !*r.BackendKeepAlive,
		}
		if p, ok := strings.CutPrefix(r.Backend, "unix:"); ok && !filepath.IsAbs(p) && !strings.HasPrefix(p, "//") {
			rc.Backend = "unix:" + cfg.Path(p)
		}
		if r.BackendCA != "" || r.BackendServerName != "" || r.BackendClientCert != "" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.BackendServerName}
			if r.BackendCA != "" {
				pool, err := loadPool(cfg.Path(r.BackendCA))
				if err != nil {
					return nil, fmt.Errorf("%s: routes[%s].backendCA: %w", cfg.File, r.Name, err)
				}
				tc.RootCAs = pool
			}
			if r.BackendClientCert != "" {
				pair, err := loadBackendClientCert(cfg, key, r, now())
				if err != nil {
					return nil, err
				}
				// Loaded here, so a reload (SIGHUP or a changed file) builds
				// a new route with the new pair and swaps it in with the
				// rest of the policy; a broken pair keeps the old one.
				// Always presented, like nginx's proxy_ssl_certificate: Go
				// would otherwise send nothing when the backend's list of
				// acceptable CAs does not name the issuer, which the backend
				// then reports as a missing certificate.
				tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			rc.BackendTLS = tc
		}
		if a := r.Assertion; a != nil {
			sg, keys, err := buildSigner(cfg, key, a)
			if err != nil {
				return nil, err
			}
			rc.Assertion = sg
			assertionKeys = append(assertionKeys, keys...)
		}
		rt, err := proxy.NewRoute(rc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		routes = append(routes, rt)
	}

	minVersion := uint16(tls.VersionTLS12)
	if cfg.ServerTLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	p := &proxy.Policy{
		Trust:             store,
		ClientCAs:         store.HintPool(),
		Binder:            trust.NewBinder(bindings, b.dir),
		Routes:            routes,
		IdentityHeader:    cfg.Identity.Header,
		StripHeaders:      cfg.Identity.StripHeaders,
		ForwardClientCert: string(cfg.Identity.ForwardClientCert),
		RejectWithHTTP:    cfg.ClientAuth.RejectWith == "http",
		MinVersion:        minVersion,
		// No directory: the certificate value is the identity.
		IdentityFromCertificate: b.dir == nil,
		JWKS:                    assertion.NewKeySet(assertionKeys...),
		JWKSPath:                cfg.JWKS.ProxyPath,
	}
	if rev != nil {
		p.Revocation = rev
	}
	b.policy = p
	return b, nil
}

func buildLDAP(cfg *config.Config, l *config.LDAP, log *slog.Logger, now func() time.Time) (*ldapdir.Directory, [32]byte, error) {
	var key [32]byte
	h := sha256.New()
	fmt.Fprintf(h, "%+v\x00", *l)
	o := ldapdir.Options{
		URL:         l.URL,
		StartTLS:    l.StartTLS,
		ServerName:  l.ServerName,
		BindDN:      l.BindDN,
		BaseDN:      l.BaseDN,
		Filter:      l.Filter,
		Timeout:     l.Timeout.Duration,
		CacheTTL:    l.CacheTTL.Duration,
		NegativeTTL: l.NegativeCacheTTL.Duration,
		MaxStale:    l.MaxStale.Duration,
		PoolSize:    l.PoolSize,
		Logger:      log.With("component", "ldap"),
		Now:         now,
		Attributes: ldapdir.Attributes{
			UserPrincipalName:  l.Attributes.UserPrincipalName,
			ProxyAddresses:     l.Attributes.ProxyAddresses,
			CertificateUserIDs: l.Attributes.CertificateUserIDs,
			AccountEnabled:     l.Attributes.AccountEnabled,
			UserAccountControl: l.Attributes.UserAccountControl,
			SessionsValidFrom:  l.Attributes.SessionsValidFrom,
		},
	}
	if l.CAFile != "" {
		pool, err := loadPool(cfg.Path(l.CAFile))
		if err != nil {
			return nil, key, fmt.Errorf("%s: identity.directory.ldap.caFile: %w", cfg.File, err)
		}
		o.RootCAs = pool
		caPEM, _ := os.ReadFile(cfg.Path(l.CAFile))
		h.Write(caPEM)
	}
	switch {
	case l.PasswordFile != "":
		pw, err := os.ReadFile(cfg.Path(l.PasswordFile))
		if err != nil {
			return nil, key, fmt.Errorf("%s: identity.directory.ldap.passwordFile: %w", cfg.File, err)
		}
		o.Password = strings.TrimRight(string(pw), "\r\n")
	case l.PasswordEnv != "":
		pw, ok := os.LookupEnv(l.PasswordEnv)
		if !ok {
			return nil, key, fmt.Errorf("%s: identity.directory.ldap.passwordEnv: $%s is not set", cfg.File, l.PasswordEnv)
		}
		o.Password = pw
	}
	h.Write([]byte{0})
	h.Write([]byte(o.Password))
	h.Sum(key[:0])
	d, err := ldapdir.New(o)
	if err != nil {
		return nil, key, fmt.Errorf("%s: identity.directory.ldap: %w", cfg.File, err)
	}
	return d, key, nil
}

// keepDirectory makes b use prev's LDAP directory when the LDAP settings did
// not change, so a reload keeps its cache: rebuilding it while the server is
// down would refuse every cached user at once.
func keepDirectory(prev, b *built) {
	if prev == nil || prev.ldap == nil || b.ldap == nil || prev.ldapKey != b.ldapKey {
		return
	}
	b.ldap.Close()
	b.ldap, b.dir, b.ldapBorrowed = prev.ldap, prev.ldap, true
	b.policy.Binder = trust.NewBinder(b.bindings, prev.ldap)
}

func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New(path + ": no PEM certificate")
	}
	return pool, nil
}

// readCertificates reads PEM (one or more CERTIFICATE blocks) or DER.
func readCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) > 0 {
		return certs, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, fmt.Errorf("%s: neither PEM certificates nor a DER certificate: %w", path, err)
	}
	return []*x509.Certificate{c}, nil
}

// loadBackendClientCert reads certgate's client certificate for an https
// backend and refuses a pair the backend would refuse too: a key that is not
// the certificate's, a certificate outside its validity, or one whose
// extended key usage excludes client authentication. Errors name both files.
func loadBackendClientCert(cfg *config.Config, key string, r config.Route, now time.Time) (tls.Certificate, error) {
	certFile, keyFile := cfg.Path(r.BackendClientCert), cfg.Path(r.BackendClientKey)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return pair, cfg.Errorf(key+".backendClientCert", "%s and %s: %s", certFile, keyFile, strings.TrimPrefix(err.Error(), "tls: "))
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return pair, cfg.Errorf(key+".backendClientCert", "%s: %v", certFile, err)
		}
	}
	switch {
	case now.After(leaf.NotAfter):
		return pair, cfg.Errorf(key+".backendClientCert", "%s (%s) expired at %s; renew it (key %s)", certFile, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339), keyFile)
	case now.Before(leaf.NotBefore):
		return pair, cfg.Errorf(key+".backendClientCert", "%s (%s) is not valid before %s (key %s)", certFile, leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339), keyFile)
	}
	if len(leaf.ExtKeyUsage) > 0 {
		ok := false
		for _, u := range leaf.ExtKeyUsage {
			ok = ok || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
		}
		if !ok {
			return pair, cfg.Errorf(key+".backendClientCert", "%s (%s) does not allow client authentication (extended key usage); the backend would refuse it", certFile, leaf.Subject)
		}
	}
	return pair, nil
}

// buildSigner loads a route's assertion keys (the first signs) and makes
// its signer. A key that cannot be read refuses the whole config, so on a
// reload the previous keys keep signing.
func buildSigner(cfg *config.Config, key string, a *config.Assertion) (*assertion.Signer, []*assertion.Key, error) {
	keys := make([]*assertion.Key, 0, len(a.Keys))
	for j, f := range a.Keys {
		k, err := assertion.LoadKey(cfg.Path(f))
		if err != nil {
			return nil, nil, cfg.Errorf(key+".assertion.keys["+strconv.Itoa(j)+"]", "%v", err)
		}
		keys = append(keys, k)
	}
	sg, err := assertion.NewSigner(assertion.Options{
		Keys:     keys,
		Issuer:   a.Issuer,
		Audience: a.Audience,
		Header:   a.Header,
		Lifetime: a.Lifetime.Duration,
		Reuse:    a.Reuse.Duration,
	})
	if err != nil {
		return nil, nil, cfg.Errorf(key+".assertion", "%v", err)
	}
	return sg, keys, nil
}

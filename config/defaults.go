package config

import (
	"path/filepath"
	"strconv"
	"time"
)

// Default values, named so that docs and tests can refer to them.
const (
	DefaultListen      = ":8443"
	DefaultAdminListen = "127.0.0.1:9090"
	DefaultHeader      = "X-Remote-User"
	DefaultLDAPFilter  = "(&(objectClass=user)({attribute}={value}))"
	DefaultMaxCRLSize  = 64 << 20
	// DefaultAssertionHeader carries a route's signed identity assertion.
	DefaultAssertionHeader = "X-Certgate-Assertion"
	// DefaultAssertionIssuer is the iss claim when a route names none.
	DefaultAssertionIssuer = "certgate"
)

// DefaultBindings are the bindings used when the file names none: the UPN
// first, then the email address against proxyAddresses, as cloud CBA does.
func DefaultBindings() []Binding {
	return []Binding{
		{CertificateField: "PrincipalName", UserAttribute: "userPrincipalName"},
		{CertificateField: "RFC822Name", UserAttribute: "proxyAddresses"},
	}
}

// applyDefaults fills every value the file left out. It is the only place
// defaults live. A key the file set explicitly is never overwritten, so an
// explicit zero reaches Validate and is judged there rather than silently
// replaced.
func applyDefaults(c *Config) {
	d := defaulter{pos: c.pos}

	d.str(&c.Listen, "listen", DefaultListen)
	d.str(&c.Admin.Listen, "admin.listen", DefaultAdminListen)
	if c.Admin.Listen == "off" {
		c.Admin.Listen = ""
	}

	d.str(&c.ServerTLS.MinVersion, "serverTLS.minVersion", "1.2")
	storage := filepath.Join(".certgate", "certmagic")
	if c.Revocation.CacheDir != "" {
		storage = filepath.Join(c.Revocation.CacheDir, "certmagic")
	}
	d.str(&c.ServerTLS.Storage, "serverTLS.storage", storage)
	if a := c.ServerTLS.ACME; a != nil {
		d.str(&a.Storage, "serverTLS.acme.storage", c.ServerTLS.Storage)
	}

	d.str((*string)(&c.ClientAuth.RejectWith), "clientAuth.rejectWith", string(RejectHTTP))

	r := &c.Revocation
	d.str((*string)(&r.OnUnavailable), "revocation.onUnavailable", string(Deny))
	d.size(&r.MaxCRLSize, "revocation.maxCRLSize", DefaultMaxCRLSize)
	d.str((*string)(&r.OCSP), "revocation.ocsp", string(OCSPOff))
	d.dur(&r.FetchTimeout, "revocation.fetchTimeout", 15*time.Second)
	d.dur(&r.MinRefresh, "revocation.minRefresh", time.Minute)
	d.dur(&r.MaxRefresh, "revocation.maxRefresh", time.Hour)

	id := &c.Identity
	if len(id.Bindings) == 0 && !d.pos.isSet("identity.bindings") {
		id.Bindings = DefaultBindings()
	}
	d.str(&id.Header, "identity.header", DefaultHeader)
	d.str((*string)(&id.ForwardClientCert), "identity.forwardClientCert", string(ForwardNone))
	if id.Directory != nil && id.Directory.LDAP != nil {
		ldapDefaults(d, id.Directory.LDAP)
	}

	for i := range c.Routes {
		rt := &c.Routes[i]
		p := "routes[" + strconv.Itoa(i) + "]"
		d.str((*string)(&rt.Kind), p+".kind", string(KindWeb))
		d.str(&rt.PathPrefix, p+".pathPrefix", "/")
		timeout := 60 * time.Second
		if rt.Kind == KindEAS {
			// EAS Ping and Sync hold a request open for up to about an hour.
			timeout = 3600 * time.Second
		}
		d.dur(&rt.Timeout, p+".timeout", timeout)
		if a := rt.Assertion; a != nil {
			d.str(&a.Issuer, p+".assertion.issuer", DefaultAssertionIssuer)
			d.str(&a.Audience, p+".assertion.audience", rt.Backend)
			d.str(&a.Header, p+".assertion.header", DefaultAssertionHeader)
			d.dur(&a.Lifetime, p+".assertion.lifetime", 60*time.Second)
			// One signature serves a connection's requests for 5 s (at most
			// half the lifetime, so a short lifetime alone is valid): a
			// signature costs several times what proxying a keep-alive
			// request does (BENCHMARKS.md).
			d.dur(&a.Reuse, p+".assertion.reuse", min(5*time.Second, a.Lifetime.Duration/2))
		}
	}

	d.str((*string)(&c.Logging.Format), "logging.format", string(LogJSON))
	d.str((*string)(&c.Logging.Level), "logging.level", string(LevelInfo))
	if !d.pos.isSet("http1.fastPath") {
		c.HTTP1.FastPath = true
	}
	if a := c.AccessLog; a != nil {
		d.str((*string)(&a.Format), "accessLog.format", string(AccessJSON))
		d.str(&a.File, "accessLog.file", "stdout")
	}

	l := &c.Limits
	d.dur(&l.HandshakeTimeout, "limits.handshakeTimeout", 10*time.Second)
	d.dur(&l.ReadHeaderTimeout, "limits.readHeaderTimeout", 10*time.Second)
	d.dur(&l.IdleTimeout, "limits.idleTimeout", 120*time.Second)
	d.size(&l.MaxHeaderBytes, "limits.maxHeaderBytes", 64<<10)
	d.int(&l.MaxConnections, "limits.maxConnections", 10000)
	d.int(&l.MaxChainLength, "limits.maxChainLength", 8)
	d.int(&l.MaxSANs, "limits.maxSANs", 64)
	d.int(&l.MinRSABits, "limits.minRSABits", 2048)
	d.int(&l.H2MaxConcurrentStreams, "limits.h2MaxConcurrentStreams", 250)
	d.int(&l.MaxUnauthenticatedPerIP, "limits.maxUnauthenticatedPerIP", 128)

	d.dur(&c.Shutdown.DrainTimeout, "shutdown.drainTimeout", 30*time.Second)
	d.dur(&c.Reload.PollInterval, "reload.pollInterval", 2*time.Second)
}

func ldapDefaults(d defaulter, l *LDAP) {
	const p = "identity.directory.ldap."
	d.str(&l.Filter, p+"filter", DefaultLDAPFilter)
	a := &l.Attributes
	d.str(&a.UserPrincipalName, p+"attributes.userPrincipalName", "userPrincipalName")
	d.str(&a.ProxyAddresses, p+"attributes.proxyAddresses", "proxyAddresses")
	d.str(&a.CertificateUserIDs, p+"attributes.certificateUserIds", "altSecurityIdentities")
	d.str(&a.UserAccountControl, p+"attributes.userAccountControl", "userAccountControl")
	d.dur(&l.Timeout, p+"timeout", 5*time.Second)
	d.dur(&l.CacheTTL, p+"cacheTTL", 5*time.Minute)
	d.dur(&l.NegativeCacheTTL, p+"negativeCacheTTL", time.Minute)
	d.dur(&l.MaxStale, p+"maxStale", time.Hour)
	d.int(&l.PoolSize, p+"poolSize", 4)
}

// defaulter sets a value only when it is zero and the file did not set the
// key. Both conditions matter: a value merged in through a YAML anchor has
// no position but is not zero.
type defaulter struct{ pos *positions }

func (d defaulter) str(v *string, path, def string) {
	if *v == "" && !d.pos.isSet(path) {
		*v = def
	}
}

func (d defaulter) int(v *int, path string, def int) {
	if *v == 0 && !d.pos.isSet(path) {
		*v = def
	}
}

func (d defaulter) size(v *Size, path string, def Size) {
	if *v == 0 && !d.pos.isSet(path) {
		*v = def
	}
}

func (d defaulter) dur(v *Duration, path string, def time.Duration) {
	if v.Duration == 0 && !d.pos.isSet(path) {
		v.Duration = def
	}
}

package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/trust"
)

// Validate checks the whole config and returns every problem found, joined,
// each naming its key path and, when known, file and line. It never
// modifies the config. CA entries must have their Certificate loaded (Load
// and Parse do this); an entry without one is an error, so that a caller who
// skipped loading fails closed.
func (c *Config) Validate() error {
	return joinErrors(c.validate(nil))
}

// validator collects errors; skipCert lists CA entries whose certificate
// failed to load and was already reported.
type validator struct {
	c        *Config
	errs     []*Error
	skipCert map[int]bool
}

func (c *Config) validate(skipCert map[int]bool) []*Error {
	v := &validator{c: c, skipCert: skipCert}
	v.listeners()
	v.serverTLS()
	v.enum("clientAuth.rejectWith", string(c.ClientAuth.RejectWith), RejectHandshake, RejectHTTP)
	v.cas()
	v.revocation()
	v.identity()
	v.routes()
	v.enum("logging.format", string(c.Logging.Format), LogJSON, LogText)
	v.enum("logging.level", string(c.Logging.Level), LevelDebug, LevelInfo, LevelWarn, LevelError)
	if a := c.AccessLog; a != nil {
		v.enum("accessLog.format", string(a.Format), AccessJSON, AccessCombined)
	}
	v.limits()
	v.positive("shutdown.drainTimeout", c.Shutdown.DrainTimeout)
	v.nonNegative("shutdown.readyzGrace", c.Shutdown.ReadyzGrace)
	v.positive("reload.pollInterval", c.Reload.PollInterval)
	if pp := c.JWKS.ProxyPath; pp != "" && (!strings.HasPrefix(pp, "/") || strings.ContainsAny(pp, "?# ")) {
		v.errf("jwks.proxyPath", "%q must be a path starting with / (no query or fragment)", pp)
	}
	return v.errs
}

func (v *validator) errf(key, format string, args ...any) {
	v.errs = append(v.errs, v.c.Errorf(key, format, args...))
}

func enumList[T ~string](allowed []T) string {
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func (v *validator) enum(key, got string, allowed ...any) {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = fmt.Sprint(a)
		if names[i] == got {
			return
		}
	}
	v.errf(key, "%q is not allowed, want one of %s", got, strings.Join(names, ", "))
}

func (v *validator) positive(key string, d Duration) {
	if d.Duration <= 0 {
		v.errf(key, "must be greater than 0, got %s", d.Duration)
	}
}

func (v *validator) nonNegative(key string, d Duration) {
	if d.Duration < 0 {
		v.errf(key, "must not be negative, got %s", d.Duration)
	}
}

func (v *validator) atLeast(key string, got, min int) {
	if got < min {
		v.errf(key, "must be at least %d, got %d", min, got)
	}
}

func (v *validator) listeners() {
	c := v.c
	if c.Listen == "" {
		v.errf("listen", "must not be empty")
	} else if err := checkHostPort(c.Listen); err != nil {
		v.errf("listen", "%v", err)
	}
	if !c.Admin.Enabled() {
		return
	}
	if err := checkHostPort(c.Admin.Listen); err != nil {
		v.errf("admin.listen", "%v", err)
		return
	}
	if sameListener(c.Listen, c.Admin.Listen) {
		// The admin listener is plain HTTP and must never share the
		// client port.
		v.errf("admin.listen", "%q overlaps listen %q; the admin listener needs its own port", c.Admin.Listen, c.Listen)
	}
}

func checkHostPort(hp string) error {
	_, port, err := net.SplitHostPort(hp)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", hp, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q has no numeric port", hp)
	}
	return nil
}

func sameListener(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

func (v *validator) serverTLS() {
	s := v.c.ServerTLS
	hasFiles := s.CertFile != "" || s.KeyFile != ""
	switch {
	case hasFiles && s.ACME != nil:
		v.errf("serverTLS.acme", "certFile/keyFile and acme are mutually exclusive; use one")
	case !hasFiles && s.ACME == nil:
		v.errf("serverTLS", "needs certFile and keyFile, or acme")
	case hasFiles && s.CertFile == "":
		v.errf("serverTLS.certFile", "is required with keyFile")
	case hasFiles && s.KeyFile == "":
		v.errf("serverTLS.keyFile", "is required with certFile")
	}
	v.enum("serverTLS.minVersion", s.MinVersion, "1.2", "1.3")
	if s.Storage == "" {
		v.errf("serverTLS.storage", "must not be empty")
	}
	if a := s.ACME; a != nil {
		if len(a.Domains) == 0 {
			v.errf("serverTLS.acme.domains", "needs at least one domain")
		}
		for i, d := range a.Domains {
			if err := checkHostname(d); err != nil {
				v.errf("serverTLS.acme.domains["+strconv.Itoa(i)+"]", "%v", err)
			}
		}
		if a.Directory != "" {
			if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
				v.errf("serverTLS.acme.directory", "%q is not an https:// URL", a.Directory)
			}
		}
		if a.Email != "" && !strings.Contains(a.Email, "@") {
			v.errf("serverTLS.acme.email", "%q is not an email address", a.Email)
		}
		if a.AltTLSALPNPort < 0 || a.AltTLSALPNPort > 65535 {
			v.errf("serverTLS.acme.altTLSALPNPort", "%d is not a port", a.AltTLSALPNPort)
		}
	}
}

func (v *validator) cas() {
	c := v.c
	if len(c.CAs) == 0 {
		v.errf("trustedCertificateAuthorities", "needs at least one root CA")
		return
	}
	roots, badTypes := 0, 0
	for i := range c.CAs {
		ca := &c.CAs[i]
		p := "trustedCertificateAuthorities[" + strconv.Itoa(i) + "]"
		switch ca.AuthorityType {
		case Root:
			roots++
		case Intermediate:
		case "":
			badTypes++
			v.errf(p+".authorityType", "is required (root or intermediate)")
		default:
			badTypes++
			hint := ""
			if t := AuthorityType(strings.ToLower(string(ca.AuthorityType))); t == Root || t == Intermediate {
				hint = fmt.Sprintf(" (lower case: %s)", t)
			}
			v.errf(p+".authorityType", "%q is not allowed, want one of %s%s", ca.AuthorityType, enumList([]AuthorityType{Root, Intermediate}), hint)
		}
		v.caURLs(p, ca)
		if ca.TrustedCertificate == "" {
			v.errf(p+".trustedCertificate", "is required")
			continue
		}
		if v.skipCert[i] {
			continue
		}
		cert := ca.Certificate
		if cert == nil {
			v.errf(p+".trustedCertificate", "%s was not loaded (use config.Load or config.Parse)", ca.TrustedCertificate)
			continue
		}
		// A CA that is not a CA, expired, badly signed, or shares its key
		// identifier with another entry (a renewed or cross-signed CA) is
		// not a config error: the trust store reports it as unusable at
		// decision time and `certgate validate` warns. Only what could never
		// load is refused here.
		if ca.TrustedIssuer != "" && !issuerMatches(ca.TrustedIssuer, cert) {
			v.errf(p+".trustedIssuer", "%q does not match the certificate's subject %q", ca.TrustedIssuer, SubjectString(cert))
		}
		if ca.TrustedIssuerSKI != "" {
			want, err := ParseSKI(ca.TrustedIssuerSKI)
			switch {
			case err != nil:
				v.errf(p+".trustedIssuerSKI", "%v", err)
			case !bytes.Equal(want, KeyID(cert)):
				v.errf(p+".trustedIssuerSKI", "does not match the certificate's SKI %s", FormatSKI(KeyID(cert)))
			}
		}
	}
	if roots == 0 && badTypes == 0 {
		// With a type misspelt, the missing root is that error's knock-on.
		v.errf("trustedCertificateAuthorities", "needs at least one CA with authorityType: root; an intermediate is never a trust anchor")
	}
}

func (v *validator) caURLs(p string, ca *CA) {
	if ca.CRL != "" {
		if _, err := checkCRLURL(ca.CRL); err != nil {
			v.errf(p+".crlDistributionPoint", "%v", err)
		}
	}
	if ca.DeltaCRL != "" {
		if ca.CRL == "" {
			v.errf(p+".deltaCrlDistributionPoint", "requires crlDistributionPoint (a delta CRL only amends a base CRL)")
		} else if _, err := checkCRLURL(ca.DeltaCRL); err != nil {
			v.errf(p+".deltaCrlDistributionPoint", "%v", err)
		}
	}
	switch {
	case ca.CRL == "" && !ca.CRLExempt:
		v.errf(p+".crlDistributionPoint", "is required; to trust this CA without revocation checks say crlExempt: true")
	case ca.CRL != "" && ca.CRLExempt:
		v.errf(p+".crlExempt", "is true but crlDistributionPoint is set; remove one")
	}
	if ca.OCSPURL != "" {
		if u, err := url.Parse(ca.OCSPURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errf(p+".ocspUrl", "%q is not an http:// or https:// URL", ca.OCSPURL)
		}
	}
}

// checkCRLURL accepts the URL forms [Config.ResolveCRLURL] documents and
// refuses every other with the form to write instead.
func checkCRLURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, errors.Unwrap(err))
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("%q has no host", s)
		}
	case "file":
		switch {
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			return nil, fmt.Errorf("%q: a file: URL has no user, query or fragment", s)
		case u.Host != "" && u.Host != "localhost":
			rest := strings.TrimPrefix(s, "file://")
			return nil, fmt.Errorf("%q names the host %q; write file:%s for a file relative to the config's folder, or file:///absolute/path", s, u.Host, rest)
		case u.Opaque == "" && u.Path == "":
			return nil, fmt.Errorf("%q has no path", s)
		case u.Opaque == "" && !strings.HasPrefix(u.Path, "/"):
			return nil, fmt.Errorf("%q has no path", s)
		}
	case "":
		return nil, fmt.Errorf("%q has no scheme: want an http://, https:// or file: URL (file:crl/root.crl is relative to the config's folder)", s)
	default:
		return nil, fmt.Errorf("%q: want an http://, https:// or file:// URL", s)
	}
	return u, nil
}

func (v *validator) revocation() {
	r := v.c.Revocation
	v.enum("revocation.onUnavailable", string(r.OnUnavailable), Deny, Allow)
	v.enum("revocation.ocsp", string(r.OCSP), OCSPOff, OCSPSoft, OCSPHard)
	if r.MaxCRLSize <= 0 {
		v.errf("revocation.maxCRLSize", "must be greater than 0")
	}
	v.positive("revocation.fetchTimeout", r.FetchTimeout)
	v.positive("revocation.minRefresh", r.MinRefresh)
	v.positive("revocation.maxRefresh", r.MaxRefresh)
	if r.MaxRefresh.Duration < r.MinRefresh.Duration {
		v.errf("revocation.maxRefresh", "%s is less than minRefresh %s", r.MaxRefresh.Duration, r.MinRefresh.Duration)
	}
}

// The certificate fields and user attributes of SPEC's bindings. They are
// repeated here rather than imported because config imports no other
// certgate package.
var (
	certificateFields = []string{"PrincipalName", "RFC822Name", "SubjectKeyIdentifier", "SHA1PublicKey", "IssuerAndSerialNumber", "Subject", "IssuerAndSubject"}
	userAttributes    = []string{"userPrincipalName", "proxyAddresses", "certificateUserIds"}
)

func (v *validator) identity() {
	id := v.c.Identity
	if len(id.Bindings) == 0 {
		v.errf("identity.bindings", "needs at least one binding (or leave the key out for the defaults)")
	}
	seen := map[Binding]int{}
	for i, b := range id.Bindings {
		p := "identity.bindings[" + strconv.Itoa(i) + "]"
		if !contains(certificateFields, b.CertificateField) {
			v.errf(p+".certificateField", "%q is not allowed, want one of %s", b.CertificateField, strings.Join(certificateFields, ", "))
		}
		if !contains(userAttributes, b.UserAttribute) {
			v.errf(p+".userAttribute", "%q is not allowed, want one of %s", b.UserAttribute, strings.Join(userAttributes, ", "))
		}
		if j, dup := seen[b]; dup {
			v.errf(p, "repeats identity.bindings[%d]", j)
		}
		if id.RefuseWeakMappings && (trust.Binding{Field: trust.Field(b.CertificateField), Attribute: trust.Attribute(b.UserAttribute)}).Weak() {
			v.errf(p, "%s to certificateUserIds is a weak certificate mapping, refused by identity.refuseWeakMappings (strong ones: IssuerAndSerialNumber, SubjectKeyIdentifier, SHA1PublicKey)", b.CertificateField)
		}
		seen[b] = i
	}
	if err := checkIdentityHeader(id.Header); err != nil {
		v.errf("identity.header", "%v", err)
	}
	for i, h := range id.StripHeaders {
		if err := checkStripHeader(h); err != nil {
			v.errf(fmt.Sprintf("identity.stripHeaders[%d]", i), "%v", err)
		}
	}
	v.enum("identity.forwardClientCert", string(id.ForwardClientCert), ForwardNone, ForwardRFC9440, ForwardXFCC)
	if d := id.Directory; d != nil {
		switch {
		case d.File != "" && d.LDAP != nil:
			v.errf("identity.directory", "file and ldap are mutually exclusive; use one")
		case d.File == "" && d.LDAP == nil:
			v.errf("identity.directory", "needs file or ldap (leave directory out to use the certificate value as the identity)")
		case d.LDAP != nil:
			v.ldap(d.LDAP)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// reservedHeaders are set or stripped by the proxy itself; using one as the
// identity header would let it be confused with transport or forwarding data.
var reservedHeaders = []string{
	"host", "connection", "content-length", "content-type", "transfer-encoding", "te", "trailer", "upgrade",
	"keep-alive", "proxy-authorization", "proxy-connection", "authorization", "cookie",
	"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
	"client-cert", "client-cert-chain", "x-forwarded-client-cert",
}

func checkIdentityHeader(h string) error {
	if err := checkHeaderName(h); err != nil {
		return err
	}
	if strings.Contains(h, "_") {
		// CGI-style servers merge X_Remote_User into X-Remote-User; an
		// underscore name cannot be stripped reliably from client input.
		return fmt.Errorf("%q contains an underscore; use dashes", h)
	}
	if contains(reservedHeaders, strings.ToLower(h)) {
		return fmt.Errorf("%q is reserved for the proxy; pick another name", h)
	}
	return nil
}

// checkStripHeader accepts any field name a client could send, except the
// hop-by-hop and framing headers the proxy must read itself: removing Host
// or Content-Length would not strip an identity, it would break the request.
func checkStripHeader(h string) error {
	if err := checkHeaderName(h); err != nil {
		return err
	}
	switch strings.ToLower(strings.ReplaceAll(h, "_", "-")) {
	case "host", "connection", "content-length", "content-type", "transfer-encoding", "te", "trailer", "upgrade", "expect":
		return fmt.Errorf("%q frames or routes the request and cannot be stripped", h)
	}
	return nil
}

// checkHeaderName refuses an empty name and one that is not an RFC 9110 token.
func checkHeaderName(h string) error {
	if h == "" {
		return fmt.Errorf("must not be empty")
	}
	for _, r := range h {
		if !isTokenChar(r) {
			return fmt.Errorf("%q is not a valid header name", h)
		}
	}
	return nil
}

// isTokenChar reports whether r may appear in an HTTP field name (RFC 9110 tchar).
func isTokenChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return r < 128 && strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func (v *validator) ldap(l *LDAP) {
	const p = "identity.directory.ldap."
	u, err := url.Parse(l.URL)
	switch {
	case l.URL == "":
		v.errf(p+"url", "is required")
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "":
		v.errf(p+"url", "%q is not an ldaps:// or ldap:// URL", l.URL)
	case u.Scheme == "ldaps" && l.StartTLS:
		v.errf(p+"startTLS", "is for ldap:// URLs; ldaps:// is TLS already")
	case u.Scheme == "ldap" && !l.StartTLS && l.BindDN != "" && !isLoopback(u.Hostname()):
		v.errf(p+"url", "%q without startTLS would send the bind password in clear; use ldaps:// or startTLS: true", l.URL)
	}
	if l.BindDN != "" {
		switch {
		case l.PasswordFile == "" && l.PasswordEnv == "":
			v.errf(p+"bindDN", "needs passwordFile or passwordEnv")
		case l.PasswordFile != "" && l.PasswordEnv != "":
			v.errf(p+"passwordEnv", "passwordFile and passwordEnv are mutually exclusive; use one")
		}
	} else if l.PasswordFile != "" || l.PasswordEnv != "" {
		v.errf(p+"bindDN", "is required when a password is given")
	}
	if l.BaseDN == "" {
		v.errf(p+"baseDN", "is required")
	}
	if err := checkFilter(l.Filter); err != nil {
		v.errf(p+"filter", "%v", err)
	}
	a := l.Attributes
	for _, at := range []struct{ key, val string }{
		{"userPrincipalName", a.UserPrincipalName}, {"proxyAddresses", a.ProxyAddresses},
		{"certificateUserIds", a.CertificateUserIDs}, {"accountEnabled", a.AccountEnabled},
		{"userAccountControl", a.UserAccountControl}, {"sessionsValidFrom", a.SessionsValidFrom},
	} {
		if at.val != "" && !isLDAPAttr(at.val) {
			v.errf(p+"attributes."+at.key, "%q is not an LDAP attribute name", at.val)
		}
	}
	if a.UserPrincipalName == "" {
		v.errf(p+"attributes.userPrincipalName", "is required: it is the identity passed to backends")
	}
	mapped := map[string]string{"userPrincipalName": a.UserPrincipalName, "proxyAddresses": a.ProxyAddresses, "certificateUserIds": a.CertificateUserIDs}
	for i, b := range v.c.Identity.Bindings {
		if name, known := mapped[b.UserAttribute]; known && name == "" {
			v.errf("identity.bindings["+strconv.Itoa(i)+"].userAttribute", "%s has no LDAP attribute (%sattributes.%s is empty)", b.UserAttribute, p, b.UserAttribute)
		}
	}
	v.positive(p+"timeout", l.Timeout)
	v.nonNegative(p+"cacheTTL", l.CacheTTL)
	v.nonNegative(p+"negativeCacheTTL", l.NegativeCacheTTL)
	v.nonNegative(p+"maxStale", l.MaxStale)
	if l.PoolSize < 1 || l.PoolSize > 256 {
		v.errf(p+"poolSize", "must be between 1 and 256, got %d", l.PoolSize)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkFilter checks that an LDAP filter template has both placeholders and
// balanced parentheses (values are escaped by the directory when filled in).
func checkFilter(f string) error {
	if !strings.Contains(f, "{attribute}") || !strings.Contains(f, "{value}") {
		return fmt.Errorf("%q must contain {attribute} and {value}", f)
	}
	if !strings.HasPrefix(f, "(") {
		return fmt.Errorf("%q must start with (", f)
	}
	depth := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("%q has an unbalanced )", f)
			}
		}
	}
	if depth != 0 {
		return fmt.Errorf("%q has an unbalanced (", f)
	}
	return nil
}

// isLDAPAttr accepts an attribute descriptor (RFC 4512: a letter, then
// letters, digits and hyphens) or a numeric OID.
func isLDAPAttr(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		for _, part := range strings.Split(s, ".") {
			if part == "" || strings.Trim(part, "0123456789") != "" {
				return false
			}
		}
		return true
	}
	for i, r := range s {
		letter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return true
}

func (v *validator) routes() {
	c := v.c
	if len(c.Routes) == 0 {
		v.errf("routes", "needs at least one route")
		return
	}
	names := map[string]int{}
	places := map[string]int{}
	for i, r := range c.Routes {
		p := "routes[" + strconv.Itoa(i) + "]"
		switch {
		case r.Name == "":
			v.errf(p+".name", "is required")
		case !isRouteName(r.Name):
			v.errf(p+".name", "%q may use only letters, digits, '.', '_' and '-' (it is a metric label)", r.Name)
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			v.errf(p+".name", "%q is already the name of routes[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		v.enum(p+".kind", string(r.Kind), KindEAS, KindWeb)
		if r.Host != "" {
			if err := checkHostname(r.Host); err != nil {
				v.errf(p+".host", "%v", err)
			}
		}
		if !strings.HasPrefix(r.PathPrefix, "/") {
			v.errf(p+".pathPrefix", "%q must start with /", r.PathPrefix)
		}
		// Paths are matched case-insensitively on EAS routes (IIS is), so
		// compare them that way.
		place := strings.ToLower(r.Host) + " " + strings.ToLower(r.PathPrefix)
		if j, dup := places[place]; dup {
			v.errf(p+".pathPrefix", "routes[%d] already serves host %q path %q", j, c.Routes[j].Host, c.Routes[j].PathPrefix)
		} else {
			places[place] = i
		}
		v.backend(p, r)
		v.positive(p+".timeout", r.Timeout)
		if r.Kind != KindEAS {
			if r.NetBIOSDomain != "" {
				v.errf(p+".netbiosDomain", "is only for kind: eas")
			}
			if r.Autodiscover {
				v.errf(p+".autodiscover", "is only for kind: eas")
			}
		} else if r.WebSocket != nil && *r.WebSocket {
			// A tunnel would skip every per-request EAS check.
			v.errf(p+".websocket", "is only for kind: web; eas routes never switch protocols")
		}
	}
}

func (v *validator) backend(p string, r Route) {
	if r.Backend == "" {
		v.errf(p+".backend", "is required")
		return
	}
	isHTTPS := false
	if sock, ok := strings.CutPrefix(r.Backend, "unix:"); ok {
		if sock == "" {
			v.errf(p+".backend", "%q has no socket path", r.Backend)
		}
	} else {
		u, err := url.Parse(r.Backend)
		switch {
		case !strings.Contains(r.Backend, "://"):
			// url.Parse reads "127.0.0.1:8080" as a bad path and
			// "localhost:8080" as the scheme "localhost".
			v.errf(p+".backend", "%q has no scheme: write http://%s (or https://, or unix:/path for a socket)", r.Backend, r.Backend)
		case err != nil:
			v.errf(p+".backend", "%q is not a URL: %v", r.Backend, errors.Unwrap(err))
		case u.Scheme != "http" && u.Scheme != "https":
			v.errf(p+".backend", "%q: want http://, https:// or unix:/path", r.Backend)
		case u.Host == "":
			v.errf(p+".backend", "%q has no host", r.Backend)
		case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			v.errf(p+".backend", "%q must not have a query, fragment or user info", r.Backend)
		}
		isHTTPS = err == nil && u.Scheme == "https"
	}
	if !isHTTPS {
		if r.BackendCA != "" {
			v.errf(p+".backendCA", "is only for https:// backends")
		}
		if r.BackendServerName != "" {
			v.errf(p+".backendServerName", "is only for https:// backends")
		}
		if r.BackendClientCert != "" {
			v.errf(p+".backendClientCert", "is only for https:// backends")
		}
	}
	switch {
	case r.BackendClientCert != "" && r.BackendClientKey == "":
		v.errf(p+".backendClientKey", "is required with backendClientCert")
	case r.BackendClientCert == "" && r.BackendClientKey != "":
		v.errf(p+".backendClientCert", "is required with backendClientKey")
	}
	v.assertion(p, r)
}

func (v *validator) assertion(p string, r Route) {
	a := r.Assertion
	if a == nil {
		return
	}
	p += ".assertion"
	if len(a.Keys) == 0 {
		v.errf(p+".keys", "needs at least one key file (the first signs)")
	}
	seen := map[string]int{}
	for i, k := range a.Keys {
		if k == "" {
			v.errf(p+".keys["+strconv.Itoa(i)+"]", "must not be empty")
		} else if j, dup := seen[k]; dup {
			v.errf(p+".keys["+strconv.Itoa(i)+"]", "repeats keys[%d]", j)
		}
		seen[k] = i
	}
	if a.Issuer == "" {
		v.errf(p+".issuer", "must not be empty")
	}
	if a.Audience == "" {
		v.errf(p+".audience", "must not be empty")
	}
	if err := checkIdentityHeader(a.Header); err != nil {
		v.errf(p+".header", "%v", err)
	} else if strings.EqualFold(a.Header, v.c.Identity.Header) {
		v.errf(p+".header", "%q is the identity header; pick another name", a.Header)
	}
	if a.Lifetime.Duration < time.Second {
		v.errf(p+".lifetime", "must be at least 1s (claims count whole seconds), got %s", a.Lifetime.Duration)
	}
	switch {
	case a.Reuse.Duration < 0:
		v.errf(p+".reuse", "must not be negative, got %s", a.Reuse.Duration)
	case a.Reuse.Duration >= a.Lifetime.Duration && a.Lifetime.Duration > 0:
		v.errf(p+".reuse", "%s must be shorter than lifetime %s, so a reused assertion still has time left", a.Reuse.Duration, a.Lifetime.Duration)
	}
}

func isRouteName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// checkHostname accepts a DNS name without port or trailing dot.
func checkHostname(h string) error {
	if len(h) > 253 {
		return fmt.Errorf("%q is longer than 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a host name", h)
			}
		}
	}
	return nil
}

func (v *validator) limits() {
	l := v.c.Limits
	v.positive("limits.handshakeTimeout", l.HandshakeTimeout)
	v.positive("limits.readHeaderTimeout", l.ReadHeaderTimeout)
	v.nonNegative("limits.idleTimeout", l.IdleTimeout)
	if l.MaxHeaderBytes < 1<<10 || l.MaxHeaderBytes > 16<<20 {
		v.errf("limits.maxHeaderBytes", "must be between 1KiB and 16MiB, got %s", l.MaxHeaderBytes)
	}
	v.atLeast("limits.maxConnections", l.MaxConnections, 1)
	v.atLeast("limits.maxChainLength", l.MaxChainLength, 1)
	v.atLeast("limits.maxSANs", l.MaxSANs, 1)
	v.atLeast("limits.minRSABits", l.MinRSABits, 1024)
	v.atLeast("limits.h2MaxConcurrentStreams", l.H2MaxConcurrentStreams, 1)
	v.atLeast("limits.maxUnauthenticatedPerIP", l.MaxUnauthenticatedPerIP, 1)
}

// TLSMinVersion returns serverTLS.minVersion as a crypto/tls version number.
func (s ServerTLS) TLSMinVersion() uint16 {
	if s.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

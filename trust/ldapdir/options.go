package ldapdir

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Defaults for the zero values of [Options].
const (
	DefaultFilter      = "(&(objectClass=user)({attribute}={value}))"
	DefaultTimeout     = 5 * time.Second
	DefaultCacheTTL    = 5 * time.Minute
	DefaultNegativeTTL = time.Minute
	DefaultMaxStale    = time.Hour
	DefaultPoolSize    = 4
	DefaultCacheSize   = 100000
)

// Options configure a [Directory]. Zero values take the defaults above.
type Options struct {
	// URL is ldaps://host[:port] or ldap://host[:port] (the latter only with
	// StartTLS).
	URL      string
	StartTLS bool
	// RootCAs verify the server's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// ServerName is the name checked in the server's certificate; empty
	// means the URL's host.
	ServerName string
	// BindDN and Password authenticate each connection with a simple bind;
	// both empty means anonymous. The caller reads the password from a file
	// or the environment; this package never logs it.
	BindDN   string
	Password string
	BaseDN   string
	// Filter is the search filter template with {attribute} and {value};
	// default [DefaultFilter].
	Filter     string
	Attributes Attributes
	// Timeout bounds each operation: dial, TLS, bind, search. Default 5s.
	Timeout time.Duration
	// CacheTTL is how long found users are served without asking again.
	CacheTTL time.Duration
	// NegativeTTL is how long "no such user" is served without asking again.
	NegativeTTL time.Duration
	// MaxStale is how long past its TTL a cached answer is still served
	// while the server cannot be reached.
	MaxStale time.Duration
	// PoolSize bounds the open connections.
	PoolSize int
	// CacheSize bounds the cached answers.
	CacheSize int
	// Logger receives state changes (server lost, server back); nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for cache ages and the staleness window; nil means
	// time.Now. Socket deadlines always use the real clock.
	Now func() time.Time
}

// Attributes name the LDAP attributes that hold the user's fields.
type Attributes struct {
	// UserPrincipalName, default "userPrincipalName".
	UserPrincipalName string
	// ProxyAddresses, default "proxyAddresses".
	ProxyAddresses string
	// CertificateUserIDs holds values such as X509:<PN>alice@contoso.com;
	// default "altSecurityIdentities", AD's attribute for them.
	CertificateUserIDs string
	// AccountEnabled is an LDAP Boolean attribute (TRUE/FALSE); "" = unused.
	// An entry without it is disabled.
	AccountEnabled string
	// UserAccountControl is AD's flags attribute, where bit 0x2 means
	// disabled; "" = unused. An entry without it is disabled.
	UserAccountControl string
	// SessionsValidFrom holds stsRefreshTokensValidFrom as RFC 3339 or
	// GeneralizedTime; "" = unused.
	SessionsValidFrom string
}

// LogValue keeps the password out of logs when Options are logged whole.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", o.URL),
		slog.Bool("startTLS", o.StartTLS),
		slog.String("bindDN", o.BindDN),
		slog.Bool("password", o.Password != ""),
		slog.String("baseDN", o.BaseDN),
		slog.String("filter", o.Filter),
	)
}

// GoString keeps the password out of fmt's %#v.
func (o Options) GoString() string { return o.String() }

// String keeps the password out of fmt's %v and %+v.
func (o Options) String() string {
	pw := ""
	if o.Password != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("ldapdir.Options{URL:%q StartTLS:%t BindDN:%q Password:%s BaseDN:%q Filter:%q}",
		o.URL, o.StartTLS, o.BindDN, pw, o.BaseDN, o.Filter)
}

// settings are validated Options with defaults applied.
type settings struct {
	Options
	addr   string // host:port to dial
	ldaps  bool
	filter filterTemplate
	attrs  []string // attributes requested in every search
	logger *slog.Logger
	now    func() time.Time
	errs   []error
}

func (s *settings) fail(format string, args ...any) {
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

// newSettings applies defaults and validates without touching o.
func newSettings(o Options) (*settings, error) {
	s := &settings{Options: o}
	s.applyDefaults()
	s.validateURL()
	if s.BaseDN == "" {
		s.fail("baseDN is required")
	} else if _, err := ldap.ParseDN(s.BaseDN); err != nil {
		s.fail("baseDN %q: %v", s.BaseDN, err)
	}
	if s.BindDN == "" && s.Password != "" {
		s.fail("password given without bindDN")
	}
	if s.BindDN != "" {
		if s.Password == "" {
			s.fail("bindDN %q has no password", s.BindDN)
		}
		if _, err := ldap.ParseDN(s.BindDN); err != nil {
			s.fail("bindDN %q: %v", s.BindDN, err)
		}
	}
	ft, err := parseFilterTemplate(s.Filter)
	if err != nil {
		s.fail("filter: %v", err)
	}
	s.filter = ft
	s.validateAttributes()
	for name, d := range map[string]time.Duration{
		"timeout": s.Timeout, "cacheTTL": s.CacheTTL, "negativeTTL": s.NegativeTTL, "maxStale": s.MaxStale,
	} {
		if d < 0 {
			s.fail("%s must not be negative, got %v", name, d)
		}
	}
	if s.PoolSize < 0 {
		s.fail("poolSize must not be negative, got %d", s.PoolSize)
	}
	if s.CacheSize < 0 {
		s.fail("cacheSize must not be negative, got %d", s.CacheSize)
	}
	if len(s.errs) > 0 {
		return nil, fmt.Errorf("ldapdir: %w", errors.Join(s.errs...))
	}
	return s, nil
}

func (s *settings) applyDefaults() {
	if s.Filter == "" {
		s.Filter = DefaultFilter
	}
	a := &s.Attributes
	if a.UserPrincipalName == "" {
		a.UserPrincipalName = "userPrincipalName"
	}
	if a.ProxyAddresses == "" {
		a.ProxyAddresses = "proxyAddresses"
	}
	if a.CertificateUserIDs == "" {
		a.CertificateUserIDs = "altSecurityIdentities"
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.CacheTTL == 0 {
		s.CacheTTL = DefaultCacheTTL
	}
	if s.NegativeTTL == 0 {
		s.NegativeTTL = DefaultNegativeTTL
	}
	if s.MaxStale == 0 {
		s.MaxStale = DefaultMaxStale
	}
	if s.PoolSize == 0 {
		s.PoolSize = DefaultPoolSize
	}
	if s.CacheSize == 0 {
		s.CacheSize = DefaultCacheSize
	}
	s.logger = s.Logger
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.now = s.Now
	if s.now == nil {
		s.now = time.Now
	}
}

func (s *settings) validateURL() {
	if s.URL == "" {
		s.fail("url is required")
		return
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		s.fail("url: %v", err)
		return
	}
	if u.User != nil {
		s.fail("url %q: credentials belong in bindDN and the password file, not the URL", u.Redacted())
		return
	}
	if u.Host == "" || u.Hostname() == "" {
		s.fail("url %q has no host", s.URL)
		return
	}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "ldaps":
		s.ldaps = true
		if s.StartTLS {
			s.fail("url %q: startTLS is for ldap:// URLs; ldaps:// is TLS from the start", s.URL)
		}
		if port == "" {
			port = ldap.DefaultLdapsPort
		}
	case "ldap":
		if !s.StartTLS {
			s.fail("url %q: ldap:// needs startTLS, or use ldaps://: the bind password and user data would cross the network in clear", s.URL)
		}
		if port == "" {
			port = ldap.DefaultLdapPort
		}
	default:
		s.fail("url %q: scheme must be ldaps or ldap (with startTLS)", s.URL)
		return
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		s.fail("url %q: give the base DN in baseDN, not in the URL", s.URL)
	}
	s.addr = net.JoinHostPort(u.Hostname(), port)
	if s.ServerName == "" {
		s.ServerName = u.Hostname()
	}
}

func (s *settings) validateAttributes() {
	a := s.Attributes
	named := []struct{ key, v string }{
		{"userPrincipalName", a.UserPrincipalName},
		{"proxyAddresses", a.ProxyAddresses},
		{"certificateUserIds", a.CertificateUserIDs},
		{"accountEnabled", a.AccountEnabled},
		{"userAccountControl", a.UserAccountControl},
		{"sessionsValidFrom", a.SessionsValidFrom},
	}
	for _, n := range named {
		if n.v == "" {
			continue
		}
		if !validAttributeName(n.v) {
			s.fail("attributes.%s: %q is not an LDAP attribute name", n.key, n.v)
			continue
		}
		s.attrs = append(s.attrs, n.v)
	}
}

// validAttributeName accepts RFC 4512 descr (keystring) and numericoid, the
// only forms that are safe to paste into a filter unescaped.
func validAttributeName(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		// numericoid: number *( DOT number )
		prevDot := true
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c >= '0' && c <= '9':
				prevDot = false
			case c == '.' && !prevDot:
				prevDot = true
			default:
				return false
			}
		}
		return !prevDot
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(c >= '0' && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

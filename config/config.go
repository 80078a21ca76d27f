package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config is certgate's configuration. The YAML keys are the camelCase names
// in the field tags; SPEC.md and testdata/full.yaml document each one.
type Config struct {
	Listen     string     `yaml:"listen"`
	Admin      Admin      `yaml:"admin"`
	ServerTLS  ServerTLS  `yaml:"serverTLS"`
	ClientAuth ClientAuth `yaml:"clientAuth"`
	CAs        []CA       `yaml:"trustedCertificateAuthorities"`
	Revocation Revocation `yaml:"revocation"`
	Identity   Identity   `yaml:"identity"`
	Routes     []Route    `yaml:"routes"`
	Logging    Logging    `yaml:"logging"`
	AccessLog  *AccessLog `yaml:"accessLog"`
	HTTP1      HTTP1      `yaml:"http1"`
	Limits     Limits     `yaml:"limits"`
	Shutdown   Shutdown   `yaml:"shutdown"`
	Reload     Reload     `yaml:"reload"`
	JWKS       JWKS       `yaml:"jwks"`

	// File is the name the config was read from, used in error messages.
	File string `yaml:"-"`
	// Dir is the folder relative paths are resolved against.
	Dir string `yaml:"-"`

	pos *positions
}

// Admin is the plain-HTTP admin listener (/metrics, /healthz, /readyz).
type Admin struct {
	// Listen is host:port; empty means disabled (write "" or "off").
	Listen string `yaml:"listen"`
	// AllowedHosts are DNS names, besides the listener's own address,
	// that requests may name in Host (IP literals and localhost always
	// may): anything else is a DNS-rebinding page.
	AllowedHosts []string `yaml:"allowedHosts"`
	// TokenFile holds a bearer token the status pages and POST endpoints
	// require; without one they are off on a non-loopback listener.
	TokenFile string `yaml:"tokenFile"`
}

// Enabled reports whether the admin listener is on.
func (a Admin) Enabled() bool { return a.Listen != "" }

// ServerTLS is the proxy's own certificate: static files or ACME, never both.
type ServerTLS struct {
	CertFile   string `yaml:"certFile"`
	KeyFile    string `yaml:"keyFile"`
	ACME       *ACME  `yaml:"acme"`
	MinVersion string `yaml:"minVersion"` // "1.2" or "1.3"
	// Storage is certmagic's storage folder (OCSP staples, ACME state).
	Storage string `yaml:"storage"`
	// SessionTicketKeyFile holds 32-byte session ticket keys shared by a fleet.
	SessionTicketKeyFile string `yaml:"sessionTicketKeyFile"`
}

// ACME obtains the server certificate from an ACME CA.
type ACME struct {
	Domains   []string `yaml:"domains"`
	Email     string   `yaml:"email"`
	Directory string   `yaml:"directory"` // empty: certmagic's default CA
	// Storage defaults to serverTLS.storage.
	Storage        string `yaml:"storage"`
	TrustedRoots   string `yaml:"trustedRoots"` // PEM roots for a private ACME CA
	AltTLSALPNPort int    `yaml:"altTLSALPNPort"`
}

// ClientAuth says how rejected clients are told.
type ClientAuth struct {
	RejectWith RejectWith `yaml:"rejectWith"`
}

// CA is one trusted certificate authority.
type CA struct {
	AuthorityType      AuthorityType `yaml:"authorityType"`
	TrustedCertificate string        `yaml:"trustedCertificate"`
	CRL                string        `yaml:"crlDistributionPoint"`
	DeltaCRL           string        `yaml:"deltaCrlDistributionPoint"`
	TrustedIssuer      string        `yaml:"trustedIssuer"`
	TrustedIssuerSKI   string        `yaml:"trustedIssuerSKI"`
	// CRLExempt must be true for a CA without a CRL URL: trusting a CA
	// without revocation checks is never implicit.
	CRLExempt bool   `yaml:"crlExempt"`
	OCSPURL   string `yaml:"ocspUrl"`

	// Certificate is TrustedCertificate parsed by Load or Parse.
	Certificate *x509.Certificate `yaml:"-"`
}

// Revocation configures CRL and OCSP checking of client certificates.
type Revocation struct {
	OnUnavailable OnUnavailable `yaml:"onUnavailable"`
	CacheDir      string        `yaml:"cacheDir"`
	MaxCRLSize    Size          `yaml:"maxCRLSize"`
	OCSP          OCSPMode      `yaml:"ocsp"`
	FetchTimeout  Duration      `yaml:"fetchTimeout"`
	MinRefresh    Duration      `yaml:"minRefresh"`
	MaxRefresh    Duration      `yaml:"maxRefresh"`
}

// Identity binds certificates to users and says how the identity is passed on.
type Identity struct {
	Bindings []Binding `yaml:"bindings"`
	// Directory is nil when the file leaves it out: the identity is then
	// the certificate value itself.
	Directory *Directory `yaml:"directory"`
	Header    string     `yaml:"header"`
	// StripHeaders are further request headers the backend trusts from
	// certgate (SOGo's x-webobjects-*, a PHP app's REMOTE_USER twin):
	// removed from every client request, in every case and underscore
	// spelling, like the identity header.
	StripHeaders      []string          `yaml:"stripHeaders"`
	ForwardClientCert ForwardClientCert `yaml:"forwardClientCert"`
	// RefuseWeakMappings refuses bindings that are weak certificate
	// mappings (trust.Binding.Weak), as AD's full enforcement mode does.
	RefuseWeakMappings bool `yaml:"refuseWeakMappings"`
}

// Binding maps one certificate field to one user attribute.
type Binding struct {
	CertificateField string `yaml:"certificateField"`
	UserAttribute    string `yaml:"userAttribute"`
}

// Directory is where users are looked up: a file or LDAP, exactly one.
type Directory struct {
	File string `yaml:"file"`
	LDAP *LDAP  `yaml:"ldap"`
}

// LDAP is an LDAP or Active Directory user directory.
type LDAP struct {
	URL        string `yaml:"url"`
	StartTLS   bool   `yaml:"startTLS"`
	CAFile     string `yaml:"caFile"`
	ServerName string `yaml:"serverName"`
	BindDN     string `yaml:"bindDN"`
	// There is deliberately no inline password key.
	PasswordFile     string         `yaml:"passwordFile"`
	PasswordEnv      string         `yaml:"passwordEnv"`
	BaseDN           string         `yaml:"baseDN"`
	Filter           string         `yaml:"filter"`
	Attributes       LDAPAttributes `yaml:"attributes"`
	Timeout          Duration       `yaml:"timeout"`
	CacheTTL         Duration       `yaml:"cacheTTL"`
	NegativeCacheTTL Duration       `yaml:"negativeCacheTTL"`
	MaxStale         Duration       `yaml:"maxStale"`
	PoolSize         int            `yaml:"poolSize"`
}

// LDAPAttributes names the LDAP attribute behind each user property; an
// empty name means the directory has no such attribute.
type LDAPAttributes struct {
	UserPrincipalName  string `yaml:"userPrincipalName"`
	ProxyAddresses     string `yaml:"proxyAddresses"`
	CertificateUserIDs string `yaml:"certificateUserIds"`
	AccountEnabled     string `yaml:"accountEnabled"`
	UserAccountControl string `yaml:"userAccountControl"`
	SessionsValidFrom  string `yaml:"sessionsValidFrom"`
}

// Route sends matching requests to one backend.
type Route struct {
	Name              string    `yaml:"name"`
	Kind              RouteKind `yaml:"kind"`
	Host              string    `yaml:"host"`
	PathPrefix        string    `yaml:"pathPrefix"`
	Backend           string    `yaml:"backend"`
	BackendCA         string    `yaml:"backendCA"`
	BackendServerName string    `yaml:"backendServerName"`
	Timeout           Duration  `yaml:"timeout"`
	NetBIOSDomain     string    `yaml:"netbiosDomain"`
	Autodiscover      bool      `yaml:"autodiscover"`
	// WebSocket allows WebSocket upgrades (web routes; default true).
	WebSocket *bool `yaml:"websocket"`
	// BackendClientCert and BackendClientKey are certgate's own client
	// certificate to an https backend that requires one.
	BackendClientCert string `yaml:"backendClientCert"`
	BackendClientKey  string `yaml:"backendClientKey"`
	// Assertion, when set, adds a signed identity assertion to every
	// request of the route.
	Assertion *Assertion `yaml:"assertion"`
	// BackendKeepAlive false opens a new backend connection per request,
	// for backends that close a connection after each response without
	// saying so (SOGo: a request sent on such a connection meets EOF, and
	// a POST cannot be retried). nil means true.
	BackendKeepAlive *bool `yaml:"backendKeepAlive"`
}

// Assertion configures a route's signed identity assertion (a JWT).
type Assertion struct {
	// Keys are PEM private keys (ECDSA P-256 for ES256, Ed25519 for
	// EdDSA), newest first: the first signs, the others are only published
	// in the JWKS so that assertions signed before a rotation still verify.
	Keys     []string `yaml:"keys"`
	Issuer   string   `yaml:"issuer"`
	Audience string   `yaml:"audience"` // default: the route's backend
	Header   string   `yaml:"header"`
	Lifetime Duration `yaml:"lifetime"`
	// Reuse lets one assertion serve a connection's requests to the route
	// for this long, instead of one signature per request.
	Reuse Duration `yaml:"reuse"`
}

// JWKS configures where the assertion keys are published besides the admin
// listener's /.well-known/jwks.json.
type JWKS struct {
	// ProxyPath also serves the JWKS on the client listener at this path
	// ("" = admin listener only).
	ProxyPath string `yaml:"proxyPath"`
}

// Logging configures the structured log.
type Logging struct {
	Format LogFormat `yaml:"format"`
	Level  LogLevel  `yaml:"level"`
}

// AccessLog turns on one line per request (off when the block is absent).
type AccessLog struct {
	Format AccessLogFormat `yaml:"format"`
	// File is a path (relative to the config's folder), or stdout or
	// stderr. It is opened for appending and opened again at every reload,
	// so that a rotated file is followed after a SIGHUP.
	File string `yaml:"file"`
}

// HTTP1 configures how HTTP/1.1 connections are served.
type HTTP1 struct {
	// FastPath forwards plain HTTP/1.1 requests through certgate's own
	// loop (parse the head once, copy bytes to a pooled backend
	// connection) instead of net/http's server and ReverseProxy; anything
	// else still goes through net/http. Read at start only. Default true.
	FastPath bool `yaml:"fastPath"`
}

// Limits bound what one client can make the proxy do.
type Limits struct {
	HandshakeTimeout       Duration `yaml:"handshakeTimeout"`
	ReadHeaderTimeout      Duration `yaml:"readHeaderTimeout"`
	IdleTimeout            Duration `yaml:"idleTimeout"`
	MaxHeaderBytes         Size     `yaml:"maxHeaderBytes"`
	MaxConnections         int      `yaml:"maxConnections"`
	MaxChainLength         int      `yaml:"maxChainLength"`
	MaxSANs                int      `yaml:"maxSANs"`
	MinRSABits             int      `yaml:"minRSABits"`
	H2MaxConcurrentStreams int      `yaml:"h2MaxConcurrentStreams"`
	// MaxUnauthenticatedPerIP caps one source address's connections that
	// have not (yet) presented an admitted certificate.
	MaxUnauthenticatedPerIP int `yaml:"maxUnauthenticatedPerIP"`
}

// Shutdown configures the drain on SIGTERM.
type Shutdown struct {
	DrainTimeout Duration `yaml:"drainTimeout"`
	// ReadyzGrace is how long /readyz fails before the listeners close.
	ReadyzGrace Duration `yaml:"readyzGrace"`
}

// Reload configures how changed files are noticed.
type Reload struct {
	PollInterval Duration `yaml:"pollInterval"`
}

// maxConfigSize bounds what Load reads: a config is a few KiB, and an
// unbounded read of a wrong path (a device, a huge log) must not exhaust memory.
const maxConfigSize = 4 << 20

// Load reads the config file at path, then does what [Parse] does. Relative
// paths in the file are resolved against the file's folder.
func Load(path string) (*Config, error) {
	return load(path, nil)
}

// load is Load keeping only the errors whose key keep accepts (nil: all).
func load(path string, keep func(key string) bool) (*Config, error) {
	data, err := readFileLimit(path, maxConfigSize)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	// An absolute folder, so that what the config names (files, file: CRL
	// URLs) resolves the same whether the path was typed relative or not.
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return parse(data, path, dir, keep)
}

// servingOnly are the top-level keys only `serve` needs: a decision on one
// certificate (`certgate check`) reads none of them.
var servingOnly = []string{"listen", "admin", "serverTLS", "clientAuth", "routes", "shutdown", "reload"}

// LoadDecision is [Load] for a command that decides certificates without
// serving (`certgate check`): the listeners, server certificate, routes and
// their files may be absent or point at files of another machine, so an
// operator can check a certificate on a workstation with the production
// trust config. The returned config has no routes.
func LoadDecision(path string) (*Config, error) {
	c, err := load(path, func(key string) bool { return !isServingKey(key) })
	if err != nil {
		return nil, err
	}
	c.Routes = nil
	return c, nil
}

func isServingKey(key string) bool {
	for _, k := range servingOnly {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return true
		}
	}
	return false
}

// Parse decodes data (named name in errors), applies defaults, reads the
// trusted CA certificates relative to dir, checks that the other files the
// config names exist, and validates the result.
func Parse(data []byte, name string, dir string) (*Config, error) {
	return parse(data, name, dir, nil)
}

func parse(data []byte, name string, dir string, keep func(key string) bool) (*Config, error) {
	c, err := Decode(data, name)
	if err != nil {
		return nil, err
	}
	c.Dir = dir
	loadErrs, failed := c.loadFiles()
	errs := append(loadErrs, c.validate(failed)...)
	if keep != nil {
		kept := errs[:0]
		for _, e := range errs {
			if keep(e.Key) {
				kept = append(kept, e)
			}
		}
		errs = kept
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return c, nil
}

// Decode decodes data (named name in errors) strictly and applies defaults,
// without reading any other file and without validating. It suits tools that
// only need the values, such as a reference example whose files do not exist.
func Decode(data []byte, name string) (*Config, error) {
	root, err := decodeNode(data, name)
	if err != nil {
		return nil, err
	}
	pos := newPositions(root)
	c := &Config{File: name, pos: pos}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// Node.Decode would drop KnownFields, so the bytes are decoded a second
	// time, strictly, straight into the struct.
	if err := dec.Decode(c); err != nil {
		return nil, c.decodeError(err)
	}
	applyDefaults(c)
	return c, nil
}

// decodeNode parses data into a node tree and refuses empty, multi-document
// and non-mapping files.
func decodeNode(data []byte, name string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Err: errors.New("the file is empty")}
		}
		return nil, syntaxError(name, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: name, Line: next.Line, Err: errors.New("a second YAML document starts here; a config file holds exactly one")}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(name, data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &Error{File: name, Err: errors.New("the file is empty")}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Err: fmt.Errorf("the file must be a mapping of keys to values, not %s", kindName(root))}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxError(name string, data []byte, err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if tab := tabIndentedLine(data, line); tab > 0 {
			// yaml.v3 says "found character that cannot start any token".
			return &Error{File: name, Line: tab, Err: errors.New("indented with a tab: YAML indents with spaces only")}
		}
		return &Error{File: name, Line: line, Err: errors.New(m[2])}
	}
	return &Error{File: name, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
}

// tabIndentedLine returns the line (1-based) near line whose indentation
// holds a tab, or 0. yaml.v3 reports a tab on the line it is on or the one
// before ("found a tab character that violates indentation", "found
// character that cannot start any token").
func tabIndentedLine(data []byte, line int) int {
	lines := strings.Split(string(data), "\n")
	for _, n := range []int{line, line + 1, line - 1} {
		if n < 1 || n > len(lines) {
			continue
		}
		l := lines[n-1]
		if strings.Contains(l[:len(l)-len(strings.TrimLeft(l, " \t"))], "\t") {
			return n
		}
	}
	return 0
}

var (
	typeErrLine  = regexp.MustCompile(`^line (\d+): (?:column (\d+): )?(.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type (\S+)`)
	cannotDecode = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
)

// knownMistakes gives a hint for unknown keys people are likely to try.
var knownMistakes = map[string]string{
	"password":     "inline passwords are refused; use passwordFile or passwordEnv",
	"bindPassword": "inline passwords are refused; use passwordFile or passwordEnv",
}

// decodeError rewrites yaml.v3's messages ("line 4: field listn not found in
// type config.Config") into file:line: key: message form.
func (c *Config) decodeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return syntaxError(c.File, nil, err)
	}
	errs := make([]*Error, 0, len(te.Errors))
	for _, s := range te.Errors {
		m := typeErrLine.FindStringSubmatch(s)
		if m == nil {
			errs = append(errs, &Error{File: c.File, Err: errors.New(s)})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		msg := m[3]
		e := &Error{File: c.File, Line: line}
		switch {
		case unknownField.MatchString(msg):
			sm := unknownField.FindStringSubmatch(msg)
			key := sm[1]
			e.Key = parentPath(c.pos.keyAt(line, key))
			text := fmt.Sprintf("unknown key %q", key)
			if hint, ok := knownMistakes[key]; ok {
				text += " (" + hint + ")"
			} else if near := nearestKey(key, sm[2]); near != "" {
				text += fmt.Sprintf(" (did you mean %q?)", near)
			}
			e.Err = errors.New(text)
		case col > 0:
			e.Key = c.pos.valueAt(line, col)
			e.Err = errors.New(msg)
		case cannotDecode.MatchString(msg):
			sm := cannotDecode.FindStringSubmatch(msg)
			e.Key = c.pos.deepestAt(line, "!!"+sm[1])
			got := tagName(sm[1])
			if sm[2] != "" {
				got = fmt.Sprintf("%q", sm[2])
			}
			e.Err = fmt.Errorf("want %s, got %s", goTypeName(sm[3]), got)
		default:
			e.Key = c.pos.deepestAt(line, "")
			e.Err = errors.New(msg)
		}
		errs = append(errs, e)
	}
	return joinErrors(errs)
}

func tagName(tag string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "str":
		return "a string"
	case "int":
		return "an integer"
	case "float":
		return "a number"
	case "bool":
		return "a boolean"
	case "null":
		return "nothing"
	}
	return "!!" + tag
}

func goTypeName(t string) string {
	switch {
	case t == "bool":
		return "true or false"
	case t == "string" || stringTypes[t]:
		return "a string"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "a mapping"
}

// stringTypes are the config types yaml.v3 names in its messages that are
// written as plain strings.
var stringTypes = map[string]bool{
	"config.AuthorityType": true, "config.RejectWith": true, "config.OnUnavailable": true,
	"config.ForwardClientCert": true, "config.RouteKind": true, "config.LogFormat": true,
	"config.LogLevel": true,
}

// Path resolves p against the config's folder; absolute and empty paths are
// returned as they are.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// BackendSocket returns the Unix socket path of a unix: backend, resolved
// against the config's folder, or "" for an HTTP backend.
func (c *Config) BackendSocket(r Route) string {
	p, ok := strings.CutPrefix(r.Backend, "unix:")
	if !ok {
		return ""
	}
	return c.Path(p)
}

// CRLPath returns the local file a file: CRL URL names, and false for other
// URLs (and for file: URLs that [ResolveCRLURL] refuses).
func (c *Config) CRLPath(u string) (string, bool) {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "file" {
		return "", false
	}
	p, err := c.filePath(pu)
	if err != nil {
		return "", false
	}
	return p, true
}

// ResolveCRLURL checks a CRL URL and returns it in the form the revocation
// checker fetches: http(s) URLs as they are, file: URLs as file:///absolute.
// The file: forms accepted are file:///abs/path, file://localhost/abs/path,
// file:/abs/path and file:relative/path (relative to the config's folder).
// file://name/path is refused, since RFC 8089 reads "name" as a host, and
// people who write it usually mean a relative path: guessing either way
// made the same config work or not depending on how --config was typed.
func (c *Config) ResolveCRLURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := checkCRLURL(raw)
	if err != nil {
		return "", err
	}
	if u.Scheme != "file" {
		return raw, nil
	}
	p, err := c.filePath(u)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: "file", Path: p}).String(), nil
}

func (c *Config) filePath(u *url.URL) (string, error) {
	if u.Opaque != "" {
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return "", err
		}
		return c.Path(filepath.FromSlash(p)), nil
	}
	return filepath.FromSlash(u.Path), nil
}

// readFileLimit reads at most limit bytes and refuses a longer file.
func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %s", path, Size(limit))
	}
	return data, nil
}

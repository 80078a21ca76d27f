package config_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

func TestParseBase(t *testing.T) {
	p := newPKI(t)
	c, err := config.Parse([]byte(p.baseConfig()), "certgate.yaml", p.dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "certgate.yaml" || c.Dir != p.dir {
		t.Errorf("File, Dir = %q, %q", c.File, c.Dir)
	}
	if len(c.CAs) != 2 || c.CAs[0].Certificate == nil || c.CAs[1].Certificate == nil {
		t.Fatalf("CAs not loaded: %+v", c.CAs)
	}
	if !c.CAs[0].Certificate.Equal(p.root.Cert) || !c.CAs[1].Certificate.Equal(p.inter.Cert) {
		t.Error("CA certificates differ from the files (DER root, PEM intermediate)")
	}
	if got := c.Path("ca/root.cer"); got != filepath.Join(p.dir, "ca/root.cer") {
		t.Errorf("Path = %q", got)
	}
	if got := c.Path("/abs/x"); got != "/abs/x" {
		t.Errorf("Path(abs) = %q", got)
	}
}

func TestLoad(t *testing.T) {
	p := newPKI(t)
	path := filepath.Join(p.dir, "certgate.yaml")
	writeFile(t, path, []byte(p.baseConfig()))
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || c.Dir != p.dir {
		t.Errorf("File, Dir = %q, %q", c.File, c.Dir)
	}
	_, err = config.Load(filepath.Join(p.dir, "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config file: %v", err)
	}
}

// TestFullConfig parses the reference example with real files at the paths
// it names: every documented key is accepted and valid together.
func TestFullConfig(t *testing.T) {
	p := newPKI(t)
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(p.dir, "ca", "issuing.cer"), p.inter.Cert.Raw)
	writeCert(t, filepath.Join(p.dir, "ca", "owa-backend.pem"), p.otherRoot.Cert)
	// Parse only checks that these exist; cmd/certgate's build reads them.
	for _, f := range []string{"tls/certgate-client.pem", "tls/certgate-client-key.pem", "keys/assertion-2026-12.pem", "keys/assertion-2026-06.pem"} {
		writeFile(t, filepath.Join(p.dir, f), []byte("placeholder"))
	}
	text := mustReplace(t, string(full), "5F3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F50", p.rootSKI)
	c, err := config.Parse([]byte(text), "full.yaml", p.dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"listen":                 c.Listen == ":8443",
		"admin":                  c.Admin.Listen == "127.0.0.1:9090",
		"storage":                c.ServerTLS.Storage == "/var/lib/certgate/certmagic",
		"minVersion":             c.ServerTLS.TLSMinVersion() == tls.VersionTLS12,
		"delta":                  c.CAs[0].DeltaCRL == "http://pki.example.com/root-delta.crl",
		"maxCRLSize":             c.Revocation.MaxCRLSize == 64<<20,
		"ocsp off (unquoted)":    c.Revocation.OCSP == config.OCSPOff,
		"fetchTimeout":           c.Revocation.FetchTimeout.Duration == 15*time.Second,
		"bindings":               len(c.Identity.Bindings) == 2 && c.Identity.Bindings[1].UserAttribute == "proxyAddresses",
		"directory":              c.Identity.Directory != nil && c.Identity.Directory.File == "users.yaml",
		"eas timeout":            c.Routes[0].Timeout.Duration == time.Hour,
		"autodiscover":           c.Routes[0].Autodiscover && c.Routes[0].NetBIOSDomain == "EXAMPLE",
		"backendServerName":      c.Routes[1].BackendServerName == "owa.internal",
		"maxHeaderBytes":         c.Limits.MaxHeaderBytes == 64<<10,
		"h2MaxConcurrentStreams": c.Limits.H2MaxConcurrentStreams == 250,
		"pollInterval":           c.Reload.PollInterval.Duration == 2*time.Second,
		"backendClientCert":      c.Routes[1].BackendClientKey == "tls/certgate-client-key.pem",
		"assertion":              c.Routes[1].Assertion != nil && len(c.Routes[1].Assertion.Keys) == 2 && c.Routes[1].Assertion.Reuse.Duration == 5*time.Second,
	}
	for name, ok := range want {
		if ok != true {
			t.Errorf("%s: unexpected value", name)
		}
	}
}

// TestFullReferenceDocumentsEveryKey decodes the reference example without
// its files and checks that it mentions every key of the schema.
func TestFullReferenceDocumentsEveryKey(t *testing.T) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Decode(full, "full.yaml"); err != nil {
		t.Fatal(err)
	}
	var keys []string
	collectKeys(reflect.TypeOf(config.Config{}), &keys)
	for _, k := range keys {
		if !strings.Contains(string(full), k+":") {
			t.Errorf("testdata/full.yaml does not document %q", k)
		}
	}
	if len(keys) < 80 {
		t.Errorf("only %d keys found; the schema walk is broken", len(keys))
	}
}

func collectKeys(t reflect.Type, keys *[]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != "github.com/certgate/certgate/config" || t.Name() == "Duration" {
		return
	}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		*keys = append(*keys, tag)
		collectKeys(t.Field(i).Type, keys)
	}
}

func TestDefaults(t *testing.T) {
	p := newPKI(t)
	c, err := config.Parse([]byte(p.baseConfig()), "certgate.yaml", p.dir)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"admin.listen", c.Admin.Listen, "127.0.0.1:9090"},
		{"serverTLS.minVersion", c.ServerTLS.MinVersion, "1.2"},
		{"serverTLS.storage", c.ServerTLS.Storage, filepath.Join(".certgate", "certmagic")},
		{"clientAuth.rejectWith", c.ClientAuth.RejectWith, config.RejectHTTP},
		{"revocation.onUnavailable", c.Revocation.OnUnavailable, config.Deny},
		{"revocation.maxCRLSize", c.Revocation.MaxCRLSize, config.Size(64 << 20)},
		{"revocation.ocsp", c.Revocation.OCSP, config.OCSPOff},
		{"revocation.fetchTimeout", c.Revocation.FetchTimeout.Duration, 15 * time.Second},
		{"revocation.minRefresh", c.Revocation.MinRefresh.Duration, time.Minute},
		{"revocation.maxRefresh", c.Revocation.MaxRefresh.Duration, time.Hour},
		{"identity.bindings", c.Identity.Bindings, config.DefaultBindings()},
		{"identity.header", c.Identity.Header, "X-Remote-User"},
		{"identity.forwardClientCert", c.Identity.ForwardClientCert, config.ForwardNone},
		{"routes[0].timeout (eas)", c.Routes[0].Timeout.Duration, 3600 * time.Second},
		{"routes[1].kind", c.Routes[1].Kind, config.KindWeb},
		{"routes[1].pathPrefix", c.Routes[1].PathPrefix, "/"},
		{"routes[1].timeout (web)", c.Routes[1].Timeout.Duration, 60 * time.Second},
		{"logging.format", c.Logging.Format, config.LogJSON},
		{"logging.level", c.Logging.Level, config.LevelInfo},
		{"limits.handshakeTimeout", c.Limits.HandshakeTimeout.Duration, 10 * time.Second},
		{"limits.readHeaderTimeout", c.Limits.ReadHeaderTimeout.Duration, 10 * time.Second},
		{"limits.idleTimeout", c.Limits.IdleTimeout.Duration, 120 * time.Second},
		{"limits.maxHeaderBytes", c.Limits.MaxHeaderBytes, config.Size(64 << 10)},
		{"limits.maxConnections", c.Limits.MaxConnections, 10000},
		{"limits.maxChainLength", c.Limits.MaxChainLength, 8},
		{"limits.maxSANs", c.Limits.MaxSANs, 64},
		{"limits.minRSABits", c.Limits.MinRSABits, 2048},
		{"limits.h2MaxConcurrentStreams", c.Limits.H2MaxConcurrentStreams, 250},
		{"shutdown.drainTimeout", c.Shutdown.DrainTimeout.Duration, 30 * time.Second},
		{"shutdown.readyzGrace", c.Shutdown.ReadyzGrace.Duration, time.Duration(0)},
		{"reload.pollInterval", c.Reload.PollInterval.Duration, 2 * time.Second},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestAssertionDefaults(t *testing.T) {
	p := newPKI(t)
	writeFile(t, filepath.Join(p.dir, "keys", "a.pem"), []byte("placeholder"))
	for _, tc := range []struct {
		yaml             string
		lifetime, reuse  time.Duration
		issuer, audience string
	}{
		{"{keys: [keys/a.pem]}", 60 * time.Second, 5 * time.Second, "certgate", "http://127.0.0.1:8081"},
		{"{keys: [keys/a.pem], lifetime: 4s}", 4 * time.Second, 2 * time.Second, "certgate", "http://127.0.0.1:8081"},
		{"{keys: [keys/a.pem], reuse: 0s, issuer: me, audience: app}", 60 * time.Second, 0, "me", "app"},
	} {
		text := mustReplace(t, p.baseConfig(), "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion: "+tc.yaml+"\n")
		c, err := config.Parse([]byte(text), "certgate.yaml", p.dir)
		if err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		a := c.Routes[1].Assertion
		if a.Lifetime.Duration != tc.lifetime || a.Reuse.Duration != tc.reuse || a.Issuer != tc.issuer || a.Audience != tc.audience || a.Header != "X-Certgate-Assertion" {
			t.Errorf("%s: got %+v", tc.yaml, *a)
		}
	}
}

func TestDefaultsDependOnOtherKeys(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name  string
		edit  func(string) string
		check func(*config.Config) error
	}{
		{"storage under cacheDir", func(s string) string { return s + "revocation: {cacheDir: /var/cache/cg}\n" },
			func(c *config.Config) error {
				return expect(c.ServerTLS.Storage, filepath.Join("/var/cache/cg", "certmagic"))
			}},
		{"admin off", func(s string) string { return s + "admin: {listen: off}\n" },
			func(c *config.Config) error { return expect(c.Admin.Enabled(), false) }},
		{"admin empty string", func(s string) string { return s + "admin: {listen: \"\"}\n" },
			func(c *config.Config) error { return expect(c.Admin.Enabled(), false) }},
		{"admin block without listen", func(s string) string { return s + "admin: {}\n" },
			func(c *config.Config) error { return expect(c.Admin.Listen, "127.0.0.1:9090") }},
		{"ocsp false", func(s string) string { return s + "revocation: {ocsp: false}\n" },
			func(c *config.Config) error { return expect(c.Revocation.OCSP, config.OCSPOff) }},
		{"ocsp hard", func(s string) string { return s + "revocation: {ocsp: hard}\n" },
			func(c *config.Config) error { return expect(c.Revocation.OCSP, config.OCSPHard) }},
		{"duration in seconds", func(s string) string { return s + "limits: {idleTimeout: 90}\n" },
			func(c *config.Config) error { return expect(c.Limits.IdleTimeout.Duration, 90*time.Second) }},
		{"size as integer", func(s string) string { return s + "revocation: {maxCRLSize: 1000000}\n" },
			func(c *config.Config) error { return expect(c.Revocation.MaxCRLSize, config.Size(1000000)) }},
		{"acme storage from serverTLS.storage", func(s string) string {
			s = mustReplace(t, s, "  certFile: tls/server.pem\n  keyFile: tls/server-key.pem\n",
				"  storage: /data/cm\n  acme: {domains: [mail.example.com]}\n")
			return s
		}, func(c *config.Config) error { return expect(c.ServerTLS.ACME.Storage, "/data/cm") }},
		{"ldap defaults", func(s string) string {
			return mustReplace(t, s, "  directory: {file: users.yaml}\n", `  directory:
    ldap:
      url: ldaps://dc1.example.com
      baseDN: "DC=example,DC=com"
      attributes: {certificateUserIds: ""}
`)
		}, func(c *config.Config) error {
			l := c.Identity.Directory.LDAP
			return errors.Join(
				expect(l.Filter, config.DefaultLDAPFilter),
				expect(l.Attributes.UserPrincipalName, "userPrincipalName"),
				expect(l.Attributes.ProxyAddresses, "proxyAddresses"),
				expect(l.Attributes.CertificateUserIDs, ""), // explicit "" is kept
				expect(l.Attributes.UserAccountControl, "userAccountControl"),
				expect(l.Timeout.Duration, 5*time.Second),
				expect(l.CacheTTL.Duration, 5*time.Minute),
				expect(l.NegativeCacheTTL.Duration, time.Minute),
				expect(l.MaxStale.Duration, time.Hour),
				expect(l.PoolSize, 4),
			)
		}},
		// A non-AD directory turns the AD flag off; the explicit "" must
		// survive defaulting, or every user there would count as disabled.
		{"ldap without userAccountControl", func(s string) string {
			return mustReplace(t, s, "  directory: {file: users.yaml}\n", `  directory:
    ldap:
      url: ldaps://ldap.example.com
      baseDN: "dc=example,dc=com"
      attributes: {userAccountControl: "", accountEnabled: accountEnabled}
`)
		}, func(c *config.Config) error {
			a := c.Identity.Directory.LDAP.Attributes
			return errors.Join(expect(a.UserAccountControl, ""), expect(a.AccountEnabled, "accountEnabled"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.edit(p.baseConfig())), "certgate.yaml", p.dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.check(c); err != nil {
				t.Error(err)
			}
		})
	}
}

func expect[T comparable](got, want T) error {
	if got != want {
		return fmt.Errorf("got %v, want %v", got, want)
	}
	return nil
}

// TestErrors checks each error message: file, line and key path.
func TestErrors(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	writeCert(t, filepath.Join(p.dir, "ca", "leaf.pem"), leaf.Cert)
	writeFile(t, filepath.Join(p.dir, "ca", "garbage.cer"), []byte("this is not a certificate\n"))
	key, err := pkigen.KeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(p.dir, "ca", "key.pem"), key)
	writeFile(t, filepath.Join(p.dir, "ca", "two.pem"), pkigen.CertPEM(p.root.Cert, p.inter.Cert))
	base := p.baseConfig()

	const (
		rootCRL  = "    crlDistributionPoint: http://pki.example.com/root.crl\n"
		interSKI = "    trustedIssuerSKI: \""
	)
	cases := []struct {
		name string
		text string
		// at is a substring of the line the error must name; want the
		// rest of the message after "certgate.yaml:N: ".
		at   string
		want string
	}{
		{"unknown key", mustReplace(t, base, "listen:", "listn:"), "listn", `unknown key "listn"`},
		{"unknown nested key", mustReplace(t, base, rootCRL, rootCRL+"    crlDistributionPiont: x\n"), "Piont",
			`trustedCertificateAuthorities[0]: unknown key "crlDistributionPiont"`},
		{"inline ldap password", mustReplace(t, base, "  directory: {file: users.yaml}\n",
			"  directory:\n    ldap:\n      url: ldaps://dc\n      baseDN: dc=x\n      password: hunter2\n"), "password",
			`identity.directory.ldap: unknown key "password" (inline passwords are refused; use passwordFile or passwordEnv)`},
		{"bad enum", base + "clientAuth:\n  rejectWith: alert\n", "alert",
			`clientAuth.rejectWith: "alert" is not allowed, want one of handshake, http`},
		{"bad ocsp", base + "revocation:\n  ocsp: maybe\n", "maybe",
			`revocation.ocsp: "maybe" is not allowed, want one of off, soft, hard`},
		{"ocsp true is ambiguous", base + "revocation:\n  ocsp: true\n", "ocsp",
			`revocation.ocsp: "true" is ambiguous, want one of off, soft, hard`},
		{"bad size", base + "revocation:\n  maxCRLSize: 64Mb\n", "64Mb",
			`revocation.maxCRLSize: "64Mb" is not a size`},
		{"bad duration", base + "revocation:\n  fetchTimeout: 15 secs\n", "secs",
			`revocation.fetchTimeout: "15 secs" is not a duration`},
		{"explicit zero duration", base + "revocation:\n  fetchTimeout: 0s\n", "fetchTimeout",
			`revocation.fetchTimeout: must be greater than 0, got 0s`},
		{"wrong yaml type", mustReplace(t, base, `listen: ":8443"`, "listen: [a, b]"), "listen",
			`listen: want a string, got a list`},
		{"wrong yaml type nested", base + "limits:\n  maxConnections: many\n", "many",
			`limits.maxConnections: want an integer, got "many"`},
		{"bad SKI", mustReplace(t, base, interSKI+p.interSKI, interSKI+"ZZ"), "ZZ",
			`trustedCertificateAuthorities[1].trustedIssuerSKI: SKI "ZZ" is not hex`},
		{"mismatched SKI", mustReplace(t, base, interSKI+p.interSKI, interSKI+"00:ff"), "00:ff",
			`trustedCertificateAuthorities[1].trustedIssuerSKI: does not match the certificate's SKI ` + p.interSKI},
		{"mismatched issuer", mustReplace(t, base, `"CN=Example Issuing CA"`, `"CN=Someone Else"`), "Someone",
			`trustedCertificateAuthorities[1].trustedIssuer: "CN=Someone Else" does not match the certificate's subject "CN=Example Issuing CA"`},
		{"intermediate as only CA", mustReplace(t, base,
			"  - authorityType: root\n    trustedCertificate: ca/root.cer\n"+rootCRL, ""), "trustedCertificateAuthorities:",
			`trustedCertificateAuthorities: needs at least one CA with authorityType: root`},
		{"CA without CRL and not exempt", mustReplace(t, base, rootCRL, ""), "authorityType: root",
			`trustedCertificateAuthorities[0].crlDistributionPoint: is required; to trust this CA without revocation checks say crlExempt: true`},
		{"exempt CA with a CRL", mustReplace(t, base, rootCRL, rootCRL+"    crlExempt: true\n"), "crlExempt",
			`trustedCertificateAuthorities[0].crlExempt: is true but crlDistributionPoint is set`},
		{"delta without base", mustReplace(t, base, rootCRL, "    deltaCrlDistributionPoint: http://x/d.crl\n    crlExempt: true\n"), "deltaCrl",
			`trustedCertificateAuthorities[0].deltaCrlDistributionPoint: requires crlDistributionPoint`},
		{"bad CRL scheme", mustReplace(t, base, "http://pki.example.com/root.crl", "ldap://pki/root.crl"), "ldap://",
			`trustedCertificateAuthorities[0].crlDistributionPoint: "ldap://pki/root.crl": want an http://, https:// or file:// URL`},
		{"missing authorityType", mustReplace(t, base, "  - authorityType: intermediate\n    trustedCertificate: ca/issuing.pem\n",
			"  - trustedCertificate: ca/issuing.pem\n"), "ca/issuing.pem",
			`trustedCertificateAuthorities[1].authorityType: is required (root or intermediate)`},
		{"bad authorityType", mustReplace(t, base, "authorityType: intermediate", "authorityType: anchor"), "anchor",
			`trustedCertificateAuthorities[1].authorityType: "anchor" is not allowed, want one of root, intermediate`},
		{"garbage cert file", mustReplace(t, base, "ca/root.cer", "ca/garbage.cer"), "garbage",
			`trustedCertificateAuthorities[0].trustedCertificate: ` + filepath.Join(p.dir, "ca/garbage.cer") + `: neither a PEM nor a DER certificate`},
		{"private key as cert", mustReplace(t, base, "ca/root.cer", "ca/key.pem"), "ca/key.pem",
			`trustedCertificateAuthorities[0].trustedCertificate: ` + filepath.Join(p.dir, "ca/key.pem") + `: PEM block 1 is "PRIVATE KEY", want only one CERTIFICATE`},
		{"two certs in one file", mustReplace(t, base, "ca/root.cer", "ca/two.pem"), "two.pem",
			`trustedCertificateAuthorities[0].trustedCertificate: ` + filepath.Join(p.dir, "ca/two.pem") + `: more than one CERTIFICATE block`},
		{"missing cert file", mustReplace(t, base, "ca/root.cer", "ca/missing.cer"), "missing",
			`trustedCertificateAuthorities[0].trustedCertificate: open ` + filepath.Join(p.dir, "ca/missing.cer") + `: no such file or directory`},
		{"missing server key", mustReplace(t, base, "tls/server-key.pem", "tls/nope.pem"), "nope",
			`serverTLS.keyFile: stat ` + filepath.Join(p.dir, "tls/nope.pem") + `: no such file or directory`},
		{"duplicate route names", mustReplace(t, base, "name: web", "name: 'eas'"), "'eas'",
			`routes[1].name: "eas" is already the name of routes[0]`},
		{"bad backend scheme", mustReplace(t, base, "http://127.0.0.1:8081", "ftp://127.0.0.1:8081"), "ftp://",
			`routes[1].backend: "ftp://127.0.0.1:8081": want http://, https:// or unix:/path`},
		{"backendCA on http", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    backendCA: ca/other.pem\n"), "backendCA",
			`routes[1].backendCA: is only for https:// backends`},
		{"backendClientCert on http", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    backendClientCert: ca/key.pem\n    backendClientKey: ca/key.pem\n"), "backendClientCert",
			`routes[1].backendClientCert: is only for https:// backends`},
		{"backendClientCert without key", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: https://127.0.0.1:8081\n    backendClientCert: ca/key.pem\n"), "name: web",
			`routes[1].backendClientKey: is required with backendClientCert`},
		{"backendClientKey missing file", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: https://127.0.0.1:8081\n    backendClientCert: ca/key.pem\n    backendClientKey: tls/nope-key.pem\n"), "nope-key",
			`routes[1].backendClientKey: stat ` + filepath.Join(p.dir, "tls/nope-key.pem") + `: no such file or directory`},
		{"assertion key missing", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion:\n      keys: [ca/key.pem, keys/gone.pem]\n"), "keys:",
			`routes[1].assertion.keys[1]: stat ` + filepath.Join(p.dir, "keys/gone.pem") + `: no such file or directory`},
		{"assertion without keys", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion: {issuer: me}\n"), "assertion:",
			`routes[1].assertion.keys: needs at least one key file`},
		{"assertion header is the identity header", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion: {keys: [ca/key.pem], header: x-remote-user}\n"), "assertion:",
			`routes[1].assertion.header: "x-remote-user" is the identity header`},
		{"assertion header underscore", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion: {keys: [ca/key.pem], header: X_Assertion}\n"), "assertion:",
			`routes[1].assertion.header: "X_Assertion" contains an underscore`},
		{"assertion reuse too long", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    assertion: {keys: [ca/key.pem], lifetime: 30s, reuse: 30s}\n"), "assertion:",
			`routes[1].assertion.reuse: 30s must be shorter than lifetime 30s`},
		{"jwks proxyPath", base + "jwks: {proxyPath: jwks.json}\n", "jwks",
			`jwks.proxyPath: "jwks.json" must be a path starting with /`},
		{"same host and path", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    pathPrefix: /microsoft-server-activesync\n"), "/microsoft",
			`routes[1].pathPrefix: routes[0] already serves host "" path "/Microsoft-Server-ActiveSync"`},
		{"pathPrefix without slash", mustReplace(t, base, "pathPrefix: /Microsoft", "pathPrefix: Microsoft"), "pathPrefix",
			`routes[0].pathPrefix: "Microsoft-Server-ActiveSync" must start with /`},
		{"no routes", strings.SplitN(base, "routes:", 2)[0], "", `routes: needs at least one route`},
		{"netbios on web", mustReplace(t, base, "    backend: http://127.0.0.1:8081\n", "    backend: http://127.0.0.1:8081\n    netbiosDomain: X\n"), "netbios",
			`routes[1].netbiosDomain: is only for kind: eas`},
		{"websocket on eas", mustReplace(t, base, "pathPrefix: /Microsoft-Server-ActiveSync\n", "pathPrefix: /Microsoft-Server-ActiveSync\n    websocket: true\n"), "websocket",
			`routes[0].websocket: is only for kind: web; eas routes never switch protocols`},
		{"no unauthenticated connections", base + "limits: {maxUnauthenticatedPerIP: -1}\n", "maxUnauthenticatedPerIP",
			`limits.maxUnauthenticatedPerIP: must be at least 1`},
		{"acme and files", mustReplace(t, base, "  keyFile: tls/server-key.pem\n", "  keyFile: tls/server-key.pem\n  acme: {domains: [a.example.com]}\n"), "acme",
			`serverTLS.acme: certFile/keyFile and acme are mutually exclusive`},
		{"no server cert", mustReplace(t, base, "  certFile: tls/server.pem\n  keyFile: tls/server-key.pem\n", "  minVersion: \"1.3\"\n"), "serverTLS",
			`serverTLS: needs certFile and keyFile, or acme`},
		{"bad minVersion", base + "serverTLS2: x\n", "serverTLS2", `unknown key "serverTLS2"`},
		{"admin on client port", base + "admin: {listen: \"0.0.0.0:8443\"}\n", "admin",
			`admin.listen: "0.0.0.0:8443" overlaps listen ":8443"`},
		{"bad listen", mustReplace(t, base, `":8443"`, `"8443"`), "listen",
			`listen: "8443" is not host:port`},
		{"bad header", base[:0] + mustReplace(t, base, "identity:\n", "identity:\n  header: \"X Remote\"\n"), "X Remote",
			`identity.header: "X Remote" is not a valid header name`},
		{"reserved header", mustReplace(t, base, "identity:\n", "identity:\n  header: x-forwarded-for\n"), "x-forwarded",
			`identity.header: "x-forwarded-for" is reserved for the proxy`},
		{"strip framing header", mustReplace(t, base, "identity:\n", "identity:\n  stripHeaders: [x-webobjects-server-url, Content_Length]\n"), "stripHeaders",
			`identity.stripHeaders[1]: "Content_Length" frames or routes the request and cannot be stripped`},
		{"bad binding field", mustReplace(t, base, "identity:\n", "identity:\n  bindings: [{certificateField: UPN, userAttribute: userPrincipalName}]\n"), "UPN",
			`identity.bindings[0].certificateField: "UPN" is not allowed, want one of PrincipalName, RFC822Name`},
		{"directory both", mustReplace(t, base, "{file: users.yaml}", "{file: users.yaml, ldap: {url: ldaps://dc, baseDN: x}}"), "directory",
			`identity.directory: file and ldap are mutually exclusive`},
		{"ldap bind without password", mustReplace(t, base, "  directory: {file: users.yaml}\n",
			"  directory:\n    ldap:\n      url: ldaps://dc.example.com\n      bindDN: cn=svc\n      baseDN: dc=x\n"), "bindDN",
			`identity.directory.ldap.bindDN: needs passwordFile or passwordEnv`},
		{"ldap cleartext bind", mustReplace(t, base, "  directory: {file: users.yaml}\n",
			"  directory:\n    ldap:\n      url: ldap://dc.example.com\n      bindDN: cn=svc\n      passwordEnv: PW\n      baseDN: dc=x\n"), "url",
			`identity.directory.ldap.url: "ldap://dc.example.com" without startTLS would send the bind password in clear`},
		{"ldap filter", mustReplace(t, base, "  directory: {file: users.yaml}\n",
			"  directory:\n    ldap:\n      url: ldaps://dc.example.com\n      baseDN: dc=x\n      filter: (uid={value})\n"), "filter",
			`identity.directory.ldap.filter: "(uid={value})" must contain {attribute} and {value}`},
		{"bad log level", base + "logging: {level: verbose}\n", "verbose",
			`logging.level: "verbose" is not allowed, want one of debug, info, warn, error`},
		{"maxRefresh below minRefresh", base + "revocation:\n  minRefresh: 10m\n  maxRefresh: 5m\n", "maxRefresh",
			`revocation.maxRefresh: 5m0s is less than minRefresh 10m0s`},
		{"small RSA", base + "limits:\n  minRSABits: 512\n", "512",
			`limits.minRSABits: must be at least 1024, got 512`},
		{"duplicate key", base + "listen: \":9443\"\n", `":9443"`,
			`mapping key "listen" already defined at line 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.text), "certgate.yaml", p.dir)
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.text)
			}
			prefix := "certgate.yaml: "
			if tc.at != "" {
				prefix = fmt.Sprintf("certgate.yaml:%d: ", lineNo(t, tc.text, tc.at))
			}
			want := prefix + tc.want
			for _, line := range strings.Split(err.Error(), "\n") {
				if strings.HasPrefix(line, want) {
					return
				}
			}
			t.Errorf("error does not have a line starting with\n  %s\ngot:\n  %s", want, strings.ReplaceAll(err.Error(), "\n", "\n  "))
		})
	}
}

// TestErrorsAreAllReported: every problem of a file is reported at once,
// in line order, each as an *config.Error.
// A configured CA that is broken is a runtime fact the trust store reports,
// not a config error: these load.
func TestBrokenCAsLoad(t *testing.T) {
	p := newPKI(t)
	leaf := p.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	writeCert(t, filepath.Join(p.dir, "ca", "leaf.pem"), leaf.Cert)
	base := p.baseConfig()
	for name, text := range map[string]string{
		"non-CA cert": mustReplace(t, base, "ca/root.cer", "ca/leaf.pem"),
		"same SKI twice (a renewed or cross-signed CA)": mustReplace(t, base, "  - authorityType: intermediate\n",
			"  - authorityType: root\n    trustedCertificate: \"ca/root.cer\"\n    crlExempt: true\n  - authorityType: intermediate\n"),
		"intermediate from elsewhere": mustReplace(t, base, "ca/root.cer", "ca/other.pem"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := config.Parse([]byte(text), "certgate.yaml", p.dir); err != nil {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
}

func TestErrorsAreAllReported(t *testing.T) {
	p := newPKI(t)
	text := p.baseConfig() + "logging: {format: xml}\nlimits: {maxSANs: 0}\n"
	_, err := config.Parse([]byte(mustReplace(t, text, "http://127.0.0.1:8081", "ftp://x")), "certgate.yaml", p.dir)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%s", len(lines), err)
	}
	for i, want := range []string{"routes[1].backend", "logging.format", "limits.maxSANs"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("error %d = %q, want %s", i, lines[i], want)
		}
	}
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != "certgate.yaml" || ce.Line == 0 || ce.Key == "" {
		t.Errorf("errors.As(*config.Error) = %+v", ce)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"empty file", "", "x.yaml: the file is empty"},
		{"only comments", "# nothing\n", "x.yaml: the file is empty"},
		{"two documents", "listen: \":1\"\n---\nlisten: \":2\"\n", "x.yaml:2: a second YAML document starts here"},
		{"not a mapping", "- a\n- b\n", "x.yaml:1: the file must be a mapping of keys to values, not a list"},
		{"syntax", "listen: \":1\"\n  bad: [\n", "x.yaml:"},
		{"tab indentation", "serverTLS:\n\tcertFile: x\n", "x.yaml:2: indented with a tab: YAML indents with spaces only"},
		{"tab after spaces", "listen: \":1\"\nserverTLS:\n  certFile: x\n \tkeyFile: y\n", "x.yaml:4: indented with a tab: YAML indents with spaces only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Decode([]byte(tc.text), "x.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v, want prefix %q", err, tc.want)
			}
		})
	}
}

// TestValidateDoesNotMutate: Validate only reads, and fails closed on CAs
// whose certificate was never loaded.
func TestValidateDoesNotMutate(t *testing.T) {
	p := newPKI(t)
	c, err := config.Parse([]byte(p.baseConfig()), "certgate.yaml", p.dir)
	if err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprintf("%+v", *c)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", *c); after != before {
		t.Errorf("Validate changed the config:\n%s\n%s", before, after)
	}

	d, err := config.Decode([]byte(p.baseConfig()), "certgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	err = d.Validate()
	if err == nil || !strings.Contains(err.Error(), "certgate.yaml:7: trustedCertificateAuthorities[0].trustedCertificate: ca/root.cer was not loaded") {
		t.Errorf("Validate of an unloaded config: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	c := &config.Config{Dir: "/etc/certgate"}
	if got := c.BackendSocket(config.Route{Backend: "unix:run/app.sock"}); got != "/etc/certgate/run/app.sock" {
		t.Errorf("BackendSocket relative = %q", got)
	}
	if got := c.BackendSocket(config.Route{Backend: "unix:/run/app.sock"}); got != "/run/app.sock" {
		t.Errorf("BackendSocket absolute = %q", got)
	}
	if got := c.BackendSocket(config.Route{Backend: "http://x"}); got != "" {
		t.Errorf("BackendSocket http = %q", got)
	}
	for u, want := range map[string]string{"file:///var/crl/a.crl": "/var/crl/a.crl", "file:crl/a.crl": "/etc/certgate/crl/a.crl", "http://x/a.crl": ""} {
		got, ok := c.CRLPath(u)
		if got != want || ok != (want != "") {
			t.Errorf("CRLPath(%q) = %q, %v", u, got, ok)
		}
	}
	if config.LevelWarn.Slog() != slog.LevelWarn || config.LevelDebug.Slog() != slog.LevelDebug {
		t.Error("LogLevel.Slog")
	}
	e := c.Errorf("routes[0].backend", "connection refused")
	if e.Error() != "routes[0].backend: connection refused" {
		t.Errorf("Errorf without file = %q", e)
	}
}

// BenchmarkParse measures a full Parse (decode, defaults, reading two CA
// files, validation), which runs on every reload.
func BenchmarkParse(b *testing.B) {
	p := newPKI(b)
	data := []byte(p.baseConfig())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := config.Parse(data, "certgate.yaml", p.dir); err != nil {
			b.Fatal(err)
		}
	}
}

package config_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

// pki is a config folder with real CA files in it.
type pki struct {
	dir          string
	root, inter  *pkigen.CA
	rootSKI      string
	interSKI     string
	otherRoot    *pkigen.CA
	otherRootSKI string
}

// newPKI writes the files baseConfig names: the root as DER (ca/root.cer),
// the intermediate as PEM (ca/issuing.pem), a second root as PEM
// (ca/other.pem), a server certificate and key, and a users file.
func newPKI(t testing.TB) *pki {
	t.Helper()
	dir := t.TempDir()
	root := pkigen.Root(t, "Example Root CA", pkigen.Subject(pkix.Name{CommonName: "Example Root CA", Organization: []string{"Example"}}))
	inter := root.Intermediate(t, "Example Issuing CA")
	other := pkigen.Root(t, "Other Root CA")
	writeFile(t, filepath.Join(dir, "ca", "root.cer"), root.Cert.Raw)
	if err := pkigen.WriteCert(filepath.Join(dir, "ca", "issuing.pem"), inter.Cert); err != nil {
		t.Fatal(err)
	}
	if err := pkigen.WriteCert(filepath.Join(dir, "ca", "other.pem"), other.Cert); err != nil {
		t.Fatal(err)
	}
	srv := inter.Server(t, []string{"localhost"})
	if err := pkigen.WriteLeaf(filepath.Join(dir, "tls", "server.pem"), filepath.Join(dir, "tls", "server-key.pem"), srv, true); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "users.yaml"), []byte("users: []\n"))
	return &pki{
		dir: dir, root: root, inter: inter, otherRoot: other,
		rootSKI:      config.FormatSKI(root.Cert.SubjectKeyId),
		interSKI:     config.FormatSKI(inter.Cert.SubjectKeyId),
		otherRootSKI: config.FormatSKI(other.Cert.SubjectKeyId),
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeCert(t testing.TB, path string, c *x509.Certificate) {
	t.Helper()
	if err := pkigen.WriteCert(path, c); err != nil {
		t.Fatal(err)
	}
}

// baseConfig is a small valid config for the files newPKI writes.
func (p *pki) baseConfig() string {
	return `listen: ":8443"
serverTLS:
  certFile: tls/server.pem
  keyFile: tls/server-key.pem
trustedCertificateAuthorities:
  - authorityType: root
    trustedCertificate: ca/root.cer
    crlDistributionPoint: http://pki.example.com/root.crl
  - authorityType: intermediate
    trustedCertificate: ca/issuing.pem
    crlDistributionPoint: http://pki.example.com/issuing.crl
    trustedIssuer: "CN=Example Issuing CA"
    trustedIssuerSKI: "` + p.interSKI + `"
identity:
  directory: {file: users.yaml}
routes:
  - name: eas
    kind: eas
    pathPrefix: /Microsoft-Server-ActiveSync
    backend: http://127.0.0.1:8080
  - name: web
    backend: http://127.0.0.1:8081
`
}

// lineNo returns the 1-based line of the first line of text containing sub.
func lineNo(t testing.TB, text, sub string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	t.Fatalf("%q not in config:\n%s", sub, text)
	return 0
}

func mustReplace(t testing.TB, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in config", old)
	}
	return strings.Replace(s, old, new, 1)
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

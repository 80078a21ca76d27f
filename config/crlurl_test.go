package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
)

// TestCRLURLForms: every CRL URL form is either accepted with one meaning
// or refused at validate time with the form to write instead. The
// quickstart's file://crl/root.crl was accepted by validate and then read
// as host "crl" by the checker, refusing every client.
func TestCRLURLForms(t *testing.T) {
	p := newPKI(t)
	ok := map[string]string{
		"http://pki.example.com/root.crl":  "http://pki.example.com/root.crl",
		"https://pki.example.com/root.crl": "https://pki.example.com/root.crl",
		"file:///var/crl/root.crl":         "file:///var/crl/root.crl",
		"file://localhost/var/crl/r.crl":   "file:///var/crl/r.crl",
		"file:/var/crl/root.crl":           "file:///var/crl/root.crl",
		"file:crl/root.crl":                "file://" + filepath.ToSlash(filepath.Join(p.dir, "crl/root.crl")),
		"file:crl/with%20space.crl":        "file://" + filepath.ToSlash(filepath.Join(p.dir, "crl/with space.crl")),
	}
	for raw, want := range ok {
		cfg := mustReplace(t, p.baseConfig(), "http://pki.example.com/root.crl", raw)
		c, err := config.Parse([]byte(cfg), "certgate.yaml", p.dir)
		if err != nil {
			t.Errorf("%s: refused: %v", raw, err)
			continue
		}
		got, err := c.ResolveCRLURL(c.CAs[0].CRL)
		if err != nil || strings.ReplaceAll(got, "%20", " ") != want {
			t.Errorf("%s resolves to %q, %v; want %q", raw, got, err, want)
		}
	}
	bad := map[string]string{
		"file://crl/root.crl":        `names the host "crl"; write file:crl/root.crl`,
		"file://":                    "has no path",
		"file:///x.crl?v=1":          "no user, query or fragment",
		"pki.example.com/root.crl":   "has no scheme",
		"ldap://pki/root.crl":        "want an http://, https:// or file:// URL",
		"http:///root.crl":           "has no host",
		"http://pki.example.com/%zz": "is not a URL",
	}
	for raw, want := range bad {
		cfg := mustReplace(t, p.baseConfig(), "http://pki.example.com/root.crl", raw)
		_, err := config.Parse([]byte(cfg), "certgate.yaml", p.dir)
		if err == nil || !strings.Contains(err.Error(), "crlDistributionPoint") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", raw, err, want)
		}
	}
}

// TestCRLURLIndependentOfConfigPathForm: a relative file: URL means the same
// file whether --config was typed relative or absolute.
func TestCRLURLIndependentOfConfigPathForm(t *testing.T) {
	p := newPKI(t)
	cfg := mustReplace(t, p.baseConfig(), "http://pki.example.com/root.crl", "file:crl/root.crl")
	path := filepath.Join(p.dir, "certgate.yaml")
	writeFile(t, path, []byte(cfg))
	abs, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(p.dir))
	rel, err := config.Load(filepath.Join(filepath.Base(p.dir), "certgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := abs.ResolveCRLURL(abs.CAs[0].CRL)
	r, _ := rel.ResolveCRLURL(rel.CAs[0].CRL)
	want := "file://" + filepath.ToSlash(filepath.Join(p.dir, "crl", "root.crl"))
	if a != want || r != want {
		t.Errorf("absolute --config: %q, relative --config: %q, want %q", a, r, want)
	}
	if pa, _ := rel.CRLPath(rel.CAs[0].CRL); pa != filepath.Join(p.dir, "crl", "root.crl") {
		t.Errorf("CRLPath = %q", pa)
	}
	if _, err := os.Stat(rel.Dir); err != nil || !filepath.IsAbs(rel.Dir) {
		t.Errorf("Dir %q not absolute", rel.Dir)
	}
}

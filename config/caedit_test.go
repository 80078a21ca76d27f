package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

// commented is a config in a style people write by hand: comments above,
// beside and inside entries, blank lines, mixed quoting, 4-space mappings
// and a list at the key's own indentation.
func (p *pki) commented() string {
	return `# certgate for mail.example.com
# owner: ops

listen:   ":8443"     # spaces kept

serverTLS:
    certFile: tls/server.pem
    keyFile: 'tls/server-key.pem'

# --- trust ---
trustedCertificateAuthorities:
  # the corporate root
  - authorityType: root        # anchor
    trustedCertificate: ca/root.cer
    crlDistributionPoint: "http://pki.example.com/root.crl"   # base CRL
    # no delta CRL yet

  # issuing CA
  - authorityType: intermediate
    trustedCertificate: ca/issuing.pem
    crlDistributionPoint: http://pki.example.com/issuing.crl
    trustedIssuerSKI: ` + p.interSKI + `

routes:
- name: web   # the only one
  backend: http://127.0.0.1:8081
`
}

func writeConfig(t *testing.T, p *pki, text string) string {
	t.Helper()
	path := filepath.Join(p.dir, "certgate.yaml")
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// diffLines returns the lines only in a and only in b after removing the
// longest common prefix and suffix: the change, as a line diff shows it.
func diffLines(a, b string) (onlyA, onlyB []string) {
	la, lb := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	j := 0
	for j < len(la)-i && j < len(lb)-i && la[len(la)-1-j] == lb[len(lb)-1-j] {
		j++
	}
	return la[i : len(la)-j], lb[i : len(lb)-j]
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestListCAs(t *testing.T) {
	p := newPKI(t)
	path := writeConfig(t, p, p.commented())
	cas, err := config.ListCAs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cas) != 2 {
		t.Fatalf("got %d CAs", len(cas))
	}
	if cas[0].Type != config.Root || cas[0].SKI != p.rootSKI || cas[0].Subject != "CN=Example Root CA,O=Example" ||
		cas[0].CRL != "http://pki.example.com/root.crl" || !cas[0].NotAfter.Equal(p.root.Cert.NotAfter) {
		t.Errorf("root = %+v", cas[0])
	}
	if cas[1].Type != config.Intermediate || cas[1].SKI != p.interSKI || cas[1].File != "ca/issuing.pem" {
		t.Errorf("intermediate = %+v", cas[1])
	}
}

// TestAddCARoundTrip: adding a CA to a commented file changes nothing but
// the inserted entry, which follows the file's own indentation.
func TestAddCARoundTrip(t *testing.T) {
	p := newPKI(t)
	orig := p.commented()
	path := writeConfig(t, p, orig)
	second := p.root.Intermediate(t, "Second Issuing CA")
	certFile := filepath.Join(p.dir, "ca", "second.cer")
	writeFile(t, certFile, second.Cert.Raw)

	info, err := config.AddCA(path, "intermediate", certFile, "http://pki.example.com/second.crl", "http://pki.example.com/second-delta.crl", false)
	if err != nil {
		t.Fatal(err)
	}
	ski := config.FormatSKI(second.Cert.SubjectKeyId)
	if info.Index != 2 || info.SKI != ski || info.Subject != "CN=Second Issuing CA" || info.File != "ca/second.cer" {
		t.Errorf("info = %+v", info)
	}
	// The whole file is the original with exactly the new entry inserted
	// after the last one, separated by a blank line as the others are.
	anchor := "    trustedIssuerSKI: " + p.interSKI + "\n"
	want := mustReplace(t, orig, anchor, anchor+"\n"+
		"  - authorityType: intermediate\n"+
		"    trustedCertificate: ca/second.cer\n"+
		"    crlDistributionPoint: http://pki.example.com/second.crl\n"+
		"    deltaCrlDistributionPoint: http://pki.example.com/second-delta.crl\n"+
		"    trustedIssuer: CN=Second Issuing CA\n"+
		"    trustedIssuerSKI: "+ski+"\n")
	if got := readString(t, path); got != want {
		t.Errorf("file after AddCA:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v, %v; want 0640 kept", fi.Mode(), err)
	}
	if _, err := config.Load(path); err != nil {
		t.Errorf("result does not load: %v", err)
	}
}

func TestAddCARefusals(t *testing.T) {
	p := newPKI(t)
	orig := p.commented()
	path := writeConfig(t, p, orig)
	leaf := p.inter.Leaf(t, "alice")
	writeCert(t, filepath.Join(p.dir, "leaf.pem"), leaf.Cert)
	other := filepath.Join(p.dir, "ca", "other.pem")

	cases := []struct {
		name                  string
		typ, cert, crl, delta string
		exempt                bool
		want                  string
	}{
		{"duplicate", "root", filepath.Join(p.dir, "ca", "root.cer"), "http://x/r.crl", "", false,
			"certgate.yaml:13: trustedCertificateAuthorities[0]: a CA with SKI " + p.rootSKI + " is already configured"},
		{"non-CA", "root", filepath.Join(p.dir, "leaf.pem"), "http://x/r.crl", "", false, "is not a CA certificate (CN=alice"},
		{"bad type", "anchor", other, "http://x/r.crl", "", false, `CA type "anchor" is not allowed`},
		{"missing file", "root", filepath.Join(p.dir, "nope.pem"), "", "", true, "no such file"},
		{"no CRL, not exempt", "root", other, "", "", false,
			"refusing the change (" + path + " is unchanged); after it the config would not load:\ntrustedCertificateAuthorities[2].crlDistributionPoint: is required"},
		{"bad CRL URL", "root", other, "ldap://x", "", false, `crlDistributionPoint: "ldap://x": want an http://, https:// or file:// URL`},
		{"file URL with a host", "root", other, "file://crl/x.crl", "", false, `crlDistributionPoint: "file://crl/x.crl" names the host "crl"; write file:crl/x.crl`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.AddCA(path, tc.typ, tc.cert, tc.crl, tc.delta, tc.exempt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
			if got := readString(t, path); got != orig {
				t.Errorf("file changed on refusal:\n%s", got)
			}
		})
	}
	leftovers, _ := filepath.Glob(filepath.Join(p.dir, ".certgate.yaml.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestAddCAExemptAndOutsideDir(t *testing.T) {
	p := newPKI(t)
	path := writeConfig(t, p, p.commented())
	outside := filepath.Join(t.TempDir(), "partner.pem")
	writeCert(t, outside, p.otherRoot.Cert)
	if _, err := config.AddCA(path, "root", outside, "", "", true); err != nil {
		t.Fatal(err)
	}
	got := readString(t, path)
	for _, want := range []string{"    trustedCertificate: " + outside + "\n", "    crlExempt: true\n", "    trustedIssuer: CN=Other Root CA\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestRemoveCA(t *testing.T) {
	p := newPKI(t)
	second := p.root.Intermediate(t, "Second Issuing CA")
	writeCert(t, filepath.Join(p.dir, "ca", "second.pem"), second.Cert)
	orig := p.commented()
	orig = mustReplace(t, orig, "\nroutes:", `
  - authorityType: intermediate
    trustedCertificate: ca/second.pem
    crlExempt: true

routes:`)
	path := writeConfig(t, p, orig)

	// Remove the middle entry: its leading comment goes with it, the
	// blank line before the next entry stays single.
	colonSKI := strings.ToLower(p.interSKI[:2] + ":" + p.interSKI[2:])
	if err := config.RemoveCA(path, colonSKI); err != nil {
		t.Fatal(err)
	}
	want := mustReplace(t, orig, "  # issuing CA\n  - authorityType: intermediate\n    trustedCertificate: ca/issuing.pem\n"+
		"    crlDistributionPoint: http://pki.example.com/issuing.crl\n    trustedIssuerSKI: "+p.interSKI+"\n\n", "")
	got := readString(t, path)
	if got != want {
		t.Errorf("after removing the middle entry:\n%s\nwant:\n%s", got, want)
	}

	// Remove the last entry: the blank line above it goes too.
	if err := config.RemoveCA(path, config.FormatSKI(second.Cert.SubjectKeyId)); err != nil {
		t.Fatal(err)
	}
	want = mustReplace(t, want, "\n  - authorityType: intermediate\n    trustedCertificate: ca/second.pem\n    crlExempt: true\n", "")
	got = readString(t, path)
	if got != want {
		t.Errorf("after removing the last entry:\n%s\nwant:\n%s", got, want)
	}

	before := got
	// Removing the only root is refused: the result would not load.
	err := config.RemoveCA(path, p.rootSKI)
	if err == nil || !strings.Contains(err.Error(), "would not load") || !strings.Contains(err.Error(), "needs at least one root CA") {
		t.Errorf("removing the last CA: %v", err)
	}
	if readString(t, path) != before {
		t.Error("file changed on refusal")
	}
	if err := config.RemoveCA(path, "00FF"); err == nil || !strings.Contains(err.Error(), "no CA with SKI 00ff") {
		t.Errorf("unknown SKI: %v", err)
	}
	if err := config.RemoveCA(path, "xyz"); err == nil {
		t.Error("bad SKI accepted")
	}
}

func TestSetCA(t *testing.T) {
	p := newPKI(t)
	orig := p.commented()
	path := writeConfig(t, p, orig)
	str := func(s string) *string { return &s }

	// Replace a quoted value: the comment after it stays.
	if err := config.SetCA(path, p.rootSKI, config.CAChanges{CRL: str("https://pki2.example.com/root.crl")}); err != nil {
		t.Fatal(err)
	}
	got := readString(t, path)
	removed, added := diffLines(orig, got)
	if strings.Join(removed, "") != "    crlDistributionPoint: \"http://pki.example.com/root.crl\"   # base CRL\n" ||
		strings.Join(added, "") != "    crlDistributionPoint: https://pki2.example.com/root.crl   # base CRL\n" {
		t.Errorf("removed %q added %q", removed, added)
	}

	// Add a key that is not there yet, and change the type on the dash line.
	before := got
	if err := config.SetCA(path, p.interSKI, config.CAChanges{DeltaCRL: str("http://pki.example.com/issuing-delta.crl")}); err != nil {
		t.Fatal(err)
	}
	got = readString(t, path)
	removed, added = diffLines(before, got)
	if len(removed) != 0 || strings.Join(added, "") != "    deltaCrlDistributionPoint: http://pki.example.com/issuing-delta.crl\n" {
		t.Errorf("removed %q added %q", removed, added)
	}
	cas, err := config.ListCAs(path)
	if err != nil || cas[1].DeltaCRL != "http://pki.example.com/issuing-delta.crl" {
		t.Fatalf("ListCAs = %+v, %v", cas, err)
	}

	// Clear the delta URL again: the line goes.
	before = got
	if err := config.SetCA(path, p.interSKI, config.CAChanges{DeltaCRL: str("")}); err != nil {
		t.Fatal(err)
	}
	got = readString(t, path)
	if removed, added = diffLines(before, got); len(added) != 0 || len(removed) != 1 {
		t.Errorf("clearing: removed %q added %q", removed, added)
	}

	// Changes that would not load are refused and leave the file alone.
	before = got
	for name, ch := range map[string]config.CAChanges{
		"bad type":                  {Type: str("anchor")},
		"root becomes intermediate": {Type: str("intermediate")},
		"crl removed, not exempt":   {CRL: str("")},
		"delta on no base":          {CRL: str(""), DeltaCRL: str("http://x/d.crl"), CRLExempt: new(bool)},
	} {
		if err := config.SetCA(path, p.rootSKI, ch); err == nil || !strings.Contains(err.Error(), "would not load") {
			t.Errorf("%s: error = %v", name, err)
		}
		if readString(t, path) != before {
			t.Fatalf("%s: file changed on refusal", name)
		}
	}
	if err := config.SetCA(path, p.rootSKI, config.CAChanges{}); err == nil {
		t.Error("empty change accepted")
	}

	// Setting a CRL on an exempt CA drops the exemption.
	exempt := true
	if err := config.SetCA(path, p.rootSKI, config.CAChanges{CRL: str(""), CRLExempt: &exempt}); err != nil {
		t.Fatal(err)
	}
	if err := config.SetCA(path, p.rootSKI, config.CAChanges{CRL: str("http://pki.example.com/again.crl")}); err != nil {
		t.Fatal(err)
	}
	cas, err = config.ListCAs(path)
	if err != nil || cas[0].CRLExempt || cas[0].CRL != "http://pki.example.com/again.crl" {
		t.Errorf("after re-adding the CRL: %+v, %v", cas[0], err)
	}
}

// TestEditLayouts covers the other places a CA list can be: absent, empty,
// written with "-" alone on a line, and in a file with CRLF line endings and
// no final newline. Flow-style lists are refused.
func TestEditLayouts(t *testing.T) {
	p := newPKI(t)
	rest := "serverTLS:\n    certFile: tls/server.pem\n    keyFile: tls/server-key.pem\nroutes:\n    - name: web\n      backend: http://127.0.0.1:1\n"
	root := filepath.Join(p.dir, "ca", "root.cer")
	t.Run("absent", func(t *testing.T) {
		path := writeConfig(t, p, rest)
		if _, err := config.AddCA(path, "root", root, "http://x/r.crl", "", false); err != nil {
			t.Fatal(err)
		}
		got := readString(t, path)
		if !strings.HasPrefix(got, rest+"\ntrustedCertificateAuthorities:\n    - authorityType: root\n      trustedCertificate: ca/root.cer\n") {
			t.Errorf("got:\n%s", got)
		}
	})
	t.Run("empty flow list", func(t *testing.T) {
		path := writeConfig(t, p, "trustedCertificateAuthorities: []   # none yet\n"+rest)
		if _, err := config.AddCA(path, "root", root, "http://x/r.crl", "", false); err != nil {
			t.Fatal(err)
		}
		if got := readString(t, path); !strings.HasPrefix(got, "trustedCertificateAuthorities: # none yet\n    - authorityType: root\n") {
			t.Errorf("got:\n%s", got)
		}
	})
	t.Run("null", func(t *testing.T) {
		path := writeConfig(t, p, "trustedCertificateAuthorities:\n"+rest)
		if _, err := config.AddCA(path, "root", root, "http://x/r.crl", "", false); err != nil {
			t.Fatal(err)
		}
		if got := readString(t, path); !strings.HasPrefix(got, "trustedCertificateAuthorities:\n    - authorityType: root\n      trustedCertificate: ca/root.cer\n") {
			t.Errorf("got:\n%s", got)
		}
	})
	t.Run("dash alone", func(t *testing.T) {
		orig := "trustedCertificateAuthorities:\n  - # the root\n    authorityType: root\n    trustedCertificate: ca/root.cer\n    crlDistributionPoint: http://x/r.crl\n" + rest
		path := writeConfig(t, p, orig)
		other := filepath.Join(p.dir, "ca", "other.pem")
		if _, err := config.AddCA(path, "root", other, "http://x/o.crl", "", false); err != nil {
			t.Fatal(err)
		}
		got := readString(t, path)
		if removed, _ := diffLines(orig, got); len(removed) != 0 {
			t.Errorf("changed %q", removed)
		}
		if err := config.SetCA(path, p.rootSKI, config.CAChanges{CRL: new(string)}); err == nil {
			t.Error("removing the CRL of a non-exempt CA accepted")
		}
		if err := config.RemoveCA(path, p.rootSKI); err != nil {
			t.Fatal(err)
		}
		if got := readString(t, path); strings.Contains(got, "the root") || !strings.HasPrefix(got, "trustedCertificateAuthorities:\n  - authorityType: root\n    trustedCertificate: ca/other.pem\n") {
			t.Errorf("got:\n%s", got)
		}
	})
	t.Run("CRLF without final newline", func(t *testing.T) {
		orig := strings.ReplaceAll("trustedCertificateAuthorities:\n  - authorityType: root\n    trustedCertificate: ca/root.cer\n    crlDistributionPoint: http://x/r.crl\n"+rest, "\n", "\r\n")
		orig = strings.TrimSuffix(orig, "\r\n")
		path := writeConfig(t, p, orig)
		if err := config.SetCA(path, p.rootSKI, config.CAChanges{CRL: ptr("http://y/r.crl")}); err != nil {
			t.Fatal(err)
		}
		want := strings.Replace(orig, "http://x/r.crl", "http://y/r.crl", 1)
		if got := readString(t, path); got != want {
			t.Errorf("got %q\nwant %q", got, want)
		}
		if _, err := config.AddCA(path, "root", filepath.Join(p.dir, "ca", "other.pem"), "http://x/o.crl", "", false); err != nil {
			t.Fatal(err)
		}
		got := readString(t, path)
		if strings.Count(got, "\n") != strings.Count(got, "\r\n") || !strings.Contains(got, "\r\n  - authorityType: root\r\n    trustedCertificate: ca/other.pem\r\n") {
			t.Errorf("line endings mixed: %q", got)
		}
	})
	t.Run("flow list refused", func(t *testing.T) {
		orig := "trustedCertificateAuthorities: [{authorityType: root, trustedCertificate: ca/root.cer, crlExempt: true}]\n" + rest
		path := writeConfig(t, p, orig)
		if _, err := config.AddCA(path, "root", filepath.Join(p.dir, "ca", "other.pem"), "http://x/o.crl", "", false); err == nil || !strings.Contains(err.Error(), "block list") {
			t.Errorf("error = %v", err)
		}
		if readString(t, path) != orig {
			t.Error("file changed")
		}
	})
}

func ptr(s string) *string { return &s }

// TestEditThroughSymlink: a config reached through a symlink (as in a
// Kubernetes volume) is edited at its target; the link stays a link.
func TestEditThroughSymlink(t *testing.T) {
	p := newPKI(t)
	real := filepath.Join(p.dir, "real.yaml")
	writeFile(t, real, []byte(p.commented()))
	link := filepath.Join(p.dir, "certgate.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := config.SetCA(link, p.rootSKI, config.CAChanges{CRL: ptr("http://z/r.crl")}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(readString(t, real), "http://z/r.crl") {
		t.Error("target not edited")
	}
}

// TestAddCAQuoting: values that YAML would read as something else are
// quoted, and the result reads back as the same strings.
func TestAddCAQuoting(t *testing.T) {
	p := newPKI(t)
	path := writeConfig(t, p, p.baseConfig())
	ca := p.root.Intermediate(t, "x", pkigen.Subject(pkixName("#1: weird, \"quoted\" CA")))
	certFile := filepath.Join(p.dir, "ca", "weird.pem")
	writeCert(t, certFile, ca.Cert)
	info, err := config.AddCA(path, "intermediate", certFile, "http://x/w.crl#frag", "", false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := c.CAs[len(c.CAs)-1]
	if got.TrustedIssuer != info.Subject || got.CRL != "http://x/w.crl#frag" || !bytes.Equal(got.Certificate.Raw, ca.Cert.Raw) {
		t.Errorf("read back %+v", got)
	}
}

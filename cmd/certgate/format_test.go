package main

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestOneSpellingEverywhere scans what an operator reads (JSON logs,
// /metrics, /status.json, ca list, check and validate output) for the
// forms of SKIs and DNs: SKIs lower-case hex (as the metrics label), DNs in
// RFC 4514 order of the certificate's own encoding. The CA and the client
// here are encoded CN before O, as `openssl req -subj /CN=../O=..` writes
// them, where Go's pkix.Name.String reorders to "CN=..,O=..". It also checks
// that status.json has camelCase names and no placeholder times, and that
// no JSON log line carries "component" twice.
func TestOneSpellingEverywhere(t *testing.T) {
	cnFirst := func(cn string) pkix.Name {
		return pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: cn},
			{Type: asn1.ObjectIdentifier{2, 5, 4, 10}, Value: "Contoso"},
		}}
	}
	odd := pkigen.Root(t, "Odd Root", pkigen.Subject(cnFirst("Odd Root")))
	e := newEnv(t, envConfig{
		caYAML: `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
  - authorityType: root
    trustedCertificate: ca/odd.pem
    crlDistributionPoint: file:crl/odd.crl
`,
		beforeStart: func(e *env) {
			must(t, pkigen.WriteCert(filepath.Join(e.dir, "ca", "odd.pem"), odd.Cert))
			must(t, os.MkdirAll(filepath.Join(e.dir, "crl"), 0o755))
			must(t, os.WriteFile(filepath.Join(e.dir, "crl", "odd.crl"), odd.MustCRL(t, pkigen.CRLOptions{}), 0o644))
		},
	})
	const wantCA, wrongCA = "O=Contoso,CN=Odd Root", "CN=Odd Root,O=Contoso"
	const wantLeaf, wrongLeaf = "O=Contoso,CN=eve", "CN=eve,O=Contoso"
	eve := odd.Leaf(t, "eve", pkigen.Subject(cnFirst("eve")), pkigen.UPN("eve@fabrikam.com"))
	eveCert, _ := e.writeLeaf("eve", eve)
	must(t, e.inst.ready()) // the CRL is in
	// eve is refused (no such user) after a full handshake, so the
	// decision is logged and shown in the status page.
	if code := getOnce(t, e, eve, 0, nil); code != 0 {
		t.Fatalf("eve got HTTP %d in handshake mode", code)
	}

	get := func(path string) string {
		resp, err := http.Get("http://" + e.inst.adminAddr() + path)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	cfg := filepath.Join(e.dir, "certgate.yaml")
	cli := func(args ...string) string {
		_, out, errs := runCLI(t, args...)
		return out + errs
	}
	sources := map[string]string{
		"logs":        e.logs.String(),
		"metrics":     get("/metrics"),
		"status.json": get("/status.json"),
		"ca list":     cli("ca", "list", "--config", cfg),
		"check":       cli("check", "--json", "--config", cfg, eveCert),
		"validate":    cli("validate", "--config", cfg),
	}
	for _, ca := range []*pkigen.CA{e.root, e.inter, odd} {
		lower := hex.EncodeToString(ca.Cert.SubjectKeyId)
		upper := strings.ToUpper(lower)
		for name, text := range sources {
			if strings.Contains(text, upper) {
				t.Errorf("%s spells SKI %s in upper case", name, lower)
			}
		}
		for _, name := range []string{"metrics", "status.json", "ca list", "validate", "logs"} {
			if name == "logs" && ca != odd {
				continue // only the CRL of odd is fetched and logged
			}
			if !strings.Contains(sources[name], lower) {
				t.Errorf("%s does not show SKI %s", name, lower)
			}
		}
	}
	for name, text := range sources {
		if strings.Contains(text, wrongCA) || strings.Contains(text, wrongLeaf) {
			t.Errorf("%s prints a DN in Go's reordered form", name)
		}
	}
	for _, name := range []string{"status.json", "ca list", "validate"} {
		if !strings.Contains(sources[name], wantCA) {
			t.Errorf("%s does not show %q:\n%s", name, wantCA, sources[name])
		}
	}
	for _, name := range []string{"logs", "status.json", "check"} {
		if !strings.Contains(sources[name], wantLeaf) {
			t.Errorf("%s does not show %q", name, wantLeaf)
		}
	}

	for _, line := range strings.Split(strings.TrimSpace(sources["logs"]), "\n") {
		if strings.Count(line, `"component":`) > 1 {
			t.Errorf("log line carries component more than once: %s", line)
		}
	}
	status := sources["status.json"]
	if strings.Contains(status, "0001-01-01") {
		t.Error("status.json shows an unknown time as 0001-01-01")
	}
	var doc any
	must(t, json.Unmarshal([]byte(status), &doc))
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if r := []rune(k)[0]; unicode.IsUpper(r) && path != "ocspQueries" && !strings.HasSuffix(path, "fetchErrors") {
					t.Errorf("status.json key %s.%s is not camelCase", path, k)
				}
				walk(k, c)
			}
		case []any:
			for _, c := range v {
				walk(path, c)
			}
		}
	}
	walk("", doc)
}

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestValidateCRLs: validate reads and verifies every file: CRL (signature
// by its CA, dates, number against the cache), reports each CA's cache,
// fetches http(s) CRLs only with --fetch, and never writes the cache.
// Before, validate said OK without looking at any CRL.
func TestValidateCRLs(t *testing.T) {
	dir := t.TempDir()
	root := pkigen.Root(t, "Validate Root")
	inter := root.Intermediate(t, "Validate Issuing")
	server := inter.Server(t, []string{"localhost"})
	must(t, pkigen.WriteCert(filepath.Join(dir, "ca", "root.pem"), root.Cert))
	must(t, pkigen.WriteCert(filepath.Join(dir, "ca", "inter.pem"), inter.Cert))
	must(t, pkigen.WriteLeaf(filepath.Join(dir, "tls", "server.pem"), filepath.Join(dir, "tls", "server-key.pem"), server, true))
	must(t, os.WriteFile(filepath.Join(dir, "users.yaml"), []byte("users: []\n"), 0o644))
	must(t, os.MkdirAll(filepath.Join(dir, "crl"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "cache"), 0o755))
	now := time.Now()
	writeRootCRL := func(o pkigen.CRLOptions) {
		must(t, os.WriteFile(filepath.Join(dir, "crl", "root.crl"), root.MustCRL(t, o), 0o644))
	}
	writeRootCRL(pkigen.CRLOptions{Number: 3})
	interCRL := inter.MustCRL(t, pkigen.CRLOptions{Number: 7})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(interCRL) }))
	defer srv.Close()
	cfg := filepath.Join(dir, "certgate.yaml")
	must(t, os.WriteFile(cfg, []byte(`listen: "127.0.0.1:0"
serverTLS: {certFile: tls/server.pem, keyFile: tls/server-key.pem}
trustedCertificateAuthorities:
  - authorityType: root
    trustedCertificate: ca/root.pem
    crlDistributionPoint: file:crl/root.crl
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlDistributionPoint: `+srv.URL+`/inter.crl
revocation: {cacheDir: cache}
identity: {directory: {file: users.yaml}}
routes: [{name: web, backend: "http://127.0.0.1:1"}]
`), 0o644))
	rootSKI := hex.EncodeToString(root.Cert.SubjectKeyId)
	validateJSON := func(extra ...string) (int, validateResult, string) {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"validate", "--config", cfg, "--json"}, extra...)...)
		var res validateResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("exit %d, %v: %q %q", code, err, out, errs)
		}
		return code, res, errs
	}

	code, out, errs := runCLI(t, "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "file:crl/root.crl: number 3, 0 entries") || !strings.Contains(out, "/inter.crl not fetched") ||
		!strings.Contains(out, "cache: none") || !strings.Contains(out, "OK (2 trusted CAs") {
		t.Fatalf("good file CRL: exit %d %q %q", code, out, errs)
	}
	code, res, _ := validateJSON("--fetch")
	if code != 0 || !res.OK || len(res.Revocation) != 2 || res.Revocation[1].CRL == nil || res.Revocation[1].CRL.Number != "7" ||
		res.Revocation[0].CRL.NextUpdate == nil || res.Revocation[0].IssuerSKI != rootSKI {
		t.Fatalf("--fetch: exit %d %+v", code, res)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cache")); len(ents) != 0 {
		t.Fatalf("validate wrote the cache: %v", ents)
	}

	// A CRL signed by another key.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeRootCRL(pkigen.CRLOptions{Number: 4, Signer: other})
	code, _, errs = runCLI(t, "validate", "--config", cfg)
	if code != 2 || !strings.Contains(errs, "certgate.yaml:6: trustedCertificateAuthorities[0].crlDistributionPoint:") || !strings.Contains(errs, "signature") {
		t.Fatalf("badly signed CRL: exit %d %q", code, errs)
	}
	// An expired one.
	writeRootCRL(pkigen.CRLOptions{Number: 4, ThisUpdate: now.Add(-48 * time.Hour), NextUpdate: now.Add(-24 * time.Hour)})
	code, _, errs = runCLI(t, "validate", "--config", cfg)
	if code != 2 || !strings.Contains(errs, "nextUpdate") || !strings.Contains(errs, "has passed") {
		t.Fatalf("expired CRL: exit %d %q", code, errs)
	}
	// The cache holds number 5 and the file number 4: serve would never
	// use the file (the number may not go back).
	cached := root.MustCRL(t, pkigen.CRLOptions{Number: 5})
	must(t, os.WriteFile(filepath.Join(dir, "cache", rootSKI+".crl"), cached, 0o644))
	writeRootCRL(pkigen.CRLOptions{Number: 4})
	code, res, errs = validateJSON()
	if code != 2 || res.OK || res.Revocation[0].Cache == nil || res.Revocation[0].Cache.Number != "5" ||
		!strings.Contains(res.Revocation[0].CRL.Error, "older") || len(res.Errors) != 1 {
		t.Fatalf("CRL behind the cache: exit %d %+v %q", code, res, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cache", rootSKI+".crl")); !bytes.Equal(b, cached) {
		t.Fatal("validate changed the cache")
	}
	// A missing file.
	must(t, os.Remove(filepath.Join(dir, "crl", "root.crl")))
	code, _, errs = runCLI(t, "validate", "--config", cfg)
	if code != 2 || !strings.Contains(errs, "root.crl") || !strings.Contains(errs, "no such file") {
		t.Fatalf("missing CRL file: exit %d %q", code, errs)
	}
}

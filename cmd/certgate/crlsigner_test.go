package main

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// A CA whose CRLs another of its keys signs (a separate CRL-signing key):
// `certgate check` believes those CRLs only while the signing key's
// certificate passes trust's path validation (build.go wires
// trust.Store.CheckCRLSigner into revocation). A weak signing key, which
// revocation's own checks of dates and revocation do not see, makes the
// CA's CRLs unusable, and the verdict says why.
func TestCheckCRLSignerPathValidation(t *testing.T) {
	root := pkigen.Root(t, "Signer Root")
	inter := root.Intermediate(t, "Issuing CA", pkigen.KeyUsage(x509.KeyUsageCertSign))
	alice := inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	for _, tc := range []struct {
		name    string
		keyOpts []pkigen.Option
		code    int
		want    []string
	}{
		{"sound signing key", nil, 0, nil},
		{"1024-bit signing key", []pkigen.Option{pkigen.RSA(1024)}, 1, []string{"crl_unavailable", "CRL signer", "certification path is not valid", "RSA key of 1024 bits"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := root.Leaf(t, "Issuing CA", append([]pkigen.Option{pkigen.KeyUsage(x509.KeyUsageCRLSign), pkigen.EKU()}, tc.keyOpts...)...)
			crlKey := &pkigen.CA{Cert: l.Cert, Key: l.Key}
			now := time.Now()
			must(t, os.WriteFile(filepath.Join(dir, "inter.crl"), crlKey.MustCRL(t, pkigen.CRLOptions{Number: 1, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour)}), 0o644))
			var cas strings.Builder
			for i, c := range []struct {
				typ  string
				cert *x509.Certificate
			}{{"root", root.Cert}, {"intermediate", inter.Cert}, {"intermediate", crlKey.Cert}} {
				p := filepath.Join(dir, fmt.Sprintf("ca%d.pem", i))
				must(t, pkigen.WriteCert(p, c.cert))
				fmt.Fprintf(&cas, "  - authorityType: %s\n    trustedCertificate: %s\n", c.typ, p)
				if i == 0 {
					cas.WriteString("    crlExempt: true\n")
				} else {
					fmt.Fprintf(&cas, "    crlDistributionPoint: file://%s\n", filepath.Join(dir, "inter.crl"))
				}
			}
			server := root.Server(t, []string{"localhost"})
			must(t, pkigen.WriteLeaf(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), server, true))
			leaf := filepath.Join(dir, "alice.pem")
			must(t, pkigen.WriteCert(leaf, alice.Cert))
			cfg := filepath.Join(dir, "certgate.yaml")
			must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
serverTLS:
  certFile: server.pem
  keyFile: server-key.pem
trustedCertificateAuthorities:
%sidentity:
  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
routes:
  - name: web
    kind: web
    pathPrefix: /
    backend: http://127.0.0.1:9
`, cas.String())), 0o644))

			code, out, errs := runCLI(t, "check", "--config", cfg, "--json", leaf)
			var res checkResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("exit %d, output not JSON: %v\n%s\n%s", code, err, out, errs)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %+v", code, tc.code, res)
			}
			t.Logf("verdict: %s: %s", res.Reason, res.Error)
			for _, w := range tc.want {
				if !strings.Contains(res.Reason+" "+res.Error, w) {
					t.Errorf("verdict %q %q does not mention %q", res.Reason, res.Error, w)
				}
			}
		})
	}
}

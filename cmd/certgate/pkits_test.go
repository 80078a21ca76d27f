package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/pkits"
)

// pkitsTime is the suite's validation time: all "valid" material is valid
// then (testdata/README.md of internal/pkits).
const pkitsTime = "2011-04-15T00:00:00Z"

// pkitsUnparseable are the two valid end entities of the suite that
// crypto/x509 (and so crypto/tls) cannot parse: a distribution point that
// Go refuses. certgate cannot admit what the TLS stack cannot read, so the
// honest verdict is malformed_certificate rather than a silent accept.
var pkitsUnparseable = map[string]bool{"4.14.4": true, "4.14.5": true}

// pkitsCRLServer serves every CRL of the suite by file name on 127.0.0.1;
// any other path answers 404, which is what a CA without a CRL gets.
func pkitsCRLServer(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".crl")
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		der, err := pkits.CRL(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(der)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// pkitsConfig writes one case as certgate sees it: the anchor a root, every
// other CA of the path an intermediate, each with its CRL URLs; the
// identity is the leaf's subject itself, or its e-mail name when the subject
// is empty (4.13.14), with no directory, so the verdict is the chain's and
// the revocation check's alone. It returns the config path,
// the leaf file and the intermediate files (which the client also sends).
func pkitsConfig(t *testing.T, c pkits.Case, crlBase, serverDir string) (cfg, leaf string, chain []string) {
	dir := t.TempDir()
	write := func(name string) string {
		der, err := pkits.Cert(name)
		must(t, err)
		p := filepath.Join(dir, name+".cer")
		must(t, os.WriteFile(p, der, 0o644))
		return p
	}
	var cas strings.Builder
	for i, name := range c.Path[:len(c.Path)-1] {
		p := write(name)
		typ := "intermediate"
		if i == 0 {
			typ = "root"
		} else {
			chain = append(chain, p)
		}
		crl := c.CRLs[name]
		base := crlBase + "/absent-" + name + ".crl" // 404: the CA publishes none
		if crl.BaseCRL != "" {
			base = crlBase + "/" + crl.BaseCRL + ".crl"
		}
		fmt.Fprintf(&cas, "  - authorityType: %s\n    trustedCertificate: %s\n    crlDistributionPoint: %s\n", typ, p, base)
		if crl.DeltaCRL != "" {
			fmt.Fprintf(&cas, "    deltaCrlDistributionPoint: %s/%s.crl\n", crlBase, crl.DeltaCRL)
		}
	}
	leaf = write(c.Leaf())
	cfg = filepath.Join(dir, "certgate.yaml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
serverTLS:
  certFile: %[1]s/server.pem
  keyFile: %[1]s/server-key.pem
trustedCertificateAuthorities:
%[2]sidentity:
  bindings:
    - {certificateField: Subject, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: userPrincipalName}
routes:
  - name: web
    kind: web
    pathPrefix: /
    backend: http://127.0.0.1:9
limits:
  minRSABits: 1024
`, serverDir, cas.String())), 0o644))
	return cfg, leaf, chain
}

// TestPKITS drives every applicable case of NIST PKITS through
// `certgate check` with the CRLs served over HTTP, and compares the verdict
// with the suite's.
func TestPKITS(t *testing.T) {
	cases, err := pkits.Applicable()
	if err != nil {
		t.Fatal(err)
	}
	crlBase := pkitsCRLServer(t)
	serverDir := t.TempDir()
	root := pkigen.Root(t, "PKITS harness server root")
	must(t, pkigen.WriteLeaf(filepath.Join(serverDir, "server.pem"), filepath.Join(serverDir, "server-key.pem"), root.Server(t, []string{"localhost"}), true))

	var wrong []string
	for _, c := range cases {
		t.Run(c.ID, func(t *testing.T) {
			cfg, leaf, chain := pkitsConfig(t, c, crlBase, serverDir)
			args := append([]string{"check", "--config", cfg, "--at", pkitsTime, "--json", leaf}, chain...)
			code, out, errs := runCLI(t, args...)
			var res checkResult
			if code != 2 {
				if err := json.Unmarshal([]byte(out), &res); err != nil {
					t.Fatalf("exit %d, output not JSON: %v\n%s", code, err, out)
				}
			}
			want, wantCode := "accepted", 0
			switch {
			case pkitsUnparseable[c.ID]:
				want, wantCode = "rejected: malformed_certificate", 1
			case !c.Accept:
				want, wantCode = "rejected", 1
			}
			got := res.Decision
			if res.Decision == "rejected" {
				got += ": " + res.Reason
			}
			if code != wantCode || !strings.HasPrefix(got, want) {
				wrong = append(wrong, c.ID)
				t.Errorf("%s (%s): exit %d %q, want exit %d %q\nerror: %s\nstderr: %s", c.ID, c.Title, code, got, wantCode, want, res.Error, errs)
			}
		})
	}
	sort.Strings(wrong)
	t.Logf("PKITS: %d of %d applicable cases as the suite expects; wrong: %v", len(cases)-len(wrong), len(cases), wrong)
}

// pkitsListenerSample spans the suite's sections: signatures, names, CRLs
// (revoked CA, separate CRL key, key rollover, partitioned CRLs, a CA with
// no CRL), path length and name constraints.
var pkitsListenerSample = []string{"4.1.1", "4.1.2", "4.3.5", "4.4.1", "4.4.2", "4.4.19", "4.5.1", "4.5.5", "4.6.8", "4.6.17", "4.13.24", "4.14.3", "4.14.13", "4.16.2"}

// TestPKITSListenerAgrees starts serve itself, at the suite's time, for a
// sample of cases, lets it fetch the CRLs as it does in production, and
// asks the running instance's policy for the verdict. The suite ships no
// private keys, so no client can prove possession of a PKITS certificate
// in a handshake; everything after the signature over the handshake (the
// live trust store, the CRLs as the refresher ingested them) is the
// listener's own.
func TestPKITSListenerAgrees(t *testing.T) {
	all, err := pkits.Applicable()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]pkits.Case{}
	for _, c := range all {
		byID[c.ID] = c
	}
	at, err := time.Parse(time.RFC3339, pkitsTime)
	must(t, err)
	crlBase := pkitsCRLServer(t)
	serverDir := t.TempDir()
	root := pkigen.Root(t, "PKITS harness server root")
	must(t, pkigen.WriteLeaf(filepath.Join(serverDir, "server.pem"), filepath.Join(serverDir, "server-key.pem"), root.Server(t, []string{"localhost"}), true))
	for _, id := range pkitsListenerSample {
		c, ok := byID[id]
		if !ok {
			t.Fatalf("sample case %s is not an applicable case", id)
		}
		t.Run(id, func(t *testing.T) {
			cfg, leaf, chain := pkitsConfig(t, c, crlBase, serverDir)
			inst, err := startFromConfig(context.Background(), cfg, io.Discard, instanceOptions{now: func() time.Time { return at }})
			if err != nil {
				t.Fatalf("serve refused to start: %v", err)
			}
			defer inst.close()
			if err := inst.rev.RefreshNow(context.Background()); err != nil {
				t.Logf("CRL fetch: %v", err) // judged by the policy below, as in serve
			}
			var certs []*x509.Certificate
			for _, p := range append([]string{leaf}, chain...) {
				cs, err := readCertificates(p)
				must(t, err)
				certs = append(certs, cs...)
			}
			d := inst.srv.Policy().Decide(context.Background(), certs, at, at)
			code, out, _ := runCLI(t, append([]string{"check", "--config", cfg, "--at", pkitsTime, "--json", leaf}, chain...)...)
			var res checkResult
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("check exit %d: %v", code, err)
			}
			if d.OK() != c.Accept || d.Reason != res.Reason {
				t.Errorf("%s: listener %q (ok=%v), check %q, suite accept=%v; listener error: %v", id, d.Reason, d.OK(), res.Reason, c.Accept, d.Err)
			}
		})
	}
}

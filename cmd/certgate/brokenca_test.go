package main

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/pkits"
)

// A configured CA that is broken (here: expired) is a runtime fact: serve
// starts, validate warns and exits 0, the chains that need the CA are
// refused with a reason naming it, and metrics and /status.json show it.
func TestBrokenCAIsReportedNotFatal(t *testing.T) {
	now := time.Now()
	var old *pkigen.CA
	var oldLeaf string
	e := newEnv(t, envConfig{
		caYAML: `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/old.pem
    crlExempt: true
`,
		beforeStart: func(e *env) {
			old = e.root.Intermediate(t, "Old Issuing CA", pkigen.Validity(now.Add(-72*time.Hour), now.Add(-time.Hour)))
			must(t, pkigen.WriteCert(filepath.Join(e.dir, "ca", "old.pem"), old.Cert))
			oldLeaf, _ = e.writeLeaf("old-alice", old.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"), pkigen.Validity(now.Add(-48*time.Hour), now.Add(48*time.Hour))))
		},
	})
	cfg := filepath.Join(e.dir, "certgate.yaml")

	code, out, errs := runCLI(t, "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(errs, "warning") ||
		!strings.Contains(errs, "trustedCertificateAuthorities[2]") || !strings.Contains(errs, `CA "CN=Old Issuing CA"`) || !strings.Contains(errs, "expired at") {
		t.Fatalf("validate: exit %d %q %q", code, out, errs)
	}

	code, out, _ = runCLI(t, "check", "--config", cfg, "--json", oldLeaf)
	var res checkResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 {
		t.Fatalf("check: exit %d, %v: %s", code, err, out)
	}
	if res.Reason != "expired" || !strings.Contains(res.Certificate, `CA "CN=Old Issuing CA"`) || !strings.Contains(res.Rule, "validity") {
		t.Fatalf("check of a leaf under the expired CA: %+v", res)
	}

	// The other CAs keep working.
	alice, _ := e.writeLeaf("alice", e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com")))
	if code, out, _ := runCLI(t, "check", "--config", cfg, alice); code != 0 {
		t.Fatalf("check under the good intermediate: exit %d %s", code, out)
	}

	ski := hex.EncodeToString(old.Cert.SubjectKeyId)
	mfs := opsScrape(t, "http://"+e.inst.adminAddr()+"/metrics")
	if v := opsMetric(t, mfs, "certgate_ca_usable", map[string]string{"issuer_ski": ski}); v != 0 {
		t.Errorf("certgate_ca_usable for the expired CA = %v, want 0", v)
	}
	if v := opsMetric(t, mfs, "certgate_ca_usable", map[string]string{"issuer_ski": hex.EncodeToString(e.inter.Cert.SubjectKeyId)}); v != 1 {
		t.Errorf("certgate_ca_usable for the good CA = %v, want 1", v)
	}

	resp, err := http.Get("http://" + e.inst.adminAddr() + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.CAs) != 3 || !doc.CAs[1].Usable || doc.CAs[2].Usable || !strings.Contains(doc.CAs[2].Defect, "expired at") {
		t.Fatalf("status.json CA rows: %+v", doc.CAs)
	}
	if !strings.Contains(e.logs.String(), "trusted CA unusable") {
		t.Errorf("no log line at load for the unusable CA:\n%s", e.logs)
	}
}

// A client certificate crypto/x509 cannot parse is a verdict, not a usage
// error; an untrusted one names the issuer looked for.
func TestCheckExplains(t *testing.T) {
	e := newEnv(t, envConfig{})
	cfg := filepath.Join(e.dir, "certgate.yaml")
	for _, name := range []string{"ValiddistributionPointTest4EE", "InvalidNegativeSerialNumberTest15EE"} {
		der, err := pkits.Cert(name)
		must(t, err)
		p := filepath.Join(e.dir, name+".crt")
		must(t, os.WriteFile(p, der, 0o644))
		code, out, errs := runCLI(t, "check", "--config", cfg, p)
		if code != 1 || !strings.Contains(out, "rejected: malformed_certificate") {
			t.Fatalf("%s: exit %d %q %q", name, code, out, errs)
		}
	}
	garbage := filepath.Join(e.dir, "garbage.crt")
	must(t, os.WriteFile(garbage, []byte("not a certificate"), 0o644))
	if code, _, _ := runCLI(t, "check", "--config", cfg, garbage); code != 2 {
		t.Fatalf("a file that is no certificate: exit %d, want 2", code)
	}

	foreign, _ := e.writeLeaf("eve", pkigen.Root(t, "Foreign Root").Leaf(t, "eve", pkigen.UPN("alice@contoso.com")))
	code, out, _ := runCLI(t, "check", "--config", cfg, "--json", foreign)
	var res checkResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if res.Reason != "untrusted" || res.IssuerLookedFor != "CN=Foreign Root" || !strings.Contains(res.Error, "Test Root CA") {
		t.Fatalf("untrusted explanation: %+v", res)
	}
}

// crypto/tls refuses a client certificate crypto/x509 cannot parse before
// certgate sees it; the listener still counts and logs it as a decision.
func TestMalformedClientCertificateAtHandshake(t *testing.T) {
	e := newEnv(t, envConfig{rejectWith: "http"})
	der, err := pkits.Cert("ValiddistributionPointTest4EE")
	must(t, err)
	cfg := e.clientTLS(nil)
	key := e.inter.Leaf(t, "any key").Key
	// GetClientCertificate, because crypto/tls's client would not pick a
	// certificate it cannot parse from Certificates.
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
	}
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), cfg)
	if err == nil {
		// TLS 1.3: the client is done before the server reads its
		// certificate; the refusal arrives as an alert on the first read.
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("the handshake with a malformed certificate succeeded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs := opsScrape(t, "http://"+e.inst.adminAddr()+"/metrics")
		if opsMetric(t, mfs, "certgate_auth_decisions_total", map[string]string{"reason": "malformed_certificate"}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no malformed_certificate decision counted; logs:\n%s", e.logs)
		}
		time.Sleep(10 * time.Millisecond) // the server logs after its handshake returns
	}
	if !strings.Contains(e.logs.String(), `"reason":"malformed_certificate"`) {
		t.Fatalf("no decision log line:\n%s", e.logs)
	}
}

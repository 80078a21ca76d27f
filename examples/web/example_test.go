package web_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/testpki"
)

// TestConfigValidates loads certgate.yaml with the files make-pki.sh would
// write (made here with testpki), through config.Load: the check `certgate
// validate` does.
func TestConfigValidates(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"certgate.yaml", "users.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := testpki.Root(t, "Root")
	inter := root.Intermediate(t, "Inter")
	server := inter.Server(t, []string{"localhost", "127.0.0.1"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(testpki.WriteCert(filepath.Join(dir, "ca/root.pem"), root.Cert))
	must(testpki.WriteCert(filepath.Join(dir, "ca/intermediate.pem"), inter.Cert))
	must(testpki.WriteCert(filepath.Join(dir, "tls/server.pem"), server.Cert, inter.Cert))
	must(testpki.WriteKey(filepath.Join(dir, "tls/server-key.pem"), server.Key))
	must(os.MkdirAll(filepath.Join(dir, "crl"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "crl/root.crl"), root.MustCRL(t, testpki.CRLOptions{}), 0o644))
	must(os.WriteFile(filepath.Join(dir, "crl/intermediate.crl"), inter.MustCRL(t, testpki.CRLOptions{}), 0o644))

	c, err := config.Load(filepath.Join(dir, "certgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 1 {
		t.Fatalf("%d routes", len(c.Routes))
	}
	r := c.Routes[0]
	if r.Kind != config.KindWeb || r.PathPrefix != "/" || r.Timeout.Duration != 30*time.Second {
		t.Errorf("web route %+v", r)
	}
	if c.Identity.ForwardClientCert != "rfc9440" || c.ClientAuth.RejectWith != "http" {
		t.Errorf("identity %+v, clientAuth %+v", c.Identity, c.ClientAuth)
	}
}

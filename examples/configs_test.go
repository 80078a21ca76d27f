// Package examples_test checks that every example's certgate.yaml loads as
// `certgate validate` would load it, with the files make-pki.sh writes
// (made here with pkigen, so nothing can expire).
package examples_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

func TestExampleConfigsLoad(t *testing.T) {
	cases := []struct {
		dir   string
		check func(t *testing.T, c *config.Config)
	}{
		{"eas", func(t *testing.T, c *config.Config) {
			if len(c.Routes) != 2 {
				t.Fatalf("%d routes", len(c.Routes))
			}
			eas := c.Routes[0]
			if eas.Kind != config.KindEAS || !eas.Autodiscover || eas.NetBIOSDomain != "CONTOSO" || eas.Timeout.Duration != 65*time.Minute {
				t.Errorf("eas route %+v", eas)
			}
			if c.Routes[1].Kind != config.KindWeb || c.Routes[1].PathPrefix != "/" {
				t.Errorf("web route %+v", c.Routes[1])
			}
		}},
		{"web", func(t *testing.T, c *config.Config) {
			if len(c.Routes) != 1 {
				t.Fatalf("%d routes", len(c.Routes))
			}
			if r := c.Routes[0]; r.Kind != config.KindWeb || r.PathPrefix != "/" || r.Timeout.Duration != 30*time.Second {
				t.Errorf("web route %+v", r)
			}
			if c.Identity.ForwardClientCert != "rfc9440" || c.ClientAuth.RejectWith != "http" {
				t.Errorf("identity %+v, clientAuth %+v", c.Identity, c.ClientAuth)
			}
		}},
		{"sogo", func(t *testing.T, c *config.Config) {
			if c.Identity.Header != "x-webobjects-remote-user" || len(c.Routes) != 3 {
				t.Fatalf("header %q, %d routes", c.Identity.Header, len(c.Routes))
			}
			for _, r := range c.Routes {
				sogod := strings.HasPrefix(r.Backend, "http://127.0.0.1:20000")
				if sogod != (r.BackendKeepAlive != nil && !*r.BackendKeepAlive) {
					t.Errorf("route %s: every route to sogod, and only those, needs backendKeepAlive: false", r.Name)
				}
			}
			if eas := c.Routes[0]; eas.Kind != config.KindEAS || eas.Backend != "http://127.0.0.1:20000/SOGo" {
				t.Errorf("eas route %+v", eas)
			}
		}},
		{"quickstart", func(t *testing.T, c *config.Config) {
			if len(c.CAs) != 2 || c.CAs[0].CRL == "" || len(c.Routes) != 1 {
				t.Errorf("CAs %d routes %d", len(c.CAs), len(c.Routes))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"certgate.yaml", "users.yaml"} {
				b, err := os.ReadFile(filepath.Join(tc.dir, f))
				must(t, err)
				must(t, os.WriteFile(filepath.Join(dir, f), b, 0o644))
			}
			writeQuickstartPKI(t, dir)
			c, err := config.Load(filepath.Join(dir, "certgate.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// writeQuickstartPKI lays out what examples/quickstart/make-pki.sh writes.
func writeQuickstartPKI(t *testing.T, dir string) {
	root := pkigen.Root(t, "Root")
	inter := root.Intermediate(t, "Inter")
	server := inter.Server(t, []string{"localhost", "127.0.0.1"})
	must(t, pkigen.WriteCert(filepath.Join(dir, "ca/root.pem"), root.Cert))
	must(t, pkigen.WriteCert(filepath.Join(dir, "ca/intermediate.pem"), inter.Cert))
	must(t, pkigen.WriteCert(filepath.Join(dir, "tls/server.pem"), server.Cert, inter.Cert))
	must(t, pkigen.WriteKey(filepath.Join(dir, "tls/server-key.pem"), server.Key))
	must(t, os.MkdirAll(filepath.Join(dir, "crl"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "crl/root.crl"), root.MustCRL(t, pkigen.CRLOptions{}), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "crl/intermediate.crl"), inter.MustCRL(t, pkigen.CRLOptions{}), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

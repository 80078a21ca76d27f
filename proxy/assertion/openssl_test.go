package assertion_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/certgate/certgate/proxy/assertion"
)

// TestLoadKeyFromOpenSSL loads keys made the way the docs say, with the
// openssl command line.
func TestLoadKeyFromOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		alg  string
	}{
		{"genpkey ed25519", []string{"genpkey", "-algorithm", "ed25519"}, "EdDSA"},
		{"genpkey P-256", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"}, "ES256"},
		{"ecparam -genkey", []string{"ecparam", "-name", "prime256v1", "-genkey"}, "ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.alg+tc.args[0]+".pem")
			if out, err := exec.Command("openssl", append(tc.args, "-out", p)...).CombinedOutput(); err != nil {
				t.Fatalf("openssl: %v %s", err, out)
			}
			k, err := assertion.LoadKey(p)
			if err != nil || k.Alg != tc.alg {
				t.Fatalf("LoadKey = %+v, %v; want %s", k, err, tc.alg)
			}
		})
	}
}

package config_test

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/pkigen"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want config.Size
		err  string
	}{
		{"123", 123, ""},
		{"0", 0, ""},
		{"64MiB", 64 << 20, ""},
		{"20MB", 20e6, ""},
		{"512KiB", 512 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"10 kB", 10e3, ""},
		{" 7B ", 7, ""},
		{"64Mb", 0, `"64Mb" is not a size`},
		{"64mib", 0, `is not a size`},
		{"-1", 0, `is not a size`},
		{"1.5GiB", 0, `is not a size`},
		{"MiB", 0, `is not a size`},
		{"", 0, `is not a size`},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "too large"},
		{"9000000TiB", 0, "too large"},
	}
	for _, tc := range cases {
		got, err := config.ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
	if s := config.Size(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"15s", 15 * time.Second, true},
		{"1h30m", 90 * time.Minute, true},
		{"90", 90 * time.Second, true},
		{"0", 0, true},
		{"15 secs", 0, false},
		{"99999999999999999", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, err := config.ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestSKI(t *testing.T) {
	want := []byte{0x5f, 0x3a, 0x00, 0xff}
	for _, in := range []string{"5F3A00FF", "5f3a00ff", "5F:3A:00:FF", "5f 3a 00 ff", "5F-3A-00-FF"} {
		got, err := config.ParseSKI(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ParseSKI(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "5F3", "ZZ", "::", strings.Repeat("00", 65)} {
		if _, err := config.ParseSKI(in); err == nil {
			t.Errorf("ParseSKI(%q) accepted", in)
		}
	}
	if got := config.FormatSKI(want); got != "5f3a00ff" {
		t.Errorf("FormatSKI = %q", got)
	}
}

// TestTrustedIssuerForms: trustedIssuer accepts the subject in RFC 4514
// order, in reversed (X.500 / Windows) order, with any case and spaces.
func TestTrustedIssuerForms(t *testing.T) {
	p := newPKI(t)
	name := pkix.Name{CommonName: "Corp Issuing CA 1", Organization: []string{"Corp, Inc."}, Country: []string{"DE"}}
	// Build the subject with an extra DC attribute Go's pkix.Name would
	// re-order, to check that the certificate's own order is used.
	rdn := name.ToRDNSequence()
	rdn = append(pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "corp"}}}, rdn...)
	name = pkix.Name{ExtraNames: nil}
	name.FillFromRDNSequence(&rdn)
	name.ExtraNames = []pkix.AttributeTypeAndValue{rdn[0][0]}
	ca := p.root.Intermediate(t, "x", pkigen.Subject(name))
	writeCert(t, filepath.Join(p.dir, "ca", "corp.pem"), ca.Cert)
	subject := config.SubjectString(ca.Cert)

	for _, issuer := range []string{
		subject,
		strings.ToLower(subject),
		"dc = corp , CN=Corp Issuing CA 1,O=Corp\\, Inc.,C=DE",
		"C=DE, O=Corp\\, Inc., CN=Corp Issuing CA 1, DC=corp",
	} {
		text := mustReplace(t, p.baseConfig(), "ca/issuing.pem", "ca/corp.pem")
		text = mustReplace(t, text, `"CN=Example Issuing CA"`, "'"+issuer+"'")
		text = mustReplace(t, text, p.interSKI, config.FormatSKI(ca.Cert.SubjectKeyId))
		if _, err := config.Parse([]byte(text), "c.yaml", p.dir); err != nil {
			t.Errorf("trustedIssuer %q (subject %q): %v", issuer, subject, err)
		}
	}
	if want := `DC=corp,CN=Corp Issuing CA 1,O=Corp\, Inc.,C=DE`; subject != want {
		t.Errorf("SubjectString = %q, want %q", subject, want)
	}
	for _, issuer := range []string{"CN=Corp Issuing CA 1", "DC=corp,CN=Corp Issuing CA 1,O=Corp,C=DE", "C=DE,CN=Corp Issuing CA 1,O=Corp\\, Inc.,DC=corp"} {
		text := mustReplace(t, p.baseConfig(), "ca/issuing.pem", "ca/corp.pem")
		text = mustReplace(t, text, `"CN=Example Issuing CA"`, "'"+issuer+"'")
		text = mustReplace(t, text, p.interSKI, config.FormatSKI(ca.Cert.SubjectKeyId))
		if _, err := config.Parse([]byte(text), "c.yaml", p.dir); err == nil || !strings.Contains(err.Error(), "does not match the certificate's subject") {
			t.Errorf("trustedIssuer %q accepted for subject %q: %v", issuer, subject, err)
		}
	}
}

package config_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
)

// FuzzParse: no input panics; every error names the file; every accepted
// config passes Validate again (Parse and Validate agree).
func FuzzParse(f *testing.F) {
	p := newPKI(f)
	f.Add([]byte(p.baseConfig()))
	f.Add([]byte(p.commented()))
	if full, err := os.ReadFile("testdata/full.yaml"); err == nil {
		f.Add(full)
	}
	f.Add([]byte("listen: [a]\nrevocation: {maxCRLSize: 64Mb, ocsp: false}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("trustedCertificateAuthorities:\n  - <<: {authorityType: root}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data, "f.yaml", p.dir)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", err)
		}
	})
}

// FuzzParseSize: no panic; accepted sizes are non-negative and round-trip
// through String.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "20MB", "123", "1GiB", "64Mb", "-1", "9223372036854775807", "0B", " 5 KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := config.ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		back, err := config.ParseSize(n.String())
		if err != nil || back != n {
			t.Fatalf("round trip of %q: %s -> %d, %v", s, n, back, err)
		}
	})
}

// FuzzParseSKI: no panic; accepted SKIs are at most 64 bytes and
// round-trip through FormatSKI.
func FuzzParseSKI(f *testing.F) {
	for _, s := range []string{"5F3A", "5f:3a", "5F 3A", "", "zz", "0", strings.Repeat("ab", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := config.ParseSKI(s)
		if err != nil {
			return
		}
		if len(b) == 0 || len(b) > 64 {
			t.Fatalf("ParseSKI(%q) = %x", s, b)
		}
		back, err := config.ParseSKI(config.FormatSKI(b))
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("round trip of %q: %x, %v", s, back, err)
		}
	})
}

// FuzzParseCertificate: PEM/DER detection never panics, and an accepted
// input yields a certificate.
func FuzzParseCertificate(f *testing.F) {
	p := newPKI(f)
	f.Add(p.root.Cert.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.ParseCertificate(data)
		if err == nil && c == nil {
			t.Fatal("nil certificate without error")
		}
	})
}

// FuzzEditCAs: on any file, AddCA only inserts lines and RemoveCA only
// deletes lines (everything else stays byte for byte), a successful edit
// leaves a file that loads, and a refused edit leaves the file untouched.
func FuzzEditCAs(f *testing.F) {
	p := newPKI(f)
	f.Add(p.commented(), true)
	f.Add(p.baseConfig(), false)
	f.Add(strings.ReplaceAll(p.baseConfig(), "\n", "\r\n"), true)
	f.Add("trustedCertificateAuthorities:\n  - # c\n    authorityType: root\n    trustedCertificate: ca/root.cer\n    crlExempt: true\n"+
		"serverTLS: {certFile: tls/server.pem, keyFile: tls/server-key.pem}\nroutes: [{name: a, backend: 'http://b'}]\n", false)
	other := p.dir + "/ca/other.pem"
	f.Fuzz(func(t *testing.T, text string, add bool) {
		path := p.dir + "/fuzz.yaml"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var err error
		if add {
			_, err = config.AddCA(path, "root", other, "http://pki.example.com/o.crl", "", false)
		} else {
			err = config.RemoveCA(path, p.interSKI)
		}
		got, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if string(got) != text {
				t.Fatalf("refused edit (%v) changed the file", err)
			}
			return
		}
		if _, err := config.Load(path); err != nil {
			t.Fatalf("edited file does not load: %v", err)
		}
		before, after := strings.SplitAfter(text, "\n"), strings.SplitAfter(string(got), "\n")
		if !add {
			before, after = after, before
		}
		if !isSubsequence(before, after) {
			t.Fatalf("edit changed existing lines:\n%q\n->\n%q", text, got)
		}
	})
}

// isSubsequence reports whether a's lines appear in b in order, ignoring a
// missing final newline (adding after the last line adds one).
func isSubsequence(a, b []string) bool {
	j := 0
	for i, line := range a {
		if i == len(a)-1 && !strings.HasSuffix(line, "\n") {
			for ; j < len(b); j++ {
				if strings.TrimSuffix(b[j], "\n") == line || b[j] == line {
					return true
				}
			}
			return line == ""
		}
		for j < len(b) && b[j] != line {
			j++
		}
		if j == len(b) {
			return false
		}
		j++
	}
	return true
}

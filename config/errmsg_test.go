package config_test

import (
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
)

// TestErrorMessagesSayWhatToWrite: each of these used to show a parser's
// text, or its knock-on before its cause.
func TestErrorMessagesSayWhatToWrite(t *testing.T) {
	p := newPKI(t)
	base := p.baseConfig()
	for _, tc := range []struct {
		name, old, new string
		want           []string // in this order, one error each
	}{
		{"backend without scheme", "backend: http://127.0.0.1:8080", "backend: 127.0.0.1:8080",
			[]string{`routes[0].backend: "127.0.0.1:8080" has no scheme: write http://127.0.0.1:8080`}},
		{"host:port backend", "backend: http://127.0.0.1:8081", "backend: localhost:8081",
			[]string{`routes[1].backend: "localhost:8081" has no scheme: write http://localhost:8081`}},
		{"Root", "authorityType: root", "authorityType: Root",
			[]string{`trustedCertificateAuthorities[0].authorityType: "Root" is not allowed, want one of root, intermediate (lower case: root)`}},
		{"misspelt top-level key", "listen:", "lisen:", []string{`:1: unknown key "lisen" (did you mean "listen"?)`}},
		{"misspelt nested key", "pathPrefix:", "pathPrefx:", []string{`routes[0]: unknown key "pathPrefx" (did you mean "pathPrefix"?)`}},
		{"key in the wrong case", "trustedIssuerSKI:", "trustedIssuerSki:", []string{`unknown key "trustedIssuerSki" (did you mean "trustedIssuerSKI"?)`}},
		{"no near key", "listen:", "frobnicate:", []string{`unknown key "frobnicate"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(mustReplace(t, base, tc.old, tc.new)), "certgate.yaml", p.dir)
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) || !strings.HasPrefix(lines[i], "certgate.yaml:") {
					t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
				}
			}
			if tc.name == "no near key" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("suggested something for a key like nothing: %v", err)
			}
		})
	}
}

// TestRefuseWeakMappings: with identity.refuseWeakMappings a weak
// certificateUserIds binding is a config error naming it; strong ones and
// bindings to other attributes load.
func TestRefuseWeakMappings(t *testing.T) {
	p := newPKI(t)
	bindings := `identity:
  refuseWeakMappings: true
  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: IssuerAndSerialNumber, userAttribute: certificateUserIds}
    - {certificateField: SubjectKeyIdentifier, userAttribute: certificateUserIds}
    - {certificateField: SHA1PublicKey, userAttribute: certificateUserIds}
`
	base := mustReplace(t, p.baseConfig(), "identity:\n", bindings)
	if _, err := config.Parse([]byte(base), "certgate.yaml", p.dir); err != nil {
		t.Fatalf("strong mappings refused: %v", err)
	}
	for _, f := range []string{"Subject", "IssuerAndSubject", "RFC822Name", "PrincipalName"} {
		cfg := mustReplace(t, base, "    - {certificateField: SHA1PublicKey, userAttribute: certificateUserIds}\n",
			"    - {certificateField: SHA1PublicKey, userAttribute: certificateUserIds}\n    - {certificateField: "+f+", userAttribute: certificateUserIds}\n")
		_, err := config.Parse([]byte(cfg), "certgate.yaml", p.dir)
		if err == nil || !strings.Contains(err.Error(), "identity.bindings[4]: "+f+" to certificateUserIds is a weak certificate mapping") {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := config.Parse([]byte(strings.Replace(cfg, "refuseWeakMappings: true", "refuseWeakMappings: false", 1)), "certgate.yaml", p.dir); err != nil {
			t.Errorf("%s without refuseWeakMappings: %v", f, err)
		}
	}
}

package ldapdir_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certgate/certgate/trust/ldapdir"
	"github.com/go-ldap/ldap/v3"
)

func TestEscapeFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@contoso.com", "alice@contoso.com"},
		{"*", `\2a`},
		{"(", `\28`},
		{")", `\29`},
		{`\`, `\5c`},
		{"\x00", `\00`},
		{"we*rd(1)\\x\x00y", `we\2ard\281\29\5cx\00y`},
		{`\2a`, `\5c2a`},
		{"jürgen@müller.de", "jürgen@müller.de"},
		{"bad\xffutf8", `bad\ffutf8`},
		{"\xe2\x82", `\e2\82`},  // truncated rune
		{"\uFFFD", `\ef\bf\bd`}, // a literal U+FFFD
		{"{attribute}", "{attribute}"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ldapdir.EscapeFilter(tt.in); got != tt.want {
			t.Errorf("EscapeFilter(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzEscapeFilter: whatever the value, the escaped form has no bare
// special, is valid UTF-8, compiles as an equality filter, and carries the
// value to the server byte for byte.
func FuzzEscapeFilter(f *testing.F) {
	for _, s := range []string{"alice@contoso.com", "*", "we*rd(1)\\x\x00y", `\2a`, "\xff\xfe", "\uFFFD", "ü", ")(cn=*", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		esc := ldapdir.EscapeFilter(v)
		if !utf8.ValidString(esc) {
			t.Fatalf("EscapeFilter(%q) = %q is not UTF-8", v, esc)
		}
		for i := 0; i < len(esc); i++ {
			switch esc[i] {
			case '*', '(', ')', 0:
				t.Fatalf("EscapeFilter(%q) = %q has a bare %q", v, esc, esc[i])
			case '\\':
				if i+2 >= len(esc) || !isHex(esc[i+1]) || !isHex(esc[i+2]) {
					t.Fatalf("EscapeFilter(%q) = %q has a bare backslash at %d", v, esc, i)
				}
				i += 2
			}
		}
		if v == "" {
			return
		}
		filter := "(&(objectClass=user)(userPrincipalName=" + esc + "))"
		p, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("CompileFilter(%q): %v", filter, err)
		}
		eq := p.Children[1]
		if eq.Tag != ldap.FilterEqualityMatch {
			t.Fatalf("value %q compiled to filter tag %d, want equality", v, eq.Tag)
		}
		if got := eq.Children[1].Data.String(); got != v {
			t.Fatalf("value %q reached the filter as %q", v, got)
		}
	})
}

func isHex(c byte) bool { return strings.IndexByte("0123456789abcdefABCDEF", c) >= 0 }

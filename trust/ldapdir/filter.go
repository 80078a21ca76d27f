package ldapdir

import (
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// EscapeFilter escapes value for use as an assertion value in an LDAP
// search filter (RFC 4515 section 3): '*', '(', ')', '\' and NUL become \2a,
// \28, \29, \5c and \00. Bytes that are not valid UTF-8, and U+FFFD itself,
// are escaped as \xx too, because a filter string must be UTF-8 and some
// decoders (go-ldap's among them) take a literal U+FFFD for a decoding
// error. The value reaches the server byte for byte.
func EscapeFilter(value string) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(value) + 8)
	escape := func(c byte) { b.WriteByte('\\'); b.WriteByte(hex[c>>4]); b.WriteByte(hex[c&0xf]) }
	for i := 0; i < len(value); {
		c := value[i]
		if c < utf8.RuneSelf {
			switch c {
			case '*', '(', ')', '\\', 0:
				escape(c)
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(value[i:])
		if r == utf8.RuneError {
			for j := 0; j < n; j++ {
				escape(value[i+j])
			}
		} else {
			b.WriteString(value[i : i+n])
		}
		i += n
	}
	return b.String()
}

// filterTemplate is a validated search filter template.
type filterTemplate string

const (
	placeholderAttr  = "{attribute}"
	placeholderValue = "{value}"
)

func parseFilterTemplate(t string) (filterTemplate, error) {
	if !strings.Contains(t, placeholderAttr) || !strings.Contains(t, placeholderValue) {
		return "", errors.New("template must contain {attribute} and {value}, e.g. " + DefaultFilter)
	}
	ft := filterTemplate(t)
	if _, err := ldap.CompileFilter(ft.expand("cn", "x")); err != nil {
		return "", err
	}
	return ft, nil
}

// expand fills in one attribute and one value. The replacer makes a single
// pass over the template, so a value that itself contains "{attribute}" is
// not expanded again.
func (t filterTemplate) expand(attr, value string) string {
	return strings.NewReplacer(placeholderAttr, attr, placeholderValue, EscapeFilter(value)).Replace(string(t))
}

// build makes the filter that matches any of values: the template once per
// value, ORed when there are several.
func (t filterTemplate) build(attr string, values ...string) string {
	if len(values) == 1 {
		return t.expand(attr, values[0])
	}
	var b strings.Builder
	b.WriteString("(|")
	for _, v := range values {
		b.WriteString(t.expand(attr, v))
	}
	b.WriteString(")")
	return b.String()
}

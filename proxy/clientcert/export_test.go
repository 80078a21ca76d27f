package clientcert

import "strings"

// QuoteIfNeeded exposes XFCC's value quoting to the round-trip fuzz test.
func QuoteIfNeeded(v string) string {
	if !needsQuote(v) {
		return v
	}
	var b strings.Builder
	writeQuoted(&b, v)
	return b.String()
}

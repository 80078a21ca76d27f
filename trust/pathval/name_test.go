package pathval

import (
	"encoding/asn1"
	"testing"
)

// SameName and NameKey are the one §7.1 comparison of certgate: path
// building chains names with it and revocation matches CRL issuers and
// distribution point names with it, so they must agree.
func TestSameNameAndNameKey(t *testing.T) {
	const pr, utf, ia5, bmp = asn1.TagPrintableString, asn1.TagUTF8String, asn1.TagIA5String, 30
	two := func(tag int, org, cn string) []byte {
		return rawName(t, []atv{{oidO, org, tag}}, []atv{{oidCN, cn, tag}})
	}
	base := two(pr, "Test Certificates 2011", "Good CA")
	for _, tc := range []struct {
		name string
		a, b []byte
		same bool
	}{
		{"identical", base, base, true},
		{"UTF8String instead of PrintableString", base, two(utf, "Test Certificates 2011", "Good CA"), true},
		{"case", base, two(pr, "test certificates 2011", "GOOD CA"), true},
		{"spaces", base, two(pr, "  Test   Certificates 2011 ", "Good  CA"), true},
		{"other value", base, two(pr, "Test Certificates 2011", "Bad CA"), false},
		{"other order", base, rawName(t, []atv{{oidCN, "Good CA", pr}}, []atv{{oidO, "Test Certificates 2011", pr}}), false},
		{"one RDN fewer", base, rawName(t, []atv{{oidCN, "Good CA", pr}}), false},
		{"inner space kept", base, two(pr, "Test Certificates 2011", "GoodCA"), false},
		{"multi-valued RDN is a set", rawName(t, []atv{{oidCN, "a", pr}, {oidO, "b", pr}}), rawName(t, []atv{{oidO, "b", pr}, {oidCN, "a", pr}}), true},
		{"BMPString decoded", rawName(t, []atv{{oidCN, "\x00G\x00o", bmp}}), rawName(t, []atv{{oidCN, "go", ia5}}), true},
		{"NFKC", rawName(t, []atv{{oidCN, "\uFB01le CA", utf}}), rawName(t, []atv{{oidCN, "file CA", pr}}), true},
		{"malformed", base, []byte{0x30, 0x03, 0x31, 0x01}, false},
	} {
		if got := SameName(tc.a, tc.b); got != tc.same {
			t.Errorf("%s: SameName = %v, want %v", tc.name, got, tc.same)
		}
		ka, oka := NameKey(tc.a)
		kb, okb := NameKey(tc.b)
		if got := oka && okb && ka == kb; got != tc.same {
			t.Errorf("%s: NameKey equal = %v, want %v", tc.name, got, tc.same)
		}
	}
}

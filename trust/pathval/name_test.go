package pathval

import "testing"

// rdnName builds a Name of one RDN per atv (type OID content, string tag,
// value), byte by byte, for encodings crypto/x509 would not write.
func rdnName(atvs ...[3]any) []byte {
	var rdns []byte
	for _, a := range atvs {
		oid, tag, val := a[0].([]byte), a[1].(int), a[2].(string)
		atv := append([]byte{0x06, byte(len(oid))}, oid...)
		atv = append(atv, byte(tag), byte(len(val)))
		atv = append(atv, val...)
		atv = append([]byte{0x30, byte(len(atv))}, atv...)
		rdns = append(rdns, append([]byte{0x31, byte(len(atv))}, atv...)...)
	}
	return append([]byte{0x30, byte(len(rdns))}, rdns...)
}

// SameName and NameKey are the one §7.1 comparison of certgate: path
// building chains names with it and revocation matches CRL issuers and
// distribution point names with it, so they must agree.
func TestSameNameAndNameKey(t *testing.T) {
	cn, o := []byte{0x55, 0x04, 0x03}, []byte{0x55, 0x04, 0x0a}
	const printable, utf8s, ia5, bmp = 0x13, 0x0c, 0x16, 0x1e
	base := rdnName([3]any{o, printable, "Test Certificates 2011"}, [3]any{cn, printable, "Good CA"})
	ab := []byte{0x30, 0x16, 0x31, 0x14, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x01, 'a', 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x01, 'b'}
	ba := []byte{0x30, 0x16, 0x31, 0x14, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x01, 'b', 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x01, 'a'}
	for _, tc := range []struct {
		name string
		a, b []byte
		same bool
	}{
		{"identical", base, base, true},
		{"UTF8String instead of PrintableString", base, rdnName([3]any{o, utf8s, "Test Certificates 2011"}, [3]any{cn, utf8s, "Good CA"}), true},
		{"case", base, rdnName([3]any{o, printable, "test certificates 2011"}, [3]any{cn, printable, "GOOD CA"}), true},
		{"spaces", base, rdnName([3]any{o, printable, "  Test   Certificates 2011 "}, [3]any{cn, printable, "Good  CA"}), true},
		{"other value", base, rdnName([3]any{o, printable, "Test Certificates 2011"}, [3]any{cn, printable, "Bad CA"}), false},
		{"other order", base, rdnName([3]any{cn, printable, "Good CA"}, [3]any{o, printable, "Test Certificates 2011"}), false},
		{"one RDN fewer", base, rdnName([3]any{cn, printable, "Good CA"}), false},
		{"inner space kept", base, rdnName([3]any{o, printable, "Test Certificates 2011"}, [3]any{cn, printable, "GoodCA"}), false},
		{"multi-valued RDN is a set", ab, ba, true},
		{"BMPString decoded", rdnName([3]any{cn, bmp, "\x00G\x00o"}), rdnName([3]any{cn, ia5, "go"}), true},
		{"NFKC", rdnName([3]any{cn, utf8s, "\uFB01le CA"}), rdnName([3]any{cn, printable, "file CA"}), true},
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

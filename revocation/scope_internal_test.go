package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// idpSeeds are issuingDistributionPoint values: a fullName URI and a
// directoryName, a name relative to the CRL issuer, onlySomeReasons, and
// onlyContainsCACerts with a name.
var idpSeeds = [][]byte{
	// [0] { [0] { URI "http://c/p1.crl", DirName CN=P } }
	{0x30, 0x25, 0xa0, 0x23, 0xa0, 0x21, 0x86, 0x0f, 'h', 't', 't', 'p', ':', '/', '/', 'c', '/', 'p', '1', '.', 'c', 'r', 'l',
		0xa4, 0x0e, 0x30, 0x0c, 0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x01, 'P'},
	// [0] { [1] { CN=CRL1 } }
	{0x30, 0x11, 0xa0, 0x0f, 0xa1, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x04, 'C', 'R', 'L', '1'},
	// onlySomeReasons keyCompromise, cACompromise
	{0x30, 0x04, 0x83, 0x02, 0x05, 0x60},
	// [0] { [0] { URI "x" } }, onlyContainsCACerts
	{0x30, 0x0a, 0xa0, 0x05, 0xa0, 0x03, 0x86, 0x01, 'x', 0x82, 0x01, 0xff},
}

// name builds a Name of one RDN per atv (type OID content, string tag, value).
func name(atvs ...[3]any) []byte {
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

var cn = []byte{0x55, 0x04, 0x03}

const printable = 0x13

func TestReasonMask(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want uint16
		ok   bool
	}{
		{[]byte{0x07, 0x80}, 1, true},                // "unused" only
		{[]byte{0x05, 0x60}, 1<<1 | 1<<2, true},      // keyCompromise, cACompromise
		{[]byte{0x07, 0x7f, 0x80}, allReasons, true}, // 1..8
		{[]byte{0x00}, 0, true},
		{[]byte{0x01}, 0, false},
		{[]byte{}, 0, false},
		{[]byte{0x08, 0xff}, 0, false},
	} {
		got, ok := reasonMask(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("reasonMask(%x) = %x, %v; want %x, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReadIDPRefusals(t *testing.T) {
	issuer := name([3]any{cn, printable, "CA"})
	for _, tc := range []struct {
		name string
		v    []byte
		kind string
	}{
		{"indirect", []byte{0x30, 0x03, 0x84, 0x01, 0xff}, KindExtension},
		{"users and CAs", []byte{0x30, 0x06, 0x81, 0x01, 0xff, 0x82, 0x01, 0xff}, KindParse},
		{"CAs and attributes", []byte{0x30, 0x06, 0x82, 0x01, 0xff, 0x85, 0x01, 0xff}, KindParse},
		{"empty fullName", []byte{0x30, 0x04, 0xa0, 0x02, 0xa0, 0x00}, KindParse},
		{"bad reasons", []byte{0x30, 0x03, 0x83, 0x01, 0x03}, KindParse},
		{"unknown field", []byte{0x30, 0x03, 0x86, 0x01, 0xff}, KindParse},
		{"bad directoryName", []byte{0x30, 0x08, 0xa0, 0x06, 0xa0, 0x04, 0xa4, 0x02, 0x30, 0x01}, KindParse},
	} {
		_, err := readIDP(tc.v, issuer)
		var fe *FetchError
		if !asFetchError(err, &fe) || fe.Kind != tc.kind {
			t.Errorf("%s: readIDP = %v, want kind %s", tc.name, err, tc.kind)
		}
	}
	for i, v := range idpSeeds {
		if _, err := readIDP(v, issuer); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

func asFetchError(err error, fe **FetchError) bool {
	e, ok := err.(*FetchError)
	*fe = e
	return ok
}

// FuzzScope feeds arbitrary issuingDistributionPoint and
// cRLDistributionPoints bytes to the scope check: it must not panic, and
// a CRL without an IDP covers every certificate with a direct DP.
func FuzzScope(f *testing.F) {
	for _, v := range idpSeeds {
		for _, dp := range [][]byte{
			{0x30, 0x17, 0x30, 0x15, 0xa0, 0x13, 0xa0, 0x11, 0x86, 0x0f, 'h', 't', 't', 'p', ':', '/', '/', 'c', '/', 'p', '1', '.', 'c', 'r', 'l'},
			{0x30, 0x13, 0x30, 0x11, 0xa0, 0x0f, 0xa1, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x04, 'C', 'R', 'L', '1'},
			{0x30, 0x0a, 0x30, 0x08, 0xa2, 0x06, 0x86, 0x04, 'h', 't', 't', 'p'},
		} {
			f.Add(v, dp)
		}
	}
	issuer := name([3]any{cn, printable, "CA"})
	f.Fuzz(func(t *testing.T, idpValue, dpValue []byte) {
		cert := &x509.Certificate{RawIssuer: issuer, Extensions: []pkix.Extension{{Id: []int{2, 5, 29, 31}, Value: dpValue}}}
		if p, err := readIDP(idpValue, issuer); err == nil {
			p.covers(cert)
			cert.IsCA = true
			p.covers(cert)
		}
		var none *idp
		if c := none.covers(cert); c != covAll && c != covIndirect {
			t.Fatalf("no IDP: coverage %d", c)
		}
	})
}

func TestSameURI(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"http://pki.example/CA.crl", "http://pki.example/CA.crl", true},
		{"HTTP://PKI.Example/CA.crl", "http://pki.example/CA.crl", true},
		{"http://pki.example/ca.crl", "http://pki.example/CA.crl", false},
		{"http://pki.example", "HTTP://PKI.EXAMPLE", true},
		{"ldap:///CN=CA,CN=CDP", "ldap:///cn=ca,cn=cdp", false},
		{"urn:x", "URN:x", false},
	} {
		if got := sameURI([]byte(tc.a), []byte(tc.b)); got != tc.same {
			t.Errorf("sameURI(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

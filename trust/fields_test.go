package trust_test

import (
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// sanBytes is a SAN builder for raw-parser tests.
func sanBytes(add func(b *cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, add)
	return b.BytesOrPanic()
}

func addUPN(b *cryptobyte.Builder, upn string) {
	b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(trust.OIDUPN)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), utf8Value(upn))
	})
}

func addEmail(b *cryptobyte.Builder, e string) {
	b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
}

func TestParseUPNs(t *testing.T) {
	guid := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 1}
	tests := []struct {
		name    string
		in      []byte
		want    []string
		wantErr bool
	}{
		{name: "one UPN", in: sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "alice@contoso.com") }), want: []string{"alice@contoso.com"}},
		{name: "two UPNs in order among emails", in: sanBytes(func(b *cryptobyte.Builder) {
			addEmail(b, "x@contoso.com")
			addUPN(b, "bob@contoso.com")
			addUPN(b, "alice@contoso.com")
		}), want: []string{"bob@contoso.com", "alice@contoso.com"}},
		{name: "email only", in: sanBytes(func(b *cryptobyte.Builder) { addEmail(b, "x@contoso.com") }), want: nil},
		{name: "other otherName skipped", in: sanBytes(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(guid)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1OctetString([]byte{1, 2}) })
			})
			addUPN(b, "alice@contoso.com")
		}), want: []string{"alice@contoso.com"}},
		{name: "unicode UPN", in: sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "jürgen@contoso.de") }), want: []string{"jürgen@contoso.de"}},
		{name: "empty input", in: nil, wantErr: true},
		{name: "not a sequence", in: []byte{0x04, 0x01, 0x00}, wantErr: true},
		{name: "empty sequence", in: []byte{0x30, 0x00}, wantErr: true},
		{name: "trailing bytes", in: append(sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "a@b") }), 0), wantErr: true},
		{name: "truncated", in: sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "alice@contoso.com") })[:10], wantErr: true},
		{name: "otherName without OID", in: sanBytes(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { b.AddASN1Int64(1) })
		}), wantErr: true},
		{name: "UPN not UTF8String", in: sanBytes(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(trust.OIDUPN)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte("a@b")) })
				})
			})
		}), wantErr: true},
		{name: "UPN without EXPLICIT wrapper", in: sanBytes(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(trust.OIDUPN)
				utf8Value("a@b")(b)
			})
		}), wantErr: true},
		{name: "UPN with extra value", in: sanBytes(func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(trust.OIDUPN)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					utf8Value("a@b")(b)
					utf8Value("c@d")(b)
				})
			})
		}), wantErr: true},
		{name: "empty UPN", in: sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "") }), wantErr: true},
		{name: "invalid UTF-8", in: sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "a\xff@b") }), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := trust.ParseUPNs(tc.in)
			if tc.wantErr {
				if !errors.Is(err, trust.ErrMalformedSAN) {
					t.Fatalf("err %v, want ErrMalformedSAN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUPNsFromCertificate(t *testing.T) {
	root := wideRoot(t, "Root")
	two := root.Leaf(t, "two", pkigen.At(t0), pkigen.UPN("alice@contoso.com", "alice@fabrikam.com"), pkigen.Email("alice@contoso.com"))
	got, err := trust.UPNs(two.Cert)
	if err != nil || !slices.Equal(got, []string{"alice@contoso.com", "alice@fabrikam.com"}) {
		t.Fatalf("UPNs = %q, %v", got, err)
	}
	none := root.Leaf(t, "none", pkigen.At(t0))
	if got, err := trust.UPNs(none.Cert); err != nil || got != nil {
		t.Fatalf("UPNs of a SAN-less cert = %q, %v", got, err)
	}
}

func TestFieldValues(t *testing.T) {
	root := contosoRoot(t)
	leaf := root.Leaf(t, "alice", pkigen.At(t0),
		pkigen.Subject(pkix.Name{CommonName: "Alice Smith", Organization: []string{"Contoso"}}),
		pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com", "a.smith@contoso.com"),
		pkigen.Serial(big.NewInt(0x0a1b2c)))
	pukey := sha1.Sum(leaf.Cert.RawSubjectPublicKeyInfo)
	tests := []struct {
		field trust.Field
		want  []string
	}{
		{trust.FieldPrincipalName, []string{"alice@contoso.com"}},
		{trust.FieldRFC822Name, []string{"alice@contoso.com", "a.smith@contoso.com"}},
		{trust.FieldSubjectKeyIdentifier, []string{fmt.Sprintf("%X", leaf.Cert.SubjectKeyId)}},
		{trust.FieldSHA1PublicKey, []string{fmt.Sprintf("%X", pukey[:])}},
		{trust.FieldIssuerAndSerialNumber, []string{"<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<SR>0A1B2C"}},
		{trust.FieldSubject, []string{"CN=Alice Smith,O=Contoso"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.field), func(t *testing.T) {
			got, err := trust.FieldValues(leaf.Cert, tc.field)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := trust.FieldValues(leaf.Cert, "Thumbprint"); err == nil {
		t.Fatal("unknown field accepted")
	}
	// The SHA1-PUKEY is the hash of the whole SubjectPublicKeyInfo, which
	// differs from the SKI (hash of the key bits only).
	if got, _ := trust.FieldValues(leaf.Cert, trust.FieldSHA1PublicKey); got[0] == fmt.Sprintf("%X", leaf.Cert.SubjectKeyId) {
		t.Fatal("SHA1PublicKey equals the SKI: it hashes the wrong bytes")
	}
}

func TestFieldValuesSKIWithoutExtension(t *testing.T) {
	root := wideRoot(t, "Root")
	c := handmade(t, root, &x509.Certificate{Subject: pkix.Name{CommonName: "no ski"}})
	got, err := trust.FieldValues(c, trust.FieldSubjectKeyIdentifier)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%X", trust.ComputeSKI(c)); len(got) != 1 || got[0] != want || len(want) != 40 {
		t.Fatalf("got %q, want [%s]", got, want)
	}
}

// FuzzUPNs feeds arbitrary SAN extension values to the parser: it must not
// panic, must return only non-empty UTF-8 names, and what it accepts must
// survive a re-encode of the UPNs.
func FuzzUPNs(f *testing.F) {
	f.Add(sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "alice@contoso.com") }))
	f.Add(sanBytes(func(b *cryptobyte.Builder) { addEmail(b, "x@y"); addUPN(b, "a@b"); addUPN(b, "c@d") }))
	f.Add(sanBytes(func(b *cryptobyte.Builder) { addUPN(b, "") }))
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x80})
	f.Add([]byte{0x30, 0x03, 0xa0, 0x01, 0x06})
	f.Fuzz(func(t *testing.T, in []byte) {
		upns, err := trust.ParseUPNs(in)
		if err != nil {
			if !errors.Is(err, trust.ErrMalformedSAN) {
				t.Fatalf("error %v does not wrap ErrMalformedSAN", err)
			}
			return
		}
		for _, u := range upns {
			if u == "" || !utf8.ValidString(u) {
				t.Fatalf("accepted UPN %q", u)
			}
		}
		if len(upns) == 0 {
			return
		}
		again, err := trust.ParseUPNs(sanBytes(func(b *cryptobyte.Builder) {
			for _, u := range upns {
				addUPN(b, u)
			}
		}))
		if err != nil || !slices.Equal(again, upns) {
			t.Fatalf("round trip: %q, %v; want %q", again, err, upns)
		}
	})
}

func TestFormatDN(t *testing.T) {
	atv := func(oid asn1.ObjectIdentifier, v any) pkix.AttributeTypeAndValue {
		return pkix.AttributeTypeAndValue{Type: oid, Value: v}
	}
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	ou := asn1.ObjectIdentifier{2, 5, 4, 11}
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	email := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	tests := []struct {
		name string
		rdns pkix.RDNSequence
		want string
	}{
		{"AD CS issuer", pkix.RDNSequence{{atv(oidDC, "com")}, {atv(oidDC, "contoso")}, {atv(cn, "CONTOSO-DC-CA")}}, "CN=CONTOSO-DC-CA,DC=contoso,DC=com"},
		{"multi-valued RDN", pkix.RDNSequence{{atv(oidDC, "com")}, {atv(cn, "Alice"), atv(uid, "alice")}}, "CN=Alice+UID=alice,DC=com"},
		{"email and OU", pkix.RDNSequence{{atv(ou, "Users")}, {atv(email, "alice@contoso.com")}}, "E=alice@contoso.com,OU=Users"},
		{"escaping", pkix.RDNSequence{{atv(cn, " Smith, John <#1>; \"x\"+y ")}}, `CN=\ Smith\, John \<#1\>\; \"x\"\+y\ `},
		{"leading hash", pkix.RDNSequence{{atv(cn, "#1")}}, `CN=\#1`},
		{"unknown attribute", pkix.RDNSequence{{atv(asn1.ObjectIdentifier{1, 2, 3}, "x")}}, "1.2.3=#130178"},
		{"empty", pkix.RDNSequence{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := asn1.Marshal(tc.rdns)
			if err != nil {
				t.Fatal(err)
			}
			got, err := trust.FormatDN(der)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			// For the attributes Go knows, the form is Go's own.
			var n pkix.Name
			n.FillFromRDNSequence(&tc.rdns)
			if tc.name == "escaping" && n.String() != got {
				t.Fatalf("differs from pkix.Name.String() %q", n.String())
			}
		})
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x00, 0x00}, {0x04, 0x00}} {
		if got, err := trust.FormatDN(bad); err == nil {
			t.Errorf("FormatDN(%x) = %q, want an error", bad, got)
		}
	}
}

// FuzzFormatDN: any bytes are rendered or refused, never a panic, and a
// rendering of a Name without '+' has one ',' between RDNs at least.
func FuzzFormatDN(f *testing.F) {
	for _, rdns := range []pkix.RDNSequence{
		{{{Type: oidDC, Value: "com"}}, {{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "CA"}}},
		{{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: 5}}},
	} {
		der, err := asn1.Marshal(rdns)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x05, 0x31, 0x03, 0x30, 0x01, 0x06})
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := trust.FormatDN(raw)
		if err != nil {
			return
		}
		var rdns pkix.RDNSequence
		if _, err := asn1.Unmarshal(raw, &rdns); err != nil {
			t.Fatalf("FormatDN accepted what encoding/asn1 refuses: %q", s)
		}
		if n := len(rdns); n > 1 && strings.Count(s, ",") < n-1 {
			t.Fatalf("%d RDNs rendered as %q", n, s)
		}
	})
}

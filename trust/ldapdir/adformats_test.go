package ldapdir_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
)

// adName encodes a Name as AD CS does: the RDNs most significant first, in
// the order given (DC=com first).
func adName(rdns ...[2]string) pkix.Name {
	types := map[string]asn1.ObjectIdentifier{
		"DC": {0, 9, 2342, 19200300, 100, 1, 25}, "CN": {2, 5, 4, 3}, "OU": {2, 5, 4, 11},
	}
	var n pkix.Name
	for _, r := range rdns {
		n.ExtraNames = append(n.ExtraNames, pkix.AttributeTypeAndValue{Type: types[r[0]], Value: r[1]})
	}
	return n
}

// TestADFormats binds certificates to users whose altSecurityIdentities
// are written the way Active Directory tooling writes them: DNs most
// significant RDN first, <SR> serials byte-reversed, letter case as it
// comes; and the same values in RFC 4514 order. Both directories (slapd
// and users.yaml) must decide alike. With refuseWeakMappings the weak
// forms are a config error (config tests); here every form is checked to
// be weak or strong as KB5014754 says.
func TestADFormats(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ca := pkigen.Root(t, "Contoso Issuing CA", pkigen.At(t0),
		pkigen.Subject(adName([2]string{"DC", "com"}, [2]string{"DC", "contoso"}, [2]string{"CN", "Contoso Issuing CA"})))
	serial, _ := new(big.Int).SetString("1200000000ac11000000002b", 16)
	leaf := func(cn string, opts ...pkigen.Option) *x509.Certificate {
		subj := adName([2]string{"DC", "com"}, [2]string{"DC", "contoso"}, [2]string{"OU", "Users"}, [2]string{"CN", cn})
		return ca.Leaf(t, cn, append([]pkigen.Option{pkigen.At(t0), pkigen.Subject(subj)}, opts...)...).Cert
	}
	const adIssuer = "DC=com,DC=contoso,CN=Contoso Issuing CA"
	const rfcIssuer = "CN=Contoso Issuing CA,DC=contoso,DC=com"
	const srReversed = "2b0000000011ac0000000012" // 1200000000ac11000000002b, byte-reversed

	alice := leaf("alice", pkigen.Serial(serial))
	bob := leaf("bob", pkigen.Serial(big.NewInt(0x0a0b0c)))
	carol := leaf("carol")
	dave := leaf("dave")
	erin := leaf("erin")
	frank := leaf("frank")
	gina := leaf("gina", pkigen.Email("gina@contoso.com"))
	hal := leaf("hal", pkigen.Serial(big.NewInt(0x01020304)))
	ski := hex.EncodeToString(carol.SubjectKeyId)
	if fv, _ := trust.FieldValues(dave, trust.FieldSHA1PublicKey); len(fv) != 1 {
		t.Fatal("no SHA1PublicKey")
	}
	sha1, _ := trust.FieldValues(dave, trust.FieldSHA1PublicKey)

	users := []bindUser{
		// Strong, as AD writes them.
		{UPN: "alice@contoso.com", CertIDs: []string{"X509:<I>" + adIssuer + "<SR>" + srReversed}},
		{UPN: "bob@contoso.com", CertIDs: []string{"X509:<I>" + rfcIssuer + "<SR>0A0B0C"}},
		{UPN: "carol@contoso.com", CertIDs: []string{"X509:<SKI>" + ski}},
		{UPN: "dave@contoso.com", CertIDs: []string{"X509:<SHA1-PUKEY>" + strings.ToLower(sha1[0])}},
		// Weak.
		{UPN: "erin@contoso.com", CertIDs: []string{"X509:<S>DC=com,DC=contoso,OU=Users,CN=erin"}},
		{UPN: "frank@contoso.com", CertIDs: []string{"X509:<I>" + adIssuer + "<S>DC=com,DC=contoso,OU=Users,CN=frank"}},
		{UPN: "gina@contoso.com", CertIDs: []string{"X509:<RFC822>gina@contoso.com"}},
		// Letter case as a person types it, in AD order.
		{UPN: "hal@contoso.com", CertIDs: []string{"x509:<i>dc=COM,dc=Contoso,cn=contoso issuing ca<sr>04030201"}},
	}
	var doc strings.Builder
	doc.WriteString("users:\n")
	for _, u := range users {
		doc.WriteString(u.yaml())
	}
	fileDir, err := trust.ParseUsers([]byte(doc.String()), "users.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := testldap.Start(t)
	for i, u := range users {
		s.AddUser(testldap.User{CN: fmt.Sprint("aduser", i), UPN: u.UPN, CertIDs: u.CertIDs})
	}
	ldapDir := newDir(t, options(s, newClock()))

	cuid := func(f trust.Field) []trust.Binding {
		return []trust.Binding{{Field: f, Attribute: trust.AttrCertificateUserIDs}}
	}
	for _, tc := range []struct {
		name  string
		field trust.Field
		cert  *x509.Certificate
		want  string // UPN, "" = identity_unmapped
		weak  bool
	}{
		{"<I> AD order, <SR> reversed", trust.FieldIssuerAndSerialNumber, alice, "alice@contoso.com", false},
		{"<I> RFC 4514 order, <SR> as in the certificate", trust.FieldIssuerAndSerialNumber, bob, "bob@contoso.com", false},
		{"<SKI> lower-case hex", trust.FieldSubjectKeyIdentifier, carol, "carol@contoso.com", false},
		{"<SHA1-PUKEY>", trust.FieldSHA1PublicKey, dave, "dave@contoso.com", false},
		{"<S> AD order", trust.FieldSubject, erin, "erin@contoso.com", true},
		{"<I><S> AD order", trust.FieldIssuerAndSubject, frank, "frank@contoso.com", true},
		{"<RFC822>", trust.FieldRFC822Name, gina, "gina@contoso.com", true},
		{"<I><SR> in other case, AD order, reversed", trust.FieldIssuerAndSerialNumber, hal, "hal@contoso.com", false},
		{"<I><SR> of another certificate", trust.FieldIssuerAndSerialNumber, carol, "", false},
		{"<S> of another subject", trust.FieldSubject, frank, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cuid(tc.field)
			if b[0].Weak() != tc.weak {
				t.Errorf("%s weak = %v, want %v", tc.field, b[0].Weak(), tc.weak)
			}
			fromFile := bindOutcome(t, trust.NewBinder(b, fileDir), tc.cert)
			fromLDAP := bindOutcome(t, trust.NewBinder(b, ldapDir), tc.cert)
			if fromFile != fromLDAP {
				t.Fatalf("users.yaml: %+v\nLDAP:       %+v", fromFile, fromLDAP)
			}
			switch {
			case tc.want == "" && fromLDAP.Reason != "identity_unmapped":
				t.Errorf("got %+v, want identity_unmapped", fromLDAP)
			case tc.want != "" && (fromLDAP.Reason != "ok" || fromLDAP.UPN != tc.want):
				t.Errorf("got %+v, want %s", fromLDAP, tc.want)
			}
		})
	}
}

package trust_test

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
	"golang.org/x/crypto/cryptobyte"
)

func parseDir(t testing.TB, doc string) *trust.FileDirectory {
	t.Helper()
	d, err := trust.ParseUsers([]byte(doc), "users.yaml")
	if err != nil {
		t.Fatalf("ParseUsers: %v", err)
	}
	return d
}

func TestBindFieldAttributePairs(t *testing.T) {
	root := contosoRoot(t)
	leaf := root.Leaf(t, "Alice", pkigen.At(t0),
		pkigen.UPN("Alice@Contoso.com"), pkigen.Email("A.Smith@contoso.com"),
		pkigen.Serial(big.NewInt(0x0a1b2c))).Cert
	ski := fmt.Sprintf("%X", leaf.SubjectKeyId)
	pukey := sha1.Sum(leaf.RawSubjectPublicKeyInfo)
	// Every user is a decoy for the pairs it is not meant for: the right
	// user must be found by the binding under test only.
	dir := parseDir(t, fmt.Sprintf(`
users:
  - userPrincipalName: alice@contoso.com
  - userPrincipalName: a.smith@contoso.com
  - userPrincipalName: mail@contoso.com
    proxyAddresses: ["SMTP:mail@contoso.com", "smtp:a.smith@CONTOSO.com"]
  - userPrincipalName: pn@contoso.com
    certificateUserIds: ["X509:<PN>Alice@Contoso.com"]
  - userPrincipalName: rfc822@contoso.com
    certificateUserIds: ["x509:<rfc822>A.Smith@contoso.com"]
  - userPrincipalName: ski@contoso.com
    certificateUserIds: ["X509:<SKI>%s"]
  - userPrincipalName: pukey@contoso.com
    certificateUserIds: ["X509:<SHA1-PUKEY>%x"]
  - userPrincipalName: issuer@contoso.com
    certificateUserIds: ["X509:<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<sr>0a1b2c"]
  - userPrincipalName: subject@contoso.com
    certificateUserIds: ["X509:<S>CN=Alice"]
`, strings.ToLower(ski), pukey[:]))

	tests := []struct {
		field    trust.Field
		attr     trust.Attribute
		wantUser string
		value    string
	}{
		{trust.FieldPrincipalName, trust.AttrUserPrincipalName, "alice@contoso.com", "Alice@Contoso.com"},
		{trust.FieldPrincipalName, trust.AttrCertificateUserIDs, "pn@contoso.com", "Alice@Contoso.com"},
		{trust.FieldRFC822Name, trust.AttrUserPrincipalName, "a.smith@contoso.com", "A.Smith@contoso.com"},
		{trust.FieldRFC822Name, trust.AttrProxyAddresses, "mail@contoso.com", "A.Smith@contoso.com"},
		{trust.FieldRFC822Name, trust.AttrCertificateUserIDs, "rfc822@contoso.com", "A.Smith@contoso.com"},
		{trust.FieldSubjectKeyIdentifier, trust.AttrCertificateUserIDs, "ski@contoso.com", ski},
		{trust.FieldSHA1PublicKey, trust.AttrCertificateUserIDs, "pukey@contoso.com", fmt.Sprintf("%X", pukey[:])},
		{trust.FieldIssuerAndSerialNumber, trust.AttrCertificateUserIDs, "issuer@contoso.com", "<I>CN=CONTOSO-DC-CA,DC=contoso,DC=com<SR>0A1B2C"},
		{trust.FieldSubject, trust.AttrCertificateUserIDs, "subject@contoso.com", "CN=Alice"},
	}
	for _, tc := range tests {
		bd := trust.Binding{Field: tc.field, Attribute: tc.attr}
		t.Run(bd.String(), func(t *testing.T) {
			if err := bd.Validate(); err != nil {
				t.Fatal(err)
			}
			id, err := trust.NewBinder([]trust.Binding{bd}, dir).Bind(context.Background(), leaf)
			if err != nil {
				t.Fatal(err)
			}
			if id.User.UserPrincipalName != tc.wantUser || id.Binding != bd || id.Value != tc.value {
				t.Fatalf("got %s via %v value %q; want %s value %q", id.User.UserPrincipalName, id.Binding, id.Value, tc.wantUser, tc.value)
			}
		})
	}
}

// errDir is a directory that cannot answer, as an LDAP server that is down.
type errDir struct{ err error }

func (d errDir) Lookup(context.Context, trust.Attribute, string) ([]trust.User, error) {
	return nil, d.err
}

func TestBindOutcomes(t *testing.T) {
	root := wideRoot(t, "Root")
	at := pkigen.At(t0)
	alice := root.Leaf(t, "alice", at, pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com")).Cert
	twoUPNs := root.Leaf(t, "two", at, pkigen.UPN("alice@contoso.com", "bob@contoso.com")).Cert
	sameUser := root.Leaf(t, "same", at, pkigen.UPN("alice@contoso.com", "ALICE@contoso.com")).Cert
	emailOnly := root.Leaf(t, "mail", at, pkigen.Email("shared@contoso.com")).Cert
	bobMail := root.Leaf(t, "bob", at, pkigen.Email("bob@contoso.com")).Cert
	nothing := root.Leaf(t, "nothing", at).Cert
	badUPN := handmade(t, root, &x509.Certificate{
		Subject:        pkix.Name{CommonName: "bad"},
		EmailAddresses: []string{"alice@contoso.com"},
		ExtraExtensions: []pkix.Extension{{Id: oidSAN, Value: sanBytes(func(b *cryptobyte.Builder) {
			addEmail(b, "alice@contoso.com")
			addUPN(b, "")
		})}},
	})

	dir := parseDir(t, `
users:
  - userPrincipalName: alice@contoso.com
    proxyAddresses: ["SMTP:alice@contoso.com", "smtp:shared@contoso.com"]
  - userPrincipalName: bob@contoso.com
    proxyAddresses: ["SMTP:bob@contoso.com", "smtp:shared@contoso.com"]
    accountEnabled: false
  - userPrincipalName: carol@contoso.com
    certificateUserIds: ["X509:<S>CN=mail"]
`)
	pnUPN := trust.Binding{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName}
	mailProxy := trust.Binding{Field: trust.FieldRFC822Name, Attribute: trust.AttrProxyAddresses}
	subjCUID := trust.Binding{Field: trust.FieldSubject, Attribute: trust.AttrCertificateUserIDs}
	down := errors.New("ldap: connection refused")

	tests := []struct {
		name     string
		bindings []trust.Binding
		dir      trust.Directory
		leaf     *x509.Certificate
		reason   trust.Reason
		wantUser string
		wantBind trust.Binding
	}{
		{name: "first binding wins", bindings: []trust.Binding{pnUPN, mailProxy}, dir: dir, leaf: alice, reason: trust.OK, wantUser: "alice@contoso.com", wantBind: pnUPN},
		{name: "falls through to the second binding", bindings: []trust.Binding{pnUPN, subjCUID}, dir: dir, leaf: emailOnly, reason: trust.OK, wantUser: "carol@contoso.com", wantBind: subjCUID},
		{name: "two values, one user", bindings: []trust.Binding{pnUPN}, dir: dir, leaf: sameUser, reason: trust.OK, wantUser: "alice@contoso.com", wantBind: pnUPN},
		{name: "two values, two users", bindings: []trust.Binding{pnUPN}, dir: dir, leaf: twoUPNs, reason: trust.IdentityAmbiguous},
		// shared@ belongs to alice and bob; the Subject binding after it
		// would find carol alone, but ambiguity stops the search.
		{name: "ambiguous does not fall through", bindings: []trust.Binding{mailProxy, subjCUID}, dir: dir, leaf: emailOnly, reason: trust.IdentityAmbiguous},
		{name: "unmapped", bindings: []trust.Binding{pnUPN, mailProxy}, dir: dir, leaf: nothing, reason: trust.IdentityUnmapped},
		{name: "no bindings", bindings: nil, dir: dir, leaf: alice, reason: trust.IdentityUnmapped},
		{name: "disabled", bindings: []trust.Binding{mailProxy}, dir: dir, leaf: bobMail, reason: trust.UserDisabled, wantUser: "bob@contoso.com", wantBind: mailProxy},
		{name: "directory error", bindings: []trust.Binding{pnUPN}, dir: errDir{down}, leaf: alice, reason: trust.DirectoryUnavailable},
		{name: "malformed UPN stops", bindings: []trust.Binding{pnUPN, mailProxy}, dir: dir, leaf: badUPN, reason: trust.IdentityUnmapped},
		{name: "unknown attribute", bindings: []trust.Binding{{Field: trust.FieldPrincipalName, Attribute: "mail"}}, dir: dir, leaf: alice, reason: trust.IdentityUnmapped},
		{name: "unknown field", bindings: []trust.Binding{{Field: "Thumbprint", Attribute: trust.AttrCertificateUserIDs}}, dir: dir, leaf: alice, reason: trust.IdentityUnmapped},
		{name: "no directory: UPN", bindings: []trust.Binding{pnUPN, mailProxy}, leaf: alice, reason: trust.OK, wantUser: "alice@contoso.com", wantBind: pnUPN},
		{name: "no directory: falls to email", bindings: []trust.Binding{pnUPN, mailProxy}, leaf: emailOnly, reason: trust.OK, wantUser: "shared@contoso.com", wantBind: mailProxy},
		{name: "no directory: nothing", bindings: []trust.Binding{pnUPN, mailProxy}, leaf: nothing, reason: trust.IdentityUnmapped},
		{name: "no directory: malformed UPN", bindings: []trust.Binding{pnUPN, mailProxy}, leaf: badUPN, reason: trust.IdentityUnmapped},
		{name: "no certificate", bindings: []trust.Binding{pnUPN}, dir: dir, leaf: nil, reason: trust.NoCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := trust.NewBinder(tc.bindings, tc.dir).Bind(context.Background(), tc.leaf)
			if got := trust.ReasonOf(err); got != string(tc.reason) {
				t.Fatalf("reason %q, want %q (err %v, user %q)", got, tc.reason, err, id.User.UserPrincipalName)
			}
			if id.User.UserPrincipalName != tc.wantUser || id.Binding != tc.wantBind {
				t.Fatalf("identity %q via %v, want %q via %v", id.User.UserPrincipalName, id.Binding, tc.wantUser, tc.wantBind)
			}
			if tc.reason == trust.OK && !id.User.AccountEnabled {
				t.Fatal("accepted identity is not enabled")
			}
			if tc.reason == trust.DirectoryUnavailable && !errors.Is(err, down) {
				t.Fatalf("directory error %v does not wrap the cause", err)
			}
		})
	}
}

func TestBindingValidate(t *testing.T) {
	for _, bd := range []trust.Binding{
		{Field: "", Attribute: trust.AttrUserPrincipalName},
		{Field: trust.FieldSubject, Attribute: "mail"},
	} {
		if err := bd.Validate(); err == nil {
			t.Errorf("%v accepted", bd)
		}
	}
}

func BenchmarkBind(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("users:\n")
	for i := range 10000 {
		fmt.Fprintf(&doc, "  - userPrincipalName: user%d@contoso.com\n    proxyAddresses: [\"SMTP:user%d@contoso.com\", \"smtp:u%d@contoso.com\"]\n    certificateUserIds: [\"X509:<PN>user%d@contoso.com\"]\n", i, i, i, i)
	}
	dir := parseDir(b, doc.String())
	root := wideRoot(b, "Root")
	// The first binding misses, so every Bind does two lookups.
	leaf := root.Leaf(b, "u", pkigen.At(t0), pkigen.UPN("nobody@contoso.com"), pkigen.Email("u5000@contoso.com")).Cert
	binder := trust.NewBinder([]trust.Binding{
		{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName},
		{Field: trust.FieldRFC822Name, Attribute: trust.AttrProxyAddresses},
	}, dir)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		id, err := binder.Bind(ctx, leaf)
		if err != nil || id.User.UserPrincipalName != "user5000@contoso.com" {
			b.Fatal(id, err)
		}
	}
}

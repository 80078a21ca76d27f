package ldapdir_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
)

// bindUser is one user of the shared fixture, written both as users.yaml
// and as an LDAP entry.
type bindUser struct {
	UPN       string
	Proxy     []string
	CertIDs   []string
	Disabled  bool
	ValidFrom time.Time
}

func (u bindUser) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - userPrincipalName: %q\n", u.UPN)
	list := func(key string, vs []string) {
		if len(vs) == 0 {
			return
		}
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, "    %s: [%s]\n", key, strings.Join(q, ", "))
	}
	list("proxyAddresses", u.Proxy)
	list("certificateUserIds", u.CertIDs)
	fmt.Fprintf(&b, "    accountEnabled: %t\n", !u.Disabled)
	if !u.ValidFrom.IsZero() {
		fmt.Fprintf(&b, "    stsRefreshTokensValidFrom: %q\n", u.ValidFrom.Format(time.RFC3339))
	}
	return b.String()
}

// outcome is what a binding decided, in a form both directories must agree
// on.
type outcome struct {
	Reason    string
	UPN       string
	Enabled   bool
	ValidFrom time.Time
}

func bindOutcome(t *testing.T, b *trust.Binder, leaf *x509.Certificate) outcome {
	t.Helper()
	id, err := b.Bind(context.Background(), leaf)
	return outcome{
		Reason:    trust.ReasonOf(err),
		UPN:       id.User.UserPrincipalName,
		Enabled:   id.User.AccountEnabled,
		ValidFrom: id.User.SessionsValidFrom,
	}
}

// The bindings of SPEC decide the same against LDAP as against users.yaml:
// one table of certificates, both directories loaded with the same users,
// identical outcomes, each also checked against the expected one.
func TestSameOutcomesAsUsersFile(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	root := pkigen.Root(t, "Contoso Root", pkigen.At(t0))
	leaf := func(cn string, opts ...pkigen.Option) *x509.Certificate {
		return root.Leaf(t, cn, append([]pkigen.Option{pkigen.At(t0)}, opts...)...).Cert
	}
	value := func(c *x509.Certificate, f trust.Field) string {
		vs, err := trust.FieldValues(c, f)
		if err != nil || len(vs) != 1 {
			t.Fatalf("FieldValues(%s) = %v, %v", f, vs, err)
		}
		return vs[0]
	}

	skiCert := leaf("ski user")
	issuerCert := leaf("issuer user")
	ski := strings.ToLower(value(skiCert, trust.FieldSubjectKeyIdentifier))
	iands := value(issuerCert, trust.FieldIssuerAndSerialNumber)
	i := strings.LastIndex(iands, "<SR>")
	iandsStored := "x509:" + iands[:i] + "<sr>" + strings.ToLower(iands[i+4:])
	weird := "we*rd(1)\\x@contoso.com"

	users := []bindUser{
		{UPN: "alice@contoso.com", Proxy: []string{"SMTP:Alice@Contoso.com", "smtp:a.smith@contoso.com", "SIP:alice.sip@contoso.com"}},
		{UPN: "bob@contoso.com", Proxy: []string{"SMTP:bob@contoso.com", "smtp:shared@contoso.com"}},
		{UPN: "carol@contoso.com", Proxy: []string{"SMTP:carol@contoso.com", "smtp:Shared@Contoso.com"}},
		{UPN: "dave@contoso.com", Proxy: []string{"SMTP:dave@contoso.com"}, Disabled: true},
		{UPN: "erin@contoso.com", CertIDs: []string{"X509:<PN>erin.pn@contoso.com", "X509:<RFC822>erin.mail@contoso.com"},
			ValidFrom: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)},
		{UPN: "frank@contoso.com", CertIDs: []string{"X509:<SKI>" + ski}},
		{UPN: "grace@contoso.com", CertIDs: []string{iandsStored}},
		{UPN: weird, Proxy: []string{"smtp:" + weird}},
		{UPN: "werd@contoso.com"},
	}

	var doc strings.Builder
	doc.WriteString("users:\n")
	for _, u := range users {
		doc.WriteString(u.yaml())
	}
	fileDir, err := trust.ParseUsers([]byte(doc.String()), "users.yaml")
	if err != nil {
		t.Fatalf("users.yaml: %v\n%s", err, doc.String())
	}

	s := testldap.Start(t)
	for i, u := range users {
		du := testldap.User{CN: fmt.Sprint("user", i), UPN: u.UPN, Proxy: u.Proxy, CertIDs: u.CertIDs, Disabled: u.Disabled}
		if !u.ValidFrom.IsZero() {
			du.ValidFrom = u.ValidFrom.Format("20060102150405Z") // GeneralizedTime, as AD writes
		}
		s.AddUser(du)
	}
	ldapDir := newDir(t, options(s, newClock()))

	upnFirst := []trust.Binding{
		{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName},
		{Field: trust.FieldRFC822Name, Attribute: trust.AttrProxyAddresses},
	}
	cuid := func(f trust.Field) []trust.Binding {
		return []trust.Binding{{Field: f, Attribute: trust.AttrCertificateUserIDs}}
	}
	tests := []struct {
		name     string
		bindings []trust.Binding
		cert     *x509.Certificate
		want     outcome
	}{
		{"UPN to userPrincipalName, other case", upnFirst, leaf("alice", pkigen.UPN("Alice@CONTOSO.com")),
			outcome{Reason: "ok", UPN: "alice@contoso.com", Enabled: true}},
		{"RFC822 to proxyAddresses, SMTP: primary", upnFirst, leaf("alice", pkigen.Email("alice@contoso.com")),
			outcome{Reason: "ok", UPN: "alice@contoso.com", Enabled: true}},
		{"RFC822 to proxyAddresses, smtp: secondary, other case", upnFirst, leaf("alice", pkigen.Email("A.Smith@contoso.com")),
			outcome{Reason: "ok", UPN: "alice@contoso.com", Enabled: true}},
		{"RFC822 does not match a SIP: address", upnFirst, leaf("alice", pkigen.Email("alice.sip@contoso.com")),
			outcome{Reason: "identity_unmapped"}},
		{"UPN not found falls through to RFC822", upnFirst, leaf("bob", pkigen.UPN("robert@contoso.com"), pkigen.Email("bob@contoso.com")),
			outcome{Reason: "ok", UPN: "bob@contoso.com", Enabled: true}},
		{"shared proxy address is ambiguous", upnFirst, leaf("shared", pkigen.Email("shared@contoso.com")),
			outcome{Reason: "identity_ambiguous"}},
		{"unknown user is unmapped", upnFirst, leaf("nobody", pkigen.UPN("nobody@contoso.com"), pkigen.Email("nobody@contoso.com")),
			outcome{Reason: "identity_unmapped"}},
		{"disabled user", upnFirst, leaf("dave", pkigen.UPN("dave@contoso.com")),
			outcome{Reason: "user_disabled", UPN: "dave@contoso.com"}},
		{"certificateUserIds X509:<PN>", cuid(trust.FieldPrincipalName), leaf("erin", pkigen.UPN("erin.pn@contoso.com")),
			outcome{Reason: "ok", UPN: "erin@contoso.com", Enabled: true, ValidFrom: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}},
		{"certificateUserIds X509:<PN> is case-sensitive past the tag", cuid(trust.FieldPrincipalName), leaf("erin", pkigen.UPN("Erin.PN@contoso.com")),
			outcome{Reason: "identity_unmapped"}},
		{"certificateUserIds X509:<RFC822>", cuid(trust.FieldRFC822Name), leaf("erin", pkigen.Email("erin.mail@contoso.com")),
			outcome{Reason: "ok", UPN: "erin@contoso.com", Enabled: true, ValidFrom: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}},
		{"certificateUserIds X509:<SKI>, hex in any case", cuid(trust.FieldSubjectKeyIdentifier), skiCert,
			outcome{Reason: "ok", UPN: "frank@contoso.com", Enabled: true}},
		{"certificateUserIds X509:<I>..<SR>..", cuid(trust.FieldIssuerAndSerialNumber), issuerCert,
			outcome{Reason: "ok", UPN: "grace@contoso.com", Enabled: true}},
		{"UPN with filter specials", upnFirst, leaf("weird", pkigen.UPN(weird)),
			outcome{Reason: "ok", UPN: weird, Enabled: true}},
		{"RFC822 with filter specials", upnFirst[1:], leaf("weird", pkigen.Email(weird)),
			outcome{Reason: "ok", UPN: weird, Enabled: true}},
		{"UPN wildcard matches nobody", upnFirst, leaf("star", pkigen.UPN("*@contoso.com")),
			outcome{Reason: "identity_unmapped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromFile := bindOutcome(t, trust.NewBinder(tt.bindings, fileDir), tt.cert)
			fromLDAP := bindOutcome(t, trust.NewBinder(tt.bindings, ldapDir), tt.cert)
			if fromFile != fromLDAP {
				t.Fatalf("users.yaml: %+v\nLDAP:       %+v", fromFile, fromLDAP)
			}
			if fromLDAP.Reason != tt.want.Reason || fromLDAP.UPN != tt.want.UPN || fromLDAP.Enabled != tt.want.Enabled ||
				!fromLDAP.ValidFrom.Equal(tt.want.ValidFrom) {
				t.Errorf("got %+v, want %+v", fromLDAP, tt.want)
			}
		})
	}

	// The user records themselves agree, attribute for attribute.
	for _, u := range users {
		a, errA := fileDir.Lookup(context.Background(), trust.AttrUserPrincipalName, u.UPN)
		b, errB := ldapDir.Lookup(context.Background(), trust.AttrUserPrincipalName, u.UPN)
		if errA != nil || errB != nil || len(a) != 1 || len(b) != 1 {
			t.Fatalf("%s: %v %v / %v %v", u.UPN, upns(a), errA, upns(b), errB)
		}
		if fmt.Sprintf("%+v", a[0]) != fmt.Sprintf("%+v", b[0]) {
			t.Errorf("%s:\nusers.yaml %+v\nLDAP       %+v", u.UPN, a[0], b[0])
		}
	}
}

package ldapdir

import (
	"errors"
	"strings"
	"testing"

	"github.com/certgate/certgate/trust"
	"github.com/go-ldap/ldap/v3"
)

// FuzzUserFromEntry: whatever a server sends back, reading the entry never
// panics, an unreadable enabled flag is an error, and a user is enabled
// only when the directory says so.
func FuzzUserFromEntry(f *testing.F) {
	f.Add("alice@contoso.com", "512", "TRUE", "20261125100000Z")
	f.Add("alice@contoso.com", "514", "FALSE", "2026-11-25T10:00:00Z")
	f.Add("", "-2", "true", "")
	f.Add("x", "4294967295", "maybe", "20261125100000.0+0100")
	f.Add("x", "1e3", "", "garbage")
	attrs := Attributes{
		UserPrincipalName: "userPrincipalName", ProxyAddresses: "proxyAddresses", CertificateUserIDs: "altSecurityIdentities",
		AccountEnabled: "certgateAccountEnabled", UserAccountControl: "userAccountControl", SessionsValidFrom: "validFrom",
	}
	f.Fuzz(func(t *testing.T, upn, uac, enabled, validFrom string) {
		m := map[string][]string{"userPrincipalName": {upn}, "proxyAddresses": {"SMTP:" + upn}}
		for k, v := range map[string]string{"userAccountControl": uac, "certgateAccountEnabled": enabled, "validFrom": validFrom} {
			if v != "" {
				m[k] = []string{v}
			}
		}
		u, err := userFromEntry(ldap.NewEntry("cn=x", m), attrs)
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || de.DN != "cn=x" {
				t.Fatalf("error %v is not a *DataError for the entry", err)
			}
			return
		}
		if u.UserPrincipalName != upn || upn == "" {
			t.Fatalf("UPN = %q from %q", u.UserPrincipalName, upn)
		}
		if u.AccountEnabled && (!strings.EqualFold(enabled, "TRUE") || uac == "") {
			t.Fatalf("enabled with certgateAccountEnabled=%q userAccountControl=%q", enabled, uac)
		}
		if !matches(u, trust.AttrProxyAddresses, upn) || !matches(u, trust.AttrUserPrincipalName, upn) {
			t.Fatalf("user does not match its own UPN and proxy address %q", upn)
		}
	})
}

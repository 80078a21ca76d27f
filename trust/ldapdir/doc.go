// Package ldapdir is the LDAP implementation of [trust.Directory]: it finds
// the users a certificate binds to in Active Directory or any LDAP server
// that carries AD's attribute names (userPrincipalName, proxyAddresses,
// altSecurityIdentities, userAccountControl).
//
// # Matching
//
// Each lookup is one search under the base DN whose filter is the configured
// template with {attribute} replaced by the LDAP attribute name and {value}
// by the RFC 4515-escaped value (see [EscapeFilter]). proxyAddresses are
// searched as (|(proxyAddresses=smtp:v)(proxyAddresses=v)): the server's
// caseIgnoreMatch (AD's rule for the attribute) covers both SMTP: and smtp:.
// Every entry the server returns is checked again on this side with the
// rules users.yaml uses (userPrincipalName and proxyAddresses ignore case,
// proxyAddresses ignore SMTP:/smtp:, certificateUserIds ignore case only in
// the X509:<TAG> prefix and hex values), so LDAP and users.yaml admit the
// same certificates, and a server with looser matching rules or a broad
// filter template cannot add users.
//
// # Availability
//
// Answers are cached per (attribute, value): found users for CacheTTL, "no
// such user" for NegativeTTL. While the server cannot be reached a cached
// answer keeps being served until MaxStale past its TTL; after that, and
// for values never seen, Lookup fails with reason directory_unavailable,
// never identity_unmapped. Concurrent lookups of the same value share one
// search. [Directory.Ready] reports the same window for /readyz.
//
// Connections are pooled (PoolSize), authenticated with a simple bind, and
// protected by TLS: ldaps:// or ldap:// with StartTLS; plain ldap:// is
// refused because the bind password would cross the network in clear.
//
//	dir, err := ldapdir.New(ldapdir.Options{
//		URL:      "ldaps://dc1.contoso.com",
//		RootCAs:  pool,
//		BindDN:   "CN=certgate,OU=Service,DC=contoso,DC=com",
//		Password: secret, // read by the caller from a file or the environment
//		BaseDN:   "DC=contoso,DC=com",
//		Attributes: ldapdir.Attributes{UserAccountControl: "userAccountControl"},
//	})
//	users, err := dir.Lookup(ctx, trust.AttrUserPrincipalName, "alice@contoso.com")
package ldapdir

// Package trust decides who a client certificate is: it holds the trust
// store built from the configured root and intermediate CAs as one
// immutable snapshot, verifies a presented chain against it (RFC 5280 path
// validation at an injectable time, by package pathval), reads the
// certificate fields that bindings use (including the SAN otherName UPN that
// crypto/x509 skips), and binds the certificate to exactly one user of a
// directory.
//
// Every refusal is a [*Error] carrying one of the SPEC reason codes, so
// callers map it to logs, metrics and HTTP statuses without string matching.
// The package imports no other certgate package than its sub-package
// pathval.
//
// # Trust store
//
// [NewStore] takes the configured CAs and refuses only a set that could
// never work (no root, a missing certificate); a CA that is broken now
// (expired, badly signed, not a CA, a weak key, no path to a root) is kept
// and reported by [Store.CAStatus], and chains that need it are refused.
// Roots are the only anchors; configured intermediates are path material,
// as are the certificates the client sends. [Store.Verify] judges the path
// with [pathval] (RFC 5280 §6.1) on every handshake, so verified chains are
// cached per store:
//
//	store, err := trust.NewStore([]trust.CA{
//		{Type: trust.AuthorityRoot, Cert: root, CRLURL: "http://pki/root.crl"},
//		{Type: trust.AuthorityIntermediate, Cert: issuing, CRLURL: "http://pki/issuing.crl"},
//	})
//	...
//	chain, err := store.Verify(state.PeerCertificates, now) // leaf … root
//	issuer, _ := store.IssuerOf(chain[0])                     // its CRL URLs
//
// # Binding
//
// A [Binder] applies the cloud CBA's username bindings in order: a
// certificate field ([FieldValues]) is looked up by a user attribute in a
// [Directory]; the first binding that finds exactly one user wins, and a
// binding that finds several stops the search. [FileDirectory] is the
// embedded directory read from users.yaml ([LoadUsers]);
// [SetSessionsValidFrom] edits that file in place for instant revocation.
//
//	dir, err := trust.LoadUsers("users.yaml")
//	binder := trust.NewBinder([]trust.Binding{
//		{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName},
//		{Field: trust.FieldRFC822Name, Attribute: trust.AttrProxyAddresses},
//	}, dir)
//	id, err := binder.Bind(ctx, chain[0]) // id.User.UserPrincipalName
package trust

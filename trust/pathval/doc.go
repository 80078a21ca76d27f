// Package pathval judges a certification path per RFC 5280 §6.1: it builds
// paths from an end-entity certificate to a trust anchor through candidate
// intermediates and accepts the shortest path on which every certificate
// passes the basic path validation of §6.1.3 and §6.1.4 at the decision time.
//
// It knows certificates, names and time, nothing of certgate's config,
// directory or proxy; of certgate it imports only internal/certfmt, to
// spell names in explanations as certgate does everywhere. crypto/x509 parses the certificates and checks the
// signatures; the algorithm is this package's own because crypto/x509's
// differs from RFC 5280 where certgate's users notice: names are chained by
// the §7.1 comparison (case, whitespace, PrintableString versus UTF8String)
// instead of byte equality, self-issued certificates are exempt from
// pathLenConstraint and from name constraints as §6.1.4 (l) and §6.1.3 (b)
// say, and name constraints of every form that appears in client
// certificates are processed, directoryName included.
//
// Anchors are trust anchors in the §6.1.1 (d) sense: a name and a key. An
// anchor certificate's own extensions (basicConstraints, pathLenConstraint,
// keyUsage, extKeyUsage, nameConstraints) and its validity are honoured
// when present, because an administrator who configured a root with a name
// constraint means it. Its signature is not checked: a root is trusted by
// configuration, not by its self-signature.
//
// Certificate policy processing (§6.1.3 (d)-(f), §6.1.4 (a)-(j)) is out of
// scope: certificatePolicies, policyMappings, policyConstraints and
// inhibitAnyPolicy are recognised as extensions (a critical one does not
// reject the path) but have no effect, as if the relying party's
// user-initial-policy-set were any-policy with no explicit policy required.
//
// Where it deliberately differs from RFC 5280's letter, it is stricter and
// agrees with crypto/x509: an intermediate needs basicConstraints cA even in
// a v1 or v2 certificate, extKeyUsage of CAs nests (a CA whose extKeyUsage
// lacks clientAuth and anyExtendedKeyUsage cannot vouch for a client
// certificate), signatures with MD5 or SHA-1 are refused, and the subject's
// emailAddress attributes are held to rfc822Name constraints even when the
// certificate has a subjectAltName.
package pathval

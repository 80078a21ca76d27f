// Package revocation decides whether a verified client chain has been
// revoked: it keeps, per issuing CA (keyed by the CA's subject key
// identifier), the CA's last good CRL merged with its delta CRL, fetched and
// verified in the background, and optionally asks the certificate's OCSP
// responder.
//
// # Handshake path
//
// [Checker.Check] never touches the network for CRLs and never takes a lock
// that a fetch holds: it reads one immutable snapshot through an atomic
// pointer and looks every serial up in a compact open-addressing hash table
// (about 31 bytes per entry for 17-byte serials), without allocating on the
// success path. Only OCSP in hard mode may fetch
// synchronously, and only when no fresh answer is cached (as nginx does).
//
// # CRL ingest
//
// A CRL is never handed to [crypto/x509.ParseRevocationList], whose structs
// cost about 275 bytes per entry and ignore unknown critical extensions. The
// DER is walked with cryptobyte instead: the signature is checked over the raw
// TBS bytes with the issuer's key, then the issuer name, the authority key
// identifier, the CRL number (never going back), thisUpdate and nextUpdate,
// the issuing distribution point and every critical extension, and the
// serials are copied into one fixed-width slab per entry class (revoked, on
// hold, removeFromCRL). A base and its delta are kept apart and merged at
// lookup: revoked = in the delta (not as removeFromCRL), or in the base and
// not lifted from hold by the delta.
//
// # Scope and signers
//
// A CRL counts for a certificate only when its scope covers it (RFC 5280
// 6.3.3): the issuingDistributionPoint names one of the certificate's
// cRLDistributionPoints (or no distribution point, or the CA's own name),
// onlyContainsUserCerts/CACerts/AttributeCerts admit the certificate's kind,
// and the reasons it covers (onlySomeReasons, and the reasons of the
// matching distribution points) are all of them. A CRL for some reasons only
// revokes what it lists and clears nothing. Names are compared as bytes
// first, then by RFC 5280 7.1 as path validation compares them
// ([pathval.NameKey]: decoded, NFKC, case-folded, spaces collapsed);
// the IDP's names are prepared at ingest so that the check on the
// handshake path is byte comparisons. A certificate that no CRL covers has
// no usable CRL (crl_unavailable), never "not revoked". Indirect CRLs (an
// IDP with indirectCRL, entries with certificateIssuer, a certificate whose
// distribution points all name a cRLIssuer) are refused.
//
// Configured certificates with one subject name are one CA. Any of them
// whose keyUsage allows cRLSign may have signed the CA's CRLs (key rollover,
// a separate CRL-signing key), and the CRLs of each of its keys are
// candidates for a certificate any of its keys issued; the one whose scope
// covers the certificate decides. A CRL signed by a key other than the
// certificate's issuer's counts only while that key's certificate, and
// every configured certificate above it, is valid and not revoked, and
// while Source.VerifySigner (trust's RFC 5280 path validation, wired by
// cmd/certgate) accepts that certificate's path: path length, name
// constraints, critical extensions, key size. Its answer is kept until the
// decision time crosses a validity bound of the configured certificates, so
// the check path does not validate paths.
// Configured certificates with one SKI (a CA renewed with the same key,
// cross-signed) share one source: one fetch, one CRL, one cache file.
//
// # Refresh
//
// [Checker.Run] refreshes each CRL at about 80% of its validity window with
// ±10% jitter (earlier if the CA announces a Next CRL Publish time), backs off
// exponentially on failure, runs at most one fetch per URL at a time, and
// swaps a new snapshot in atomically. The last good CRL of each CA is kept in
// Options.CacheDir so a restart while the CRL server is down keeps serving
// under the same rules.
//
// Errors carry a SPEC reason code through a ReasonCode method: "revoked",
// "crl_unavailable", "crl_stale" or "ocsp_unavailable". Of certgate, the
// package imports only internal/certfmt, to spell names and key identifiers
// as everywhere else, and trust/pathval, for the one name comparison and
// key identifier.
package revocation

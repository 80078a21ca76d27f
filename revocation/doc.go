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
// "crl_unavailable", "crl_stale" or "ocsp_unavailable". The package imports
// no other certgate package.
package revocation

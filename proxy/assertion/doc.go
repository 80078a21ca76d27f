// Package assertion signs per-request identity assertions and publishes
// their keys.
//
// An assertion is a compact JWS (a JWT, RFC 7519) that certgate adds to a
// request it forwards, so that a backend can tell a request that came
// through certgate from one that only carries a copied identity header. It
// names the bound user (sub), the route's audience (aud), the binding that
// matched, the issuing CA's key identifier and the client certificate's
// SHA-256 thumbprint (cnf.x5t#S256, RFC 8705), and lives for a short time
// (exp). Signing uses go-jose with ES256 (ECDSA P-256) or EdDSA (Ed25519)
// keys read from PEM files.
//
// # Key rotation
//
// A [Signer] holds an ordered list of keys: the first signs, the others are
// only published. A [KeySet] is the JWKS of every key of every signer, served
// at /.well-known/jwks.json. Rotating without a backend ever seeing a
// signature it cannot verify takes three steps: add the new key after the
// current one (it is published, backends may fetch it), move it first (it
// signs, the old one stays published for the assertions still in flight),
// remove the old key once the longest lifetime has passed.
package assertion

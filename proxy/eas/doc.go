// Package eas understands Exchange ActiveSync requests (MS-ASHTTP) as far
// as a certificate-checking front proxy needs to: it reads the command and
// the User named in either query form (plain text or base64), decides
// whether that User names the bound directory user, gives commands a closed
// set of metric labels, and restores the exact case of the MS-AS* response
// headers that Go's canonicalisation would otherwise change on the wire.
//
// # Failing closed
//
// [ParseQuery] refuses what it cannot read unambiguously: truncated
// base64 structures, unknown command codes, and a User (or any other known
// parameter) given twice, in any letter case, because the proxy and the
// backend might each pick a different copy. Its errors carry the reason
// code "eas_user_mismatch": a request whose User cannot be read cannot be
// shown to name the bound user.
//
// The package imports no other certgate package.
package eas

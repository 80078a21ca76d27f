// Package trust decides who a client certificate is: it holds the trust
// store built from the configured root and intermediate CAs as one
// immutable snapshot, verifies a presented chain against it (validity at an
// injectable time, the clientAuth EKU, name constraints), reads the
// certificate fields that bindings use (including the SAN otherName UPN that
// crypto/x509 skips), and binds the certificate to exactly one user of a
// directory.
//
// Every refusal is a [*Error] carrying one of the SPEC reason codes, so
// callers map it to logs, metrics and HTTP statuses without string matching.
// The package imports no other certgate package.
package trust

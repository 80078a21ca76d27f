package trust

import (
	"context"
	"time"
)

// Field is a certificate field a binding reads (SPEC "certificateField").
type Field string

// The certificate fields of the cloud CBA username bindings.
const (
	FieldPrincipalName         Field = "PrincipalName"         // SAN otherName UPN
	FieldRFC822Name            Field = "RFC822Name"            // SAN email
	FieldSubjectKeyIdentifier  Field = "SubjectKeyIdentifier"  // hex
	FieldSHA1PublicKey         Field = "SHA1PublicKey"         // hex SHA-1 of the SubjectPublicKeyInfo
	FieldIssuerAndSerialNumber Field = "IssuerAndSerialNumber" // "<I>issuer DN<SR>serial hex"
	FieldSubject               Field = "Subject"               // subject DN
	FieldIssuerAndSubject      Field = "IssuerAndSubject"      // "<I>issuer DN<S>subject DN" (a weak mapping)
)

// Attribute is a user attribute a binding matches (SPEC "userAttribute").
type Attribute string

// The user attributes bindings can match.
const (
	AttrUserPrincipalName  Attribute = "userPrincipalName"
	AttrProxyAddresses     Attribute = "proxyAddresses"
	AttrCertificateUserIDs Attribute = "certificateUserIds"
)

// Binding maps one certificate field to one user attribute.
type Binding struct {
	Field     Field
	Attribute Attribute
}

// User is a directory entry.
type User struct {
	UserPrincipalName  string
	ProxyAddresses     []string
	CertificateUserIDs []string
	AccountEnabled     bool
	// SessionsValidFrom is stsRefreshTokensValidFrom: sessions and
	// connections established before it are refused. Zero means unset.
	SessionsValidFrom time.Time
}

// Directory finds users by one attribute value. Implementations compare the
// way the attribute demands (proxyAddresses ignore the SMTP:/smtp: prefix and
// case; userPrincipalName ignores case) and return every match, so the
// binder can refuse ambiguity. An error means the directory could not answer
// (it becomes directory_unavailable), never "no such user".
type Directory interface {
	Lookup(ctx context.Context, attr Attribute, value string) ([]User, error)
}

package trust

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
)

// Identity is the outcome of binding: the user, the binding that found it,
// and the certificate value that matched.
type Identity struct {
	User    User
	Binding Binding
	Value   string
}

// Binder maps a verified leaf certificate to exactly one directory user.
// It is immutable and safe for concurrent use.
type Binder struct {
	bindings []Binding
	dir      Directory
}

// NewBinder returns a Binder that tries bindings in order against dir. A
// nil dir is the no-directory mode: the identity is the certificate value
// itself. Bindings are not checked here; config validation calls
// [Binding.Validate].
func NewBinder(bindings []Binding, dir Directory) *Binder {
	return &Binder{bindings: append([]Binding(nil), bindings...), dir: dir}
}

// Validate reports a binding whose field or attribute is unknown.
func (b Binding) Validate() error {
	switch b.Field {
	case FieldPrincipalName, FieldRFC822Name, FieldSubjectKeyIdentifier,
		FieldSHA1PublicKey, FieldIssuerAndSerialNumber, FieldSubject, FieldIssuerAndSubject:
	default:
		return fmt.Errorf("unknown certificateField %q", b.Field)
	}
	switch b.Attribute {
	case AttrUserPrincipalName, AttrProxyAddresses, AttrCertificateUserIDs:
	default:
		return fmt.Errorf("unknown userAttribute %q", b.Attribute)
	}
	return nil
}

func (b Binding) String() string { return string(b.Field) + "→" + string(b.Attribute) }

// cuidTag is the certificateUserIds prefix of the cloud CBA for a field.
// IssuerAndSerialNumber has no tag of its own: its value already carries
// "<I>…<SR>".
func cuidTag(f Field) (string, bool) {
	switch f {
	case FieldPrincipalName:
		return "X509:<PN>", true
	case FieldRFC822Name:
		return "X509:<RFC822>", true
	case FieldSubjectKeyIdentifier:
		return "X509:<SKI>", true
	case FieldSHA1PublicKey:
		return "X509:<SHA1-PUKEY>", true
	case FieldIssuerAndSerialNumber, FieldIssuerAndSubject:
		return "X509:", true
	case FieldSubject:
		return "X509:<S>", true
	}
	return "", false
}

// spellings are the forms v is looked up in: for certificateUserIds, also
// as Active Directory writes DNs and serials ([cuidVariants]).
func (b Binding) spellings(v string) []string {
	if b.Attribute != AttrCertificateUserIDs {
		return []string{v}
	}
	return cuidVariants(b.Field, v)
}

// lookupValue is the directory value a certificate value is looked up by.
func (b Binding) lookupValue(v string) (string, error) {
	switch b.Attribute {
	case AttrUserPrincipalName, AttrProxyAddresses:
		return v, nil
	case AttrCertificateUserIDs:
		if tag, ok := cuidTag(b.Field); ok {
			return tag + v, nil
		}
	}
	return "", b.Validate()
}

// Bind returns the identity of leaf, which must already be verified.
//
// Bindings are tried in order. For each, every value the certificate has
// for the binding's field is looked up by the binding's attribute; the
// users found are deduplicated by userPrincipalName (case-insensitively).
// Exactly one user: that binding wins. Several distinct users:
// identity_ambiguous, and the later bindings are not tried — the cloud
// CBA's uniqueness rule, since falling through would let a weaker binding
// settle a conflict the stronger one exposed. No user for any binding:
// identity_unmapped. A certificate field that does not parse (a malformed
// UPN) also stops with identity_unmapped rather than falling through.
//
// A directory error is directory_unavailable. A disabled account is
// user_disabled; its Identity is returned along with the error, for logs.
func (b *Binder) Bind(ctx context.Context, leaf *x509.Certificate) (Identity, error) {
	if leaf == nil {
		return Identity{}, Errorf(NoCertificate, "no client certificate")
	}
	if b.dir == nil {
		return b.bindNoDirectory(leaf)
	}
	for _, bd := range b.bindings {
		values, err := FieldValues(leaf, bd.Field)
		if err != nil {
			return Identity{}, &Error{Reason: IdentityUnmapped, Err: fmt.Errorf("binding %s: %w", bd, err)}
		}
		var found Identity
		var ok bool
		for _, v := range values {
			if v == "" {
				continue
			}
			var users []User
			for _, spelling := range bd.spellings(v) {
				key, err := bd.lookupValue(spelling)
				if err != nil {
					return Identity{}, &Error{Reason: IdentityUnmapped, Err: fmt.Errorf("binding %s: %w", bd, err)}
				}
				found, err := b.dir.Lookup(ctx, bd.Attribute, key)
				if err != nil {
					return Identity{}, &Error{Reason: DirectoryUnavailable, Err: fmt.Errorf("binding %s: looking up %q: %w", bd, key, err)}
				}
				users = append(users, found...)
			}
			for _, u := range users {
				switch {
				case !ok:
					found, ok = Identity{User: u, Binding: bd, Value: v}, true
				case !strings.EqualFold(found.User.UserPrincipalName, u.UserPrincipalName):
					return Identity{}, Errorf(IdentityAmbiguous, "binding %s: certificate matches users %q and %q",
						bd, found.User.UserPrincipalName, u.UserPrincipalName)
				}
			}
		}
		if ok {
			if !found.User.AccountEnabled {
				return found, Errorf(UserDisabled, "user %q is disabled", found.User.UserPrincipalName)
			}
			return found, nil
		}
	}
	return Identity{}, Errorf(IdentityUnmapped, "no binding matched a directory user")
}

// bindNoDirectory takes the first value of the first binding that has one:
// with no directory the certificate is the identity, enabled by definition.
func (b *Binder) bindNoDirectory(leaf *x509.Certificate) (Identity, error) {
	for _, bd := range b.bindings {
		values, err := FieldValues(leaf, bd.Field)
		if err != nil {
			return Identity{}, &Error{Reason: IdentityUnmapped, Err: fmt.Errorf("binding %s: %w", bd, err)}
		}
		for _, v := range values {
			if v != "" {
				return Identity{User: User{UserPrincipalName: v, AccountEnabled: true}, Binding: bd, Value: v}, nil
			}
		}
	}
	return Identity{}, Errorf(IdentityUnmapped, "the certificate has no value for any binding")
}

package trust

import (
	"errors"
	"fmt"
)

// Reason is a SPEC reason code. The values are part of the public contract:
// they appear in logs, in the reason label of metrics and in `certgate check`.
type Reason string

// The reason codes this package produces.
const (
	OK                   Reason = "ok"
	NoCertificate        Reason = "no_certificate"
	Untrusted            Reason = "untrusted"
	Expired              Reason = "expired"
	NotYetValid          Reason = "not_yet_valid"
	BadUsage             Reason = "bad_usage"
	NameConstraints      Reason = "name_constraints"
	IdentityUnmapped     Reason = "identity_unmapped"
	IdentityAmbiguous    Reason = "identity_ambiguous"
	UserDisabled         Reason = "user_disabled"
	DirectoryUnavailable Reason = "directory_unavailable"
	// MalformedCertificate is a client certificate that cannot be parsed,
	// or whose names cannot be read.
	MalformedCertificate Reason = "malformed_certificate"
)

// Error is a refusal with its reason code.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return fmt.Sprintf("%s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonCode returns the reason as a plain string; other packages' errors
// implement the same method, which is how callers read a reason from any
// error without importing this package.
func (e *Error) ReasonCode() string { return string(e.Reason) }

// Errorf makes an *Error with a formatted cause.
func Errorf(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason code carried by err, "ok" for nil, and "" when
// err carries none.
func ReasonOf(err error) string {
	if err == nil {
		return string(OK)
	}
	var r interface{ ReasonCode() string }
	if errors.As(err, &r) {
		return r.ReasonCode()
	}
	return ""
}

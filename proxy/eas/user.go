package eas

import (
	"fmt"
	"strings"
)

// UserMatches reports whether the User of a request names the bound user:
// its userPrincipalName, the UPN's local part, one of its SMTP proxy
// addresses (the SMTP:/smtp: prefix ignored), or DOMAIN\local and
// DOMAIN/local when netbiosDomain is set and DOMAIN equals it. Letter case
// is ignored in ASCII only: Unicode folding would let, say, the Kelvin sign
// stand for a "k", which the backend may not read the same way.
//
// An empty requestUser returns false. The proxy treats an absent User as
// "rely on the binding" (the base64 form need not carry one) and so never
// calls UserMatches with it; see [CheckUser].
func UserMatches(requestUser string, upn string, proxyAddresses []string, netbiosDomain string) bool {
	if requestUser == "" {
		return false
	}
	if upn != "" && matchesName(requestUser, upn) {
		return true
	}
	if netbiosDomain != "" {
		if i := strings.IndexAny(requestUser, `\/`); i > 0 &&
			equalFoldASCII(requestUser[:i], netbiosDomain) && upn != "" &&
			matchesName(requestUser[i+1:], upn) {
			return true
		}
	}
	for _, a := range proxyAddresses {
		addr, ok := smtpAddress(a)
		if ok && addr != "" && equalFoldASCII(requestUser, addr) {
			return true
		}
	}
	return false
}

// matchesName compares a user name with a UPN and the UPN's local part.
func matchesName(name, upn string) bool {
	if equalFoldASCII(name, upn) {
		return true
	}
	local, _, ok := strings.Cut(upn, "@")
	return ok && local != "" && equalFoldASCII(name, local)
}

// smtpAddress returns the address of an SMTP proxy address. Entries with
// another type prefix (SIP:, X500:, EUM:) are not mail addresses a device
// logs in with, so they do not match.
func smtpAddress(a string) (string, bool) {
	if len(a) >= 5 && equalFoldASCII(a[:5], "smtp:") {
		return a[5:], true
	}
	if strings.Contains(a, ":") {
		return "", false
	}
	return a, true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Error is a refusal of an EAS request with its SPEC reason code.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Reason, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// ReasonCode returns the SPEC reason code.
func (e *Error) ReasonCode() string { return e.Reason }

// CheckUser is the SPEC route rule for EAS: nil when q names no User (the
// binding alone decides) or names the bound user, else an *Error with
// reason "eas_user_mismatch".
func CheckUser(q Query, upn string, proxyAddresses []string, netbiosDomain string) error {
	if q.User == "" || UserMatches(q.User, upn, proxyAddresses, netbiosDomain) {
		return nil
	}
	return &Error{Reason: ReasonUserMismatch, Err: fmt.Errorf("request User %q does not name %s", q.User, upn)}
}

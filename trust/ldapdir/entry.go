package ldapdir

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/trust"
	"github.com/go-ldap/ldap/v3"
)

// uacAccountDisable is AD's ACCOUNTDISABLE flag in userAccountControl.
const uacAccountDisable = 0x2

// DataError is an entry whose attributes cannot be read (a
// userAccountControl that is not a number, a date in no known format). The
// lookup fails rather than guess, because every guess either admits a user
// the directory may mean to refuse or refuses one without saying why.
type DataError struct {
	DN        string
	Attribute string
	Value     string
	Err       error
}

func (e *DataError) Error() string {
	return fmt.Sprintf("entry %q: attribute %s value %q: %v", e.DN, e.Attribute, e.Value, e.Err)
}

func (e *DataError) Unwrap() error { return e.Err }

// userFromEntry reads one search result entry with the configured attribute
// names. A missing enabled attribute means disabled: fail closed.
func userFromEntry(e *ldap.Entry, a Attributes) (trust.User, error) {
	u := trust.User{
		UserPrincipalName:  e.GetEqualFoldAttributeValue(a.UserPrincipalName),
		ProxyAddresses:     e.GetEqualFoldAttributeValues(a.ProxyAddresses),
		CertificateUserIDs: e.GetEqualFoldAttributeValues(a.CertificateUserIDs),
		AccountEnabled:     true,
	}
	if u.UserPrincipalName == "" {
		// The UPN is the identity certgate forwards and the key binders
		// tell users apart by; an entry without one cannot be admitted.
		return trust.User{}, &DataError{e.DN, a.UserPrincipalName, "", errors.New("missing: the user has no userPrincipalName")}
	}
	if a.AccountEnabled != "" {
		v := e.GetEqualFoldAttributeValue(a.AccountEnabled)
		switch {
		case v == "":
			u.AccountEnabled = false
		case strings.EqualFold(v, "TRUE"):
		case strings.EqualFold(v, "FALSE"):
			u.AccountEnabled = false
		default:
			return trust.User{}, &DataError{e.DN, a.AccountEnabled, v, errors.New("not an LDAP Boolean (TRUE or FALSE)")}
		}
	}
	if a.UserAccountControl != "" {
		v := e.GetEqualFoldAttributeValue(a.UserAccountControl)
		if v == "" {
			u.AccountEnabled = false
		} else {
			// AD stores the flags as a signed 32-bit INTEGER; accept either reading.
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < -1<<31 || n > 1<<32-1 {
				return trust.User{}, &DataError{e.DN, a.UserAccountControl, v, errors.New("not a 32-bit integer")}
			}
			if n&uacAccountDisable != 0 {
				u.AccountEnabled = false
			}
		}
	}
	if a.SessionsValidFrom != "" {
		if v := e.GetEqualFoldAttributeValue(a.SessionsValidFrom); v != "" {
			t, err := ParseTime(v)
			if err != nil {
				return trust.User{}, &DataError{e.DN, a.SessionsValidFrom, v, err}
			}
			u.SessionsValidFrom = t
		}
	}
	return u, nil
}

// ParseTime reads a time in RFC 3339 or LDAP GeneralizedTime (RFC 4517
// 3.3.13: YYYYMMDDHH[MM[SS]][(.|,)fraction](Z|+hh[mm]|-hh[mm]), as AD
// writes it, e.g. 20261125100000.0Z). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := parseGeneralizedTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not RFC 3339 or GeneralizedTime: %w", err)
	}
	return t, nil
}

func parseGeneralizedTime(s string) (time.Time, error) {
	p := s
	digits := func(n int) (int, bool) {
		if len(p) < n {
			return 0, false
		}
		v := 0
		for i := 0; i < n; i++ {
			c := p[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		p = p[n:]
		return v, true
	}
	isDigit := func() bool { return len(p) > 0 && p[0] >= '0' && p[0] <= '9' }

	year, ok1 := digits(4)
	month, ok2 := digits(2)
	day, ok3 := digits(2)
	hour, ok4 := digits(2)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return time.Time{}, errors.New("want at least YYYYMMDDHH")
	}
	// The fraction applies to the last unit given (RFC 4517): hours, minutes
	// or seconds.
	unit := time.Hour
	minute, sec := 0, 0
	if isDigit() {
		m, ok := digits(2)
		if !ok {
			return time.Time{}, errors.New("bad minutes")
		}
		minute, unit = m, time.Minute
		if isDigit() {
			s2, ok := digits(2)
			if !ok {
				return time.Time{}, errors.New("bad seconds")
			}
			sec, unit = s2, time.Second
		}
	}
	var frac time.Duration
	if len(p) > 0 && (p[0] == '.' || p[0] == ',') {
		p = p[1:]
		if !isDigit() {
			return time.Time{}, errors.New("empty fraction")
		}
		// Only the first nine digits can matter below a nanosecond-second.
		num, den := int64(0), int64(1)
		for isDigit() {
			if den < 1e9 {
				num = num*10 + int64(p[0]-'0')
				den *= 10
			}
			p = p[1:]
		}
		// den is a power of ten up to 1e9 and divides every unit exactly;
		// num < den keeps the product below one unit.
		frac = time.Duration(num) * (unit / time.Duration(den))
	}
	if len(p) == 0 {
		return time.Time{}, errors.New("missing time zone (Z or +hhmm)")
	}
	var offset int
	switch p[0] {
	case 'Z':
		p = p[1:]
	case '+', '-':
		sign := 1
		if p[0] == '-' {
			sign = -1
		}
		p = p[1:]
		hh, ok := digits(2)
		if !ok || hh > 23 {
			return time.Time{}, errors.New("bad zone hours")
		}
		mm := 0
		if len(p) > 0 {
			if mm, ok = digits(2); !ok || mm > 59 {
				return time.Time{}, errors.New("bad zone minutes")
			}
		}
		offset = sign * (hh*3600 + mm*60)
	default:
		return time.Time{}, fmt.Errorf("unexpected %q", p[:1])
	}
	if len(p) != 0 {
		return time.Time{}, fmt.Errorf("trailing %q", p)
	}
	// Leap second 60 is allowed by the syntax; time.Date normalises it.
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 60 {
		return time.Time{}, errors.New("date or time out of range")
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.FixedZone("", offset))
	return t.Add(frac).UTC(), nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// stripSMTP removes an SMTP:/smtp: prefix (any case).
func stripSMTP(s string) string {
	if len(s) >= 5 && strings.EqualFold(s[:5], "smtp:") {
		return s[5:]
	}
	return s
}

// normalise is the comparison form of a value of attr, the one users.yaml
// uses (trust.FileDirectory), so that both directories admit the same
// certificates: userPrincipalName in lower case; proxyAddresses without an
// SMTP:/smtp: prefix, in lower case; certificateUserIds by
// [canonicalCertificateUserID]. It is also the cache key.
func normalise(attr trust.Attribute, v string) string {
	switch attr {
	case trust.AttrProxyAddresses:
		return strings.ToLower(stripSMTP(v))
	case trust.AttrCertificateUserIDs:
		return canonicalCertificateUserID(v)
	}
	return strings.ToLower(v)
}

// matches reports whether u really carries value in attr. The server's
// matching rule (caseIgnoreMatch in AD and in the test schema) is looser
// than users.yaml's for certificateUserIds, and a filter template may match
// more than the attribute; this check makes the answer the same as the
// file directory's.
func matches(u trust.User, attr trust.Attribute, value string) bool {
	want := normalise(attr, value)
	var have []string
	switch attr {
	case trust.AttrUserPrincipalName:
		have = []string{u.UserPrincipalName}
	case trust.AttrProxyAddresses:
		have = u.ProxyAddresses
	case trust.AttrCertificateUserIDs:
		have = u.CertificateUserIDs
	}
	for _, h := range have {
		if normalise(attr, h) == want {
			return true
		}
	}
	return false
}

// canonicalCertificateUserID is the form users.yaml compares
// certificateUserIds in: [trust.CertificateUserIDKey], one function for
// both directories.
func canonicalCertificateUserID(s string) string { return trust.CertificateUserIDKey(s) }

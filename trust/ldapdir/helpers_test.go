package ldapdir_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/ldapdir"
)

// clock is an injectable clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// options are the Options for s over ldaps with the service account.
func options(s *testldap.Server, c *clock) ldapdir.Options {
	return ldapdir.Options{
		URL:      s.LDAPSURL,
		RootCAs:  s.Pool,
		BindDN:   testldap.ReaderDN,
		Password: testldap.ReaderPassword,
		BaseDN:   testldap.Suffix,
		Attributes: ldapdir.Attributes{
			UserAccountControl: "userAccountControl",
			SessionsValidFrom:  "certgateSessionsValidFrom",
		},
		Timeout:     5 * time.Second,
		CacheTTL:    5 * time.Minute,
		NegativeTTL: time.Minute,
		MaxStale:    time.Hour,
		Now:         c.Now,
	}
}

func newDir(t testing.TB, o ldapdir.Options) *ldapdir.Directory {
	t.Helper()
	d, err := ldapdir.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// upns lists the users' UPNs, for comparisons.
func upns(us []trust.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.UserPrincipalName)
	}
	return out
}

// lookupOne fails the test unless exactly one user comes back.
func lookupOne(t *testing.T, d *ldapdir.Directory, attr trust.Attribute, v string) trust.User {
	t.Helper()
	us, err := d.Lookup(context.Background(), attr, v)
	if err != nil {
		t.Fatalf("Lookup(%s, %q): %v", attr, v, err)
	}
	if len(us) != 1 {
		t.Fatalf("Lookup(%s, %q) = %v, want one user", attr, v, upns(us))
	}
	return us[0]
}

// wantUnavailable fails the test unless err is a *trust.Error with reason
// directory_unavailable.
func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	var te *trust.Error
	if !errors.As(err, &te) || te.Reason != trust.DirectoryUnavailable {
		t.Fatalf("error = %v, want a *trust.Error with reason directory_unavailable", err)
	}
}

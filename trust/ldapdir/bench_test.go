package ldapdir_test

import (
	"context"
	"testing"

	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
)

// BenchmarkLookupCached is the handshake-path cost once a user is cached:
// no LDAP traffic, a map read and a copy of the answer.
func BenchmarkLookupCached(b *testing.B) {
	s := testldap.Start(b)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com", Proxy: []string{"SMTP:alice@contoso.com", "smtp:a.smith@contoso.com"}})
	d := newDir(b, options(s, newClock()))
	ctx := context.Background()
	if us, err := d.Lookup(ctx, trust.AttrProxyAddresses, "a.smith@contoso.com"); err != nil || len(us) != 1 {
		b.Fatalf("warm-up: %v, %v", upns(us), err)
	}
	before := s.Searches("a.smith@contoso.com")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if us, err := d.Lookup(ctx, trust.AttrProxyAddresses, "A.Smith@contoso.com"); err != nil || len(us) != 1 {
				b.Errorf("Lookup: %v, %v", upns(us), err)
				return
			}
		}
	})
	if after := s.Searches("a.smith@contoso.com"); after != before {
		b.Errorf("cached lookups reached the server: %d searches", after-before)
	}
}

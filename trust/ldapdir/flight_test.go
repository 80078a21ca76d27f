package ldapdir_test

import (
	"context"
	"errors"
	"testing"

	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/ldapdir"
)

// Concurrent lookups of one value share one search, and a caller that gives
// up does not cancel it for the others.
func TestConcurrentLookupsShareOneSearch(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	d := newDir(t, options(s, newClock()))
	const waiters = 8
	started, gate := make(chan struct{}, 1), make(chan struct{})
	joined := make(chan struct{}, waiters)
	ldapdir.SetTestHooks(d, func() { started <- struct{}{}; <-gate }, func() { joined <- struct{}{} })

	type result struct {
		users []trust.User
		err   error
	}
	results := make(chan result, waiters)
	lookup := func(ctx context.Context) {
		us, err := d.Lookup(ctx, trust.AttrUserPrincipalName, "Alice@contoso.com")
		results <- result{us, err}
	}
	go lookup(context.Background())
	<-started
	for range waiters - 1 {
		go lookup(context.Background())
	}
	cancelled, cancel := context.WithCancel(context.Background())
	go lookup(cancelled)
	for range waiters {
		<-joined
	}
	cancel()
	r := <-results
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, %v; want context.Canceled", upns(r.users), r.err)
	}
	wantUnavailable(t, r.err)
	close(gate)
	for range waiters {
		r := <-results
		if r.err != nil || len(r.users) != 1 || r.users[0].UserPrincipalName != "alice@contoso.com" {
			t.Errorf("waiter got %v, %v", upns(r.users), r.err)
		}
	}
	if n := s.Searches("userPrincipalName=Alice@contoso.com"); n != 1 {
		t.Errorf("searches = %d, want 1", n)
	}
}

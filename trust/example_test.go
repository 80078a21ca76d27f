package trust_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust"
)

// A chain is verified against the store, then its leaf is bound to a user.
func Example() {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	root, _ := pkigen.NewRoot("Contoso Root", pkigen.At(now))
	issuing, _ := root.NewIntermediate("Contoso Issuing", pkigen.At(now))
	alice, _ := issuing.NewLeaf("alice", pkigen.At(now), pkigen.UPN("alice@contoso.com"))

	store, err := trust.NewStore([]trust.CA{
		{Type: trust.AuthorityRoot, Cert: root.Cert},
		{Type: trust.AuthorityIntermediate, Cert: issuing.Cert},
	}, trust.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	chain, err := store.Verify([]*x509.Certificate{alice.Cert}, now)
	if err != nil {
		fmt.Println(trust.ReasonOf(err))
		return
	}
	fmt.Println(len(chain), chain[2].Subject)

	dir, err := trust.ParseUsers([]byte("users:\n  - userPrincipalName: Alice@contoso.com\n"), "users.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	binder := trust.NewBinder([]trust.Binding{{Field: trust.FieldPrincipalName, Attribute: trust.AttrUserPrincipalName}}, dir)
	id, err := binder.Bind(context.Background(), chain[0])
	fmt.Println(id.User.UserPrincipalName, id.Value, trust.ReasonOf(err))

	_, err = store.Verify([]*x509.Certificate{alice.Cert}, now.AddDate(2, 0, 0))
	fmt.Println(trust.ReasonOf(err))
	// Output:
	// 3 CN=Contoso Root
	// Alice@contoso.com alice@contoso.com ok
	// expired
}

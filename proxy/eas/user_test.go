package eas_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/certgate/certgate/proxy/eas"
)

func TestUserMatches(t *testing.T) {
	const upn = "alice@contoso.com"
	addrs := []string{"SMTP:alice@contoso.com", "smtp:a.smith@contoso.com", "SIP:boss@contoso.com", "X500:/o=Contoso/cn=alice", "plain@contoso.com"}
	tests := []struct {
		user, domain string
		want         bool
	}{
		{"alice@contoso.com", "", true},
		{"ALICE@Contoso.COM", "", true},
		{"alice", "", true},
		{"Alice", "", true},
		{"a.smith@contoso.com", "", true},
		{"A.Smith@CONTOSO.com", "", true},
		{"plain@contoso.com", "", true},
		{`CONTOSO\alice`, "contoso", true},
		{`contoso\ALICE`, "CONTOSO", true},
		{"CONTOSO/alice", "CONTOSO", true},
		{`CONTOSO\alice@contoso.com`, "CONTOSO", true},

		{"", "", false},
		{"bob@contoso.com", "", false},
		{"bob", "", false},
		{"alice@fabrikam.com", "", false},
		{"alice@contoso.com ", "", false},
		{" alice", "", false},
		{`CONTOSO\alice`, "", false}, // no NetBIOS domain configured
		{`FABRIKAM\alice`, "CONTOSO", false},
		{`CONTOSO\bob`, "CONTOSO", false},
		{`\alice`, "CONTOSO", false},
		{`CONTOSO\`, "CONTOSO", false},
		{"boss@contoso.com", "", false},    // a SIP address is not a mail login
		{"/o=Contoso/cn=alice", "", false}, // nor an X500 one
		{"SMTP:alice@contoso.com", "", false},
		{"a.smith", "", false},                // proxy addresses match whole
		{"\u212Alice@contoso.com", "", false}, // no Unicode folding
		{"contoso.com", "", false},
		{"@contoso.com", "", false},
	}
	for _, tt := range tests {
		if got := eas.UserMatches(tt.user, upn, addrs, tt.domain); got != tt.want {
			t.Errorf("UserMatches(%q, domain %q) = %v, want %v", tt.user, tt.domain, got, tt.want)
		}
	}
}

func TestUserMatchesEmptyDirectoryValues(t *testing.T) {
	// A user without UPN or addresses matches nothing, not the empty string.
	for _, u := range []string{"", "@", `D\`, "x"} {
		if eas.UserMatches(u, "", []string{"", "SMTP:"}, "D") {
			t.Errorf("UserMatches(%q) against an empty user = true", u)
		}
	}
	// A UPN with no '@' still matches itself.
	if !eas.UserMatches("alice", "alice", nil, "") {
		t.Error("UPN without @ does not match itself")
	}
}

func TestCheckUser(t *testing.T) {
	if err := eas.CheckUser(eas.Query{Cmd: "Sync"}, "alice@contoso.com", nil, ""); err != nil {
		t.Errorf("absent User: %v", err)
	}
	if err := eas.CheckUser(eas.Query{User: "ALICE"}, "alice@contoso.com", nil, ""); err != nil {
		t.Errorf("matching User: %v", err)
	}
	err := eas.CheckUser(eas.Query{User: "mallory"}, "alice@contoso.com", nil, "")
	var e *eas.Error
	if !errors.As(err, &e) || e.ReasonCode() != "eas_user_mismatch" {
		t.Fatalf("err = %v, want *eas.Error with eas_user_mismatch", err)
	}
	if !strings.Contains(err.Error(), `eas_user_mismatch: request User "mallory" does not name alice@contoso.com`) {
		t.Errorf("message %q", err)
	}
}

func FuzzUserMatches(f *testing.F) {
	f.Add("alice", "alice@contoso.com", "SMTP:a.smith@contoso.com", "CONTOSO")
	f.Add(`CONTOSO\alice`, "alice@contoso.com", "", "contoso")
	f.Add("CONTOSO/Alice@Contoso.com", "alice@contoso.com", "smtp:", "CONTOSO")
	f.Add("", "", "", "")
	f.Add("\u212Alice", "kalice@x", "SIP:kalice@x", "")
	f.Fuzz(func(t *testing.T, user, upn, addr, domain string) {
		addrs := []string{addr}
		got := eas.UserMatches(user, upn, addrs, domain)
		if got && user == "" {
			t.Fatal("empty User matched")
		}
		// ASCII case never changes the answer.
		if eas.UserMatches(strings.ToUpper(asciiOnly(user)), upn, addrs, domain) !=
			eas.UserMatches(strings.ToLower(asciiOnly(user)), upn, addrs, domain) {
			t.Fatalf("case changed the answer for %q", user)
		}
		// A UPN always names its own user.
		if upn != "" && !eas.UserMatches(upn, upn, nil, "") {
			t.Fatalf("UPN %q does not match itself", upn)
		}
		// Matching needs one of the user's own names in the request: with no
		// UPN and no addresses nothing matches.
		if eas.UserMatches(user, "", nil, domain) {
			t.Fatalf("%q matched a user with no names", user)
		}
	})
}

// asciiOnly drops non-ASCII bytes so ToUpper/ToLower change only ASCII.
func asciiOnly(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] < 0x80 {
			b = append(b, s[i])
		}
	}
	return string(b)
}

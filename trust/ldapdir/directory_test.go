package ldapdir_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/internal/testldap"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/ldapdir"
)

func TestLookupByAttribute(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com",
		Proxy:   []string{"SMTP:Alice@Contoso.com", "smtp:a.smith@contoso.com", "SIP:alice.sip@contoso.com", "bare@contoso.com"},
		CertIDs: []string{"X509:<PN>alice@contoso.com", "X509:<SKI>0A1B2C"}})
	s.AddUser(testldap.User{CN: "bob", UPN: "bob@contoso.com", Proxy: []string{"SMTP:bob@contoso.com", "smtp:shared@contoso.com"}})
	s.AddUser(testldap.User{CN: "carol", UPN: "carol@contoso.com", Proxy: []string{"SMTP:carol@contoso.com", "smtp:SHARED@contoso.com"}})
	d := newDir(t, options(s, newClock()))

	tests := []struct {
		attr  trust.Attribute
		value string
		want  []string
	}{
		{trust.AttrUserPrincipalName, "alice@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrUserPrincipalName, "ALICE@contoso.COM", []string{"alice@contoso.com"}},
		{trust.AttrUserPrincipalName, "alice", nil},
		{trust.AttrUserPrincipalName, "nobody@contoso.com", nil},
		{trust.AttrUserPrincipalName, "", nil},
		{trust.AttrProxyAddresses, "alice@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "a.smith@CONTOSO.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "SMTP:a.smith@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "bare@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrProxyAddresses, "alice.sip@contoso.com", nil}, // SIP: is not an SMTP address
		{trust.AttrProxyAddresses, "shared@contoso.com", []string{"bob@contoso.com", "carol@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<PN>alice@contoso.com", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "x509:<pn>alice@contoso.com", []string{"alice@contoso.com"}},
		// As in users.yaml, only the X509:<TAG> prefix and hex values ignore
		// case, although the server's caseIgnoreMatch returns the entry.
		{trust.AttrCertificateUserIDs, "X509:<PN>ALICE@contoso.com", nil},
		{trust.AttrCertificateUserIDs, "X509:<SKI>0a1b2c", []string{"alice@contoso.com"}},
		{trust.AttrCertificateUserIDs, "X509:<PN>bob@contoso.com", nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s=%s", tt.attr, tt.value), func(t *testing.T) {
			us, err := d.Lookup(context.Background(), tt.attr, tt.value)
			if err != nil {
				t.Fatal(err)
			}
			got := upns(us)
			slices.Sort(got)
			if !slices.Equal(got, append([]string{}, tt.want...)) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	u := lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if !u.AccountEnabled || len(u.ProxyAddresses) != 4 || len(u.CertificateUserIDs) != 2 || !u.SessionsValidFrom.IsZero() {
		t.Errorf("alice = %+v", u)
	}
	if _, err := d.Lookup(context.Background(), trust.Attribute("mail"), "x"); err == nil {
		t.Error("unknown attribute: no error")
	} else {
		wantUnavailable(t, err)
	}
}

// The RFC 4515 specials in a value must reach the server as data: the
// search finds exactly the user whose UPN has them, and a value made of
// wildcards and filter syntax finds nobody.
func TestLookupEscaping(t *testing.T) {
	s := testldap.Start(t)
	weird := "we*rd(1)\\x\x00y@contoso.com"
	s.AddUser(testldap.User{CN: "weird", UPN: weird, Proxy: []string{"SMTP:" + weird}})
	for _, decoy := range []string{"werd1x@contoso.com", "we-rd(1)\\x@contoso.com", "weXrd1xy@contoso.com", "we"} {
		s.AddUser(testldap.User{CN: "decoy " + decoy, UPN: decoy})
	}
	d := newDir(t, options(s, newClock()))

	u := lookupOne(t, d, trust.AttrUserPrincipalName, weird)
	if u.UserPrincipalName != weird {
		t.Errorf("UPN = %q, want %q", u.UserPrincipalName, weird)
	}
	u = lookupOne(t, d, trust.AttrProxyAddresses, weird)
	if u.UserPrincipalName != weird {
		t.Errorf("by proxyAddresses: UPN = %q", u.UserPrincipalName)
	}
	for _, v := range []string{"*", "we*", "*@contoso.com", "we*rd(1)\\x\x00", "x)(userPrincipalName=*", "*)(|(cn=*", "\\2a", "we*rd(1)\\x"} {
		us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, v)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", v, err)
		}
		if len(us) != 0 {
			t.Errorf("Lookup(%q) = %v, want nobody", v, upns(us))
		}
	}
}

func TestAccountEnabled(t *testing.T) {
	s := testldap.Start(t)
	add := func(cn string, attrs map[string][]string) {
		a := map[string][]string{"objectClass": {"user"}, "cn": {cn}, "sn": {cn}, "userPrincipalName": {cn + "@contoso.com"}}
		for k, v := range attrs {
			a[k] = v
		}
		s.Add("cn="+cn+","+testldap.UsersDN, a)
	}
	add("normal", map[string][]string{"userAccountControl": {"512"}, "certgateAccountEnabled": {"TRUE"}})
	add("disabled", map[string][]string{"userAccountControl": {"514"}, "certgateAccountEnabled": {"FALSE"}})
	add("disabled-pwnoexp", map[string][]string{"userAccountControl": {"66050"}}) // 0x10202
	add("enabled-pwnoexp", map[string][]string{"userAccountControl": {"66048"}, "certgateAccountEnabled": {"TRUE"}})
	add("no-flags", nil)

	tests := []struct {
		mode ldapdir.Attributes
		want map[string]bool
	}{
		{ldapdir.Attributes{UserAccountControl: "userAccountControl"}, map[string]bool{
			"normal": true, "disabled": false, "disabled-pwnoexp": false, "enabled-pwnoexp": true, "no-flags": false}},
		{ldapdir.Attributes{AccountEnabled: "certgateAccountEnabled"}, map[string]bool{
			"normal": true, "disabled": false, "disabled-pwnoexp": false, "enabled-pwnoexp": true, "no-flags": false}},
		{ldapdir.Attributes{}, map[string]bool{ // neither: the directory does not say, so enabled
			"normal": true, "disabled": true, "disabled-pwnoexp": true, "enabled-pwnoexp": true, "no-flags": true}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("uac=%q,bool=%q", tt.mode.UserAccountControl, tt.mode.AccountEnabled), func(t *testing.T) {
			o := options(s, newClock())
			o.Attributes = tt.mode
			d := newDir(t, o)
			for cn, want := range tt.want {
				if got := lookupOne(t, d, trust.AttrUserPrincipalName, cn+"@contoso.com").AccountEnabled; got != want {
					t.Errorf("%s: AccountEnabled = %v, want %v", cn, got, want)
				}
			}
		})
	}
}

func TestSessionsValidFrom(t *testing.T) {
	s := testldap.Start(t)
	want := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	s.AddUser(testldap.User{CN: "gt", UPN: "gt@contoso.com", ValidFrom: "20261125100000Z"})
	s.AddUser(testldap.User{CN: "gt-ad", UPN: "gt-ad@contoso.com", ValidFrom: "20261125100000.0Z"})
	s.AddUser(testldap.User{CN: "gt-offset", UPN: "gt-offset@contoso.com", ValidFrom: "20261125110000+0100"})
	s.AddUser(testldap.User{CN: "rfc3339", UPN: "rfc3339@contoso.com", ValidFrom: "2026-11-25T10:00:00Z"})
	s.AddUser(testldap.User{CN: "none", UPN: "none@contoso.com"})
	s.AddUser(testldap.User{CN: "bad", UPN: "bad@contoso.com", ValidFrom: "yesterday"})
	s.Add("cn=native,"+testldap.UsersDN, map[string][]string{"objectClass": {"user"}, "cn": {"native"}, "sn": {"native"},
		"userPrincipalName": {"native@contoso.com"}, "certgateSessionsValidFromTime": {"20261125100000Z"}})

	d := newDir(t, options(s, newClock()))
	for _, upn := range []string{"gt@contoso.com", "gt-ad@contoso.com", "gt-offset@contoso.com", "rfc3339@contoso.com"} {
		if got := lookupOne(t, d, trust.AttrUserPrincipalName, upn).SessionsValidFrom; !got.Equal(want) {
			t.Errorf("%s: SessionsValidFrom = %v, want %v", upn, got, want)
		}
	}
	if got := lookupOne(t, d, trust.AttrUserPrincipalName, "none@contoso.com").SessionsValidFrom; !got.IsZero() {
		t.Errorf("none: SessionsValidFrom = %v, want zero", got)
	}
	_, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "bad@contoso.com")
	wantUnavailable(t, err)
	if !strings.Contains(err.Error(), `attribute certgateSessionsValidFrom value "yesterday"`) {
		t.Errorf("error %q does not name the attribute and value", err)
	}

	// An attribute with GeneralizedTime syntax, as AD's own dates are.
	o := options(s, newClock())
	o.Attributes.SessionsValidFrom = "certgateSessionsValidFromTime"
	d2 := newDir(t, o)
	if got := lookupOne(t, d2, trust.AttrUserPrincipalName, "native@contoso.com").SessionsValidFrom; !got.Equal(want) {
		t.Errorf("native: SessionsValidFrom = %v, want %v", got, want)
	}
}

// An entry without a userPrincipalName cannot become an identity; the
// lookup that finds it fails rather than admit an empty name.
func TestEntryWithoutUPN(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "noupn", Proxy: []string{"SMTP:noupn@contoso.com"}})
	d := newDir(t, options(s, newClock()))
	_, err := d.Lookup(context.Background(), trust.AttrProxyAddresses, "noupn@contoso.com")
	wantUnavailable(t, err)
	if !strings.Contains(err.Error(), "no userPrincipalName") {
		t.Errorf("error = %v", err)
	}
}

func TestTLS(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	other := x509.NewCertPool()
	other.AddCert(pkigen.Root(t, "Some Other Root").Cert)

	tests := []struct {
		name    string
		edit    func(*ldapdir.Options)
		wantErr string
	}{
		{"ldaps", func(o *ldapdir.Options) {}, ""},
		{"starttls", func(o *ldapdir.Options) { o.URL, o.StartTLS = s.LDAPURL, true }, ""},
		{"ldaps wrong CA", func(o *ldapdir.Options) { o.RootCAs = other }, "certificate signed by unknown authority"},
		{"starttls wrong CA", func(o *ldapdir.Options) { o.URL, o.StartTLS, o.RootCAs = s.LDAPURL, true, other }, "certificate signed by unknown authority"},
		{"ldaps wrong name", func(o *ldapdir.Options) { o.ServerName = "ldap.example.com" }, "not ldap.example.com"},
		{"wrong password", func(o *ldapdir.Options) { o.Password = "not-the-password" }, "Invalid Credentials"},
		{"unknown bind DN", func(o *ldapdir.Options) { o.BindDN = "cn=nobody," + testldap.Suffix }, "Invalid Credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := options(s, newClock())
			tt.edit(&o)
			d := newDir(t, o)
			us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "alice@contoso.com")
			rerr := d.Ready(context.Background())
			if tt.wantErr == "" {
				if err != nil || len(us) != 1 {
					t.Fatalf("Lookup = %v, %v; want alice", upns(us), err)
				}
				if rerr != nil {
					t.Errorf("Ready = %v", rerr)
				}
				return
			}
			wantUnavailable(t, err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), o.Password) {
				t.Errorf("error %q carries the password", err)
			}
			wantUnavailable(t, rerr)
		})
	}
}

// The search must be over TLS when StartTLS is on: slapd reports the
// security strength factor of each bind.
func TestStartTLSEncrypts(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	o := options(s, newClock())
	o.URL, o.StartTLS = s.LDAPURL, true
	d := newDir(t, o)
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, `BIND dn="`+testldap.ReaderDN+`" mech=SIMPLE`) && strings.Contains(line, " ssf=0") {
			t.Fatalf("service account bound without TLS: %s", line)
		}
	}
	if !strings.Contains(s.Log(), "STARTTLS") {
		t.Error("slapd saw no STARTTLS")
	}
}

func TestCache(t *testing.T) {
	s := testldap.Start(t)
	dn := s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	c := newClock()
	d := newDir(t, options(s, c))
	const filter = "userPrincipalName=alice@contoso.com"
	const missing = "userPrincipalName=late@contoso.com"

	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if n := s.Searches(filter); n != 1 {
		t.Fatalf("searches after first lookup = %d, want 1", n)
	}

	t.Run("positive hit within TTL asks nobody", func(t *testing.T) {
		s.Replace(dn, "userAccountControl", "514")
		c.Advance(4 * time.Minute)
		if u := lookupOne(t, d, trust.AttrUserPrincipalName, "ALICE@contoso.com"); !u.AccountEnabled {
			t.Error("cached answer not served")
		}
		if n := s.Searches(filter); n != 1 {
			t.Errorf("searches = %d, want 1", n)
		}
	})
	t.Run("expired entry is asked again", func(t *testing.T) {
		c.Advance(2 * time.Minute)
		if u := lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com"); u.AccountEnabled {
			t.Error("change in the directory not seen after TTL")
		}
		if n := s.Searches(filter); n != 2 {
			t.Errorf("searches = %d, want 2", n)
		}
	})
	t.Run("negative answers cached for NegativeTTL", func(t *testing.T) {
		if us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "late@contoso.com"); err != nil || len(us) != 0 {
			t.Fatalf("Lookup = %v, %v", upns(us), err)
		}
		s.AddUser(testldap.User{CN: "late", UPN: "late@contoso.com"})
		c.Advance(59 * time.Second)
		if us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "late@contoso.com"); err != nil || len(us) != 0 {
			t.Fatalf("within NegativeTTL: Lookup = %v, %v; want the cached 'no such user'", upns(us), err)
		}
		if n := s.Searches(missing); n != 1 {
			t.Errorf("searches = %d, want 1", n)
		}
		c.Advance(2 * time.Second)
		lookupOne(t, d, trust.AttrUserPrincipalName, "late@contoso.com")
		if n := s.Searches(missing); n != 2 {
			t.Errorf("searches = %d, want 2", n)
		}
	})
	t.Run("returned users are copies", func(t *testing.T) {
		u := lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
		u.UserPrincipalName = "mallory@contoso.com"
		if got := lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com"); got.UserPrincipalName != "alice@contoso.com" {
			t.Errorf("cache changed through a returned user: %q", got.UserPrincipalName)
		}
	})
}

// LDAP stopped mid-run: cached users are still served until MaxStale past
// their TTL, then refused with directory_unavailable; values never seen are
// refused at once; /readyz follows the same window; and a restarted server
// is used again.
func TestServerDown(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	c := newClock()
	d := newDir(t, options(s, c)) // TTL 5m, negative 1m, MaxStale 1h
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "ghost@contoso.com"); err != nil || len(us) != 0 {
		t.Fatalf("ghost: %v, %v", upns(us), err)
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready with the server up: %v", err)
	}

	s.Stop()
	c.Advance(10 * time.Minute) // past the TTL
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if us, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "ghost@contoso.com"); err != nil || len(us) != 0 {
		t.Errorf("stale negative answer: %v, %v", upns(us), err)
	}
	_, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "bob@contoso.com")
	wantUnavailable(t, err)
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready within MaxStale = %v, want nil", err)
	}

	c.Advance(54*time.Minute + 59*time.Second) // TTL + MaxStale - 1s after the fetch
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")

	c.Advance(2 * time.Second)
	_, err = d.Lookup(context.Background(), trust.AttrUserPrincipalName, "alice@contoso.com")
	wantUnavailable(t, err)
	if trust.ReasonOf(err) != "directory_unavailable" {
		t.Errorf("ReasonOf = %q", trust.ReasonOf(err))
	}
	if err := d.Ready(context.Background()); err == nil {
		t.Error("Ready past MaxStale = nil")
	} else {
		wantUnavailable(t, err)
	}

	s.Restart()
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready after restart: %v", err)
	}
}

// A server that accepts connections and never answers costs one Timeout,
// then directory_unavailable.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer conn.Close(); _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	for _, tt := range []struct {
		name     string
		url      string
		startTLS bool
	}{
		{"ldaps handshake", "ldaps://" + ln.Addr().String(), false},
		{"starttls request", "ldap://" + ln.Addr().String(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t, ldapdir.Options{URL: tt.url, StartTLS: tt.startTLS, BaseDN: testldap.Suffix, Timeout: 200 * time.Millisecond})
			_, err := d.Lookup(context.Background(), trust.AttrUserPrincipalName, "alice@contoso.com")
			wantUnavailable(t, err)
		})
	}
}

// Many concurrent lookups share PoolSize connections: the server sees no
// more than that many, reused across searches (run with -race).
func TestPoolUnderConcurrency(t *testing.T) {
	s := testldap.Start(t)
	const users = 20
	for i := range users {
		s.AddUser(testldap.User{CN: fmt.Sprint("user", i), UPN: fmt.Sprintf("user%d@contoso.com", i),
			Proxy: []string{fmt.Sprintf("SMTP:user%d@contoso.com", i)}})
	}
	fw := newForwarder(t, strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
	o := options(s, newClock())
	o.URL = "ldaps://" + fw.Addr()
	o.ServerName = "127.0.0.1"
	o.PoolSize = 3
	d := newDir(t, o)

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range users {
				n := (i + g) % users
				attr, v := trust.AttrUserPrincipalName, fmt.Sprintf("user%d@contoso.com", n)
				if g%2 == 1 {
					attr = trust.AttrProxyAddresses
				}
				us, err := d.Lookup(context.Background(), attr, v)
				if err != nil || len(us) != 1 || us[0].UserPrincipalName != v {
					errs <- fmt.Errorf("Lookup(%s, %s) = %v, %v", attr, v, upns(us), err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	searches := s.Searches("objectClass=user")
	if searches != 2*users {
		t.Errorf("searches = %d, want %d (one per attribute and value)", searches, 2*users)
	}
	accepted, peak := fw.Stats()
	if peak > 3 || accepted > 3 {
		t.Errorf("connections: %d accepted, %d at once; want at most PoolSize 3", accepted, peak)
	}
	if accepted < 1 {
		t.Error("no connection went through the forwarder")
	}
}

func TestClosed(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	d, err := ldapdir.New(options(s, newClock()))
	if err != nil {
		t.Fatal(err)
	}
	lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"bob@contoso.com", "alice@contoso.com"} { // cached or not
		_, err = d.Lookup(context.Background(), trust.AttrUserPrincipalName, v)
		wantUnavailable(t, err)
		if !strings.Contains(err.Error(), "closed") {
			t.Errorf("%s: error = %v", v, err)
		}
	}
}

// Connections the server or the network drops while idle are replaced:
// the next lookup after them succeeds on a new connection.
func TestDroppedConnectionsReplaced(t *testing.T) {
	s := testldap.Start(t)
	s.AddUser(testldap.User{CN: "alice", UPN: "alice@contoso.com"})
	fw := newForwarder(t, strings.TrimPrefix(s.LDAPSURL, "ldaps://"))
	c := newClock()
	o := options(s, c)
	o.URL = "ldaps://" + fw.Addr()
	d := newDir(t, o)
	for round := 1; round <= 3; round++ {
		lookupOne(t, d, trust.AttrUserPrincipalName, "alice@contoso.com")
		if accepted, _ := fw.Stats(); accepted != round {
			t.Fatalf("round %d: %d connections, want %d", round, accepted, round)
		}
		fw.DropAll()
		c.Advance(time.Hour) // past the TTL, so the next lookup asks
	}
	if err := d.Ready(context.Background()); err != nil {
		t.Errorf("Ready = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	ok := ldapdir.Options{URL: "ldaps://dc1.contoso.com", BaseDN: testldap.Suffix}
	tests := []struct {
		name string
		edit func(*ldapdir.Options)
		want string
	}{
		{"no url", func(o *ldapdir.Options) { o.URL = "" }, "url is required"},
		{"plain ldap", func(o *ldapdir.Options) { o.URL = "ldap://dc1" }, "ldap:// needs startTLS"},
		{"ldaps and starttls", func(o *ldapdir.Options) { o.StartTLS = true }, "startTLS is for ldap:// URLs"},
		{"bad scheme", func(o *ldapdir.Options) { o.URL = "http://dc1" }, "scheme must be ldaps"},
		{"credentials in url", func(o *ldapdir.Options) { o.URL = "ldaps://u:hunter2@dc1" }, "credentials belong in bindDN"},
		{"dn in url", func(o *ldapdir.Options) { o.URL = "ldaps://dc1/dc=contoso,dc=com" }, "not in the URL"},
		{"no base", func(o *ldapdir.Options) { o.BaseDN = "" }, "baseDN is required"},
		{"bad base", func(o *ldapdir.Options) { o.BaseDN = "not a dn" }, `baseDN "not a dn"`},
		{"password without dn", func(o *ldapdir.Options) { o.Password = "x" }, "password given without bindDN"},
		{"dn without password", func(o *ldapdir.Options) { o.BindDN = "cn=x," + testldap.Suffix }, "has no password"},
		{"filter without value", func(o *ldapdir.Options) { o.Filter = "(&(objectClass=user)({attribute}=x))" }, "must contain {attribute} and {value}"},
		{"filter unbalanced", func(o *ldapdir.Options) { o.Filter = "(&(objectClass=user)({attribute}={value})" }, "filter:"},
		{"bad attribute", func(o *ldapdir.Options) { o.Attributes.ProxyAddresses = "proxy)(cn=*" }, "attributes.proxyAddresses"},
		{"negative ttl", func(o *ldapdir.Options) { o.CacheTTL = -time.Second }, "cacheTTL must not be negative"},
		{"negative pool", func(o *ldapdir.Options) { o.PoolSize = -1 }, "poolSize must not be negative"},
	}
	if _, err := ldapdir.New(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.edit(&o)
			_, err := ldapdir.New(o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error carries the password: %v", err)
			}
		})
	}
}

func TestOptionsHidePassword(t *testing.T) {
	o := ldapdir.Options{URL: "ldaps://dc1", BindDN: "cn=x", Password: "hunter2", BaseDN: testldap.Suffix}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %+v %s %#v", o, o, o, o)
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("fmt output carries the password: %s", b.String())
	}
	if v := o.LogValue().String(); strings.Contains(v, "hunter2") || !strings.Contains(v, "ldaps://dc1") {
		t.Errorf("LogValue = %s", v)
	}
}

package revocation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

func TestCheckAdmitsGoodRefusesRevoked(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.mustRefresh(t)

	admit(t, f.c, f.alice, f.t0)
	re := refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	if re.IssuerSKI != f.interSKIHex || re.Serial != f.bob.Cert.SerialNumber.Text(16) {
		t.Errorf("error names SKI %s serial %s, want %s %x", re.IssuerSKI, re.Serial, f.interSKIHex, f.bob.Cert.SerialNumber)
	}
	st := f.status(t)
	if st.Entries != 1 || st.Number != "1" || st.LastError != "" || st.FromCache || !st.ThisUpdate.Equal(f.t0.Add(-time.Minute)) {
		t.Errorf("status = %+v", st)
	}
	if err := f.c.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
	f.logs.mustContain(t, "CRL fetched", "issuer_ski="+f.interSKIHex, "kind=ok", "entries=1")
}

func TestRevokedAfterStartRefusedAfterNextRefresh(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	admit(t, f.c, f.bob, f.t0)
	gen := f.c.Generation()
	updated := f.c.Updated()

	f.srv.serveCRL("/inter.crl", f.crl(t, 2, f.bob))
	admit(t, f.c, f.bob, f.t0) // nothing changes before the refresh
	f.mustRefresh(t)

	select {
	case <-updated:
	default:
		t.Fatal("Updated channel not closed by the swap")
	}
	if f.c.Generation() <= gen {
		t.Errorf("generation %d did not move past %d", f.c.Generation(), gen)
	}
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, f.alice, f.t0)
	if n := f.status(t).Number; n != "2" {
		t.Errorf("number %s, want 2", n)
	}
}

func TestDeltaCRL(t *testing.T) {
	f := newFixture(t, withDelta())
	base := f.inter.MustCRL(t, pkigen.CRLOptions{
		Number: 10, ThisUpdate: f.t0.Add(-time.Hour), NextUpdate: f.t0.Add(7 * 24 * time.Hour),
		Revoked: []x509RevocationEntry{{SerialNumber: f.carol.Cert.SerialNumber, RevocationTime: f.t0.Add(-2 * time.Hour), ReasonCode: 6}},
	})
	f.srv.serveCRL("/inter.crl", base)

	// No delta yet: the CA is not usable, since a delta is configured.
	f.srv.set("/inter-delta.crl", response{status: http.StatusNotFound})
	if err := f.refresh(t); fetchKind(err) != revocation.KindHTTP {
		t.Fatalf("RefreshNow = %v, want an http error for the delta", err)
	}
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
	if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), "no delta CRL") {
		t.Errorf("Ready = %v, want no delta CRL", err)
	}

	// bob revoked only in the delta; carol's hold lifted by removeFromCRL.
	o := f.crlOpts(11, f.bob)
	o.DeltaBase = 10
	o.Revoked = append(o.Revoked, x509RevocationEntry{SerialNumber: f.carol.Cert.SerialNumber, RevocationTime: f.t0, ReasonCode: 8})
	delta := f.inter.MustCRL(t, o)
	f.srv.serveCRL("/inter-delta.crl", delta)
	f.mustRefresh(t)

	admit(t, f.c, f.alice, f.t0)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, f.carol, f.t0)
	st := f.status(t)
	if !st.DeltaApplied || st.DeltaNumber != "11" || st.DeltaEntries != 2 {
		t.Errorf("status = %+v", st)
	}
	if got := f.c.ThisUpdate(f.interSKI); !got.Equal(f.t0.Add(-time.Minute)) {
		t.Errorf("ThisUpdate = %v, want the delta's %v", got, f.t0.Add(-time.Minute))
	}

	// The delta expires before the base: the merged state is stale.
	f.clk.add(25 * time.Hour)
	refuse(t, f.c, f.alice, f.clk.now(), revocation.ReasonCRLStale)
	if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), "delta CRL stale") {
		t.Errorf("Ready = %v, want delta stale", err)
	}
}

func TestCarolOnHoldInBaseIsRefused(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, pkigen.CRLOptions{
		Number: 1, ThisUpdate: f.t0.Add(-time.Minute), NextUpdate: f.t0.Add(time.Hour),
		Revoked: []x509RevocationEntry{{SerialNumber: f.carol.Cert.SerialNumber, RevocationTime: f.t0.Add(-time.Hour), ReasonCode: 6}},
	}))
	f.mustRefresh(t)
	refuse(t, f.c, f.carol, f.t0, revocation.ReasonRevoked)
}

func TestDeltaThatDoesNotApplyIsIgnored(t *testing.T) {
	for _, tc := range []struct {
		name            string
		number, base    int64
		wantBaseRefetch bool
	}{
		{"for a newer base", 13, 12, true},
		{"superseded by the base", 10, 9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withDelta())
			f.srv.serveCRL("/inter.crl", f.crl(t, 10))
			f.srv.serveCRL("/inter-delta.crl", f.delta(t, tc.number, tc.base, f.bob))
			f.mustRefresh(t)

			admit(t, f.c, f.bob, f.t0) // the delta's entries are not used
			if st := f.status(t); st.DeltaApplied {
				t.Errorf("delta applied: %+v", st)
			}
			f.logs.mustContain(t, "delta CRL does not apply", "issuer_ski="+f.interSKIHex)
		})
	}
}

func TestDeltaServedAtBaseURLIsRefused(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.delta(t, 2, 1, f.bob))
	err := f.refresh(t)
	if fetchKind(err) != revocation.KindParse {
		t.Fatalf("RefreshNow = %v, want parse", err)
	}
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
}

// TestServerMisbehaviour switches the CRL server to each failure after a
// good CRL (number 5, bob revoked) is in force: the failure is refused and
// counted by kind, and the decisions stay those of the good CRL.
func TestServerMisbehaviour(t *testing.T) {
	other := pkigen.Root(t, "Other")
	foreignKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		kind string
		resp func(t *testing.T, f *fixture) response
	}{
		{"garbage", revocation.KindParse, func(t *testing.T, f *fixture) response {
			return response{body: []byte("<html>not a CRL</html>")}
		}},
		{"truncated", revocation.KindParse, func(t *testing.T, f *fixture) response {
			der := f.crl(t, 6)
			return response{body: der[:len(der)/2]}
		}},
		{"wrong signer key", revocation.KindSignature, func(t *testing.T, f *fixture) response {
			o := f.crlOpts(6)
			o.Signer = foreignKey
			return response{body: f.inter.MustCRL(t, o)}
		}},
		{"another CA's CRL", revocation.KindSignature, func(t *testing.T, f *fixture) response {
			return response{body: other.MustCRL(t, f.crlOpts(6))}
		}},
		{"rollback", revocation.KindRollback, func(t *testing.T, f *fixture) response {
			return response{body: f.crl(t, 4)}
		}},
		{"same number other content", revocation.KindRollback, func(t *testing.T, f *fixture) response {
			return response{body: f.crl(t, 5)}
		}},
		{"500", revocation.KindHTTP, func(t *testing.T, f *fixture) response {
			return response{status: http.StatusInternalServerError}
		}},
		{"slower than the timeout", revocation.KindTimeout, func(t *testing.T, f *fixture) response {
			return response{hang: true}
		}},
		{"oversized", revocation.KindSize, func(t *testing.T, f *fixture) response {
			return response{body: make([]byte, 4096)}
		}},
		{"expired", revocation.KindExpired, func(t *testing.T, f *fixture) response {
			o := f.crlOpts(6)
			o.ThisUpdate, o.NextUpdate = f.t0.Add(-48*time.Hour), f.t0.Add(-24*time.Hour)
			return response{body: f.inter.MustCRL(t, o)}
		}},
		{"thisUpdate in the future", revocation.KindFuture, func(t *testing.T, f *fixture) response {
			o := f.crlOpts(6)
			o.ThisUpdate, o.NextUpdate = f.t0.Add(time.Hour), f.t0.Add(48*time.Hour)
			return response{body: f.inter.MustCRL(t, o)}
		}},
		{"unknown critical extension", revocation.KindExtension, func(t *testing.T, f *fixture) response {
			o := f.crlOpts(6)
			o.ExtraExtensions = append(o.ExtraExtensions, unknownCritical)
			return response{body: f.inter.MustCRL(t, o)}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withOpts(func(o *revocation.Options) {
				o.MaxCRLSize = 2048
				o.FetchTimeout = 300 * time.Millisecond
			}))
			f.srv.serveCRL("/inter.crl", f.crl(t, 5, f.bob))
			f.mustRefresh(t)
			gen := f.c.Generation()

			f.srv.set("/inter.crl", tc.resp(t, f))
			err := f.refresh(t)
			if got := fetchKind(err); got != tc.kind {
				t.Fatalf("RefreshNow = %v (kind %q), want kind %q", err, got, tc.kind)
			}
			st := f.status(t)
			if st.FetchErrors[tc.kind] != 1 || st.LastError == "" || st.Number != "5" {
				t.Errorf("status = %+v", st)
			}
			if f.c.Generation() != gen {
				t.Errorf("a refused CRL changed the state")
			}
			admit(t, f.c, f.alice, f.t0)
			refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
			f.logs.mustContain(t, "CRL fetch failed", "issuer_ski="+f.interSKIHex, "kind="+tc.kind)
		})
	}
}

func TestNoCRLYetFailsClosed(t *testing.T) {
	f := newFixture(t)
	f.srv.set("/inter.crl", response{status: http.StatusInternalServerError})
	if err := f.refresh(t); fetchKind(err) != revocation.KindHTTP {
		t.Fatalf("RefreshNow = %v", err)
	}
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonCRLUnavailable)
	if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), f.interSKIHex) {
		t.Errorf("Ready = %v, want an error naming %s", err, f.interSKIHex)
	}
}

func TestOnUnavailableAllow(t *testing.T) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.OnUnavailable = revocation.Allow }))
	admit(t, f.c, f.alice, f.t0) // nothing fetched yet

	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.mustRefresh(t)
	f.clk.add(48 * time.Hour) // stale
	admit(t, f.c, f.alice, f.clk.now())
	refuse(t, f.c, f.bob, f.clk.now(), revocation.ReasonRevoked) // still listed
	if f.c.Ready() == nil {
		t.Error("Ready with a stale CRL")
	}
	// An unknown issuer is admitted too under allow.
	stranger := pkigen.Root(t, "Stranger").Leaf(t, "eve")
	admit(t, f.c, stranger, f.t0)
}

func TestStaleCRLDenied(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	f.clk.add(24*time.Hour + time.Second)
	refuse(t, f.c, f.alice, f.clk.now(), revocation.ReasonCRLStale)
	if err := f.c.Ready(); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("Ready = %v", err)
	}
	if !f.status(t).Stale {
		t.Error("status not stale")
	}
}

func TestUnknownIssuerAndExemptAndNoURL(t *testing.T) {
	f := newFixture(t)
	stranger := pkigen.Root(t, "Stranger").Leaf(t, "eve")
	refuse(t, f.c, stranger, f.t0, revocation.ReasonCRLUnavailable)

	// An issuer claiming the intermediate's SKI with another key is not it,
	// even once the intermediate's CRL is in force.
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	impostor := *f.root.Intermediate(t, "Inter").Cert
	impostor.SubjectKeyId = f.interSKI
	if err := f.c.Check([]*x509.Certificate{f.alice.Cert, &impostor}, f.t0); reasonOf(err) != revocation.ReasonCRLUnavailable {
		t.Errorf("impostor issuer: %v", err)
	}
	admit(t, f.c, f.alice, f.t0)

	// A CA with no CRL URL that is not exempt refuses whatever the policy.
	other := pkigen.Root(t, "NoURL")
	leaf := other.Leaf(t, "dave")
	c := revocation.New(revocation.Options{OnUnavailable: revocation.Allow, Logger: f.logs.logger()})
	c.SetSources([]revocation.Source{{Issuer: other.Cert}})
	refuse(t, c, leaf, f.t0, revocation.ReasonCRLUnavailable)
	if err := c.Ready(); err != nil {
		t.Errorf("Ready = %v: a CA without URL is not waited for", err)
	}

	c.SetSources([]revocation.Source{{Issuer: other.Cert, Exempt: true}})
	admit(t, c, leaf, f.t0)
}

func TestCacheDirRestartWithServerDown(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, withDelta(), withOpts(func(o *revocation.Options) { o.CacheDir = dir }))
	delta := f.delta(t, 8, 7, f.bob)
	f.srv.serveCRL("/inter.crl", f.crl(t, 7))
	f.srv.serveCRL("/inter-delta.crl", delta)
	f.mustRefresh(t)
	for _, name := range []string{f.interSKIHex + ".crl", f.interSKIHex + ".delta.crl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Fatalf("cache file: %v", err)
		}
	}

	f.srv.set("/inter.crl", response{status: http.StatusInternalServerError})
	f.srv.set("/inter-delta.crl", response{status: http.StatusInternalServerError})
	c2 := f.restart()
	admit(t, c2, f.alice, f.t0)
	refuse(t, c2, f.bob, f.t0, revocation.ReasonRevoked)
	if err := c2.Ready(); err != nil {
		t.Errorf("Ready after restart from cache: %v", err)
	}
	ctx := context.Background()
	if err := c2.RefreshNow(ctx); fetchKind(err) != revocation.KindHTTP {
		t.Errorf("RefreshNow = %v", err)
	}
	refuse(t, c2, f.bob, f.t0, revocation.ReasonRevoked)
	for _, st := range c2.Status() {
		if st.IssuerSKI == f.interSKIHex && (!st.FromCache || st.Number != "7" || st.DeltaNumber != "8") {
			t.Errorf("status after restart = %+v", st)
		}
	}
	f.logs.mustContain(t, "CRL loaded from cache", "issuer_ski="+f.interSKIHex, "crl=delta")

	// The number persists: the server coming back with an older CRL is a rollback.
	f.srv.serveCRL("/inter.crl", f.crl(t, 6))
	f.srv.serveCRL("/inter-delta.crl", delta) // the very same delta: not a rollback
	if err := c2.RefreshNow(ctx); fetchKind(err) != revocation.KindRollback || !strings.Contains(err.Error(), "older than 7") {
		t.Errorf("RefreshNow = %v, want a rollback of the base", err)
	}
	refuse(t, c2, f.bob, f.t0, revocation.ReasonRevoked)
}

func TestCacheDirEmptyAndServerDown(t *testing.T) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.CacheDir = t.TempDir() }))
	f.srv.set("/inter.crl", response{status: http.StatusServiceUnavailable})
	if err := f.refresh(t); err == nil {
		t.Fatal("RefreshNow succeeded against a down server")
	}
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonCRLUnavailable)
	if f.c.Ready() == nil {
		t.Error("Ready with no CRL")
	}
}

func TestCacheFileFailingVerificationIsIgnored(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.CacheDir = dir }))
	other := pkigen.Root(t, "Other")
	if err := os.WriteFile(filepath.Join(dir, f.interSKIHex+".crl"), other.MustCRL(t, f.crlOpts(9)), 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := f.restart()
	refuse(t, c2, f.alice, f.t0, revocation.ReasonCRLUnavailable)
	f.logs.mustContain(t, "cached CRL ignored", "issuer_ski="+f.interSKIHex)
}

func TestUnwritableCacheDirKeepsServing(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.CacheDir = filepath.Join(blocker, "crl") }))
	// Loading at SetSources already failed once (not "absent": unreadable).
	if n := f.status(t).FetchErrors[revocation.KindIO]; n != 1 {
		t.Errorf("io errors after load = %d, want 1", n)
	}
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.mustRefresh(t)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, f.alice, f.t0)
	if n := f.status(t).FetchErrors[revocation.KindIO]; n != 2 {
		t.Errorf("io errors after the write = %d, want 2", n)
	}
	f.logs.mustContain(t, "CRL cache I/O failed", "kind=io")
}

func TestConditionalGET(t *testing.T) {
	f := newFixture(t)
	f.srv.set("/inter.crl", response{body: f.crl(t, 1, f.bob), etag: `"v1"`})
	f.mustRefresh(t)
	gen := f.c.Generation()
	first := f.status(t).LastSuccess

	f.clk.add(time.Minute)
	f.mustRefresh(t)
	if inm := f.srv.lastINM["/inter.crl"]; inm != `"v1"` {
		t.Errorf("If-None-Match = %q", inm)
	}
	st := f.status(t)
	if !st.LastSuccess.After(first) || st.LastError != "" || f.c.Generation() != gen {
		t.Errorf("304: status %+v, generation %d→%d", st, gen, f.c.Generation())
	}
	refuse(t, f.c, f.bob, f.clk.now(), revocation.ReasonRevoked)
	f.logs.mustContain(t, "kind=not_modified")
}

func TestFileURL(t *testing.T) {
	p := newPKI(t)
	path := filepath.Join(t.TempDir(), "inter.crl")
	// PEM on disk, as many CAs publish it.
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: p.crl(t, 1, p.bob)}), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := newClock(p.t0)
	c := revocation.New(revocation.Options{Now: clk.now, Logger: (&logBuf{}).logger()})
	c.SetSources([]revocation.Source{{Issuer: p.root.Cert, Exempt: true}, {Issuer: p.inter.Cert, CRLURL: "file://" + path}})
	if err := c.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	refuse(t, c, p.bob, p.t0, revocation.ReasonRevoked)
	admit(t, c, p.alice, p.t0)

	if err := os.WriteFile(path, p.crl(t, 2, p.alice), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if err := c.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	refuse(t, c, p.alice, p.t0, revocation.ReasonRevoked)
	admit(t, c, p.bob, p.t0)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := c.RefreshNow(context.Background()); fetchKind(err) != revocation.KindIO {
		t.Errorf("missing file: %v", err)
	}
}

func TestRequestFresh(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	revokedAt := f.t0 // the user's stsRefreshTokensValidFrom
	if tu := f.c.ThisUpdate(f.interSKI); tu.After(revokedAt) {
		t.Fatalf("ThisUpdate %v already after %v", tu, revokedAt)
	}

	o := f.crlOpts(2, f.bob)
	o.ThisUpdate = f.t0.Add(time.Second)
	f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, o))
	f.clk.add(2 * time.Second)
	hits := f.srv.hitCount("/inter.crl")
	f.c.RequestFresh(f.interSKI, revokedAt)
	f.c.RequestFresh(f.interSKI, revokedAt) // deduplicated
	revocation.WaitBackground(f.c)

	if got := f.srv.hitCount("/inter.crl") - hits; got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
	if tu := f.c.ThisUpdate(f.interSKI); !tu.After(revokedAt) {
		t.Errorf("ThisUpdate %v not after %v", tu, revokedAt)
	}
	refuse(t, f.c, f.bob, f.clk.now(), revocation.ReasonRevoked)

	// Already fresh enough: no fetch.
	f.clk.add(time.Minute)
	hits = f.srv.hitCount("/inter.crl")
	f.c.RequestFresh(f.interSKI, revokedAt)
	revocation.WaitBackground(f.c)
	if got := f.srv.hitCount("/inter.crl") - hits; got != 0 {
		t.Errorf("%d fetches for a CRL already newer than T", got)
	}
}

func TestRunFetchesInBackground(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	updated := f.c.Updated()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.c.Run(ctx); close(done) }()
	select {
	case <-updated:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not install the CRL")
	}
	cancel()
	<-done
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	admit(t, f.c, f.alice, f.t0)
}

func TestSetSourcesKeepsAndDrops(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.mustRefresh(t)
	hits := f.srv.hitCount("/inter.crl")

	f.c.SetSources(f.sources()) // a reload with no change
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	if f.srv.hitCount("/inter.crl") != hits {
		t.Error("SetSources fetched synchronously")
	}

	// A new URL drops the loaded CRL until it is fetched.
	f.srv.serveCRL("/inter2.crl", f.crl(t, 1))
	f.c.SetSources([]revocation.Source{{Issuer: f.root.Cert, Exempt: true}, {Issuer: f.inter.Cert, CRLURL: f.srv.url("/inter2.crl")}})
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonCRLUnavailable)
	f.mustRefresh(t)
	admit(t, f.c, f.bob, f.t0)
}

func TestIssuingDistributionPointScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		idp  []byte // DER of the IssuingDistributionPoint SEQUENCE
		kind string // fetch error, or "" when accepted
	}{
		{"only CA certs", []byte{0x30, 0x03, 0x82, 0x01, 0xff}, ""},
		{"only user certs", []byte{0x30, 0x03, 0x81, 0x01, 0xff}, ""},
		{"indirect", []byte{0x30, 0x03, 0x84, 0x01, 0xff}, revocation.KindExtension},
		// Loaded, but they clear no public-key certificate: Check says why.
		{"only some reasons", []byte{0x30, 0x04, 0x83, 0x02, 0x07, 0x80}, ""},
		{"attribute certs", []byte{0x30, 0x03, 0x85, 0x01, 0xff}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			o := f.crlOpts(1)
			o.ExtraExtensions = append(o.ExtraExtensions, idpExtension(tc.idp))
			f.srv.serveCRL("/inter.crl", f.inter.MustCRL(t, o))
			err := f.refresh(t)
			if got := fetchKind(err); got != tc.kind {
				t.Fatalf("RefreshNow = %v, want kind %q", err, tc.kind)
			}
			switch tc.name {
			case "only CA certs":
				// A CRL of CA certificates cannot clear a leaf.
				refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
			case "only user certs":
				admit(t, f.c, f.alice, f.t0)
			default:
				refuse(t, f.c, f.alice, f.t0, revocation.ReasonCRLUnavailable)
			}
		})
	}
}

func TestIntermediateRevokedByRootCRL(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.srv.serveCRL("/root.crl", f.root.MustCRL(t, pkigen.CRLOptions{
		Number: 1, ThisUpdate: f.t0.Add(-time.Minute), NextUpdate: f.t0.Add(time.Hour),
		Revoked: pkigen.Revoke(f.t0.Add(-time.Minute), f.inter.Cert.SerialNumber),
	}))
	f.c.SetSources([]revocation.Source{
		{Issuer: f.root.Cert, CRLURL: f.srv.url("/root.crl")},
		{Issuer: f.inter.Cert, CRLURL: f.srv.url("/inter.crl")},
	})
	f.mustRefresh(t)
	re := refuse(t, f.c, f.alice, f.t0, revocation.ReasonRevoked)
	if re.Serial != f.inter.Cert.SerialNumber.Text(16) {
		t.Errorf("refused serial %s, want the intermediate's", re.Serial)
	}
}

// TestConcurrentCheckDuringRefresh runs Check from many goroutines while
// CRLs are swapped and sources reloaded (meaningful under -race).
func TestConcurrentCheckDuringRefresh(t *testing.T) {
	f := newFixture(t)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.mustRefresh(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := f.c.Check(f.alice.Chain, f.t0); err != nil {
					t.Errorf("alice: %v", err)
					return
				}
				if f.c.Check(f.bob.Chain, f.t0) == nil {
					t.Error("bob admitted")
					return
				}
			}
		})
	}
	for i := int64(2); i < 12; i++ {
		f.srv.serveCRL("/inter.crl", f.crl(t, i, f.bob))
		f.mustRefresh(t)
		f.c.SetSources(f.sources())
		_ = f.c.Status()
	}
	close(stop)
	wg.Wait()
}

func TestCheckDoesNotAllocate(t *testing.T) {
	f := newFixture(t, withDelta())
	f.srv.serveCRL("/inter.crl", f.crl(t, 1, f.bob))
	f.srv.serveCRL("/inter-delta.crl", f.delta(t, 2, 1, f.carol))
	f.mustRefresh(t)
	if n := testing.AllocsPerRun(200, func() {
		if err := f.c.Check(f.alice.Chain, f.t0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Check allocates %.1f times per call", n)
	}
}

func TestParsePolicyAndMode(t *testing.T) {
	for in, want := range map[string]revocation.Policy{"": revocation.Deny, "deny": revocation.Deny, "Allow": revocation.Allow} {
		if got, err := revocation.ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := revocation.ParsePolicy("maybe"); err == nil || !strings.Contains(err.Error(), "maybe") {
		t.Errorf("ParsePolicy(maybe) = %v", err)
	}
	for in, want := range map[string]revocation.OCSPMode{"": revocation.OCSPOff, "off": revocation.OCSPOff, "soft": revocation.OCSPSoft, "HARD": revocation.OCSPHard} {
		if got, err := revocation.ParseOCSPMode(in); err != nil || got != want {
			t.Errorf("ParseOCSPMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := revocation.ParseOCSPMode("strict"); err == nil {
		t.Error("ParseOCSPMode(strict) accepted")
	}
}

func TestStaleCacheIsLoadedButStale(t *testing.T) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.CacheDir = t.TempDir() }))
	f.srv.serveCRL("/inter.crl", f.crl(t, 3, f.bob))
	f.mustRefresh(t)

	f.srv.set("/inter.crl", response{status: http.StatusBadGateway})
	f.clk.add(30 * time.Hour) // the restart happens after nextUpdate
	c2 := f.restart()
	now := f.clk.now()
	refuse(t, c2, f.alice, now, revocation.ReasonCRLStale)
	refuse(t, c2, f.bob, now, revocation.ReasonRevoked) // its revocations still count
	if c2.Ready() == nil {
		t.Error("Ready with a stale cached CRL")
	}
	f.logs.mustContain(t, "CRL loaded from cache", "stale=true")
}

// TestIssuerWithoutSKI keys a CA that has no SubjectKeyId by the SHA-1 of
// its public key, on both the source and the handshake side.
func TestIssuerWithoutSKI(t *testing.T) {
	p := newPKI(t)
	bare := *p.inter.Cert
	bare.SubjectKeyId = nil
	srv := newCRLServer(t)
	srv.serveCRL("/inter.crl", p.crl(t, 1, p.bob))
	c := revocation.New(revocation.Options{Now: newClock(p.t0).now, Logger: (&logBuf{}).logger()})
	c.SetSources([]revocation.Source{{Issuer: &bare, CRLURL: srv.url("/inter.crl")}})
	if err := c.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Check([]*x509.Certificate{p.alice.Cert, &bare}, p.t0); err != nil {
		t.Errorf("alice: %v", err)
	}
	if reasonOf(c.Check([]*x509.Certificate{p.bob.Cert, &bare}, p.t0)) != revocation.ReasonRevoked {
		t.Error("bob not refused")
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.Check([]*x509.Certificate{p.alice.Cert, &bare}, p.t0) }); n != 0 {
		t.Errorf("Check allocates %.1f times", n)
	}
}

package revocation_test

import (
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

// responder is a real OCSP responder on 127.0.0.1 whose answer each test
// switches.
type responder struct {
	*httptest.Server
	mu   sync.Mutex
	mode string
	hits int
	p    *pki
	// signers for the delegated and forged modes
	delegatedNoEKU, delegated, foreign *pkigen.Leaf
}

func newResponder(t *testing.T, p *pki) *responder {
	r := &responder{p: p, mode: "good"}
	r.delegatedNoEKU = p.inter.Leaf(t, "ocsp-no-eku", pkigen.At(p.t0))
	r.delegated = p.inter.Leaf(t, "ocsp", pkigen.At(p.t0), pkigen.EKU(x509.ExtKeyUsageOCSPSigning))
	r.foreign = pkigen.Root(t, "Forger").Leaf(t, "ocsp", pkigen.EKU(x509.ExtKeyUsageOCSPSigning))
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *responder) set(mode string) {
	r.mu.Lock()
	r.mode = mode
	r.mu.Unlock()
}

func (r *responder) hitCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits
}

func (r *responder) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	mode := r.mode
	r.hits++
	r.mu.Unlock()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	t0 := r.p.t0
	tpl := ocsp.Response{
		Status: ocsp.Good, SerialNumber: q.SerialNumber,
		ThisUpdate: t0.Add(-time.Minute), NextUpdate: t0.Add(time.Hour),
	}
	issuer, signerCert, key := r.p.inter.Cert, r.p.inter.Cert, r.p.inter.Key
	switch mode {
	case "down":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "revoked":
		tpl.Status, tpl.RevokedAt, tpl.RevocationReason = ocsp.Revoked, t0.Add(-time.Hour), ocsp.KeyCompromise
	case "unknown":
		tpl.Status = ocsp.Unknown
	case "expired":
		tpl.ThisUpdate, tpl.NextUpdate = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
	case "forged":
		signerCert, key = r.foreign.Cert, r.foreign.Key
	case "delegated-no-eku":
		signerCert, key = r.delegatedNoEKU.Cert, r.delegatedNoEKU.Key
	case "delegated":
		signerCert, key = r.delegated.Cert, r.delegated.Key
	}
	if signerCert != issuer {
		tpl.Certificate = signerCert // embedded: the delegated (or forged) responder
	}
	der, err := ocsp.CreateResponse(issuer, signerCert, tpl, key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(der)
}

// newOCSPFixture has a good CRL in force and the responder as the
// intermediate's OCSP URL.
func newOCSPFixture(t *testing.T, mode revocation.OCSPMode) (*fixture, *responder) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.OCSP = mode }))
	r := newResponder(t, f.pki)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	srcs := f.sources()
	srcs[1].OCSPURL = r.URL
	f.c.SetSources(srcs)
	f.mustRefresh(t)
	return f, r
}

func TestOCSPHard(t *testing.T) {
	for _, tc := range []struct {
		mode, reason string // reason "" means admitted
		detail       string // in the refusal's message
	}{
		{"good", "", ""},
		{"delegated", "", ""},
		{"revoked", revocation.ReasonRevoked, "OCSP responder says revoked"},
		{"unknown", revocation.ReasonOCSPUnavailable, "status unknown"},
		{"down", revocation.ReasonOCSPUnavailable, "HTTP status 500"},
		{"expired", revocation.ReasonOCSPUnavailable, "answer expired"},
		{"forged", revocation.ReasonOCSPUnavailable, "bad OCSP signature"},
		{"delegated-no-eku", revocation.ReasonOCSPUnavailable, "lacks the OCSP signing EKU"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			f, r := newOCSPFixture(t, revocation.OCSPHard)
			r.set(tc.mode)
			if tc.reason == "" {
				admit(t, f.c, f.alice, f.t0)
			} else if re := refuse(t, f.c, f.alice, f.t0, tc.reason); !strings.Contains(re.Error(), tc.detail) {
				t.Errorf("refusal %q does not say %q", re, tc.detail)
			}
			if r.hitCount() != 1 {
				t.Errorf("responder asked %d times, want 1", r.hitCount())
			}
		})
	}
}

func TestOCSPHardCachesGoodAnswer(t *testing.T) {
	f, r := newOCSPFixture(t, revocation.OCSPHard)
	admit(t, f.c, f.alice, f.t0)
	r.set("down")
	admit(t, f.c, f.alice, f.t0) // from the cache
	if r.hitCount() != 1 {
		t.Errorf("responder asked %d times, want 1", r.hitCount())
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := f.c.Check(f.alice.Chain, f.t0); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Check with a cached OCSP answer allocates %.1f times", n)
	}
	// Past the answer's nextUpdate the cache no longer serves it.
	later := f.t0.Add(2 * time.Hour)
	f.clk.set(later)
	refuse(t, f.c, f.alice, later, revocation.ReasonOCSPUnavailable) // the responder is down now
	if r.hitCount() != 2 {
		t.Errorf("responder asked %d times after expiry, want 2", r.hitCount())
	}
}

func TestOCSPSoft(t *testing.T) {
	f, r := newOCSPFixture(t, revocation.OCSPSoft)

	r.set("down")
	admit(t, f.c, f.alice, f.t0) // never waits, never refuses on failure
	revocation.WaitBackground(f.c)
	admit(t, f.c, f.alice, f.t0)
	revocation.WaitBackground(f.c)
	if r.hitCount() != 1 {
		t.Errorf("down responder asked %d times, want 1 (failure remembered)", r.hitCount())
	}

	r.set("revoked")
	admit(t, f.c, f.bob, f.t0) // first sight: answer from (empty) cache, fetch behind
	revocation.WaitBackground(f.c)
	refuse(t, f.c, f.bob, f.t0, revocation.ReasonRevoked)
	f.logs.mustContain(t, "OCSP answer", "status=revoked")
}

func TestOCSPHardWithoutResponder(t *testing.T) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.OCSP = revocation.OCSPHard }))
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	refuse(t, f.c, f.alice, f.t0, revocation.ReasonOCSPUnavailable)
}

func TestOCSPFromAIA(t *testing.T) {
	f := newFixture(t, withOpts(func(o *revocation.Options) { o.OCSP = revocation.OCSPHard }))
	r := newResponder(t, f.pki)
	f.srv.serveCRL("/inter.crl", f.crl(t, 1))
	f.mustRefresh(t)
	dan := f.inter.Leaf(t, "dan", pkigen.At(f.t0), pkigen.OCSPURL(r.URL))
	r.set("revoked")
	refuse(t, f.c, dan, f.t0, revocation.ReasonRevoked)
}

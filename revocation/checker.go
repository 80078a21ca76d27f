package revocation

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
)

// Checker checks verified chains against CRLs (and OCSP) and keeps those
// CRLs fresh. Make one with [New]; all methods are safe for concurrent use.
type Checker struct {
	opts Options
	log  *slog.Logger

	snap atomic.Pointer[snapshot] // what Check reads; replaced, never mutated

	setMu   sync.Mutex // serialises SetSources
	mu      sync.Mutex // guards sources and gen; never held during I/O, never taken by Check
	sources map[string]*source
	gen     uint64

	wake    chan struct{}  // nudges Run when schedules change
	bg      sync.WaitGroup // fetches started by RequestFresh and OCSP refresh behind
	flights flightGroup[struct{}]
	ocsp    ocspCache
}

// New returns a Checker with no sources: until [Checker.SetSources], every
// chain fails closed as crl_unavailable (unless OnUnavailable is Allow).
func New(opts Options) *Checker {
	opts = opts.withDefaults()
	c := &Checker{
		opts:    opts,
		log:     opts.Logger.With("component", "revocation"),
		sources: map[string]*source{},
		wake:    make(chan struct{}, 1),
	}
	c.ocsp.entries = map[ocspKey]*ocspEntry{}
	c.snap.Store(&snapshot{cas: map[string]*caView{}, changed: make(chan struct{})})
	return c
}

func (c *Checker) now() time.Time { return c.opts.Now() }

// snapshot is the immutable state Check reads.
type snapshot struct {
	gen     uint64
	cas     map[string]*caView // by raw SKI bytes
	changed chan struct{}      // closed when this snapshot is replaced
}

// caView is one CA as Check sees it.
type caView struct {
	skiHex       string
	spki         []byte
	issuer       *x509.Certificate
	exempt       bool
	hasURL       bool
	wantDelta    bool
	ocspURL      string
	base, delta  *crl
	deltaApplies bool
}

// which names the two CRLs of a source.
type which int

const (
	baseCRL which = iota
	deltaCRL
)

func (w which) String() string {
	if w == deltaCRL {
		return "delta"
	}
	return "base"
}

// feed is the fetch state of one CRL URL of a source.
type feed struct {
	url         string
	crl         *crl
	fromCache   bool
	cond        validator
	next        time.Time // when the scheduler fetches it next
	failures    int       // consecutive, for the backoff
	running     bool      // the scheduler has a fetch in progress
	lastAttempt time.Time
}

// source is the writer side of one CA; guarded by Checker.mu.
type source struct {
	key    string // raw SKI
	skiHex string
	src    Source
	iss    issuer
	feeds  [2]feed // by which

	lastFetch, lastSuccess, lastRequested time.Time
	lastErr                               string
	fetchErrors                           map[string]uint64
	removed                               bool // replaced by SetSources: results are dropped
}

func newSource(src Source) *source {
	ski := subjectKeyID(src.Issuer)
	s := &source{
		key:         string(ski),
		skiHex:      hex.EncodeToString(ski),
		src:         src,
		iss:         issuer{cert: src.Issuer, ski: ski},
		fetchErrors: map[string]uint64{},
	}
	s.feeds[baseCRL].url = src.CRLURL
	if src.CRLURL != "" {
		s.feeds[deltaCRL].url = src.DeltaCRLURL
	}
	return s
}

// sameFeed reports whether src fetches and verifies exactly like s, so the
// CRLs s holds remain valid for it.
func (s *source) sameFeed(src Source) bool {
	return s.src.CRLURL == src.CRLURL && s.src.DeltaCRLURL == src.DeltaCRLURL &&
		bytes.Equal(s.iss.cert.RawSubject, src.Issuer.RawSubject) &&
		bytes.Equal(s.iss.cert.RawSubjectPublicKeyInfo, src.Issuer.RawSubjectPublicKeyInfo)
}

// deltaApplies is the RFC 5280 5.2.4 rule: a delta completes a base whose
// number is at least the delta's BaseCRLNumber and below the delta's own
// number, with the same scope.
func deltaApplies(base, delta *crl) bool {
	return base != nil && delta != nil && base.number != nil &&
		delta.deltaBase.Cmp(base.number) <= 0 && delta.number.Cmp(base.number) > 0 &&
		delta.scope == base.scope
}

func (s *source) view() *caView {
	base, delta := s.feeds[baseCRL].crl, s.feeds[deltaCRL].crl
	return &caView{
		skiHex:       s.skiHex,
		spki:         s.iss.cert.RawSubjectPublicKeyInfo,
		issuer:       s.iss.cert,
		exempt:       s.src.Exempt,
		hasURL:       s.src.CRLURL != "",
		wantDelta:    s.feeds[deltaCRL].url != "",
		ocspURL:      s.src.OCSPURL,
		base:         base,
		delta:        delta,
		deltaApplies: deltaApplies(base, delta),
	}
}

// publishLocked builds a new snapshot from the sources and swaps it in.
func (c *Checker) publishLocked() {
	cas := make(map[string]*caView, len(c.sources))
	for k, s := range c.sources {
		cas[k] = s.view()
	}
	c.gen++
	old := c.snap.Swap(&snapshot{gen: c.gen, cas: cas, changed: make(chan struct{})})
	close(old.changed)
}

// poke wakes Run without blocking.
func (c *Checker) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetSources replaces the configured CAs, on start and on reload. Sources
// whose issuer SKI, issuer key and URLs are unchanged keep their loaded
// CRLs; new ones are first loaded from Options.CacheDir (synchronously,
// re-verified) and then fetched by Run. A source without an Issuer is
// skipped with a log line, and of two sources with one SKI the first wins.
// Safe to call while Check runs.
func (c *Checker) SetSources(srcs []Source) {
	c.setMu.Lock()
	defer c.setMu.Unlock()

	c.mu.Lock()
	old := c.sources
	c.mu.Unlock()

	next := make(map[string]*source, len(srcs))
	reused := map[*source]Source{}
	for _, src := range srcs {
		if src.Issuer == nil {
			c.log.Error("CRL source without an issuer certificate ignored", "crl_url", src.CRLURL)
			continue
		}
		key := string(subjectKeyID(src.Issuer))
		if _, dup := next[key]; dup {
			c.log.Error("second CRL source for one CA ignored", "issuer_ski", hex.EncodeToString([]byte(key)),
				"subject", certfmt.Subject(src.Issuer))
			continue
		}
		if o := old[key]; o != nil && o.sameFeed(src) {
			next[key] = o
			reused[o] = src
			continue
		}
		s := newSource(src)
		if src.CRLURL == "" && src.DeltaCRLURL != "" {
			c.log.Error("delta CRL URL without a base CRL URL ignored", "issuer_ski", s.skiHex)
		}
		c.loadCache(s)
		next[key] = s
	}

	c.mu.Lock()
	for k, o := range old {
		if next[k] != o {
			o.removed = true
		}
	}
	for o, src := range reused {
		o.src.Exempt, o.src.OCSPURL = src.Exempt, src.OCSPURL
	}
	c.sources = next
	c.publishLocked()
	c.mu.Unlock()
	c.poke()
}

// Generation increases each time a new state is swapped in, so callers can
// key caches of decisions on it.
func (c *Checker) Generation() uint64 { return c.snap.Load().gen }

// Updated returns a channel closed at the next swap of state (a CRL
// installed, sources changed).
func (c *Checker) Updated() <-chan struct{} { return c.snap.Load().changed }

// issuerSKI returns c's SKI, computed into buf when the certificate has none.
func issuerSKI(c *x509.Certificate, buf *[sha1.Size]byte) []byte {
	if len(c.SubjectKeyId) > 0 {
		return c.SubjectKeyId
	}
	return keyHashSKI(c, buf)
}

// Check checks a verified chain (leaf first, root last): every certificate
// below the root against its issuer's CRL merged with the delta, looked up by
// the issuer's SKI and the serial; then, when Options.OCSP is on, the leaf
// with OCSP. It returns nil or an *Error. Staleness is judged at `at`.
//
// Check makes no CRL fetch, takes no lock a fetch holds and does not
// allocate when it admits. A revoked serial is refused even when the CRL
// listing it is stale and the policy is Allow. Revocation dates are not
// compared with `at`: a listed serial is refused.
//
// In OCSPHard mode with no fresh answer cached, Check fetches one
// synchronously, bounded by Options.FetchTimeout (as nginx does); in
// OCSPSoft mode it never waits on the network.
func (c *Checker) Check(chain []*x509.Certificate, at time.Time) error {
	s := c.snap.Load()
	var leafView *caView
	for i := 0; i+1 < len(chain); i++ {
		cert, iss := chain[i], chain[i+1]
		var buf [sha1.Size]byte
		v := s.cas[string(issuerSKI(iss, &buf))]
		if v == nil || !bytes.Equal(v.spki, iss.RawSubjectPublicKeyInfo) {
			if c.opts.OnUnavailable == Allow {
				continue
			}
			return refusal(ReasonCRLUnavailable, iss, cert, errNotConfigured)
		}
		if i == 0 {
			leafView = v
		}
		if err := c.checkCRL(v, cert, iss, at); err != nil {
			return err
		}
	}
	if c.opts.OCSP != OCSPOff && len(chain) >= 2 {
		return c.checkOCSP(chain[0], chain[1], leafView, at)
	}
	return nil
}

var (
	errNotConfigured = errors.New("issuer is not a configured CA")
	errNoURL         = errors.New("CA has no CRL URL and is not crlExempt")
	errNoCRL         = errors.New("no CRL loaded yet")
	errNoDelta       = errors.New("no delta CRL loaded yet")
	errListed        = errors.New("serial listed on the CA's CRL")
)

func (c *Checker) checkCRL(v *caView, cert, iss *x509.Certificate, at time.Time) error {
	if v.exempt {
		return nil
	}
	if !v.hasURL {
		return refusal(ReasonCRLUnavailable, iss, cert, errNoURL)
	}
	b := v.base
	if b == nil {
		return c.unavailable(ReasonCRLUnavailable, iss, cert, errNoCRL)
	}
	sn := cert.SerialNumber
	if v.deltaApplies {
		d := v.delta
		if d.revoked.contains(sn) || b.revoked.contains(sn) || (b.held.contains(sn) && !d.removed.contains(sn)) {
			return refusal(ReasonRevoked, iss, cert, errListed)
		}
	} else if b.revoked.contains(sn) || b.held.contains(sn) {
		return refusal(ReasonRevoked, iss, cert, errListed)
	}
	if !b.scope.covers(cert.IsCA) {
		return c.unavailable(ReasonCRLUnavailable, iss, cert, fmt.Errorf("the CA's CRL covers %s", b.scope))
	}
	if at.After(b.nextUpdate) {
		return c.unavailable(ReasonCRLStale, iss, cert, fmt.Errorf("CRL nextUpdate %s has passed", b.nextUpdate.UTC().Format(time.RFC3339)))
	}
	if v.wantDelta {
		if v.delta == nil {
			return c.unavailable(ReasonCRLUnavailable, iss, cert, errNoDelta)
		}
		if at.After(v.delta.nextUpdate) {
			return c.unavailable(ReasonCRLStale, iss, cert, fmt.Errorf("delta CRL nextUpdate %s has passed", v.delta.nextUpdate.UTC().Format(time.RFC3339)))
		}
	}
	return nil
}

// unavailable applies the onUnavailable policy.
func (c *Checker) unavailable(reason string, iss, cert *x509.Certificate, err error) error {
	if c.opts.OnUnavailable == Allow {
		return nil
	}
	return refusal(reason, iss, cert, err)
}

func refusal(reason string, iss, cert *x509.Certificate, err error) *Error {
	var buf [sha1.Size]byte
	return &Error{
		Reason:    reason,
		IssuerSKI: hex.EncodeToString(issuerSKI(iss, &buf)),
		Serial:    serialHex(cert.SerialNumber),
		Err:       err,
	}
}

func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return fmt.Sprintf("%x", n)
}

// ThisUpdate returns the thisUpdate of the revocation information in force
// for the CA: the delta's when a delta is applied (the merged view is
// complete as of the delta's thisUpdate), else the base's; zero if none.
func (c *Checker) ThisUpdate(issuerSKI []byte) time.Time {
	v := c.snap.Load().cas[string(issuerSKI)]
	if v == nil {
		return time.Time{}
	}
	return v.thisUpdate()
}

func (v *caView) thisUpdate() time.Time {
	if v.base == nil {
		return time.Time{}
	}
	if v.deltaApplies && v.delta.thisUpdate.After(v.base.thisUpdate) {
		return v.delta.thisUpdate
	}
	return v.base.thisUpdate
}

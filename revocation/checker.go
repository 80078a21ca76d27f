package revocation

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/trust/pathval"
)

// Checker checks verified chains against CRLs (and OCSP) and keeps those
// CRLs fresh. Make one with [New]; all methods are safe for concurrent use.
type Checker struct {
	opts Options
	log  *slog.Logger

	snap atomic.Pointer[snapshot] // what Check reads; replaced, never mutated

	setMu   sync.Mutex // serialises SetSources
	mu      sync.Mutex // guards the fields below; never held during I/O, never taken by Check
	sources map[string]*source
	gen     uint64
	// byName lists the keys of each CA name (pathval.NameKey of the subject), in
	// configuration order: the CA's certificates, whose CRLs may all speak
	// for what any of its keys issued.
	byName map[string][]string
	// certs are all configured certificates, where a CRL signer's issuer is
	// looked for; refs caches what was found, by certificate DER.
	certs []*x509.Certificate
	refs  map[string]*signerRef
	// bounds are the distinct NotBefore and NotAfter instants of certs,
	// sorted: the moments a CRL signer's path validation can change.
	bounds []time.Time
	// verifySigner is the first Source.VerifySigner of the sources.
	verifySigner func(*x509.Certificate, time.Time) error

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
		byName:  map[string][]string{},
		refs:    map[string]*signerRef{},
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

// caView is one CA key as Check sees it.
type caView struct {
	skiHex       string
	spkis        [][]byte // of the configured certificates with this SKI
	issuer       *x509.Certificate
	exempt       bool
	hasURL       bool
	wantDelta    bool
	ocspURL      string
	base, delta  *crl // this key's own feed
	deltaApplies bool
	// cands are the CRLs that may speak for a certificate this key issued:
	// this key's own feed first, then those of the CA's other keys (the
	// same CA name: key rollover, a separate CRL-signing key). Which of them
	// counts for a certificate is the scope check's answer.
	cands []candidate
}

// hasKey reports whether spki is the key of one of the view's certificates.
func (v *caView) hasKey(spki []byte) bool {
	for _, k := range v.spkis {
		if bytes.Equal(k, spki) {
			return true
		}
	}
	return false
}

// candidate is one feed's CRLs as seen from one CA key.
type candidate struct {
	skiHex       string // of the feed's source
	fetchErr     *atomic.Pointer[string]
	wantDelta    bool
	base, delta  *crl
	deltaApplies bool
	// baseSigner and deltaSigner are set when the CRL was signed by a key
	// other than the certificate issuer's: that certificate must then be
	// valid and not revoked itself (RFC 5280 6.3.3 (f)).
	baseSigner, deltaSigner *signerRef
}

// signerRef is a configured certificate that signs CRLs for another key
// of its CA, and the path of configured certificates from it up to a
// self-signed one, along which its validity and revocation are checked.
type signerRef struct {
	cert   *x509.Certificate
	parent string     // key in snapshot.cas of the CA that issued it; "" if none is configured
	up     *signerRef // the issuing certificate's own link; nil at an anchor or a dead end
	anchor bool       // self-signed: a configured root, the end of the path

	// verify and bounds are the Checker's when the ref was made (set
	// once, before any snapshot holds the ref); verdict is the last answer.
	verify  func(*x509.Certificate, time.Time) error
	bounds  []time.Time
	verdict atomic.Pointer[signerVerdict]
}

// signerVerdict is a VerifySigner answer and the span of time it holds
// for: the instant it was asked at, or (lo, hi) when no validity bound
// falls on that instant.
type signerVerdict struct {
	at, lo, hi time.Time
	err        error
}

// validated runs the signer's path validation, or reuses the last answer
// while at stays between the same two validity bounds. A reused answer
// costs no allocation.
func (r *signerRef) validated(at time.Time) error {
	if r.verify == nil {
		return nil
	}
	if v := r.verdict.Load(); v != nil && (at.Equal(v.at) || at.After(v.lo) && at.Before(v.hi)) {
		return v.err
	}
	v := &signerVerdict{at: at, err: r.verify(r.cert, at)}
	i, _ := slices.BinarySearchFunc(r.bounds, at, time.Time.Compare)
	switch {
	case i < len(r.bounds) && r.bounds[i].Equal(at):
		v.lo, v.hi = at, at // on a bound: this instant only
	default:
		v.lo, v.hi = time.Time{}, maxTime
		if i > 0 {
			v.lo = r.bounds[i-1]
		}
		if i < len(r.bounds) {
			v.hi = r.bounds[i]
		}
	}
	r.verdict.Store(v)
	return v.err
}

// maxTime is after every certificate's notAfter (GeneralizedTime ends in 9999).
var maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)

// validityBounds lists the distinct validity instants of certs, sorted.
func validityBounds(certs []*x509.Certificate) []time.Time {
	out := make([]time.Time, 0, 2*len(certs))
	for _, c := range certs {
		out = append(out, c.NotBefore, c.NotAfter)
	}
	slices.SortFunc(out, time.Time.Compare)
	return slices.CompactFunc(out, time.Time.Equal)
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

// source is the writer side of one CA key (one SKI, one or more
// configured certificates); guarded by Checker.mu.
type source struct {
	key    string // raw SKI
	skiHex string
	dn     string // normalised subject name: the CA this key belongs to
	src    Source // the merged settings of its certificates
	certs  []*x509.Certificate
	iss    issuer
	signFP string  // identifies iss.signers, so a reload can keep the CRLs
	feeds  [2]feed // by which

	lastFetch, lastSuccess, lastRequested time.Time
	lastErr                               string
	// baseErr is the last failure of the base feed while no base CRL is
	// loaded, read by Check to explain "no CRL" without a snapshot swap.
	baseErr     atomic.Pointer[string]
	fetchErrors map[string]uint64
	removed     bool // replaced by SetSources: results are dropped
}

func newSource(key string, src Source, certs []*x509.Certificate, signers []signerCert, fp string) *source {
	s := &source{
		key:         key,
		skiHex:      hex.EncodeToString([]byte(key)),
		dn:          caName(src.Issuer),
		src:         src,
		certs:       certs,
		iss:         issuer{cert: src.Issuer, ski: []byte(key), signers: signers},
		signFP:      fp,
		fetchErrors: map[string]uint64{},
	}
	s.feeds[baseCRL].url = src.CRLURL
	if src.CRLURL != "" {
		s.feeds[deltaCRL].url = src.DeltaCRLURL
	}
	return s
}

// caName is the name CA certificates are grouped by.
func caName(c *x509.Certificate) string {
	if dn, ok := pathval.NameKey(c.RawSubject); ok {
		return dn
	}
	return "raw:" + string(c.RawSubject)
}

// sameFeed reports whether src fetches and verifies exactly like s, so the
// CRLs s holds remain valid for it.
func (s *source) sameFeed(src Source, fp string) bool {
	return s.src.CRLURL == src.CRLURL && s.src.DeltaCRLURL == src.DeltaCRLURL &&
		bytes.Equal(s.iss.cert.RawSubject, src.Issuer.RawSubject) &&
		bytes.Equal(s.iss.cert.RawSubjectPublicKeyInfo, src.Issuer.RawSubjectPublicKeyInfo) &&
		s.signFP == fp
}

// deltaApplies is the RFC 5280 5.2.4 rule: a delta completes a base whose
// number is at least the delta's BaseCRLNumber and below the delta's own
// number, with the same scope.
func deltaApplies(base, delta *crl) bool {
	return base != nil && delta != nil && base.number != nil &&
		delta.deltaBase.Cmp(base.number) <= 0 && delta.number.Cmp(base.number) > 0 &&
		sameScope(delta.scope, base.scope)
}

func (s *source) view() *caView {
	base, delta := s.feeds[baseCRL].crl, s.feeds[deltaCRL].crl
	v := &caView{
		skiHex:       s.skiHex,
		issuer:       s.iss.cert,
		exempt:       s.src.Exempt,
		hasURL:       s.src.CRLURL != "",
		wantDelta:    s.feeds[deltaCRL].url != "",
		ocspURL:      s.src.OCSPURL,
		base:         base,
		delta:        delta,
		deltaApplies: deltaApplies(base, delta),
	}
	for _, c := range s.certs {
		if !v.hasKey(c.RawSubjectPublicKeyInfo) {
			v.spkis = append(v.spkis, c.RawSubjectPublicKeyInfo)
		}
	}
	return v
}

// publishLocked builds a new snapshot from the sources and swaps it in.
func (c *Checker) publishLocked() {
	cas := make(map[string]*caView, len(c.sources))
	for k, s := range c.sources {
		cas[k] = s.view()
	}
	for k, s := range c.sources {
		v := cas[k]
		keys := c.byName[s.dn]
		v.cands = make([]candidate, 0, len(keys))
		add := func(o *source) {
			if o.feeds[baseCRL].url == "" {
				return
			}
			ov := cas[o.key]
			cd := candidate{skiHex: o.skiHex, fetchErr: &o.baseErr, wantDelta: ov.wantDelta, base: ov.base, delta: ov.delta, deltaApplies: ov.deltaApplies}
			if cd.base != nil && string(cd.base.signerSKI) != k {
				cd.baseSigner = c.signerRefLocked(cd.base.signer)
			}
			if cd.deltaApplies && string(cd.delta.signerSKI) != k {
				cd.deltaSigner = c.signerRefLocked(cd.delta.signer)
			}
			v.cands = append(v.cands, cd)
		}
		add(s)
		for _, ok := range keys {
			if o := c.sources[ok]; ok != k && o != nil {
				add(o)
			}
		}
	}
	c.gen++
	old := c.snap.Swap(&snapshot{gen: c.gen, cas: cas, changed: make(chan struct{})})
	close(old.changed)
}

// signerRefLocked finds which configured CA issued cert, a CRL signer that
// is not the issuer of the certificates it speaks for, and so on up to a
// self-signed certificate: at each step a configured certificate with the
// name the certificate names as its issuer, whose key verifies its
// signature. Cached until the sources change.
func (c *Checker) signerRefLocked(cert *x509.Certificate) *signerRef {
	return c.signerPathLocked(cert, 0)
}

// maxSignerPath bounds the configured path above a CRL signer.
const maxSignerPath = 8

func (c *Checker) signerPathLocked(cert *x509.Certificate, depth int) *signerRef {
	if r := c.refs[string(cert.Raw)]; r != nil {
		return r
	}
	r := &signerRef{cert: cert, verify: c.verifySigner, bounds: c.bounds}
	c.refs[string(cert.Raw)] = r // before recursing: a loop ends at this entry
	if pathval.SameName(cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(cert) == nil {
		r.anchor = true
		return r
	}
	for _, p := range c.certs {
		if pathval.SameName(p.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(p) == nil {
			r.parent = string(pathval.KeyID(p))
			if depth < maxSignerPath {
				r.up = c.signerPathLocked(p, depth+1)
			}
			break
		}
	}
	return r
}

// poke wakes Run without blocking.
func (c *Checker) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetSources replaces the configured CAs, on start and on reload.
//
// Sources are keyed by the issuer's SKI. Several configured certificates
// may share one (a CA renewed with the same key, or cross-signed): they
// share one CRL cache entry and one fetch. The first of them with a CRL URL
// gives the URLs, and the key is crlExempt only if all of them are.
// Certificates with the same subject name are one CA: any of them may have
// signed the CA's CRLs (key rollover, a separate CRL-signing key), and the
// CRLs of each of its keys are candidates for what the others issued.
//
// Sources whose SKI, issuer key, URLs and signing certificates are
// unchanged keep their loaded CRLs; new ones are first loaded from
// Options.CacheDir (synchronously, re-verified) and then fetched by Run. A
// source without an Issuer is skipped with a log line. Safe to call while
// Check runs.
func (c *Checker) SetSources(srcs []Source) {
	c.setMu.Lock()
	defer c.setMu.Unlock()

	c.mu.Lock()
	old := c.sources
	c.mu.Unlock()

	type merged struct {
		src   Source
		certs []*x509.Certificate
	}
	byKey := map[string]*merged{}
	var keys []string
	var all []*x509.Certificate
	for _, src := range srcs {
		if src.Issuer == nil {
			c.log.Error("CRL source without an issuer certificate ignored", "crl_url", src.CRLURL)
			continue
		}
		all = append(all, src.Issuer)
		key := string(pathval.KeyID(src.Issuer))
		m := byKey[key]
		if m == nil {
			byKey[key] = &merged{src: src, certs: []*x509.Certificate{src.Issuer}}
			keys = append(keys, key)
			continue
		}
		if !slices.ContainsFunc(m.certs, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, src.Issuer.Raw) }) {
			m.certs = append(m.certs, src.Issuer)
		}
		switch {
		case m.src.CRLURL == "" && src.CRLURL != "":
			m.src.CRLURL, m.src.DeltaCRLURL = src.CRLURL, src.DeltaCRLURL
		case src.CRLURL != "" && (src.CRLURL != m.src.CRLURL || src.DeltaCRLURL != m.src.DeltaCRLURL):
			c.log.Warn("configured certificates with one SKI name different CRL URLs; the first is used",
				"issuer_ski", hex.EncodeToString([]byte(key)), "subject", certfmt.Subject(src.Issuer),
				"crl_url", m.src.CRLURL, "ignored_crl_url", src.CRLURL)
		}
		if m.src.OCSPURL == "" {
			m.src.OCSPURL = src.OCSPURL
		}
		if m.src.VerifySigner == nil {
			m.src.VerifySigner = src.VerifySigner
		}
		if m.src.Exempt != src.Exempt {
			c.log.Warn("configured certificates with one SKI disagree on crlExempt; CRLs are checked",
				"issuer_ski", hex.EncodeToString([]byte(key)))
			m.src.Exempt = false
		}
	}

	byName := map[string][]string{}
	for _, k := range keys {
		dn := caName(byKey[k].src.Issuer)
		byName[dn] = append(byName[dn], k)
	}

	next := make(map[string]*source, len(keys))
	reused := map[*source]*merged{}
	for _, key := range keys {
		m := byKey[key]
		src := m.src
		signers, fp := caSigners(key, byName[caName(src.Issuer)], func(k string) []*x509.Certificate { return byKey[k].certs })
		if o := old[key]; o != nil && o.sameFeed(src, fp) {
			next[key] = o
			reused[o] = m
			continue
		}
		s := newSource(key, src, m.certs, signers, fp)
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
	for o, m := range reused {
		o.src.Exempt, o.src.OCSPURL, o.src.VerifySigner = m.src.Exempt, m.src.OCSPURL, m.src.VerifySigner
		o.certs = m.certs
	}
	c.sources = next
	c.byName = byName
	c.certs = all
	c.bounds = validityBounds(all)
	c.verifySigner = nil
	for _, k := range keys {
		if f := byKey[k].src.VerifySigner; f != nil {
			c.verifySigner = f
			break
		}
	}
	c.refs = map[string]*signerRef{}
	c.publishLocked()
	c.mu.Unlock()
	c.poke()
}

// caSigners lists the certificates that may sign the CRLs fetched for
// key: those of every key of the CA, key's own first, and a fingerprint of
// the list.
func caSigners(key string, keysOfName []string, certsOf func(string) []*x509.Certificate) ([]signerCert, string) {
	var out []signerCert
	h := sha256.New()
	add := func(k string) {
		for _, c := range certsOf(k) {
			out = append(out, signerCert{cert: c, ski: []byte(k)})
			h.Write(c.Raw)
		}
	}
	add(key)
	for _, k := range keysOfName {
		if k != key {
			add(k)
		}
	}
	return out, string(h.Sum(nil))
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
	return pathval.ComputeKeyID(c, buf)
}

// Check checks a verified chain (leaf first, root last): every certificate
// below the root against its issuer's CRL merged with the delta, looked up by
// the issuer's SKI and the serial; then, when Options.OCSP is on, the leaf
// with OCSP. It returns nil or an *Error. Staleness is judged at `at`.
//
// A CRL counts for a certificate only when its scope covers it (RFC 5280
// 6.3.3): its issuingDistributionPoint names one of the certificate's
// distribution points (or none), and onlyContains*/onlySomeReasons allow
// it. A certificate no CRL covers has no usable CRL (crl_unavailable),
// whatever a CRL of another scope says. The CRLs of the CA's other keys
// (same name) are candidates too; a CRL signed by a key other than the
// issuer's counts only while that key's certificate is valid and not
// revoked.
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
		if v == nil || !v.hasKey(iss.RawSubjectPublicKeyInfo) {
			if c.opts.OnUnavailable == Allow {
				continue
			}
			return refusal(ReasonCRLUnavailable, iss, cert, errNotConfigured)
		}
		if i == 0 {
			leafView = v
		}
		if err := c.checkCert(s, v, cert, iss, at, 0); err != nil {
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

// maxSignerDepth bounds how many CRL signers deep a check follows (a
// signer's CRL signed by yet another key, and so on).
const maxSignerDepth = 3

// checkCert checks one certificate against the CRLs that may speak for
// what v's key issued.
func (c *Checker) checkCert(s *snapshot, v *caView, cert, iss *x509.Certificate, at time.Time, depth int) error {
	if v.exempt {
		return nil
	}
	if len(v.cands) == 0 {
		return refusal(ReasonCRLUnavailable, iss, cert, errNoURL)
	}
	sn := cert.SerialNumber
	var m miss
	cleared := false
	for i := range v.cands {
		cd := &v.cands[i]
		b := cd.base
		if b == nil {
			m.note(missNoCRL, cd, covAll, nil)
			continue
		}
		cov := b.scope.covers(cert)
		if cov != covAll && cov != covSomeReasons {
			m.note(missScope, cd, cov, nil)
			continue
		}
		if cd.deltaApplies {
			d := cd.delta
			if d.revoked.contains(sn) || b.revoked.contains(sn) || (b.held.contains(sn) && !d.removed.contains(sn)) {
				return refusal(ReasonRevoked, iss, cert, errListed)
			}
		} else if b.revoked.contains(sn) || b.held.contains(sn) {
			return refusal(ReasonRevoked, iss, cert, errListed)
		}
		switch {
		case cleared:
			// Already cleared: the others are read only for a listing.
		case cov == covSomeReasons:
			m.note(missScope, cd, cov, nil)
		case at.After(b.nextUpdate):
			m.note(missStale, cd, cov, nil)
		case cd.wantDelta && cd.delta == nil:
			m.note(missNoDelta, cd, cov, nil)
		case cd.wantDelta && at.After(cd.delta.nextUpdate):
			m.note(missDeltaStale, cd, cov, nil)
		default:
			if err := c.checkSigner(s, cd.baseSigner, at, depth); err != nil {
				m.note(missSigner, cd, cov, err)
				continue
			}
			if cd.deltaApplies {
				if err := c.checkSigner(s, cd.deltaSigner, at, depth); err != nil {
					m.note(missSigner, cd, cov, err)
					continue
				}
			}
			cleared = true
		}
	}
	if cleared {
		return nil
	}
	reason, err := m.explain(v, cert)
	return c.unavailable(reason, iss, cert, err)
}

// checkSigner checks the certificate of a key that signed CRLs for
// another key of its CA, and every configured certificate above it up to a
// self-signed one: each valid at `at`, and none revoked by the CRLs of the
// CA that issued it. nil r means the issuer's own key signed.
func (c *Checker) checkSigner(s *snapshot, r *signerRef, at time.Time, depth int) error {
	if r == nil {
		return nil
	}
	if depth >= maxSignerDepth {
		return fmt.Errorf("CRL signer %q: more than %d CRL signers deep", certfmt.Subject(r.cert), maxSignerDepth)
	}
	signer := r.cert
	if err := r.validated(at); err != nil {
		return fmt.Errorf("CRL signer %q (serial %s): its certification path is not valid: %w", certfmt.Subject(signer), serialHex(signer.SerialNumber), err)
	}
	for i, link := 0, r; ; i, link = i+1, link.up {
		if link == nil || i > maxSignerPath {
			return fmt.Errorf("CRL signer %q (serial %s): no configured path to a root", certfmt.Subject(signer), serialHex(signer.SerialNumber))
		}
		cert := link.cert
		if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
			return fmt.Errorf("CRL signer %q: certificate %q (serial %s) is not valid at %s", certfmt.Subject(signer),
				certfmt.Subject(cert), serialHex(cert.SerialNumber), at.UTC().Format(time.RFC3339))
		}
		if link.anchor {
			return nil
		}
		pv := s.cas[link.parent]
		if link.parent == "" || pv == nil {
			return fmt.Errorf("CRL signer %q: the issuer %q of certificate %q (serial %s) is not a configured CA", certfmt.Subject(signer),
				certfmt.Issuer(cert), certfmt.Subject(cert), serialHex(cert.SerialNumber))
		}
		if err := c.checkCert(s, pv, cert, pv.issuer, at, depth+1); err != nil {
			what := fmt.Sprintf("CRL signer %q (serial %s)", certfmt.Subject(signer), serialHex(signer.SerialNumber))
			if cert != signer {
				what += fmt.Sprintf(": certificate %q (serial %s) above it", certfmt.Subject(cert), serialHex(cert.SerialNumber))
			}
			var re *Error
			if errors.As(err, &re) {
				return fmt.Errorf("%s: %s by its issuer (SKI %s): %w", what, re.Reason, re.IssuerSKI, re.Err)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// missKind is why a candidate CRL did not clear a certificate.
type missKind uint8

const (
	missNone missKind = iota
	missScope
	missNoCRL
	missStale
	missNoDelta
	missDeltaStale
	missSigner
)

// miss keeps the most telling reason no candidate cleared a certificate:
// one about a CRL that covers it beats "does not cover it". It is built
// without allocating; explain makes the error.
type miss struct {
	kind missKind
	cd   *candidate
	cov  coverage
	err  error
}

func (m *miss) note(k missKind, cd *candidate, cov coverage, err error) {
	if m.kind == missNone || (m.kind == missScope && k != missScope) {
		*m = miss{kind: k, cd: cd, cov: cov, err: err}
	}
}

func (m *miss) explain(v *caView, cert *x509.Certificate) (string, error) {
	whose := "the CA's CRL"
	if m.cd != nil && m.cd.skiHex != v.skiHex {
		whose = "the CRL of the CA's key " + m.cd.skiHex
	}
	switch m.kind {
	case missNoCRL:
		err := errNoCRL
		if last := m.cd.fetchErr.Load(); last != nil {
			err = fmt.Errorf("%w (last attempt: %s)", errNoCRL, *last)
		}
		if m.cd.skiHex == v.skiHex {
			return ReasonCRLUnavailable, err
		}
		return ReasonCRLUnavailable, fmt.Errorf("%s: %w", whose, err)
	case missStale:
		return ReasonCRLStale, fmt.Errorf("CRL nextUpdate %s has passed", m.cd.base.nextUpdate.UTC().Format(time.RFC3339))
	case missNoDelta:
		return ReasonCRLUnavailable, errNoDelta
	case missDeltaStale:
		return ReasonCRLStale, fmt.Errorf("delta CRL nextUpdate %s has passed", m.cd.delta.nextUpdate.UTC().Format(time.RFC3339))
	case missSigner:
		return ReasonCRLUnavailable, fmt.Errorf("%s cannot be used: %w", whose, m.err)
	}
	scope := m.cd.base.scope
	var why string
	switch m.cov {
	case covNotNamed:
		why = "its issuingDistributionPoint names " + describeNames(scope.names) + ", not one of the certificate's distribution points (" +
			describeCertDPs(cert) + "): a partitioned CRL"
	case covWrongKind:
		why = "it covers " + scope.String()
	case covIndirect:
		why = "the certificate's distribution points name another CRL issuer (cRLIssuer): indirect CRLs are not supported"
	case covSomeReasons:
		why = "it covers only some revocation reasons for this certificate (" + scope.String() + ")"
	}
	return ReasonCRLUnavailable, fmt.Errorf("no CRL covers this certificate: %s does not: %s", whose, why)
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
//
// When the CA has several keys, every CRL that could clear an end-entity
// certificate of this key counts (the other keys' CRLs included, those
// limited to CA or attribute certificates excepted): the oldest of them is
// the answer, since any of them may be the one that clears.
func (c *Checker) ThisUpdate(issuerSKI []byte) time.Time {
	v := c.snap.Load().cas[string(issuerSKI)]
	if v == nil {
		return time.Time{}
	}
	if len(v.cands) == 0 || len(v.cands) == 1 && v.cands[0].skiHex == v.skiHex {
		return v.thisUpdate()
	}
	var oldest time.Time
	for i := range v.cands {
		cd := &v.cands[i]
		if cd.base == nil || !cd.base.scope.mayCoverEndEntities() {
			continue
		}
		t := cd.base.thisUpdate
		if cd.deltaApplies && cd.delta.thisUpdate.After(t) {
			t = cd.delta.thisUpdate
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
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

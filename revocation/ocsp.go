package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

const (
	// ocspMaxAge caps how long an answer is cached, whatever its NextUpdate.
	ocspMaxAge = time.Hour
	// ocspRetry is how long a failed or "unknown" answer is remembered, so a
	// down responder is not asked on every handshake.
	ocspRetry = 10 * time.Second
)

// ocspKey identifies (issuer SKI, serial) as a SHA-256, so the handshake
// path builds it on the stack.
type ocspKey [sha256.Size]byte

type ocspEntry struct {
	status    int // ocsp.Good, ocsp.Revoked, ocsp.Unknown, or ocspFailed
	expires   time.Time
	refreshAt time.Time // soft refresh behind, before expiry
	err       error
	refresh   atomic.Bool // a refresh behind is running
}

const ocspFailed = -1

type ocspCache struct {
	mu      sync.RWMutex // held only for map reads and writes, never during I/O
	entries map[ocspKey]*ocspEntry
	flights flightGroup[*ocspEntry]
	// queries counts responder queries by outcome (ocspOutcomes order).
	queries [len(ocspOutcomes)]atomic.Uint64
}

// ocspOutcomes are the results of one responder query, as counted by
// [Checker.OCSPQueries].
var ocspOutcomes = [...]string{"good", "revoked", "unknown", "error"}

func (o *ocspCache) count(status int, err error) {
	i := 3
	switch {
	case err != nil:
	case status == ocsp.Good:
		i = 0
	case status == ocsp.Revoked:
		i = 1
	default:
		i = 2
	}
	o.queries[i].Add(1)
}

func makeOCSPKey(ski []byte, serial *big.Int) (ocspKey, bool) {
	var buf [2 + maxSerialLen + 1 + maxSerialLen + 1]byte
	if len(ski) > maxSerialLen || serial == nil || serial.BitLen() > 8*maxSerialLen {
		return ocspKey{}, false
	}
	buf[0] = byte(len(ski))
	n := 1 + copy(buf[1:], ski)
	buf[n] = byte(serial.Sign() + 1)
	n++
	sl := (serial.BitLen() + 7) / 8
	serial.FillBytes(buf[n : n+sl])
	return sha256.Sum256(buf[:n+sl]), true
}

func (o *ocspCache) get(k ocspKey) *ocspEntry {
	o.mu.RLock()
	e := o.entries[k]
	o.mu.RUnlock()
	return e
}

// claim replaces old (nil for none) with e, unless another caller already
// replaced it.
func (o *ocspCache) claim(k ocspKey, old, e *ocspEntry) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.entries[k] != old {
		return false
	}
	o.entries[k] = e
	return true
}

// ocspSweepAt is the cache size from which put drops expired answers, so
// a stream of one-off client certificates cannot grow it for ever.
const ocspSweepAt = 1 << 16

func (o *ocspCache) put(k ocspKey, e *ocspEntry, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.entries[k] = e
	if len(o.entries) < ocspSweepAt {
		return
	}
	for k, old := range o.entries {
		if old.status != ocsp.Revoked && now.After(old.expires) {
			delete(o.entries, k)
		}
	}
}

// checkOCSP applies the OCSP mode to the leaf. v is the issuer's view, nil
// when the issuer is not a configured source.
func (c *Checker) checkOCSP(leaf, iss *x509.Certificate, v *caView, at time.Time) error {
	var buf [sha1.Size]byte
	key, ok := makeOCSPKey(issuerSKI(iss, &buf), leaf.SerialNumber)
	if !ok {
		return c.ocspMiss(iss, leaf, fmt.Errorf("serial or SKI too long for OCSP"))
	}
	e := c.ocsp.get(key)
	if e != nil && e.status == ocsp.Revoked {
		// Revocation is final; an old "revoked" still refuses.
		c.refreshBehind(key, e, leaf, iss, v, at)
		return refusal(ReasonRevoked, iss, leaf, errOCSPRevoked)
	}
	if e != nil && at.Before(e.expires) {
		c.refreshBehind(key, e, leaf, iss, v, at)
		if e.status == ocsp.Good {
			return nil
		}
		return c.ocspMiss(iss, leaf, e.err)
	}
	if c.opts.OCSP == OCSPSoft {
		// Claim the slot with a placeholder so that only this handshake
		// starts a fetch; the others admit without waiting, as before.
		ph := &ocspEntry{status: ocspFailed, expires: c.now().Add(c.opts.FetchTimeout), err: errOCSPPending}
		ph.refresh.Store(true)
		if c.ocsp.claim(key, e, ph) {
			c.bg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), c.opts.FetchTimeout)
				defer cancel()
				_, _ = c.fetchOCSP(ctx, key, leaf, iss, v)
			})
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.FetchTimeout)
	defer cancel()
	e, err := c.fetchOCSP(ctx, key, leaf, iss, v)
	if err != nil {
		return c.ocspMiss(iss, leaf, err)
	}
	switch e.status {
	case ocsp.Good:
		return nil
	case ocsp.Revoked:
		return refusal(ReasonRevoked, iss, leaf, errOCSPRevoked)
	}
	return c.ocspMiss(iss, leaf, e.err)
}

var (
	errOCSPRevoked = errors.New("OCSP responder says revoked")
	errOCSPPending = errors.New("OCSP query in progress")
)

// ocspMiss is the answer without a usable OCSP status: admit in soft mode,
// refuse in hard mode.
func (c *Checker) ocspMiss(iss, leaf *x509.Certificate, err error) error {
	if c.opts.OCSP == OCSPSoft {
		return nil
	}
	if err == nil {
		err = errors.New("no OCSP answer")
	}
	return refusal(ReasonOCSPUnavailable, iss, leaf, err)
}

// refreshBehind starts a background fetch when a cached entry is due for
// refresh; at most one per entry.
func (c *Checker) refreshBehind(key ocspKey, e *ocspEntry, leaf, iss *x509.Certificate, v *caView, at time.Time) {
	if at.Before(e.refreshAt) || !e.refresh.CompareAndSwap(false, true) {
		return
	}
	c.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.FetchTimeout)
		defer cancel()
		_, _ = c.fetchOCSP(ctx, key, leaf, iss, v)
		e.refresh.Store(false)
	})
}

// fetchOCSP asks the responder (deduplicated per key), verifies the answer
// and caches it. A failure is cached for ocspRetry and returned as err.
func (c *Checker) fetchOCSP(ctx context.Context, key ocspKey, leaf, iss *x509.Certificate, v *caView) (*ocspEntry, error) {
	return c.ocsp.flights.do(ctx, string(key[:]), func(ctx context.Context) (*ocspEntry, error) {
		e, err := c.queryOCSP(ctx, leaf, iss, v)
		if err != nil {
			c.ocsp.count(0, err)
		} else {
			c.ocsp.count(e.status, nil)
		}
		now := c.now()
		if err != nil {
			var buf [sha1.Size]byte
			c.log.Warn("OCSP query failed", "issuer_ski", hex.EncodeToString(issuerSKI(iss, &buf)),
				"serial", serialHex(leaf.SerialNumber), "err", err)
			c.ocsp.put(key, &ocspEntry{status: ocspFailed, expires: now.Add(ocspRetry), refreshAt: now.Add(ocspRetry), err: err}, now)
			return nil, err
		}
		switch {
		case !e.expires.IsZero():
			c.ocsp.put(key, e, now)
		case c.opts.OCSP == OCSPSoft:
			// An answer without nextUpdate is used once and not cached; in
			// soft mode nobody waits for it, so only remember not to ask
			// again on every handshake.
			c.ocsp.put(key, &ocspEntry{status: ocspFailed, expires: now.Add(ocspRetry), refreshAt: now.Add(ocspRetry),
				err: errors.New("OCSP answer without nextUpdate is not cached")}, now)
		}
		return e, nil
	})
}

func responderURL(leaf *x509.Certificate, v *caView) string {
	if v != nil && v.ocspURL != "" {
		return v.ocspURL
	}
	for _, u := range leaf.OCSPServer {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// queryOCSP makes one OCSP request and verifies the answer: signed by the
// issuer or by a responder certificate the issuer signed for OCSP signing
// and valid now; thisUpdate not in the future; nextUpdate not passed. An
// answer without nextUpdate is used once and not cached (zero expires).
func (c *Checker) queryOCSP(ctx context.Context, leaf, iss *x509.Certificate, v *caView) (*ocspEntry, error) {
	url := responderURL(leaf, v)
	if url == "" {
		return nil, errors.New("no OCSP responder for the certificate")
	}
	req, err := ocsp.CreateRequest(leaf, iss, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/ocsp-request")
	hreq.Header.Set("Accept", "application/ocsp-response")
	resp, err := c.opts.HTTPClient.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OCSP responder %s: HTTP status %s", url, resp.Status)
	}
	body, err := readCapped(resp.Body, ocspMaxSize, resp.ContentLength)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, iss)
	if err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	now := c.now()
	if err := authorizedResponder(r, iss, now); err != nil {
		return nil, fmt.Errorf("OCSP responder %s: %w", url, err)
	}
	if r.ThisUpdate.After(now.Add(c.opts.Skew)) {
		return nil, fmt.Errorf("OCSP responder %s: thisUpdate in the future", url)
	}
	if !r.NextUpdate.IsZero() && !r.NextUpdate.After(now) {
		return nil, fmt.Errorf("OCSP responder %s: answer expired at %s", url, r.NextUpdate.UTC().Format(time.RFC3339))
	}
	e := &ocspEntry{status: r.Status}
	if r.Status == ocsp.Unknown {
		e.err = fmt.Errorf("OCSP responder %s: status unknown", url)
	}
	switch {
	case r.Status == ocsp.Unknown:
		e.expires, e.refreshAt = now.Add(ocspRetry), now.Add(ocspRetry)
	case r.NextUpdate.IsZero():
		// Use once, do not cache.
	default:
		e.expires = now.Add(min(r.NextUpdate.Sub(now), ocspMaxAge))
		e.refreshAt = now.Add(e.expires.Sub(now) * 8 / 10)
	}
	c.log.Info("OCSP answer", "url", url, "serial", serialHex(leaf.SerialNumber), "status", ocspStatus(r.Status),
		"this_update", r.ThisUpdate, "next_update", r.NextUpdate)
	return e, nil
}

// authorizedResponder checks who signed: ParseResponseForCert already
// verified the signature, either by the issuer or by an embedded
// certificate the issuer signed. A delegated responder must also carry the
// OCSP-signing EKU (RFC 6960 4.2.2.2) and be valid now; otherwise any
// certificate the CA issued could vouch for its siblings.
func authorizedResponder(r *ocsp.Response, iss *x509.Certificate, now time.Time) error {
	rc := r.Certificate
	if rc == nil || bytes.Equal(rc.RawSubjectPublicKeyInfo, iss.RawSubjectPublicKeyInfo) {
		return nil
	}
	hasEKU := false
	for _, u := range rc.ExtKeyUsage {
		if u == x509.ExtKeyUsageOCSPSigning {
			hasEKU = true
		}
	}
	if !hasEKU {
		return errors.New("delegated responder certificate lacks the OCSP signing EKU")
	}
	if now.Before(rc.NotBefore) || now.After(rc.NotAfter) {
		return errors.New("delegated responder certificate is not valid now")
	}
	return nil
}

func ocspStatus(s int) string {
	switch s {
	case ocsp.Good:
		return "good"
	case ocsp.Revoked:
		return "revoked"
	}
	return "unknown"
}

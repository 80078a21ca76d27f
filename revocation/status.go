package revocation

import (
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
)

// SourceStatus describes one CA's revocation state, for /readyz, metrics
// and `certgate check`.
//
// It is also the "crls" list of /status.json: camelCase names, and times
// that are not known (no CRL yet, never fetched) are left out, not shown
// as 0001-01-01.
type SourceStatus struct {
	IssuerSKI string `json:"issuerSki"` // lower-case hex, as the metrics label
	Subject   string `json:"subject"`   // RFC 4514, as certgate prints DNs
	CRLURL    string `json:"crlUrl,omitempty"`
	DeltaURL  string `json:"deltaCrlUrl,omitempty"`
	Exempt    bool   `json:"crlExempt,omitempty"`

	Entries    int       `json:"entries"`             // entries of the base CRL in force
	ThisUpdate time.Time `json:"thisUpdate,omitzero"` // of the base CRL
	NextUpdate time.Time `json:"nextUpdate,omitzero"` // of the base CRL
	Number     string    `json:"crlNumber,omitempty"` // decimal CRL number of the base; "" if none
	FromCache  bool      `json:"fromCache,omitempty"` // the base in force was loaded from CacheDir
	Stale      bool      `json:"stale"`               // the base (or the required delta) is past nextUpdate
	// Scope is what the base CRL's issuingDistributionPoint limits it to,
	// "" when it covers every certificate of the CA.
	Scope string `json:"scope,omitempty"`
	// SignerSKI is the hex SKI of the CA certificate whose key signed the
	// base CRL, when it is not this source's own key (key rollover, a
	// separate CRL-signing key).
	SignerSKI string `json:"signerSki,omitempty"`
	// Certificates counts the configured certificates with this SKI.
	Certificates int `json:"certificates"`

	DeltaEntries    int       `json:"deltaEntries,omitempty"`
	DeltaThisUpdate time.Time `json:"deltaThisUpdate,omitzero"`
	DeltaNextUpdate time.Time `json:"deltaNextUpdate,omitzero"`
	DeltaNumber     string    `json:"deltaCrlNumber,omitempty"`
	DeltaApplied    bool      `json:"deltaApplied,omitempty"` // the delta is merged with the base

	LastFetch   time.Time `json:"lastFetch,omitzero"` // last attempt that ended, success or not
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
	LastError   string    `json:"lastError,omitempty"` // of the last failure; "" after a success
	// FetchErrors counts failures by kind (the Kind* constants).
	FetchErrors map[string]uint64 `json:"fetchErrors,omitempty"`
}

// Status returns every source's state, sorted by SKI.
func (c *Checker) Status() []SourceStatus {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SourceStatus, 0, len(c.sources))
	for _, s := range c.sources {
		v := s.view()
		st := SourceStatus{
			IssuerSKI:   s.skiHex,
			Subject:     certfmt.Subject(s.src.Issuer),
			CRLURL:      s.feeds[baseCRL].url,
			DeltaURL:    s.feeds[deltaCRL].url,
			Exempt:      s.src.Exempt,
			FromCache:   s.feeds[baseCRL].fromCache,
			LastFetch:   s.lastFetch,
			LastSuccess: s.lastSuccess,
			LastError:   s.lastErr,
			FetchErrors: maps.Clone(s.fetchErrors),
			Stale:       v.hasURL && !v.exempt && v.readiness(now) != nil,
		}
		st.Certificates = len(s.certs)
		if b := v.base; b != nil {
			st.Entries, st.ThisUpdate, st.NextUpdate, st.Number = b.entries, b.thisUpdate, b.nextUpdate, numberString(b.number)
			if b.scope != nil {
				st.Scope = b.scope.String()
			}
			if string(b.signerSKI) != s.key {
				st.SignerSKI = hex.EncodeToString(b.signerSKI)
			}
		}
		if d := v.delta; d != nil {
			st.DeltaEntries, st.DeltaThisUpdate, st.DeltaNextUpdate, st.DeltaNumber = d.entries, d.thisUpdate, d.nextUpdate, numberString(d.number)
			st.DeltaApplied = v.deltaApplies
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SourceStatus) int {
		switch {
		case a.IssuerSKI < b.IssuerSKI:
			return -1
		case a.IssuerSKI > b.IssuerSKI:
			return 1
		}
		return 0
	})
	return out
}

// readiness says why a CA with a CRL URL cannot be checked now, or nil.
func (v *caView) readiness(now time.Time) error {
	switch {
	case v.base == nil:
		return errNoCRL
	case now.After(v.base.nextUpdate):
		return fmt.Errorf("CRL stale since %s", v.base.nextUpdate.UTC().Format(time.RFC3339))
	case v.wantDelta && v.delta == nil:
		return errNoDelta
	case v.wantDelta && now.After(v.delta.nextUpdate):
		return fmt.Errorf("delta CRL stale since %s", v.delta.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// Ready returns nil when every non-exempt source with a CRL URL has a CRL
// (and its delta, when configured) that is not past nextUpdate, from the
// network or CacheDir; otherwise an error naming each SKI and why. It backs
// /readyz.
func (c *Checker) Ready() error {
	s := c.snap.Load()
	now := c.now()
	var errs []error
	for _, v := range s.cas {
		if v.exempt || !v.hasURL {
			continue
		}
		if err := v.readiness(now); err != nil {
			errs = append(errs, fmt.Errorf("CA %s: %w", v.skiHex, err))
		}
	}
	slices.SortFunc(errs, func(a, b error) int {
		switch {
		case a.Error() < b.Error():
			return -1
		case a.Error() > b.Error():
			return 1
		}
		return 0
	})
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("revocation: not ready: %w", errors.Join(errs...))
}

// OCSPQueries returns how many OCSP responder queries ended in each result
// (good, revoked, unknown, error) since [New]; every key is present.
func (c *Checker) OCSPQueries() map[string]uint64 {
	out := make(map[string]uint64, len(ocspOutcomes))
	for i, name := range ocspOutcomes {
		out[name] = c.ocsp.queries[i].Load()
	}
	return out
}

package revocation

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Policy is what a CA without a usable CRL means (revocation.onUnavailable).
type Policy int

const (
	// Deny refuses certificates of a CA whose CRL is missing or stale. It is
	// the default: fail closed.
	Deny Policy = iota
	// Allow admits them (a revoked serial found in a stale CRL is still
	// refused).
	Allow
)

func (p Policy) String() string {
	if p == Allow {
		return "allow"
	}
	return "deny"
}

// ParsePolicy reads "deny" (or "") and "allow".
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "deny":
		return Deny, nil
	case "allow":
		return Allow, nil
	}
	return Deny, fmt.Errorf("revocation: onUnavailable %q: want deny or allow", s)
}

// OCSPMode is how client certificates are checked with OCSP (revocation.ocsp).
type OCSPMode int

const (
	// OCSPOff never asks a responder.
	OCSPOff OCSPMode = iota
	// OCSPSoft answers from the cache and refreshes behind: a revoked answer
	// refuses, a missing or failed one admits.
	OCSPSoft
	// OCSPHard requires a fresh good answer; without one cached, Check
	// fetches it synchronously within Options.FetchTimeout.
	OCSPHard
)

func (m OCSPMode) String() string {
	switch m {
	case OCSPSoft:
		return "soft"
	case OCSPHard:
		return "hard"
	}
	return "off"
}

// ParseOCSPMode reads "off" (or ""), "soft" and "hard".
func ParseOCSPMode(s string) (OCSPMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off":
		return OCSPOff, nil
	case "soft":
		return OCSPSoft, nil
	case "hard":
		return OCSPHard, nil
	}
	return OCSPOff, fmt.Errorf("revocation: ocsp %q: want off, soft or hard", s)
}

// Source is one trusted CA whose certificates are checked.
type Source struct {
	// Issuer is the CA certificate. The cache key is its SKI (SubjectKeyId,
	// or the SHA-1 of the public key bits when absent).
	Issuer *x509.Certificate
	// CRLURL is an http://, https:// or file:// URL; "" means none.
	CRLURL string
	// DeltaCRLURL is the delta CRL's URL, used only with a CRLURL. When set,
	// a fresh delta is required as well as a fresh base.
	DeltaCRLURL string
	// OCSPURL overrides the responder named in the leaf's AIA.
	OCSPURL string
	// Exempt (crlExempt) trusts certificates this CA issued without CRL
	// checks. It is the only way to trust a CA with no CRLURL.
	Exempt bool
	// VerifySigner judges a configured certificate of this CA whose key
	// signed CRLs for another key of the CA (a separate CRL-signing key,
	// the old certificate of a rolled-over CA): RFC 5280 §6.1 path
	// validation to a configured root, with cRLSign when it has keyUsage,
	// as trust.Store.CheckCRLSigner does. A non-nil error makes the CRLs it
	// signed unusable (crl_unavailable, with the error as explanation).
	// The validity and revocation of the signer and of the configured
	// certificates above it are checked by the Checker either way.
	//
	// Its answer must depend on at only through the validity periods of
	// the signer and of the configured certificates (the Issuers of the
	// Sources): the Checker keeps it until at crosses one of them, so the
	// check path stays cheap. The Sources of one SetSources call are
	// expected to carry the same function (one trust snapshot): the first
	// non-nil one serves for all. nil means no path validation beyond the
	// Checker's own.
	VerifySigner func(signer *x509.Certificate, at time.Time) error
}

// Options configure a [Checker]. The zero value is usable.
type Options struct {
	OnUnavailable Policy
	OCSP          OCSPMode
	// CacheDir keeps the last good CRL of each CA; "" means no persistence.
	CacheDir string
	// CacheReadOnly reads CacheDir but never writes it (`certgate validate`
	// looks at the cache of a running serve and must not change it).
	CacheReadOnly bool
	// MaxCRLSize caps every fetched body (default 64 MiB).
	MaxCRLSize int64
	// FetchTimeout bounds every fetch (default 15s).
	FetchTimeout time.Duration
	// MinRefresh and MaxRefresh clamp the refresh schedule (defaults 1m, 1h).
	MinRefresh, MaxRefresh time.Duration
	// Skew is how far in the future a thisUpdate may be (default 5m).
	Skew time.Duration
	// HTTPClient fetches CRLs and OCSP answers. The default honours the
	// proxy environment variables, as operators expect.
	HTTPClient *http.Client
	// IngestShare is the share of one core a fetched CRL's ingest may take
	// (default 0.25; 1 means unpaced). Pacing keeps a big CRL's refresh
	// from stalling handshakes on a one-core server; it makes the ingest
	// take longer, not cost more.
	IngestShare float64
	// Logger receives one line per fetch outcome; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

const (
	defaultMaxCRLSize   = 64 << 20
	defaultFetchTimeout = 15 * time.Second
	defaultMinRefresh   = time.Minute
	defaultMaxRefresh   = time.Hour
	defaultSkew         = 5 * time.Minute
	// ocspMaxSize caps an OCSP response; real ones are a few KiB.
	ocspMaxSize = 1 << 20
)

func (o Options) withDefaults() Options {
	if o.IngestShare <= 0 {
		o.IngestShare = 0.25
	}
	if o.MaxCRLSize <= 0 {
		o.MaxCRLSize = defaultMaxCRLSize
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = defaultFetchTimeout
	}
	if o.MinRefresh <= 0 {
		o.MinRefresh = defaultMinRefresh
	}
	if o.MaxRefresh <= 0 {
		o.MaxRefresh = defaultMaxRefresh
	}
	if o.MaxRefresh < o.MinRefresh {
		o.MaxRefresh = o.MinRefresh
	}
	if o.Skew <= 0 {
		o.Skew = defaultSkew
	}
	if o.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyFromEnvironment
		o.HTTPClient = &http.Client{Transport: tr, Timeout: o.FetchTimeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

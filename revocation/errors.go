package revocation

import (
	"fmt"
	"time"
)

// Reason codes carried by [*Error]. They are part of the SPEC contract.
const (
	ReasonRevoked         = "revoked"
	ReasonCRLUnavailable  = "crl_unavailable"
	ReasonCRLStale        = "crl_stale"
	ReasonOCSPUnavailable = "ocsp_unavailable"
)

// Error is a refusal by [Checker.Check].
type Error struct {
	// Reason is one of the Reason* constants.
	Reason string
	// IssuerSKI is the hex subject key identifier of the certificate's issuer.
	IssuerSKI string
	// Serial is the hex serial number of the refused certificate.
	Serial string
	// Err is the detail, if any.
	Err error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("revocation: %s: serial %s issued by SKI %s", e.Reason, e.Serial, e.IssuerSKI)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the detail.
func (e *Error) Unwrap() error { return e.Err }

// ReasonCode returns the SPEC reason code, the method every certgate error
// shares so callers read reasons without importing this package.
func (e *Error) ReasonCode() string { return e.Reason }

// Fetch error kinds, as counted in [SourceStatus.FetchErrors] and named in
// logs. They are a closed set so they can label metrics.
const (
	KindHTTP      = "http"      // transport failure or an unexpected HTTP status
	KindTimeout   = "timeout"   // Options.FetchTimeout passed
	KindSize      = "size"      // larger than Options.MaxCRLSize
	KindParse     = "parse"     // not a well-formed v2 CRL (or the wrong kind: base vs delta)
	KindSignature = "signature" // wrong issuer name, AKI or signature
	KindRollback  = "rollback"  // CRL number went back, or same number with other content
	KindExpired   = "expired"   // already past its nextUpdate
	KindFuture    = "future"    // thisUpdate further in the future than Options.Skew
	KindExtension = "extension" // an unknown critical extension or an unsupported scope
	KindIO        = "io"        // reading a file:// URL or the cache directory failed
)

// FetchError is the failure of one fetch or load of a CRL.
type FetchError struct {
	Kind string // one of the Kind* constants
	URL  string // the URL, file:// URL or cache file
	Err  error
	// RetryAfter is the wait the CRL server asked for with Retry-After
	// (on a 503 or 429, say); 0 when it did not.
	RetryAfter time.Duration
}

func (e *FetchError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("revocation: %s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("revocation: %s: %s: %v", e.URL, e.Kind, e.Err)
}

// Unwrap returns the cause.
func (e *FetchError) Unwrap() error { return e.Err }

func fetchErrorf(kind, format string, args ...any) *FetchError {
	return &FetchError{Kind: kind, Err: fmt.Errorf(format, args...)}
}

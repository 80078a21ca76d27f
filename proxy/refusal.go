package proxy

import (
	"net/http"
	"slices"
	"strconv"
)

// Status codes nginx answers for client certificate failures with
// ssl_verify_client on: what operators and their monitoring already know.
const (
	StatusCertificateError    = 495 // nginx "SSL Certificate Error"
	StatusCertificateRequired = 496 // nginx "SSL Certificate Required"
)

// refusal is the HTTP answer to one reason code (rejectWith: http).
type refusal struct {
	status int
	hint   string // one line, for the person at the browser or curl
}

// refusals covers every reason code a request can be refused with. A
// certificate that is missing gets 496 and one that fails a check 495, as
// in nginx; a certificate that is fine but binds no admissible user gets
// 403; an unreachable directory is the server's problem (503).
var refusals = map[string]refusal{
	ReasonNoCertificate:     {StatusCertificateRequired, "this site requires a client certificate: pick one in the browser, or give curl --cert and --key"},
	"untrusted":             {StatusCertificateError, "the certificate was not issued by a certificate authority this site trusts"},
	"expired":               {StatusCertificateError, "the certificate has expired: renew it"},
	"not_yet_valid":         {StatusCertificateError, "the certificate is not valid yet: check the device's clock"},
	"bad_usage":             {StatusCertificateError, "the certificate is not meant for client authentication (key usage or extended key usage)"},
	"name_constraints":      {StatusCertificateError, "the certificate names something its certificate authority may not certify"},
	"malformed_certificate": {StatusCertificateError, "the certificate cannot be parsed"},
	"revoked":               {StatusCertificateError, "the certificate has been revoked: ask for a new one"},
	"crl_unavailable":       {StatusCertificateError, "the revocation list of the certificate's authority is not available: try again later, or tell the site's administrator"},
	"crl_stale":             {StatusCertificateError, "the revocation list of the certificate's authority is out of date: try again later, or tell the site's administrator"},
	"ocsp_unavailable":      {StatusCertificateError, "the certificate's OCSP responder did not answer: try again later"},
	"identity_unmapped":     {http.StatusForbidden, "no user of this site is bound to this certificate"},
	"identity_ambiguous":    {http.StatusForbidden, "several users of this site match this certificate: tell the site's administrator"},
	"user_disabled":         {http.StatusForbidden, "the account of this certificate is disabled"},
	ReasonSessionRevoked:    {http.StatusForbidden, "the sessions of this account were revoked: sign in again once the administrator allows it"},
	ReasonEASUserMismatch:   {http.StatusForbidden, "the User of the request is not the user of the certificate"},
	"directory_unavailable": {http.StatusServiceUnavailable, "the user directory cannot be reached: try again later"},
	ReasonMisdirected:       {http.StatusMisdirectedRequest, "the Host header does not match the TLS server name"},
}

// RefusalStatus is the HTTP status a request refused for reason gets with
// rejectWith: http.
func RefusalStatus(reason string) int {
	if r, ok := refusals[reason]; ok {
		return r.status
	}
	return http.StatusForbidden
}

// writeRefusal answers a refused request: the status, then one line with the
// reason code and a hint. A reason without an entry gets 403 and the code.
// The connection is closed after it (HTTP/1.1), so the next request of a
// refused client starts over.
func writeRefusal(w http.ResponseWriter, reason string) {
	r, ok := refusals[reason]
	if !ok {
		r = refusal{status: http.StatusForbidden, hint: "access refused"}
	}
	if reason != ReasonMisdirected {
		// The connection's certificate or user is refused: every further
		// request on it would be. (A misdirected request is about this
		// request's Host; the connection stays good for its own name.)
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, statusText(r.status)+": "+reason+": "+r.hint, r.status)
}

func statusText(code int) string {
	switch code {
	case StatusCertificateError:
		return "SSL Certificate Error"
	case StatusCertificateRequired:
		return "SSL Certificate Required"
	}
	if t := http.StatusText(code); t != "" {
		return t
	}
	return strconv.Itoa(code)
}

// ReasonCodes lists every reason code a decision or a request can end
// with, "ok" first; the documentation is tested against it.
func ReasonCodes() []string {
	out := []string{"ok"}
	for r := range refusals {
		out = append(out, r)
	}
	slices.Sort(out[1:])
	return out
}

// ReservedHeaders lists the request headers a client may not send (they are
// removed), besides the configured identity header.
func ReservedHeaders() []string { return slices.Clone(reservedHeaders) }

package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/certgate/certgate/trust"
)

// Reason codes produced by this package (the others come from trust and
// revocation errors through their ReasonCode method).
const (
	ReasonSessionRevoked  = "session_revoked"
	ReasonEASUserMismatch = "eas_user_mismatch"
	ReasonMisdirected     = "misdirected"
	ReasonNoCertificate   = "no_certificate"
)

// Verifier builds and verifies a client chain; trust.Store implements it.
type Verifier interface {
	Verify(certs []*x509.Certificate, at time.Time) ([]*x509.Certificate, error)
}

// RevocationChecker answers from memory whether a verified chain is revoked;
// revocation.Checker implements it. Check must not touch the network.
type RevocationChecker interface {
	Check(chain []*x509.Certificate, at time.Time) error
	// ThisUpdate is the thisUpdate of the CRL in force for the issuer.
	ThisUpdate(issuerSKI []byte) time.Time
	// RequestFresh asks for a CRL newer than after, without waiting.
	RequestFresh(issuerSKI []byte, after time.Time)
	// Generation changes whenever a new CRL is swapped in.
	Generation() uint64
}

// Binder maps a leaf certificate to one directory user; trust.Binder
// implements it.
type Binder interface {
	Bind(ctx context.Context, leaf *x509.Certificate) (trust.Identity, error)
}

// Decision is the outcome of the pipeline for one certificate chain.
type Decision struct {
	Reason   string // "ok" or a SPEC reason code
	Err      error  // the cause, nil when Reason is "ok"
	Chain    []*x509.Certificate
	Identity trust.Identity
}

// OK reports whether the decision admits the client.
func (d *Decision) OK() bool { return d.Reason == string(trust.OK) }

// sessionRevokedError is the user-state refusal of SPEC step 4.
type sessionRevokedError struct{ msg string }

func (e *sessionRevokedError) Error() string      { return e.msg }
func (e *sessionRevokedError) ReasonCode() string { return ReasonSessionRevoked }

// Decide runs SPEC's pipeline: chain, revocation, binding, user state.
// established is when the connection being decided was set up: a user whose
// sessions were revoked after it is refused even if everything else holds.
// The same function serves handshakes, requests and `certgate check`.
func (p *Policy) Decide(ctx context.Context, certs []*x509.Certificate, at, established time.Time) Decision {
	if len(certs) == 0 {
		return refuse(ReasonNoCertificate, errors.New("no client certificate"), nil)
	}
	chain, err := p.Trust.Verify(certs, at)
	if err != nil {
		return refuse(reasonOr(err, string(trust.Untrusted)), err, nil)
	}
	if p.Revocation != nil {
		if err := p.Revocation.Check(chain, at); err != nil {
			return refuse(reasonOr(err, "crl_unavailable"), err, chain)
		}
	}
	id, err := p.Binder.Bind(ctx, chain[0])
	if err != nil {
		return refuse(reasonOr(err, string(trust.IdentityUnmapped)), err, chain)
	}
	if err := p.checkIdentity(chain[0], id); err != nil {
		return refuse(reasonOr(err, string(trust.IdentityUnmapped)), err, chain)
	}
	if vf := id.User.SessionsValidFrom; !vf.IsZero() {
		if established.Before(vf) {
			d := refuse(ReasonSessionRevoked, &sessionRevokedError{"connection established before the user's sessions were revoked at " + vf.UTC().Format(time.RFC3339)}, chain)
			d.Identity = id
			return d
		}
		// The user is admitted again only under a CRL published after the
		// revocation: a certificate revoked together with the sessions must
		// not slip through on the old CRL.
		if p.Revocation != nil && len(chain) > 1 {
			ski := issuerKey(chain[1])
			if tu := p.Revocation.ThisUpdate(ski); !tu.After(vf) {
				p.Revocation.RequestFresh(ski, vf)
				d := refuse(ReasonSessionRevoked, &sessionRevokedError{"waiting for a CRL published after the user's sessions were revoked at " + vf.UTC().Format(time.RFC3339)}, chain)
				d.Identity = id
				return d
			}
		}
	}
	return Decision{Reason: string(trust.OK), Chain: chain, Identity: id}
}

// checkIdentity refuses an identity the backend cannot be told unambiguously
// in the identity header: one that is not a clean header value (it would
// otherwise be admitted and fail only at the backend as a 502, or be read
// differently there), and, with no directory, a certificate that carries
// several different values for the binding that matched: a directory would
// find two users (identity_ambiguous), and taking the first would let the
// order of SANs pick who the client is.
func (p *Policy) checkIdentity(leaf *x509.Certificate, id trust.Identity) error {
	if why := badHeaderValue(id.User.UserPrincipalName); why != "" {
		return trust.Errorf(trust.IdentityUnmapped, "identity %q cannot be sent in a header: %s", id.User.UserPrincipalName, why)
	}
	if !p.IdentityFromCertificate {
		return nil
	}
	values, err := trust.FieldValues(leaf, id.Binding.Field)
	if err != nil {
		return trust.Errorf(trust.IdentityUnmapped, "binding %s: %v", id.Binding, err)
	}
	for _, v := range values {
		if v != "" && !strings.EqualFold(v, id.Value) {
			return trust.Errorf(trust.IdentityAmbiguous, "binding %s: the certificate carries %q and %q", id.Binding, id.Value, v)
		}
	}
	return nil
}

// badHeaderValue says why s is not a clean identity header value, or "".
func badHeaderValue(s string) string {
	switch {
	case s == "":
		return "it is empty"
	case !utf8.ValidString(s):
		return "it is not valid UTF-8"
	case strings.TrimSpace(s) != s:
		return "it has leading or trailing white space"
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "it contains a control character"
		}
	}
	if !httpguts.ValidHeaderFieldValue(s) {
		return "it is not a valid header value"
	}
	return ""
}

func refuse(reason string, err error, chain []*x509.Certificate) Decision {
	return Decision{Reason: reason, Err: err, Chain: chain}
}

func reasonOr(err error, fallback string) string {
	if r := trust.ReasonOf(err); r != "" {
		return r
	}
	return fallback
}

// issuerKey is the key revocation uses for a CA: its SKI, or the SHA-1 of
// its public key when the certificate carries none.
func issuerKey(ca *x509.Certificate) []byte {
	if len(ca.SubjectKeyId) > 0 {
		return ca.SubjectKeyId
	}
	return trust.SubjectKeyID(ca)
}

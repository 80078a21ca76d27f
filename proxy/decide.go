package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

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

package trust

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/trust/pathval"
)

// AuthorityType says what a configured CA is for.
type AuthorityType string

// The authority types of SPEC's trustedCertificateAuthorities.
const (
	// AuthorityRoot is a trust anchor.
	AuthorityRoot AuthorityType = "root"
	// AuthorityIntermediate is path-building material and the home of its
	// CRL URLs, never an anchor: it must itself chain to a configured root.
	AuthorityIntermediate AuthorityType = "intermediate"
)

// CA is one configured certificate authority.
type CA struct {
	Type        AuthorityType
	Cert        *x509.Certificate
	CRLURL      string
	DeltaCRLURL string
	OCSPURL     string
	// CRLExempt trusts a CA without CRL checks; SPEC wants it explicit.
	CRLExempt bool
}

// SKI returns the CA's subjectKeyIdentifier, or the RFC 5280 method 1 key
// identifier when the certificate has none, so every CA has a key.
func (c CA) SKI() []byte { return SubjectKeyID(c.Cert) }

// StoreOption adjusts a [Store] at construction.
type StoreOption func(*storeOptions)

type storeOptions struct {
	maxChain  int
	maxSANs   int
	minRSA    int
	cacheSize int
	now       func() time.Time
}

// MaxChainLength caps the verified chain, leaf and root included, and the
// number of certificates a client may send (default 8).
func MaxChainLength(n int) StoreOption { return func(o *storeOptions) { o.maxChain = n } }

// MaxSANs caps the subjectAltName entries of a leaf (default 64). Go's
// name-constraint check costs names × constraints, so an unbounded SAN
// list is a handshake-time CPU lever for anyone holding a certificate.
func MaxSANs(n int) StoreOption { return func(o *storeOptions) { o.maxSANs = n } }

// MinRSABits is the smallest RSA modulus accepted anywhere in a chain and
// in the configured CAs (default 2048).
func MinRSABits(n int) StoreOption { return func(o *storeOptions) { o.minRSA = n } }

// VerifyCacheSize bounds the cache of verified chains (default 4096
// entries); 0 disables it.
func VerifyCacheSize(n int) StoreOption { return func(o *storeOptions) { o.cacheSize = n } }

// WithClock sets the store's default clock (default time.Now). Verify and
// CAStatus take their time as an argument.
func WithClock(now func() time.Time) StoreOption { return func(o *storeOptions) { o.now = now } }

// Store is an immutable trust snapshot: the configured CAs, the path
// validator built from them once, and a cache of verified chains. It is
// safe for concurrent use; a configuration reload builds a new Store and
// swaps it in.
type Store struct {
	cas        []CA
	bySKI      map[string][]int // several certificates may share one key
	configured map[[sha256.Size]byte]bool
	validator  *pathval.Verifier
	hint       *x509.CertPool
	gen        uint64
	opt        storeOptions
	cache      *chainCache // nil when disabled
}

// NewStore builds a Store from the configured CAs. It refuses only what
// could never work: no root, a missing certificate, an unknown authority
// type. A CA that is broken (expired, not yet valid, badly signed, not a
// CA, a weak key, an unhandled critical extension, an intermediate that
// does not chain to a root) is kept: it is a fact of the moment, reported
// by [Store.CAStatus], and the chains that need it are refused by Verify
// with a reason naming it. Several CAs may share a key identifier (a CA
// renewed with the same key, a cross-signed CA).
func NewStore(cas []CA, opts ...StoreOption) (*Store, error) {
	o := storeOptions{maxChain: 8, maxSANs: 64, minRSA: 2048, cacheSize: 4096, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.maxChain < 1:
		return nil, fmt.Errorf("trust: MaxChainLength %d: want at least 1", o.maxChain)
	case o.maxSANs < 1:
		return nil, fmt.Errorf("trust: MaxSANs %d: want at least 1", o.maxSANs)
	case o.minRSA < 0:
		return nil, fmt.Errorf("trust: MinRSABits %d: want 0 or more", o.minRSA)
	case o.cacheSize < 0:
		return nil, fmt.Errorf("trust: VerifyCacheSize %d: want 0 or more", o.cacheSize)
	case o.now == nil:
		return nil, errors.New("trust: WithClock: nil clock")
	}
	s := &Store{
		cas:        slices.Clone(cas),
		bySKI:      make(map[string][]int, len(cas)),
		configured: make(map[[sha256.Size]byte]bool, len(cas)),
		hint:       x509.NewCertPool(),
		gen:        newGen(),
		opt:        o,
	}
	if o.cacheSize > 0 {
		s.cache = newChainCache(o.cacheSize)
	}
	var roots, inters []*x509.Certificate
	for i, ca := range s.cas {
		if ca.Cert == nil {
			return nil, fmt.Errorf("trust: CA %d: no certificate", i+1)
		}
		switch ca.Type {
		case AuthorityRoot:
			roots = append(roots, ca.Cert)
		case AuthorityIntermediate:
			inters = append(inters, ca.Cert)
		default:
			return nil, fmt.Errorf("trust: CA %s: authority type %q, want %q or %q", describe(ca.Cert), ca.Type, AuthorityRoot, AuthorityIntermediate)
		}
		ski := string(ca.SKI())
		s.bySKI[ski] = append(s.bySKI[ski], i)
		s.configured[sha256.Sum256(ca.Cert.Raw)] = true
		s.hint.AddCert(ca.Cert)
	}
	if len(roots) == 0 {
		return nil, errors.New("trust: no root CA configured")
	}
	s.validator = pathval.New(roots, inters, pathval.Options{
		MaxLength:  o.maxChain,
		MinRSABits: o.minRSA,
		Usage:      x509.ExtKeyUsageClientAuth,
	})
	return s, nil
}

// CAStatus is whether a configured CA can take part in a chain at a moment.
type CAStatus struct {
	CA     CA
	Usable bool
	// Reason and Defect say why not: a SPEC reason code and an
	// explanation naming the certificate and the rule.
	Reason Reason
	Defect string
}

// CAStatus judges every configured CA at time at (time.Now when zero), in
// configuration order: a root by its own validity and extensions, an
// intermediate by a valid path from it to a root on which it could issue
// client certificates. It is computed at each call because validity is a
// matter of time.
func (s *Store) CAStatus(at time.Time) []CAStatus {
	if at.IsZero() {
		at = s.opt.now()
	}
	out := make([]CAStatus, len(s.cas))
	for i, ca := range s.cas {
		out[i] = CAStatus{CA: ca, Usable: true}
		if err := s.validator.CheckCA(ca.Cert, at); err != nil {
			out[i].Usable = false
			out[i].Reason = reasonOf(err)
			out[i].Defect = err.Error()
		}
	}
	return out
}

// CheckCRLSigner judges a configured certificate whose key signs CRLs
// (a separate CRL-signing key of a CA, the old certificate of a rolled-over
// CA) at time at (the store's clock when zero): RFC 5280 §6.1 path
// validation from it to a configured root through the configured CAs,
// with the same limits as Verify (chain length, RSA key size), and cRLSign
// when it has keyUsage. It need not be a CA nor allow clientAuth. Whether
// it or a CA above it is revoked is for the revocation checker, which
// calls this. Every error is a [*Error] naming the certificate at fault
// and the rule.
//
// The answer depends on at only through the validity periods of signer
// and the configured certificates, so callers may keep it until at
// crosses one of them.
func (s *Store) CheckCRLSigner(signer *x509.Certificate, at time.Time) error {
	if signer == nil {
		return Errorf(Untrusted, "no CRL signer certificate")
	}
	if at.IsZero() {
		at = s.opt.now()
	}
	if err := s.validator.CheckCRLSigner(signer, at); err != nil {
		return &Error{Reason: reasonOf(err), Err: err}
	}
	return nil
}

// newGen draws the store's generation number at random: unique with
// overwhelming probability without a package-level counter.
func newGen() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // never fails since Go 1.24
		if g := binary.LittleEndian.Uint64(b[:]); g != 0 {
			return g
		}
	}
}

// describe names a certificate in errors: subject and key identifier.
func describe(c *x509.Certificate) string {
	return fmt.Sprintf("%q (SKI %s)", certfmt.Subject(c), certfmt.SKI(SubjectKeyID(c)))
}

// HintPool returns the configured roots and intermediates, for
// tls.Config.ClientCAs: the CA names of the CertificateRequest (which
// clients pick their certificate by) and Go's early gate. It is not the
// trust decision, which is [Store.Verify] with roots-only anchors. The pool
// is shared: callers must not modify it.
func (s *Store) HintPool() *x509.CertPool { return s.hint }

// CAs returns the configured CAs in configuration order.
func (s *Store) CAs() []CA { return slices.Clone(s.cas) }

// BySKI returns the CA whose key identifier is ski; when several share it
// (a renewed or cross-signed CA), the first configured. They share the
// CRL state kept under that key identifier.
func (s *Store) BySKI(ski []byte) (CA, bool) {
	if ix := s.bySKI[string(ski)]; len(ix) > 0 {
		return s.cas[ix[0]], true
	}
	return CA{}, false
}

// IssuerOf returns the configured CA that issued cert: among the CAs its
// authorityKeyIdentifier names (all of them when it has none), the one
// whose subject matches cert's issuer by RFC 5280 §7.1 and whose key
// verifies cert's signature.
func (s *Store) IssuerOf(cert *x509.Certificate) (CA, bool) {
	ix := s.bySKI[string(cert.AuthorityKeyId)]
	if len(ix) == 0 {
		ix = make([]int, len(s.cas))
		for i := range ix {
			ix[i] = i
		}
	}
	for _, i := range ix {
		ca := s.cas[i]
		if pathval.SameName(ca.Cert.RawSubject, cert.RawIssuer) &&
			ca.Cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) == nil {
			return ca, true
		}
	}
	return CA{}, false
}

// Gen returns a number unique to this Store, for caches that must not
// outlive a trust reload.
func (s *Store) Gen() uint64 { return s.gen }

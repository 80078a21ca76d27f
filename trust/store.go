package trust

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
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

// WithClock sets the clock NewStore uses to check that intermediates chain
// to a root (default time.Now). Verify takes its time as an argument.
func WithClock(now func() time.Time) StoreOption { return func(o *storeOptions) { o.now = now } }

// Store is an immutable trust snapshot: the configured CAs, the pools built
// from them once, and a cache of verified chains. It is safe for concurrent
// use; a configuration reload builds a new Store and swaps it in.
type Store struct {
	cas           []CA
	bySKI         map[string]CA
	roots         *x509.CertPool
	intermediates *x509.CertPool
	hint          *x509.CertPool
	gen           uint64
	opt           storeOptions
	clientAuth    []x509.ExtKeyUsage
	cache         *chainCache // nil when disabled
}

// NewStore builds a Store from the configured CAs. It refuses a set with no
// root, a certificate that is not a CA, an RSA key below MinRSABits, two CAs
// with the same key identifier, and an intermediate that does not chain to
// a configured root through the other configured intermediates.
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
		cas:           slices.Clone(cas),
		bySKI:         make(map[string]CA, len(cas)),
		roots:         x509.NewCertPool(),
		intermediates: x509.NewCertPool(),
		hint:          x509.NewCertPool(),
		gen:           newGen(),
		opt:           o,
		clientAuth:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if o.cacheSize > 0 {
		s.cache = newChainCache(o.cacheSize)
	}
	index := make(map[string]int, len(cas))
	roots := 0
	for i, ca := range s.cas {
		if ca.Cert == nil {
			return nil, fmt.Errorf("trust: CA %d: no certificate", i+1)
		}
		name := describe(ca.Cert)
		if !ca.Cert.IsCA {
			return nil, fmt.Errorf("trust: CA %s: not a CA certificate (basicConstraints cA is not set)", name)
		}
		if bits, weak := weakRSA(ca.Cert, o.minRSA); weak {
			return nil, fmt.Errorf("trust: CA %s: RSA key of %d bits, want at least %d", name, bits, o.minRSA)
		}
		ski := string(ca.SKI())
		if j, dup := index[ski]; dup {
			return nil, fmt.Errorf("trust: CA %s has the same key identifier as CA %s", name, describe(s.cas[j].Cert))
		}
		index[ski] = i
		s.bySKI[ski] = ca
		switch ca.Type {
		case AuthorityRoot:
			s.roots.AddCert(ca.Cert)
			roots++
		case AuthorityIntermediate:
			s.intermediates.AddCert(ca.Cert)
		default:
			return nil, fmt.Errorf("trust: CA %s: authority type %q, want %q or %q", name, ca.Type, AuthorityRoot, AuthorityIntermediate)
		}
		s.hint.AddCert(ca.Cert)
	}
	if roots == 0 {
		return nil, errors.New("trust: no root CA configured")
	}
	now := o.now()
	for _, ca := range s.cas {
		if ca.Type != AuthorityIntermediate {
			continue
		}
		// The question is structural (does a signature path to a root
		// exist?), so the check runs at a moment inside the intermediate's
		// own validity: an expired intermediate must not make a reload fail,
		// it makes the leaves under it fail as "expired".
		at := now
		if at.Before(ca.Cert.NotBefore) {
			at = ca.Cert.NotBefore
		} else if at.After(ca.Cert.NotAfter) {
			at = ca.Cert.NotAfter
		}
		_, err := ca.Cert.Verify(x509.VerifyOptions{
			Roots:         s.roots,
			Intermediates: s.intermediates,
			CurrentTime:   at,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return nil, fmt.Errorf("trust: intermediate CA %s does not chain to a configured root: %w", describe(ca.Cert), err)
		}
	}
	return s, nil
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

// weakRSA reports an RSA key below minBits.
func weakRSA(c *x509.Certificate, minBits int) (int, bool) {
	if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N != nil {
		bits := k.N.BitLen()
		return bits, bits < minBits
	}
	return 0, false
}

// HintPool returns the configured roots and intermediates, for
// tls.Config.ClientCAs: the CA names of the CertificateRequest (which
// clients pick their certificate by) and Go's early gate. It is not the
// trust decision, which is [Store.Verify] with roots-only anchors. The pool
// is shared: callers must not modify it.
func (s *Store) HintPool() *x509.CertPool { return s.hint }

// CAs returns the configured CAs in configuration order.
func (s *Store) CAs() []CA { return slices.Clone(s.cas) }

// BySKI returns the CA whose key identifier is ski. It does not allocate.
func (s *Store) BySKI(ski []byte) (CA, bool) {
	ca, ok := s.bySKI[string(ski)]
	return ca, ok
}

// IssuerOf returns the configured CA that issued cert: the one its
// authorityKeyIdentifier names, or, for a certificate without a usable AKI,
// the CA whose subject is cert's issuer and whose key verifies cert's
// signature.
func (s *Store) IssuerOf(cert *x509.Certificate) (CA, bool) {
	if len(cert.AuthorityKeyId) > 0 {
		if ca, ok := s.bySKI[string(cert.AuthorityKeyId)]; ok && bytes.Equal(ca.Cert.RawSubject, cert.RawIssuer) {
			return ca, true
		}
	}
	for _, ca := range s.cas {
		if bytes.Equal(ca.Cert.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(ca.Cert) == nil {
			return ca, true
		}
	}
	return CA{}, false
}

// Gen returns a number unique to this Store, for caches that must not
// outlive a trust reload.
func (s *Store) Gen() uint64 { return s.gen }

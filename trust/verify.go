package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/certgate/certgate/trust/pathval"
)

// Verify builds and verifies the client's chain at time at (time.Now when
// zero). certs[0] is the leaf, the rest is what the client sent. Anchors are
// the configured roots only; path-building material is the configured
// intermediates and the sent certificates. The path is judged by
// [pathval] (RFC 5280 §6.1): validity of every certificate at time at,
// basicConstraints and pathLenConstraint, keyUsage, name constraints,
// critical extensions, and a leaf extKeyUsage allowing clientAuth (an
// EKU-less leaf does). Among the chains that verify, the shortest is
// returned, leaf first and root last.
//
// Every error is a [*Error] with a SPEC reason code: no_certificate,
// expired or not_yet_valid, bad_usage, name_constraints,
// malformed_certificate (a leaf whose names cannot be read), or untrusted
// for everything else: no path to a root, a chain longer than
// MaxChainLength, an RSA key below MinRSABits, a leaf with more than
// MaxSANs subjectAltName entries or a malformed SAN, an unhandled critical
// extension, a configured CA presented as a client certificate. Its
// message names the certificate at fault and the rule; for untrusted, the
// issuer looked for and the CAs tried.
//
// A critical SAN holding only otherNames is accepted only when certgate's
// own parser finds at least one well-formed UPN in it: a SAN of names
// certgate cannot read identifies nobody.
func (s *Store) Verify(certs []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	if len(certs) == 0 || certs[0] == nil {
		return nil, &Error{Reason: NoCertificate, Err: errors.New("no client certificate")}
	}
	if slices.Contains(certs, nil) {
		return nil, Errorf(Untrusted, "nil certificate in the presented chain")
	}
	if len(certs) > s.opt.maxChain {
		return nil, Errorf(Untrusted, "client sent %d certificates, more than the maximum chain length %d", len(certs), s.opt.maxChain)
	}
	if at.IsZero() {
		at = time.Now()
	}
	var key [sha256.Size]byte
	if s.cache != nil {
		key = chainKey(certs)
		if chain, ok := s.cache.get(key, at); ok {
			// A fresh slice with this call's leaf: same bytes as the cached
			// one, and the caller's pointer, for callers that compare them.
			out := slices.Clone(chain)
			out[0] = certs[0]
			return out, nil
		}
	}
	chain, err := s.verify(certs, at)
	if err != nil {
		return nil, err
	}
	if s.cache != nil {
		s.cache.put(key, slices.Clone(chain))
	}
	return chain, nil
}

func (s *Store) verify(certs []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	leaf := certs[0]
	if s.configured[sha256.Sum256(leaf.Raw)] {
		return nil, Errorf(BadUsage, "%s is a configured CA certificate, not a client certificate", describe(leaf))
	}
	if san, ok := sanExtension(leaf); ok {
		info, err := parseSAN(san)
		if err != nil {
			return nil, &Error{Reason: Untrusted, Err: err}
		}
		if info.count > s.opt.maxSANs {
			return nil, Errorf(Untrusted, "leaf has %d subjectAltName entries, more than the maximum %d", info.count, s.opt.maxSANs)
		}
		if info.otherNamesOnly && len(info.upns) == 0 && slices.ContainsFunc(leaf.UnhandledCriticalExtensions, oidSAN.Equal) {
			return nil, Errorf(Untrusted, "%s: unhandled critical extension: a subjectAltName of otherNames none of which is a UPN", describe(leaf))
		}
	}
	chain, err := s.validator.Verify(leaf, certs[1:], at)
	if err != nil {
		return nil, &Error{Reason: reasonOf(err), Err: err}
	}
	return chain, nil
}

// reasonOf maps a pathval refusal to its reason code; pathval's reasons
// are SPEC reason codes already.
func reasonOf(err error) Reason {
	var pe *pathval.Error
	if errors.As(err, &pe) {
		return Reason(pe.Reason)
	}
	return Untrusted
}

// chainKey hashes the presented certificates. DER is self-delimiting, so
// the concatenation is unambiguous.
func chainKey(certs []*x509.Certificate) [sha256.Size]byte {
	if len(certs) == 1 {
		return sha256.Sum256(certs[0].Raw)
	}
	h := sha256.New()
	for _, c := range certs {
		h.Write(c.Raw)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// chainCache remembers verified chains. Only successes are stored, so an
// attacker without a valid certificate cannot fill it; it is bounded and
// evicts an arbitrary entry when full, which costs a re-verification at
// worst. A hit re-checks the chain's validity window against the new time:
// validity is the only input of Verify that changes for a fixed store and
// fixed certificates.
type chainCache struct {
	mu  sync.RWMutex
	max int
	m   map[[sha256.Size]byte]cachedChain
}

type cachedChain struct {
	chain               []*x509.Certificate
	notBefore, notAfter time.Time // the intersection of the chain's windows
}

func newChainCache(max int) *chainCache {
	return &chainCache{max: max, m: make(map[[sha256.Size]byte]cachedChain)}
}

func (c *chainCache) get(key [sha256.Size]byte, at time.Time) ([]*x509.Certificate, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || at.Before(e.notBefore) || at.After(e.notAfter) {
		return nil, false
	}
	return e.chain, true
}

func (c *chainCache) put(key [sha256.Size]byte, chain []*x509.Certificate) {
	e := cachedChain{chain: chain, notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
	for _, cert := range chain[1:] {
		if cert.NotBefore.After(e.notBefore) {
			e.notBefore = cert.NotBefore
		}
		if cert.NotAfter.Before(e.notAfter) {
			e.notAfter = cert.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

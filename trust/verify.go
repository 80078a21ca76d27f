package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Verify builds and verifies the client's chain at time at (time.Now when
// zero). certs[0] is the leaf, the rest is what the client sent. Anchors are
// the configured roots only; path-building material is the configured
// intermediates and the sent certificates. The leaf must allow clientAuth
// (an EKU-less leaf does), must not be a CA, and must satisfy the CAs' name
// constraints. Among the chains that verify, the shortest is returned, leaf
// first and root last.
//
// Every error is a [*Error]: no_certificate, expired or not_yet_valid
// (decided by comparing at with the offending certificate's validity, which
// crypto/x509 reports alike), bad_usage, name_constraints, or untrusted for
// everything else: an unknown authority, a chain longer than
// MaxChainLength, an RSA key below MinRSABits, a leaf with more than
// MaxSANs subjectAltName entries or a malformed SAN, and any unhandled
// critical extension.
//
// A critical SAN holding only otherNames (the UPN-only certificates some
// CAs issue) is left unhandled by crypto/x509; when certgate's own parser
// reads it and finds at least one well-formed UPN, a shallow copy of the
// leaf without that one unhandled extension is verified, as the
// UnhandledCriticalExtensions documentation allows. No other critical
// extension is excused.
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
	if leaf.IsCA {
		return nil, Errorf(BadUsage, "%s is a CA certificate, not a client certificate", describe(leaf))
	}
	subject := leaf
	if san, ok := sanExtension(leaf); ok {
		info, err := parseSAN(san)
		if err != nil {
			return nil, &Error{Reason: Untrusted, Err: err}
		}
		if info.count > s.opt.maxSANs {
			return nil, Errorf(Untrusted, "leaf has %d subjectAltName entries, more than the maximum %d", info.count, s.opt.maxSANs)
		}
		if info.otherNamesOnly && len(info.upns) > 0 && slices.ContainsFunc(leaf.UnhandledCriticalExtensions, oidSAN.Equal) {
			cp := *leaf
			cp.UnhandledCriticalExtensions = slices.DeleteFunc(slices.Clone(leaf.UnhandledCriticalExtensions), oidSAN.Equal)
			subject = &cp
		}
	}
	inters := s.intermediates
	if len(certs) > 1 {
		inters = s.intermediates.Clone()
		for _, c := range certs[1:] {
			inters.AddCert(c)
		}
	}
	chains, err := subject.Verify(x509.VerifyOptions{
		Roots:         s.roots,
		Intermediates: inters,
		CurrentTime:   at,
		KeyUsages:     s.clientAuth,
	})
	if err != nil {
		return nil, classify(err, at)
	}
	var best []*x509.Certificate
	var why error
	for _, ch := range chains {
		if len(ch) > s.opt.maxChain {
			why = fmt.Errorf("chain of %d certificates is longer than the maximum %d", len(ch), s.opt.maxChain)
			continue
		}
		if c, bits := weakest(ch, s.opt.minRSA); c != nil {
			why = fmt.Errorf("%s has an RSA key of %d bits, want at least %d", describe(c), bits, s.opt.minRSA)
			continue
		}
		if best == nil || len(ch) < len(best) {
			best = ch
		}
	}
	if best == nil {
		return nil, &Error{Reason: Untrusted, Err: why}
	}
	// Verify's chains are fresh slices; put the caller's leaf back in place
	// of the copy so pointers compare equal downstream.
	best[0] = leaf
	return best, nil
}

// weakest returns the first certificate of chain with an RSA key under
// minBits.
func weakest(chain []*x509.Certificate, minBits int) (*x509.Certificate, int) {
	for _, c := range chain {
		if bits, weak := weakRSA(c, minBits); weak {
			return c, bits
		}
	}
	return nil, 0
}

// classify maps a crypto/x509 verification error to a reason code.
func classify(err error, at time.Time) *Error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			// crypto/x509 reports both ends of the window as Expired.
			if inv.Cert != nil && at.Before(inv.Cert.NotBefore) {
				return &Error{Reason: NotYetValid, Err: err}
			}
			return &Error{Reason: Expired, Err: err}
		case x509.IncompatibleUsage, x509.CANotAuthorizedForExtKeyUsage:
			return &Error{Reason: BadUsage, Err: err}
		case x509.CANotAuthorizedForThisName, x509.NameConstraintsWithoutSANs,
			x509.UnconstrainedName, x509.TooManyConstraints:
			return &Error{Reason: NameConstraints, Err: err}
		}
	}
	return &Error{Reason: Untrusted, Err: err}
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

package pathval

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"time"
)

// Options bound the work of path building and set what the end entity is
// for. The zero value means the defaults.
type Options struct {
	// MaxLength caps a path, end entity and anchor included (default 8).
	MaxLength int
	// MaxSignatureChecks caps the signature verifications one Verify
	// spends building paths (default 100), so a client sending many
	// certificates with one name cannot make the handshake expensive.
	MaxSignatureChecks int
	// MinRSABits refuses RSA keys below it anywhere in a path (0: no minimum).
	MinRSABits int
	// Usage is the extended key usage the end entity must allow (default
	// clientAuth; ExtKeyUsageAny accepts any). CAs on the path that carry
	// extKeyUsage must allow it too.
	Usage x509.ExtKeyUsage
}

// Verifier holds the anchors and configured intermediates, indexed by
// prepared subject name. It is immutable and safe for concurrent use.
type Verifier struct {
	opt        Options
	anchors    []*node
	configured []*node // anchors first, then intermediates
	bySubject  map[string][]*node
}

// node is a certificate with its prepared names.
type node struct {
	cert            *x509.Certificate
	subject, issuer name
	nameErr         error
	anchor          bool
	configured      bool
	sum             [sha256.Size]byte
}

func newNode(c *x509.Certificate) *node {
	n := &node{cert: c, sum: sha256.Sum256(c.Raw)}
	var err error
	if n.subject, err = parseName(c.RawSubject); err != nil {
		n.nameErr = fmt.Errorf("subject: %w", err)
	}
	if n.issuer, err = parseName(c.RawIssuer); err != nil && n.nameErr == nil {
		n.nameErr = fmt.Errorf("issuer: %w", err)
	}
	return n
}

// selfIssued is §6.1's "the same DN appears in the subject and issuer".
func (n *node) selfIssued() bool { return n.nameErr == nil && n.subject.equal(n.issuer) }

// New builds a Verifier. Anchors are trusted by name and key; intermediates
// are path-building material only, as are the certificates a client sends
// to Verify. A certificate listed as both is an anchor.
func New(anchors, intermediates []*x509.Certificate, opt Options) *Verifier {
	if opt.MaxLength <= 0 {
		opt.MaxLength = 8
	}
	if opt.MaxSignatureChecks <= 0 {
		opt.MaxSignatureChecks = 100
	}
	if opt.Usage == 0 {
		opt.Usage = x509.ExtKeyUsageClientAuth
	}
	v := &Verifier{opt: opt, bySubject: make(map[string][]*node)}
	seen := map[[sha256.Size]byte]bool{}
	add := func(c *x509.Certificate, anchor bool) {
		n := newNode(c)
		if c == nil || seen[n.sum] {
			return
		}
		seen[n.sum] = true
		n.anchor, n.configured = anchor, true
		v.configured = append(v.configured, n)
		if anchor {
			v.anchors = append(v.anchors, n)
		}
		if n.nameErr == nil {
			k := n.subject.key()
			v.bySubject[k] = append(v.bySubject[k], n)
		}
	}
	for _, c := range anchors {
		add(c, true)
	}
	for _, c := range intermediates {
		add(c, false)
	}
	return v
}

// Verify builds a path from leaf to an anchor, through the configured
// intermediates and sent, and validates it at time at. It returns the
// shortest valid path, leaf first and anchor last, or an *Error.
func (v *Verifier) Verify(leaf *x509.Certificate, sent []*x509.Certificate, at time.Time) ([]*x509.Certificate, error) {
	return v.run(leaf, sent, at, targetClient)
}

// target is what the certificate a path is built for must be good for.
type target uint8

const (
	// targetClient is an end entity presented for Options.Usage.
	targetClient target = iota
	// targetCA is a configured CA judged as an issuer of such end entities.
	targetCA
	// targetCRLSigner is a configured certificate whose key signs CRLs.
	targetCRLSigner
)

// usage is the extKeyUsage the path's CAs must allow. A CRL signer is
// outside the extKeyUsage nesting: no purpose names CRL signing, and the
// CAs above it vouch for its key, not for a client.
func (t target) usage(v *Verifier) x509.ExtKeyUsage {
	if t == targetCRLSigner {
		return x509.ExtKeyUsageAny
	}
	return v.opt.Usage
}

// CheckCA says whether a configured CA can take part in a path at time at:
// an anchor by its own certificate's checks, an intermediate by a valid path
// from it to an anchor on which it could issue end-entity certificates
// (cA, keyCertSign, room under the pathLenConstraints, extKeyUsage). nil
// means usable.
func (v *Verifier) CheckCA(ca *x509.Certificate, at time.Time) error {
	if a := v.anchor(ca); a != nil {
		var st state
		if e := v.anchorChecks(a, at, &st, targetCA); e != nil {
			return e
		}
		return nil
	}
	_, err := v.run(ca, nil, at, targetCA)
	return err
}

// CheckCRLSigner says whether signer, a configured certificate whose key
// signs CRLs, may be believed at time at: a valid path from it to an anchor
// through the configured certificates (every §6.1 check: validity, key
// size, critical extensions, basicConstraints and pathLenConstraint of the
// CAs above it, name constraints, which apply to it even when it is
// self-issued, as to any final certificate), and cRLSign when it has
// keyUsage (§6.3.3 (f)). Unlike a client certificate it need not allow any
// extKeyUsage, and unlike a CA it need not be one: a separate CRL-signing
// key usually has an end-entity certificate. An anchor is judged by its own
// certificate's checks. Whether the signer or a CA above it is revoked is
// not this package's business. nil means usable.
func (v *Verifier) CheckCRLSigner(signer *x509.Certificate, at time.Time) error {
	if a := v.anchor(signer); a != nil {
		var st state
		if e := v.anchorChecks(a, at, &st, targetCRLSigner); e != nil {
			return e
		}
		if e := crlSignUsage(signer); e != nil {
			return e
		}
		return nil
	}
	_, err := v.run(signer, nil, at, targetCRLSigner)
	return err
}

// crlSignUsage is the §6.3.3 (f) keyUsage condition on a CRL signer.
func crlSignUsage(c *x509.Certificate) *Error {
	if hasExtension(c, oidKeyUsage) && c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return &Error{Reason: BadUsage, Cert: c, Detail: "signs CRLs but its keyUsage lacks cRLSign", Rule: "RFC 5280 §6.3.3 (f) keyUsage cRLSign"}
	}
	return nil
}

// anchor returns c's node when c is an anchor.
func (v *Verifier) anchor(c *x509.Certificate) *node {
	sum := sha256.Sum256(c.Raw)
	for _, a := range v.anchors {
		if a.sum == sum {
			return a
		}
	}
	return nil
}

func (v *Verifier) run(leaf *x509.Certificate, sent []*x509.Certificate, at time.Time, tgt target) ([]*x509.Certificate, error) {
	ln := newNode(leaf)
	if ln.nameErr != nil {
		r := Malformed
		if tgt != targetClient {
			r = Untrusted
		}
		return nil, &Error{Reason: r, Cert: leaf, Detail: "the " + ln.nameErr.Error()}
	}
	s := &search{v: v, at: at, target: tgt, sigs: map[[2]*node]error{}}
	for _, c := range sent {
		if c == nil {
			continue
		}
		n := newNode(c)
		if n.nameErr != nil || n.sum == ln.sum || slices.ContainsFunc(v.configured, func(o *node) bool { return o.sum == n.sum }) ||
			slices.ContainsFunc(s.sent, func(o *node) bool { return o.sum == n.sum }) {
			continue
		}
		s.sent = append(s.sent, n)
	}
	s.extend([]*node{ln})
	if s.best != nil {
		out := make([]*x509.Certificate, len(s.best))
		for i, n := range s.best {
			out[i] = n.cert
		}
		return out, nil
	}
	if s.bestErr != nil {
		return nil, s.bestErr
	}
	return nil, s.untrusted()
}

// search is the state of one path-building run.
type search struct {
	v      *Verifier
	at     time.Time
	target target
	sent   []*node
	sigs   map[[2]*node]error
	checks int
	visits int
	gaveUp bool

	best       []*node
	bestErr    *Error
	bestErrLen int

	// The dead end that got furthest: the certificate whose issuer was
	// missing and what was tried for it.
	deadDepth int
	dead      *node
	tried     []string
}

// candidates returns the certificates whose subject matches n's issuer:
// anchors, then configured intermediates, then sent ones, each group with
// those whose key identifier n's authorityKeyIdentifier names first.
func (s *search) candidates(n *node) []*node {
	k := n.issuer.key()
	var out []*node
	out = append(out, s.v.bySubject[k]...)
	for _, c := range s.sent {
		if c.subject.key() == k {
			out = append(out, c)
		}
	}
	aki := n.cert.AuthorityKeyId
	rank := func(c *node) int {
		r := 4
		if c.anchor {
			r = 0
		} else if c.configured {
			r = 2
		}
		if len(aki) > 0 && !bytes.Equal(aki, KeyID(c.cert)) {
			r++
		}
		return r
	}
	slices.SortStableFunc(out, func(a, b *node) int { return rank(a) - rank(b) })
	return out
}

func (s *search) extend(path []*node) {
	// Cached signature results make revisiting cheap but not free: a
	// client can send certificates that all sign each other, whose
	// orderings are many. Visits are bounded like signature checks.
	if s.visits++; s.visits > 10*s.v.opt.MaxSignatureChecks {
		s.gaveUp = true
		return
	}
	cur := path[len(path)-1]
	cands := s.candidates(cur)
	var tried []string
	for _, p := range cands {
		if slices.ContainsFunc(path, func(o *node) bool { return o.sum == p.sum }) {
			if p.sum == cur.sum {
				tried = append(tried, fmt.Sprintf("%s: self-signed, and not a configured root", Describe(p.cert)))
			}
			continue
		}
		if s.best != nil && len(path)+1 >= len(s.best) {
			return // nothing below can be shorter than what was found
		}
		if len(path)+1 > s.v.opt.MaxLength {
			tried = append(tried, fmt.Sprintf("%s: the chain would be longer than the maximum %d", Describe(p.cert), s.v.opt.MaxLength))
			continue
		}
		if err := s.signature(cur, p); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %v", Describe(p.cert), err))
			continue
		}
		full := append(slices.Clone(path), p)
		if p.anchor {
			if e := s.v.validate(full, s.at, s.target); e != nil {
				if s.bestErr == nil || len(full) < s.bestErrLen {
					s.bestErr, s.bestErrLen = e, len(full)
				}
				continue
			}
			s.best = full
			continue
		}
		s.extend(full)
	}
	if s.best == nil && (len(path) > s.deadDepth || len(path) == s.deadDepth && len(s.tried) == 0) {
		s.deadDepth, s.dead, s.tried = len(path), cur, tried
	}
}

// signature verifies child's signature with parent's key, at most
// MaxSignatureChecks times per search.
func (s *search) signature(child, parent *node) error {
	k := [2]*node{child, parent}
	if err, ok := s.sigs[k]; ok {
		return err
	}
	if s.checks >= s.v.opt.MaxSignatureChecks {
		s.gaveUp = true
		return fmt.Errorf("not checked: more than %d signature checks", s.v.opt.MaxSignatureChecks)
	}
	s.checks++
	var err error
	switch child.cert.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		err = fmt.Errorf("the signature of %s uses %s, which is refused as insecure", Describe(child.cert), child.cert.SignatureAlgorithm)
	default:
		if e := parent.cert.CheckSignature(child.cert.SignatureAlgorithm, child.cert.RawTBSCertificate, child.cert.Signature); e != nil {
			err = fmt.Errorf("the signature of %s does not verify with its key (%v)", Describe(child.cert), e)
		}
	}
	s.sigs[k] = err
	return err
}

func (s *search) untrusted() *Error {
	e := &Error{Reason: Untrusted, Rule: "RFC 5280 §6.1: no certification path to a configured root"}
	d := s.dead
	switch {
	case d == nil:
		e.Detail = "no certification path to a configured root"
	case len(s.tried) == 0:
		e.Cert = d.cert
		e.Issuer = FormatName(d.cert.RawIssuer)
		var names []string
		for _, c := range s.v.configured {
			if len(names) == 6 {
				names = append(names, "…")
				break
			}
			names = append(names, fmt.Sprintf("%q", FormatName(c.cert.RawSubject)))
		}
		e.Detail = fmt.Sprintf("unknown authority: its issuer %q is neither a configured CA nor among the certificates sent (configured: %s)", e.Issuer, joinComma(names))
	default:
		e.Cert = d.cert
		e.Issuer = FormatName(d.cert.RawIssuer)
		e.Detail = fmt.Sprintf("no usable issuer %q", e.Issuer)
		e.Tried = s.tried
	}
	if s.gaveUp {
		e.Detail += fmt.Sprintf(" (path building stopped at its bound of %d signature checks)", s.v.opt.MaxSignatureChecks)
	}
	return e
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// state is the §6.1.2 state carried down a path.
type state struct {
	maxPath int
	names   nameState
	usage   x509.ExtKeyUsage // what every CA's extKeyUsage must allow
}

// validate runs §6.1.3 and §6.1.4 over path (leaf first, anchor last; its
// signatures and name chaining are checked already while building).
func (v *Verifier) validate(path []*node, at time.Time, tgt target) *Error {
	var st state
	if e := v.anchorChecks(path[len(path)-1], at, &st, tgt); e != nil {
		return e
	}
	for i := len(path) - 2; i >= 0; i-- {
		n := path[i]
		c := n.cert
		leaf := i == 0 && tgt == targetClient
		// The final certificate when it is not judged as a CA.
		final := i == 0 && tgt != targetCA
		if e := v.common(n, at); e != nil {
			if leaf && e.Reason == Untrusted && n.nameErr != nil {
				e.Reason = Malformed
			}
			return e
		}
		// §6.1.3 (b), (c): names of the end entity always, of a CA unless
		// it is self-issued.
		if final || !n.selfIssued() {
			names, err := certNames(n)
			if err != nil {
				r := Untrusted
				if leaf {
					r = Malformed
				}
				return &Error{Reason: r, Cert: c, Detail: err.Error()}
			}
			if why := st.names.check(names); why != "" {
				return &Error{Reason: NameConstraints, Cert: c, Detail: why, Rule: "RFC 5280 §6.1.3 (b), (c) name constraints"}
			}
		}
		if final && tgt == targetCRLSigner {
			if e := crlSignUsage(c); e != nil {
				return e
			}
			continue
		}
		if leaf {
			// A target with cA TRUE is not refused: RFC 5280 puts no
			// condition on the target's basicConstraints (PKITS 4.6.8,
			// 4.14.13 are valid paths to CA certificates).
			if !allowsUsage(c, v.opt.Usage) {
				return &Error{Reason: BadUsage, Cert: c, Detail: fmt.Sprintf("its extKeyUsage does not allow %s", usageName(v.opt.Usage)), Rule: "RFC 5280 §4.2.1.12 extKeyUsage"}
			}
			continue
		}
		if e := v.caChecks(n, &st, false); e != nil {
			return e
		}
	}
	return nil
}

// anchorChecks honours the anchor certificate's validity and extensions,
// and initialises st from them.
func (v *Verifier) anchorChecks(a *node, at time.Time, st *state, tgt target) *Error {
	st.maxPath = v.opt.MaxLength + 1
	st.usage = tgt.usage(v)
	if e := v.common(a, at); e != nil {
		return e
	}
	return v.caChecks(a, st, true)
}

// common are the checks every certificate gets: validity at the decision
// time (§6.1.3 (a)(2)), key size, readable names and no unrecognised
// critical extension (§6.1.4 (o), §6.1.5 (f)).
func (v *Verifier) common(n *node, at time.Time) *Error {
	c := n.cert
	if at.Before(c.NotBefore) {
		return &Error{Reason: NotYetValid, Cert: c, Detail: fmt.Sprintf("not valid before %s (decision time %s)", c.NotBefore.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)), Rule: "RFC 5280 §6.1.3 (a)(2) validity"}
	}
	if at.After(c.NotAfter) {
		return &Error{Reason: Expired, Cert: c, Detail: fmt.Sprintf("expired at %s (decision time %s)", c.NotAfter.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)), Rule: "RFC 5280 §6.1.3 (a)(2) validity"}
	}
	if n.nameErr != nil {
		return &Error{Reason: Untrusted, Cert: c, Detail: "the " + n.nameErr.Error()}
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N != nil && k.N.BitLen() < v.opt.MinRSABits {
		return &Error{Reason: Untrusted, Cert: c, Detail: fmt.Sprintf("RSA key of %d bits, want at least %d", k.N.BitLen(), v.opt.MinRSABits)}
	}
	for _, ext := range c.Extensions {
		if ext.Critical && !recognised(ext.Id) {
			return &Error{Reason: Untrusted, Cert: c, Detail: fmt.Sprintf("unhandled critical extension %s", ext.Id), Rule: "RFC 5280 §6.1.4 (o) critical extensions"}
		}
	}
	return nil
}

// caChecks are §6.1.4 (k)-(n) and (g) for a CA certificate (anchor true:
// only what the anchor certificate says, when it says it).
func (v *Verifier) caChecks(n *node, st *state, anchor bool) *Error {
	c := n.cert
	switch {
	case anchor && c.BasicConstraintsValid && !c.IsCA:
		return &Error{Reason: BadUsage, Cert: c, Detail: "its basicConstraints say it is not a CA", Rule: "RFC 5280 §4.2.1.9 basicConstraints cA"}
	case !anchor && (!c.BasicConstraintsValid || !c.IsCA):
		return &Error{Reason: BadUsage, Cert: c, Detail: "is used as a CA but has no basicConstraints with cA TRUE", Rule: "RFC 5280 §6.1.4 (k) basicConstraints cA"}
	}
	if !anchor && !n.selfIssued() {
		if st.maxPath <= 0 {
			return &Error{Reason: BadUsage, Cert: c, Detail: "exceeds the pathLenConstraint of a CA above it", Rule: "RFC 5280 §6.1.4 (l) pathLenConstraint"}
		}
		st.maxPath--
	}
	if c.BasicConstraintsValid && c.MaxPathLen >= 0 && (c.MaxPathLen > 0 || c.MaxPathLenZero) && c.MaxPathLen < st.maxPath {
		st.maxPath = c.MaxPathLen
	}
	if hasExtension(c, oidKeyUsage) && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return &Error{Reason: BadUsage, Cert: c, Detail: "its keyUsage lacks keyCertSign", Rule: "RFC 5280 §6.1.4 (n) keyUsage"}
	}
	if !allowsUsage(c, st.usage) {
		return &Error{Reason: BadUsage, Cert: c, Detail: fmt.Sprintf("its extKeyUsage does not allow %s, so it cannot vouch for such certificates", usageName(st.usage)), Rule: "extKeyUsage nesting (as crypto/x509 and Windows)"}
	}
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidNameConstraints) {
			nc, err := parseNameConstraints(ext.Value)
			if err != nil {
				return &Error{Reason: NameConstraints, Cert: c, Detail: "its nameConstraints extension cannot be processed: " + err.Error(), Rule: "RFC 5280 §4.2.1.10"}
			}
			st.names.add(nc, Describe(c))
		}
	}
	return nil
}

// certNames are the names of c that name constraints apply to: the
// subject as a directoryName when not empty, its emailAddress attributes as
// rfc822Names (§4.2.1.10), and every subjectAltName entry.
func certNames(n *node) ([]generalName, error) {
	var out []generalName
	if !n.subject.empty() {
		out = append(out, generalName{kind: kindDir, dir: n.subject})
	}
	for _, e := range n.subject.emails {
		out = append(out, generalName{kind: kindEmail, str: e})
	}
	for _, ext := range n.cert.Extensions {
		if ext.Id.Equal(oidSAN) {
			san, err := parseGeneralNames(ext.Value)
			if err != nil {
				return nil, fmt.Errorf("subjectAltName: %w", err)
			}
			out = append(out, san...)
		}
	}
	return out, nil
}

func allowsUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	if u == x509.ExtKeyUsageAny || (len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0) {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(c.ExtKeyUsage, u)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageClientAuth:
		return "clientAuth"
	case x509.ExtKeyUsageServerAuth:
		return "serverAuth"
	}
	return fmt.Sprintf("extended key usage %d", u)
}

var (
	oidKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidSAN             = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidNameConstraints = asn1.ObjectIdentifier{2, 5, 29, 30}
)

// recognisedExtensions are the extensions this package processes, plus the
// policy extensions it recognises without processing (policy processing is
// out of scope, see the package documentation) and the revocation pointers
// that certgate's revocation checking reads.
var recognisedExtensions = []asn1.ObjectIdentifier{
	{2, 5, 29, 19}, // basicConstraints
	{2, 5, 29, 15}, // keyUsage
	{2, 5, 29, 37}, // extKeyUsage
	{2, 5, 29, 17}, // subjectAltName
	{2, 5, 29, 30}, // nameConstraints
	{2, 5, 29, 14}, // subjectKeyIdentifier
	{2, 5, 29, 35}, // authorityKeyIdentifier
	{2, 5, 29, 32}, // certificatePolicies
	{2, 5, 29, 33}, // policyMappings
	{2, 5, 29, 36}, // policyConstraints
	{2, 5, 29, 54}, // inhibitAnyPolicy
	{2, 5, 29, 31}, // cRLDistributionPoints
	{2, 5, 29, 46}, // freshestCRL
}

func recognised(id asn1.ObjectIdentifier) bool {
	return slices.ContainsFunc(recognisedExtensions, id.Equal)
}

func hasExtension(c *x509.Certificate, id asn1.ObjectIdentifier) bool {
	return slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(id) })
}

// Package pkigen makes throwaway X.509 PKIs in process: roots,
// intermediates, client and server leaves (with the UPN otherName that
// crypto/x509 cannot write), CRLs and delta CRLs. Tests use it so that no
// fixture file can expire, and `certgate demo` uses it to make its PKI.
//
// Every constructor takes options; the clock is injectable through [At], so
// expired and not-yet-valid certificates are made by moving the clock, not by
// waiting.
package pkigen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDUPN is the Microsoft User Principal Name otherName type.
var OIDUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}

var (
	oidSAN              = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidDeltaCRLIndictor = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidFreshestCRL      = asn1.ObjectIdentifier{2, 5, 29, 46}
)

// CA is a certificate authority that can sign certificates and CRLs.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is this CA's certificate followed by its issuers up to the root.
	Chain []*x509.Certificate

	serial atomic.Int64
}

// Leaf is an end-entity certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain is the leaf followed by its issuers up to the root.
	Chain []*x509.Certificate
}

type settings struct {
	now          time.Time
	notBefore    time.Time
	notAfter     time.Time
	subject      pkix.Name
	upns         []string
	emails       []string
	dns          []string
	ips          []net.IP
	eku          []x509.ExtKeyUsage
	ekuSet       bool
	serial       *big.Int
	permittedDNS []string
	permittedEm  []string
	criticalSAN  bool
	crlURLs      []string
	freshestURLs []string
	ocspURLs     []string
	rsaBits      int
	maxPathLen   int
	maxPathSet   bool
	key          crypto.Signer
	skid         []byte
	keyUsage     x509.KeyUsage
}

// Option adjusts a certificate before it is signed.
type Option func(*settings)

// At sets the clock the certificate's validity is computed from (default now).
func At(t time.Time) Option { return func(s *settings) { s.now = t } }

// Validity sets NotBefore and NotAfter exactly.
func Validity(notBefore, notAfter time.Time) Option {
	return func(s *settings) { s.notBefore, s.notAfter = notBefore, notAfter }
}

// Subject replaces the subject name (default CN only).
func Subject(n pkix.Name) Option { return func(s *settings) { s.subject = n } }

// UPN adds SAN otherName User Principal Names.
func UPN(upn ...string) Option { return func(s *settings) { s.upns = append(s.upns, upn...) } }

// Email adds SAN rfc822Names.
func Email(e ...string) Option { return func(s *settings) { s.emails = append(s.emails, e...) } }

// DNS adds SAN dNSNames.
func DNS(n ...string) Option { return func(s *settings) { s.dns = append(s.dns, n...) } }

// IP adds SAN iPAddresses.
func IP(ip ...net.IP) Option { return func(s *settings) { s.ips = append(s.ips, ip...) } }

// EKU replaces the extended key usages (default clientAuth for leaves).
func EKU(u ...x509.ExtKeyUsage) Option {
	return func(s *settings) { s.eku, s.ekuSet = u, true }
}

// Serial sets the serial number.
func Serial(n *big.Int) Option { return func(s *settings) { s.serial = n } }

// PermittedDNS and PermittedEmail add name constraints to a CA.
func PermittedDNS(d ...string) Option {
	return func(s *settings) { s.permittedDNS = append(s.permittedDNS, d...) }
}

// PermittedEmail adds permitted rfc822 name constraints to a CA.
func PermittedEmail(e ...string) Option {
	return func(s *settings) { s.permittedEm = append(s.permittedEm, e...) }
}

// CriticalSAN marks the SAN extension critical (with only a UPN inside, Go's
// verifier reports it as an unhandled critical extension).
func CriticalSAN() Option { return func(s *settings) { s.criticalSAN = true } }

// CRLURL adds CRL distribution points.
func CRLURL(u ...string) Option { return func(s *settings) { s.crlURLs = append(s.crlURLs, u...) } }

// FreshestCRL adds a Freshest CRL (delta CRL) extension.
func FreshestCRL(u ...string) Option {
	return func(s *settings) { s.freshestURLs = append(s.freshestURLs, u...) }
}

// OCSPURL adds an AIA OCSP responder.
func OCSPURL(u ...string) Option { return func(s *settings) { s.ocspURLs = append(s.ocspURLs, u...) } }

// RSA makes an RSA key of the given size instead of ECDSA P-256.
func RSA(bits int) Option { return func(s *settings) { s.rsaBits = bits } }

// Key uses the given key instead of a fresh one (a CA re-issued with the same key).
func Key(k crypto.Signer) Option { return func(s *settings) { s.key = k } }

// MaxPathLen sets a CA's path length constraint.
func MaxPathLen(n int) Option { return func(s *settings) { s.maxPathLen, s.maxPathSet = n, true } }

// KeyUsage replaces the key usage bits.
func KeyUsage(u x509.KeyUsage) Option { return func(s *settings) { s.keyUsage = u } }

func build(cn string, opts []Option) (*settings, error) {
	s := &settings{now: time.Now(), subject: pkix.Name{CommonName: cn}}
	for _, o := range opts {
		o(s)
	}
	if s.subject.CommonName == "" && len(s.subject.Names) == 0 {
		s.subject.CommonName = cn
	}
	if s.notBefore.IsZero() {
		s.notBefore = s.now.Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = s.now.Add(365 * 24 * time.Hour)
	}
	if s.key == nil {
		var err error
		if s.rsaBits > 0 {
			s.key, err = rsa.GenerateKey(rand.Reader, s.rsaBits)
		} else {
			s.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			return nil, err
		}
	}
	pub, err := x509.MarshalPKIXPublicKey(s.key.Public())
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algo      pkix.AlgorithmIdentifier
		BitString asn1.BitString
	}
	if _, err := asn1.Unmarshal(pub, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.BitString.Bytes)
	s.skid = sum[:]
	return s, nil
}

func (s *settings) template(serial *big.Int) (*x509.Certificate, error) {
	t := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               s.subject,
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		SubjectKeyId:          s.skid,
		CRLDistributionPoints: s.crlURLs,
		OCSPServer:            s.ocspURLs,
		BasicConstraintsValid: true,
		KeyUsage:              s.keyUsage,
	}
	if s.serial != nil {
		t.SerialNumber = s.serial
	}
	if len(s.upns) > 0 || s.criticalSAN {
		ext, err := marshalSAN(s)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	} else {
		t.DNSNames, t.EmailAddresses, t.IPAddresses = s.dns, s.emails, s.ips
	}
	if len(s.freshestURLs) > 0 {
		ext, err := marshalFreshest(s.freshestURLs)
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	return t, nil
}

// marshalSAN writes the SAN by hand because crypto/x509 cannot write otherName.
func marshalSAN(s *settings) (pkix.Extension, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, u := range s.upns {
			b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDUPN)
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
				})
			})
		}
		for _, e := range s.emails {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
		}
		for _, d := range s.dns {
			b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(d)) })
		}
		for _, ip := range s.ips {
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			b.AddASN1(cbasn1.Tag(7).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ip) })
		}
	})
	der, err := b.Bytes()
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSAN, Critical: s.criticalSAN, Value: der}, nil
}

func marshalFreshest(urls []string) (pkix.Extension, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, u := range urls {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // DistributionPoint
				b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { // distributionPoint
					b.AddASN1(cbasn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) { // fullName
						b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					})
				})
			})
		}
	})
	der, err := b.Bytes()
	return pkix.Extension{Id: oidFreshestCRL, Value: der}, err
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewRoot makes a self-signed root CA.
func NewRoot(cn string, opts ...Option) (*CA, error) {
	s, err := build(cn, opts)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t, err := s.template(serial)
	if err != nil {
		return nil, err
	}
	caTemplate(t, s)
	der, err := x509.CreateCertificate(rand.Reader, t, t, s.key.Public(), s.key)
	if err != nil {
		return nil, fmt.Errorf("pkigen: root: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: s.key, Chain: []*x509.Certificate{c}}, nil
}

func caTemplate(t *x509.Certificate, s *settings) {
	t.IsCA = true
	if t.KeyUsage == 0 {
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	}
	if s.maxPathSet {
		t.MaxPathLen = s.maxPathLen
		t.MaxPathLenZero = s.maxPathLen == 0
	}
	t.PermittedDNSDomains = s.permittedDNS
	t.PermittedEmailAddresses = s.permittedEm
	if len(s.permittedDNS) > 0 || len(s.permittedEm) > 0 {
		t.PermittedDNSDomainsCritical = true
	}
	if s.ekuSet {
		t.ExtKeyUsage = s.eku
	}
}

// NewIntermediate makes a CA signed by ca.
func (ca *CA) NewIntermediate(cn string, opts ...Option) (*CA, error) {
	s, err := build(cn, opts)
	if err != nil {
		return nil, err
	}
	t, err := s.template(big.NewInt(ca.nextSerial()))
	if err != nil {
		return nil, err
	}
	caTemplate(t, s)
	c, err := ca.sign(t, s.key)
	if err != nil {
		return nil, fmt.Errorf("pkigen: intermediate: %w", err)
	}
	return &CA{Cert: c, Key: s.key, Chain: append([]*x509.Certificate{c}, ca.Chain...)}, nil
}

// NewLeaf makes an end-entity certificate signed by ca; its EKU defaults to
// clientAuth.
func (ca *CA) NewLeaf(cn string, opts ...Option) (*Leaf, error) {
	s, err := build(cn, opts)
	if err != nil {
		return nil, err
	}
	t, err := s.template(big.NewInt(ca.nextSerial()))
	if err != nil {
		return nil, err
	}
	if t.KeyUsage == 0 {
		t.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := s.key.(*rsa.PrivateKey); ok {
			t.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if s.ekuSet {
		t.ExtKeyUsage = s.eku
	}
	c, err := ca.sign(t, s.key)
	if err != nil {
		return nil, fmt.Errorf("pkigen: leaf: %w", err)
	}
	return &Leaf{Cert: c, Key: s.key, Chain: append([]*x509.Certificate{c}, ca.Chain...)}, nil
}

// NewServer makes a serverAuth leaf for the given DNS names and IPs (a name
// that parses as an IP goes into the IP SAN).
func (ca *CA) NewServer(names []string, opts ...Option) (*Leaf, error) {
	var dns []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	cn := "server"
	if len(names) > 0 {
		cn = names[0]
	}
	all := append([]Option{DNS(dns...), IP(ips...), EKU(x509.ExtKeyUsageServerAuth)}, opts...)
	return ca.NewLeaf(cn, all...)
}

func (ca *CA) nextSerial() int64 {
	// Start high so serials from different CAs in one test rarely collide by accident.
	return ca.serial.Add(1) + 0x1000
}

func (ca *CA) sign(t *x509.Certificate, key crypto.Signer) (*x509.Certificate, error) {
	t.AuthorityKeyId = ca.Cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// CRLOptions describe a CRL to sign.
type CRLOptions struct {
	Number     int64
	ThisUpdate time.Time // default now
	NextUpdate time.Time // default ThisUpdate + 24h
	// Revoked lists serials with their revocation time (ThisUpdate if zero).
	Revoked []x509.RevocationListEntry
	// DeltaBase, when non-zero, makes this a delta CRL with this BaseCRLNumber.
	DeltaBase int64
	// ExtraExtensions are added to the CRL as they are.
	ExtraExtensions []pkix.Extension
	// Signer overrides the key the CRL is signed with (a wrong signer).
	Signer crypto.Signer
}

// Revoke is a shorthand for a list of revoked serials at time t.
func Revoke(t time.Time, serials ...*big.Int) []x509.RevocationListEntry {
	out := make([]x509.RevocationListEntry, len(serials))
	for i, s := range serials {
		out[i] = x509.RevocationListEntry{SerialNumber: s, RevocationTime: t}
	}
	return out
}

// CRL signs a DER CRL for this CA.
func (ca *CA) CRL(o CRLOptions) ([]byte, error) {
	if o.ThisUpdate.IsZero() {
		o.ThisUpdate = time.Now().Add(-time.Minute)
	}
	if o.NextUpdate.IsZero() {
		o.NextUpdate = o.ThisUpdate.Add(24 * time.Hour)
	}
	if o.Number == 0 {
		o.Number = 1
	}
	for i := range o.Revoked {
		if o.Revoked[i].RevocationTime.IsZero() {
			o.Revoked[i].RevocationTime = o.ThisUpdate
		}
	}
	t := &x509.RevocationList{
		Number:                    big.NewInt(o.Number),
		ThisUpdate:                o.ThisUpdate,
		NextUpdate:                o.NextUpdate,
		RevokedCertificateEntries: o.Revoked,
		ExtraExtensions:           o.ExtraExtensions,
	}
	if o.DeltaBase != 0 {
		v, err := asn1.Marshal(big.NewInt(o.DeltaBase))
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidDeltaCRLIndictor, Critical: true, Value: v})
	}
	signer := ca.Key
	if o.Signer != nil {
		signer = o.Signer
	}
	return x509.CreateRevocationList(rand.Reader, t, ca.Cert, signer)
}

// CertPEM encodes certificates as PEM, one block each.
func CertPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS#8 PEM.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteCert writes certificates as PEM to path (0644).
func WriteCert(path string, certs ...*x509.Certificate) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, CertPEM(certs...), 0o644)
}

// WriteKey writes a private key as PEM to path (0600).
func WriteKey(path string, k crypto.Signer) error {
	b, err := KeyPEM(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// WriteLeaf writes the leaf's certificate (with intermediates, without the
// root when withChain) and key, as curl --cert/--key want them.
func WriteLeaf(certPath, keyPath string, l *Leaf, withChain bool) error {
	certs := []*x509.Certificate{l.Cert}
	if withChain && len(l.Chain) > 2 {
		certs = l.Chain[:len(l.Chain)-1]
	}
	if err := WriteCert(certPath, certs...); err != nil {
		return err
	}
	return WriteKey(keyPath, l.Key)
}

// TB is the part of testing.TB the test helpers below use; naming it here
// keeps the testing package out of the certgate binary, which links this
// package for `certgate demo`.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// Root is NewRoot for tests: it fails tb on error.
func Root(tb TB, cn string, opts ...Option) *CA {
	tb.Helper()
	ca, err := NewRoot(cn, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}

// Intermediate is NewIntermediate for tests.
func (ca *CA) Intermediate(tb TB, cn string, opts ...Option) *CA {
	tb.Helper()
	c, err := ca.NewIntermediate(cn, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Leaf is NewLeaf for tests.
func (ca *CA) Leaf(tb TB, cn string, opts ...Option) *Leaf {
	tb.Helper()
	l, err := ca.NewLeaf(cn, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// Server is NewServer for tests.
func (ca *CA) Server(tb TB, names []string, opts ...Option) *Leaf {
	tb.Helper()
	l, err := ca.NewServer(names, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// MustCRL is CRL for tests.
func (ca *CA) MustCRL(tb TB, o CRLOptions) []byte {
	tb.Helper()
	der, err := ca.CRL(o)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

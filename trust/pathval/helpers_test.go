package pathval

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	keysOnce sync.Once
	keys     []*ecdsa.PrivateKey
)

// testKey returns one of a few fixed keys: key generation is the slow part
// of making certificates, and reusing keys is what key rollover and
// cross-signing look like anyway.
func testKey(i int) *ecdsa.PrivateKey {
	keysOnce.Do(func() {
		for range 8 {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
	})
	return keys[i%len(keys)]
}

// issued is a certificate and its key.
type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
}

var serial int64

// spec describes a certificate to make; zero values mean the usual.
type spec struct {
	cn         string
	rawSubject []byte // overrides cn
	key        int
	ca         bool
	noBC       bool
	pathLen    *int
	ku         x509.KeyUsage
	eku        []x509.ExtKeyUsage
	notBefore  time.Time
	notAfter   time.Time
	dns        []string
	emails     []string
	uris       []string
	ips        []string
	extra      []pkix.Extension
	permDNS    []string
	exclDNS    []string
	permEmail  []string
	permURI    []string
	exclEmail  []string
	ski        []byte
	permIP     []string
}

func intp(i int) *int { return &i }

// make issues s under parent (self-signed when parent is nil). issuerRaw,
// when set, is written as the issuer name instead of parent's subject.
func mk(t testing.TB, s spec, parent *issued, issuerRaw []byte) *issued {
	t.Helper()
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: s.cn},
		RawSubject:   s.rawSubject,
		NotBefore:    t0.Add(-24 * time.Hour),
		NotAfter:     t0.Add(365 * 24 * time.Hour),
		DNSNames:     s.dns, EmailAddresses: s.emails,
		ExtKeyUsage:     s.eku,
		ExtraExtensions: s.extra,
		SubjectKeyId:    s.ski,
	}
	for _, u := range s.uris {
		tmpl.URIs = append(tmpl.URIs, mustURL(u))
	}
	for _, ip := range s.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, mustIP(ip))
	}
	if !s.notBefore.IsZero() {
		tmpl.NotBefore = s.notBefore
	}
	if !s.notAfter.IsZero() {
		tmpl.NotAfter = s.notAfter
	}
	if s.ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		if s.pathLen != nil {
			tmpl.MaxPathLen, tmpl.MaxPathLenZero = *s.pathLen, *s.pathLen == 0
		} else {
			tmpl.MaxPathLen = -1
		}
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.BasicConstraintsValid = !s.noBC
	}
	if s.noBC {
		tmpl.BasicConstraintsValid, tmpl.IsCA = false, false
	}
	if s.ku != 0 {
		tmpl.KeyUsage = s.ku
	}
	tmpl.PermittedDNSDomains, tmpl.ExcludedDNSDomains = s.permDNS, s.exclDNS
	tmpl.PermittedEmailAddresses, tmpl.ExcludedEmailAddresses = s.permEmail, s.exclEmail
	tmpl.PermittedURIDomains = s.permURI
	for _, c := range s.permIP {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, n)
	}
	key := testKey(s.key)
	signer, parentTmpl := crypto.Signer(key), tmpl
	if parent != nil {
		signer = parent.key
		cp := *parent.cert
		parentTmpl = &cp
	}
	if issuerRaw != nil {
		cp := *parentTmpl
		cp.RawSubject = issuerRaw
		parentTmpl = &cp
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentTmpl, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{cert: c, key: key}
}

// rawName encodes an RDN sequence of (oid, value, tag) by hand, for names
// crypto/x509 would not write (mixed string types, odd spacing).
type atv struct {
	oid asn1.ObjectIdentifier
	val string
	tag int // asn1.TagPrintableString, asn1.TagUTF8String, ...
}

func rawName(t testing.TB, rdns ...[]atv) []byte {
	t.Helper()
	var seq []asn1.RawValue
	for _, rdn := range rdns {
		var set []asn1.RawValue
		for _, a := range rdn {
			oid, err := asn1.Marshal(a.oid)
			if err != nil {
				t.Fatal(err)
			}
			v, err := asn1.Marshal(asn1.RawValue{Tag: a.tag, Bytes: []byte(a.val)})
			if err != nil {
				t.Fatal(err)
			}
			b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: append(oid, v...)})
			if err != nil {
				t.Fatal(err)
			}
			set = append(set, asn1.RawValue{FullBytes: b})
		}
		var body []byte
		for _, s := range set {
			body = append(body, s.FullBytes...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: body})
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, asn1.RawValue{FullBytes: b})
	}
	var body []byte
	for _, s := range seq {
		body = append(body, s.FullBytes...)
	}
	b, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO  = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidC  = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// dnConstraints is a nameConstraints extension with directoryName subtrees,
// which crypto/x509 cannot write.
func dnConstraints(t testing.TB, critical bool, permitted, excluded [][]byte) pkix.Extension {
	t.Helper()
	subtrees := func(names [][]byte, tag int) []byte {
		var body []byte
		for _, n := range names {
			gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: n})
			if err != nil {
				t.Fatal(err)
			}
			st, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: gn})
			if err != nil {
				t.Fatal(err)
			}
			body = append(body, st...)
		}
		b, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true, Bytes: body})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var body []byte
	if permitted != nil {
		body = append(body, subtrees(permitted, 0)...)
	}
	if excluded != nil {
		body = append(body, subtrees(excluded, 1)...)
	}
	v, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidNameConstraints, Critical: critical, Value: v}
}

func certs(is ...*issued) []*x509.Certificate {
	out := make([]*x509.Certificate, len(is))
	for i, x := range is {
		out[i] = x.cert
	}
	return out
}

// reasonOf returns the Reason of err, "" for nil.
func reasonOf(t testing.TB, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T %v is not *Error", err, err)
	}
	return e.Reason
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func mustIP(s string) net.IP {
	ip := net.ParseIP(s)
	if ip == nil {
		panic(s)
	}
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

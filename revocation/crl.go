package revocation

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"encoding/pem"
	"errors"
	"hash"
	"math/big"
	"runtime"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/trust/pathval"
)

// Entry reason codes (RFC 5280 5.3.1) that change the merge.
const (
	reasonCertificateHold = 6
	reasonRemoveFromCRL   = 8
)

// crl is a verified CRL reduced to what Check needs. It is immutable once
// built and shared by every snapshot that uses it. Nothing in it may alias
// the DER it was parsed from: fetch.go reuses that buffer for the next
// fetch (copy what must be kept).
type crl struct {
	number      *big.Int // cRLNumber; nil when the CRL has none
	deltaBase   *big.Int // BaseCRLNumber; non-nil only for a delta CRL
	thisUpdate  time.Time
	nextUpdate  time.Time
	nextPublish time.Time // Microsoft Next CRL Publish; zero if absent
	scope       *idp      // nil: no issuingDistributionPoint, the CRL covers every certificate of the CA
	// signer is the configured certificate whose key signed the CRL: the
	// CA's own, or another certificate of the same CA (key rollover, a
	// separate CRL-signing key).
	signer    *x509.Certificate
	signerSKI []byte
	entries   int
	digest    [32]byte // SHA-256 of the DER: tells a re-served CRL from a forged twin

	// revoked holds serials revoked outright; held (base only) those on
	// certificateHold, which a delta's removed (removeFromCRL) can lift.
	revoked, held, removed serialIndex
}

func (c *crl) isDelta() bool { return c.deltaBase != nil }

// issuer is the CA a CRL must come from.
type issuer struct {
	cert *x509.Certificate
	ski  []byte
	// signers are the configured certificates of the CA (its name) that
	// may have signed the CRL, cert's own key first; nil means cert alone.
	signers []signerCert
}

// signerCert is one candidate signer of a CA's CRLs.
type signerCert struct {
	cert *x509.Certificate
	ski  []byte
}

func (iss issuer) candidates() []signerCert {
	if len(iss.signers) > 0 {
		return iss.signers
	}
	return []signerCert{{cert: iss.cert, ski: iss.ski}}
}

// maySignCRLs is the RFC 5280 4.2.1.3 rule: cRLSign when the certificate
// has a keyUsage; without one, only a CA certificate.
func maySignCRLs(c *x509.Certificate) bool {
	if c.KeyUsage != 0 {
		return c.KeyUsage&x509.KeyUsageCRLSign != 0
	}
	return c.IsCA
}

// Object identifiers, as DER content bytes so that hot loops compare bytes
// instead of allocating []int.
var (
	oidAKI             = oidBytes(2, 5, 29, 35)
	oidCRLNumber       = oidBytes(2, 5, 29, 20)
	oidDeltaIndicator  = oidBytes(2, 5, 29, 27)
	oidIDP             = oidBytes(2, 5, 29, 28)
	oidFreshestCRL     = oidBytes(2, 5, 29, 46)
	oidIssuerAltName   = oidBytes(2, 5, 29, 18)
	oidExpiredCertsOn  = oidBytes(2, 5, 29, 60)
	oidMSCAVersion     = oidBytes(1, 3, 6, 1, 4, 1, 311, 21, 1)
	oidMSNextPublish   = oidBytes(1, 3, 6, 1, 4, 1, 311, 21, 4)
	oidReasonCode      = oidBytes(2, 5, 29, 21)
	oidInvalidityDate  = oidBytes(2, 5, 29, 24)
	oidCertIssuer      = oidBytes(2, 5, 29, 29)
	oidSHA1WithRSA     = oidBytes(1, 2, 840, 113549, 1, 1, 5)
	oidISOSHA1WithRSA  = oidBytes(1, 3, 14, 3, 2, 29)
	oidSHA256WithRSA   = oidBytes(1, 2, 840, 113549, 1, 1, 11)
	oidSHA384WithRSA   = oidBytes(1, 2, 840, 113549, 1, 1, 12)
	oidSHA512WithRSA   = oidBytes(1, 2, 840, 113549, 1, 1, 13)
	oidRSAPSS          = oidBytes(1, 2, 840, 113549, 1, 1, 10)
	oidECDSAWithSHA1   = oidBytes(1, 2, 840, 10045, 4, 1)
	oidECDSAWithSHA256 = oidBytes(1, 2, 840, 10045, 4, 3, 2)
	oidECDSAWithSHA384 = oidBytes(1, 2, 840, 10045, 4, 3, 3)
	oidECDSAWithSHA512 = oidBytes(1, 2, 840, 10045, 4, 3, 4)
	oidEd25519         = oidBytes(1, 3, 101, 112)
	derNull            = []byte{0x05, 0x00}
	// The only RSA-PSS parameters crypto/x509 verifies: MGF1 with the same
	// hash, salt as long as the hash, default trailer.
	pssSHA256 = []byte{48, 52, 160, 15, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 1, 5, 0, 161, 28, 48, 26, 6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 8, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 1, 5, 0, 162, 3, 2, 1, 32}
	pssSHA384 = []byte{48, 52, 160, 15, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 2, 5, 0, 161, 28, 48, 26, 6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 8, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 2, 5, 0, 162, 3, 2, 1, 48}
	pssSHA512 = []byte{48, 52, 160, 15, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 3, 5, 0, 161, 28, 48, 26, 6, 9, 42, 134, 72, 134, 247, 13, 1, 1, 8, 48, 13, 6, 9, 96, 134, 72, 1, 101, 3, 4, 2, 3, 5, 0, 162, 3, 2, 1, 64}
)

func oidBytes(ids ...int) []byte {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(encasn1.ObjectIdentifier(ids))
	der := b.BytesOrPanic() // constant input: a failure is a programming error
	s := cryptobyte.String(der)
	var content cryptobyte.String
	s.ReadASN1(&content, asn1.OBJECT_IDENTIFIER)
	return content
}

// validOID applies cryptobyte's OBJECT IDENTIFIER rules (minimal base-128,
// each arc within 31 bits) without building the []int.
func validOID(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for len(b) > 0 {
		v := 0
		for i := 0; ; i++ {
			if len(b) == 0 || i == 5 || v >= 1<<(31-7) {
				return false
			}
			c := b[0]
			b = b[1:]
			if i == 0 && c == 0x80 {
				return false
			}
			v = v<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
	}
	return true
}

// validInteger is cryptobyte's minimal-encoding rule for INTEGER content.
func validInteger(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if len(b) == 1 {
		return true
	}
	return !(b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0)
}

// hashChunk is how much is hashed between two chances for other goroutines
// to run. Hashing is assembly, which the runtime cannot preempt: hashing a
// 35 MB CRL in one call held a GOMAXPROCS=1 server's only core for tens of
// milliseconds, and every handshake waited (the crl-refresh p99 in
// BENCHMARKS.md).
const hashChunk = 256 << 10

// chunkedSum hashes b into h in pieces, yielding between them, and appends
// the sum to out.
func chunkedSum(h hash.Hash, b []byte, out []byte, pace *pacer) []byte {
	for len(b) > 0 {
		n := min(len(b), hashChunk)
		h.Write(b[:n])
		b = b[n:]
		if len(b) > 0 {
			pace.yield()
		}
	}
	return h.Sum(out)
}

// pacer keeps a background CRL ingest to a share of one core. A
// million-entry CRL is a third of a second of CPU; taken in one go it
// holds up every handshake on a GOMAXPROCS=1 server for that long. Paced,
// the ingest takes longer but a handshake waits at most one small chunk.
// A nil pacer only yields.
type pacer struct {
	share float64 // of a core, in (0, 1]
	last  time.Time
}

func newPacer(share float64) *pacer {
	if share <= 0 || share >= 1 {
		return nil
	}
	return &pacer{share: share}
}

func (p *pacer) yield() {
	if p == nil {
		runtime.Gosched()
		return
	}
	now := time.Now()
	if !p.last.IsZero() {
		worked := now.Sub(p.last)
		time.Sleep(time.Duration(float64(worked) * (1 - p.share) / p.share))
	}
	p.last = time.Now()
}

// hashFor is the digest an algorithm signs, 0 for Ed25519 (which cannot be
// given a digest) and the algorithms handed to crypto/x509 as they are.
func hashFor(algo x509.SignatureAlgorithm) crypto.Hash {
	switch algo {
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA, x509.SHA256WithRSAPSS:
		return crypto.SHA256
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA, x509.SHA384WithRSAPSS:
		return crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA, x509.SHA512WithRSAPSS:
		return crypto.SHA512
	case x509.ECDSAWithSHA1, x509.SHA1WithRSA:
		return crypto.SHA1
	}
	return 0
}

// checkDigest is issuer.CheckSignature with the message's digest (by
// hashFor(algo)) computed by the caller: in chunks (see hashChunk), and
// once for several candidate keys. Ed25519 cannot be given a digest and
// keeps the one-call path.
func checkDigest(issuer *x509.Certificate, algo x509.SignatureAlgorithm, digest, signed, sig []byte) error {
	h := hashFor(algo)
	if h == 0 {
		return issuer.CheckSignature(algo, signed, sig)
	}
	switch pub := issuer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !isECDSA(algo) {
			return x509.ErrUnsupportedAlgorithm
		}
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return errors.New("x509: ECDSA verification failure")
		}
		return nil
	case *rsa.PublicKey:
		if isECDSA(algo) {
			return x509.ErrUnsupportedAlgorithm
		}
		if pub.N.BitLen() < 1024 {
			return errors.New("x509: RSA key is smaller than 1024 bits")
		}
		if algo == x509.SHA256WithRSAPSS || algo == x509.SHA384WithRSAPSS || algo == x509.SHA512WithRSAPSS {
			return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(pub, h, digest, sig)
	default:
		return issuer.CheckSignature(algo, signed, sig)
	}
}

func isECDSA(a x509.SignatureAlgorithm) bool {
	switch a {
	case x509.ECDSAWithSHA1, x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
		return true
	}
	return false
}

// signatureAlgorithm maps a DER AlgorithmIdentifier to the algorithm
// crypto/x509 verifies. SHA-1 is accepted, as
// x509.RevocationList.CheckSignatureFrom accepts it: AD CS CAs still sign
// CRLs with it, and the CA certificate itself was already accepted by the
// trust store. MD5, DSA and unknown algorithms are refused.
func signatureAlgorithm(ai []byte) (x509.SignatureAlgorithm, bool) {
	s := cryptobyte.String(ai)
	var seq, oid cryptobyte.String
	if !s.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
		return x509.UnknownSignatureAlgorithm, false
	}
	params := []byte(seq)
	nullOrAbsent := len(params) == 0 || bytes.Equal(params, derNull)
	switch {
	case bytes.Equal(oid, oidSHA256WithRSA) && nullOrAbsent:
		return x509.SHA256WithRSA, true
	case bytes.Equal(oid, oidSHA384WithRSA) && nullOrAbsent:
		return x509.SHA384WithRSA, true
	case bytes.Equal(oid, oidSHA512WithRSA) && nullOrAbsent:
		return x509.SHA512WithRSA, true
	case (bytes.Equal(oid, oidSHA1WithRSA) || bytes.Equal(oid, oidISOSHA1WithRSA)) && nullOrAbsent:
		return x509.SHA1WithRSA, true
	case bytes.Equal(oid, oidECDSAWithSHA256) && nullOrAbsent:
		return x509.ECDSAWithSHA256, true
	case bytes.Equal(oid, oidECDSAWithSHA384) && nullOrAbsent:
		return x509.ECDSAWithSHA384, true
	case bytes.Equal(oid, oidECDSAWithSHA512) && nullOrAbsent:
		return x509.ECDSAWithSHA512, true
	case bytes.Equal(oid, oidECDSAWithSHA1) && nullOrAbsent:
		return x509.ECDSAWithSHA1, true
	case bytes.Equal(oid, oidEd25519) && len(params) == 0:
		return x509.PureEd25519, true
	case bytes.Equal(oid, oidRSAPSS):
		switch {
		case bytes.Equal(params, pssSHA256):
			return x509.SHA256WithRSAPSS, true
		case bytes.Equal(params, pssSHA384):
			return x509.SHA384WithRSAPSS, true
		case bytes.Equal(params, pssSHA512):
			return x509.SHA512WithRSAPSS, true
		}
	}
	return x509.UnknownSignatureAlgorithm, false
}

func readTime(s *cryptobyte.String) (time.Time, bool) {
	var t time.Time
	switch {
	case s.PeekASN1Tag(asn1.UTCTime):
		return t, s.ReadASN1UTCTime(&t)
	case s.PeekASN1Tag(asn1.GeneralizedTime):
		return t, s.ReadASN1GeneralizedTime(&t)
	}
	return t, false
}

// skipTime validates and skips a revocationDate without building a
// time.Time: the date itself is not used, and parsing it through
// time.Parse was 40% of the ingest CPU of a big CRL. The usual DER forms
// (YYMMDDHHMMSSZ, YYYYMMDDHHMMSSZ) are checked by hand with the rules
// time.Parse applies; anything else takes the full parse, so exactly the
// same dates are accepted as crypto/x509 accepts.
func skipTime(s *cryptobyte.String) bool {
	var tag asn1.Tag
	var v cryptobyte.String
	probe := *s
	if !probe.ReadAnyASN1(&v, &tag) {
		return false
	}
	switch {
	case tag == asn1.UTCTime && len(v) == 13 && v[12] == 'Z':
		yy, ok := digits(v[0:2])
		if !ok {
			return false
		}
		year := 1900 + yy
		if yy < 50 {
			year = 2000 + yy
		}
		if !validClock(year, v[2:12]) {
			return false
		}
	case tag == asn1.GeneralizedTime && len(v) == 15 && v[14] == 'Z':
		year, ok := digits(v[0:4])
		if !ok || !validClock(year, v[4:14]) {
			return false
		}
	default:
		_, ok := readTime(s)
		return ok
	}
	*s = probe
	return true
}

// validClock checks MMDDHHMMSS for year as time.Parse does.
func validClock(year int, b []byte) bool {
	month, ok1 := digits(b[0:2])
	day, ok2 := digits(b[2:4])
	hour, ok3 := digits(b[4:6])
	minute, ok4 := digits(b[6:8])
	sec, ok5 := digits(b[8:10])
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day >= 1 && day <= days
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// extension is one parsed Extension, its OID as content bytes.
type extension struct {
	oid      []byte
	critical bool
	value    cryptobyte.String
}

// readExtension reads one Extension with crypto/x509's rules.
func readExtension(s *cryptobyte.String) (extension, bool) {
	var e extension
	var ext, oid cryptobyte.String
	if !s.ReadASN1(&ext, asn1.SEQUENCE) || !ext.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) || !validOID(oid) {
		return e, false
	}
	e.oid = oid
	if ext.PeekASN1Tag(asn1.BOOLEAN) && !ext.ReadASN1Boolean(&e.critical) {
		return e, false
	}
	if !ext.ReadASN1(&e.value, asn1.OCTET_STRING) || !ext.Empty() {
		return e, false
	}
	return e, true
}

// decodeCRL returns the DER inside raw, which may be DER or PEM ("X509 CRL").
func decodeCRL(raw []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		return raw, nil
	}
	block, _ := pem.Decode(trimmed)
	if block == nil {
		return nil, fetchErrorf(KindParse, "malformed PEM")
	}
	if block.Type != "X509 CRL" {
		return nil, fetchErrorf(KindParse, "PEM block %q, want X509 CRL", block.Type)
	}
	return block.Bytes, nil
}

// parseCRL verifies a CRL against its issuer and indexes its serials. It
// checks everything that does not depend on the clock; checkTimes does the
// rest. Errors are *FetchError with the kind an operator needs: "parse",
// "signature" or "extension".
func parseCRL(raw []byte, iss issuer, pace *pacer) (*crl, error) {
	der, err := decodeCRL(raw)
	if err != nil {
		return nil, err
	}
	input := cryptobyte.String(der)
	var certList, tbsRaw, outerAI cryptobyte.String
	var sig encasn1.BitString
	if !input.ReadASN1(&certList, asn1.SEQUENCE) || !input.Empty() ||
		!certList.ReadASN1Element(&tbsRaw, asn1.SEQUENCE) ||
		!certList.ReadASN1Element(&outerAI, asn1.SEQUENCE) ||
		!certList.ReadASN1BitString(&sig) || !certList.Empty() {
		return nil, fetchErrorf(KindParse, "malformed CertificateList")
	}
	if sig.BitLength%8 != 0 {
		return nil, fetchErrorf(KindParse, "signature is not a whole number of bytes")
	}

	tbs := tbsRaw
	var version int
	var innerAI, issuerName cryptobyte.String
	if !tbs.ReadASN1(&tbs, asn1.SEQUENCE) || !tbs.PeekASN1Tag(asn1.INTEGER) || !tbs.ReadASN1Integer(&version) {
		return nil, fetchErrorf(KindParse, "malformed TBSCertList or missing version")
	}
	if version != 1 {
		return nil, fetchErrorf(KindParse, "CRL version %d, want v2", version+1)
	}
	if !tbs.ReadASN1Element(&innerAI, asn1.SEQUENCE) || !bytes.Equal(innerAI, outerAI) {
		return nil, fetchErrorf(KindParse, "inner and outer signature algorithms differ")
	}
	if !tbs.ReadASN1Element(&issuerName, asn1.SEQUENCE) {
		return nil, fetchErrorf(KindParse, "malformed issuer name")
	}
	c := &crl{}
	chunkedSum(sha256.New(), der, c.digest[:0], pace)
	var ok bool
	if c.thisUpdate, ok = readTime(&tbs); !ok {
		return nil, fetchErrorf(KindParse, "malformed thisUpdate")
	}
	if tbs.PeekASN1Tag(asn1.UTCTime) || tbs.PeekASN1Tag(asn1.GeneralizedTime) {
		if c.nextUpdate, ok = readTime(&tbs); !ok {
			return nil, fetchErrorf(KindParse, "malformed nextUpdate")
		}
	}
	var revoked, exts cryptobyte.String
	var hasRevoked, hasExts bool
	if !tbs.ReadOptionalASN1(&revoked, &hasRevoked, asn1.SEQUENCE) ||
		!tbs.ReadOptionalASN1(&exts, &hasExts, asn1.Tag(0).Constructed().ContextSpecific()) || !tbs.Empty() {
		return nil, fetchErrorf(KindParse, "malformed TBSCertList")
	}
	if hasExts && (!exts.ReadASN1(&exts, asn1.SEQUENCE) || exts.Empty()) {
		return nil, fetchErrorf(KindParse, "malformed crlExtensions")
	}

	// Who signed it, before anything the signer says is believed.
	if !pathval.SameName(issuerName, iss.cert.RawSubject) {
		return nil, fetchErrorf(KindSignature, "CRL issuer name is not the CA's subject")
	}
	algo, ok := signatureAlgorithm(outerAI)
	if !ok {
		return nil, fetchErrorf(KindSignature, "unsupported signature algorithm")
	}
	signer, err := pickSigner(iss, peekAKI(exts), algo, tbsRaw, sig.Bytes, pace)
	if err != nil {
		return nil, err
	}
	c.signer, c.signerSKI = signer.cert, signer.ski

	if c.nextUpdate.IsZero() {
		// Without nextUpdate a CRL can never be called stale; fail closed.
		return nil, fetchErrorf(KindParse, "CRL has no nextUpdate")
	}
	if c.nextUpdate.Before(c.thisUpdate) {
		return nil, fetchErrorf(KindParse, "nextUpdate is before thisUpdate")
	}
	if err := c.readExtensions(exts, issuerName); err != nil {
		return nil, err
	}
	if err := c.index(revoked, pace); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *crl) readExtensions(exts cryptobyte.String, issuerName []byte) error {
	var seen [][]byte
	for !exts.Empty() {
		e, ok := readExtension(&exts)
		if !ok {
			return fetchErrorf(KindParse, "malformed CRL extension")
		}
		for _, o := range seen {
			if bytes.Equal(o, e.oid) {
				return fetchErrorf(KindParse, "duplicate CRL extension")
			}
		}
		seen = append(seen, e.oid)
		switch {
		case bytes.Equal(e.oid, oidAKI):
			if e.critical {
				return fetchErrorf(KindParse, "authority key identifier marked critical")
			}
			var akid cryptobyte.String
			if !e.value.ReadASN1(&akid, asn1.SEQUENCE) {
				return fetchErrorf(KindParse, "malformed authority key identifier")
			}
			if akid.PeekASN1Tag(asn1.Tag(0).ContextSpecific()) {
				var id cryptobyte.String
				if !akid.ReadASN1(&id, asn1.Tag(0).ContextSpecific()) {
					return fetchErrorf(KindParse, "malformed authority key identifier")
				}
				if !bytes.Equal(id, c.signerSKI) {
					return fetchErrorf(KindSignature, "authority key identifier is not the signing certificate's SKI")
				}
			}
		case bytes.Equal(e.oid, oidCRLNumber):
			c.number = new(big.Int)
			if !e.value.ReadASN1Integer(c.number) || c.number.Sign() < 0 {
				return fetchErrorf(KindParse, "malformed CRL number")
			}
		case bytes.Equal(e.oid, oidDeltaIndicator):
			c.deltaBase = new(big.Int)
			if !e.value.ReadASN1Integer(c.deltaBase) || c.deltaBase.Sign() < 0 {
				return fetchErrorf(KindParse, "malformed delta CRL indicator")
			}
		case bytes.Equal(e.oid, oidIDP):
			scope, err := readIDP(e.value, issuerName)
			if err != nil {
				return err
			}
			c.scope = scope
		case bytes.Equal(e.oid, oidMSNextPublish):
			// A hint only: a malformed one is ignored, not fatal.
			if t, ok := readTime(&e.value); ok {
				c.nextPublish = t
			}
		case bytes.Equal(e.oid, oidFreshestCRL), bytes.Equal(e.oid, oidIssuerAltName),
			bytes.Equal(e.oid, oidExpiredCertsOn), bytes.Equal(e.oid, oidMSCAVersion):
			// Understood and irrelevant to the decision.
		default:
			if e.critical {
				return fetchErrorf(KindExtension, "unknown critical CRL extension %s", oidString(e.oid))
			}
		}
	}
	if c.deltaBase != nil && c.number == nil {
		return fetchErrorf(KindParse, "delta CRL without a CRL number")
	}
	return nil
}

// peekAKI returns the CRL's authority key identifier, nil when it has none
// (or a malformed one, which readExtensions refuses afterwards).
func peekAKI(exts cryptobyte.String) []byte {
	for !exts.Empty() {
		e, ok := readExtension(&exts)
		if !ok {
			return nil
		}
		if !bytes.Equal(e.oid, oidAKI) {
			continue
		}
		var akid, id cryptobyte.String
		if !e.value.ReadASN1(&akid, asn1.SEQUENCE) || !akid.ReadASN1(&id, asn1.Tag(0).ContextSpecific()) {
			return nil
		}
		return id
	}
	return nil
}

// pickSigner finds the certificate of the CA whose key signed the CRL:
// among those the AKI names (all of them without an AKI), one that may
// sign CRLs and whose signature verifies. The TBS is hashed once.
func pickSigner(iss issuer, akid []byte, algo x509.SignatureAlgorithm, tbs, sig []byte, pace *pacer) (signerCert, error) {
	var digest []byte
	hashed := false
	tried, noCRLSign := 0, 0
	var lastErr error
	for _, cand := range iss.candidates() {
		if akid != nil && !bytes.Equal(cand.ski, akid) {
			continue
		}
		tried++
		if !maySignCRLs(cand.cert) {
			noCRLSign++
			continue
		}
		if h := hashFor(algo); h != 0 && !hashed {
			digest, hashed = chunkedSum(h.New(), tbs, nil, pace), true
		}
		err := checkDigest(cand.cert, algo, digest, tbs, sig)
		if err == nil {
			return cand, nil
		}
		lastErr = err
	}
	switch {
	case tried == 0:
		return signerCert{}, fetchErrorf(KindSignature, "authority key identifier %x names none of the CA's %d configured certificates", akid, len(iss.candidates()))
	case noCRLSign == tried && tried == 1:
		return signerCert{}, fetchErrorf(KindSignature, "the CA certificate may not sign CRLs (keyUsage without cRLSign)")
	case noCRLSign == tried:
		return signerCert{}, fetchErrorf(KindSignature, "none of the CA's certificates with this key may sign CRLs (keyUsage without cRLSign)")
	}
	return signerCert{}, &FetchError{Kind: KindSignature, Err: lastErr}
}

// entry classes, recorded during validation so the index passes need not
// parse entry extensions again.
const (
	classRevoked = iota
	classHeld
	classRemoved
)

// index validates every revokedCertificates entry, then builds the serial
// indexes in a second walk over the same bytes.
func (c *crl) index(revoked cryptobyte.String, pace *pacer) error {
	var b [3]indexBuilder
	var classes []byte // nil while every entry is classRevoked
	all := revoked
	for n := 0; !revoked.Empty(); n++ {
		if n&1023 == 1023 {
			pace.yield()
		}
		serial, class, err := readEntry(&revoked, c.isDelta())
		if err != nil {
			return err
		}
		if class != classRevoked && classes == nil {
			classes = make([]byte, n, n+1+len(revoked)/32)
		}
		if classes != nil {
			classes = append(classes, class)
		}
		b[class].observe(serial)
		c.entries++
	}
	for i := range b {
		b[i].start(pace)
	}
	for i, s := 0, all; !s.Empty(); i++ {
		if i&1023 == 1023 {
			pace.yield()
		}
		var ent, serial cryptobyte.String
		// Validated above: these reads cannot fail.
		s.ReadASN1(&ent, asn1.SEQUENCE)
		ent.ReadASN1(&serial, asn1.INTEGER)
		class := classRevoked
		if classes != nil {
			class = int(classes[i])
		}
		b[class].add(serial)
	}
	c.revoked, c.held, c.removed = b[classRevoked].finish(), b[classHeld].finish(), b[classRemoved].finish()
	recycleIndexes(c)
	return nil
}

// readEntry validates one revokedCertificates entry and returns its serial
// content and class.
func readEntry(s *cryptobyte.String, delta bool) ([]byte, byte, error) {
	var ent, serial cryptobyte.String
	if !s.ReadASN1(&ent, asn1.SEQUENCE) || !ent.ReadASN1(&serial, asn1.INTEGER) || !validInteger(serial) {
		return nil, 0, fetchErrorf(KindParse, "malformed revoked certificate entry")
	}
	if len(serial) > maxSerialLen {
		return nil, 0, fetchErrorf(KindParse, "revoked serial longer than %d bytes", maxSerialLen)
	}
	if !skipTime(&ent) {
		return nil, 0, fetchErrorf(KindParse, "malformed revocationDate")
	}
	reason := 0
	var exts cryptobyte.String
	var hasExts bool
	if !ent.ReadOptionalASN1(&exts, &hasExts, asn1.SEQUENCE) || !ent.Empty() {
		return nil, 0, fetchErrorf(KindParse, "malformed revoked certificate entry")
	}
	for !exts.Empty() {
		e, ok := readExtension(&exts)
		if !ok {
			return nil, 0, fetchErrorf(KindParse, "malformed CRL entry extension")
		}
		switch {
		case bytes.Equal(e.oid, oidReasonCode):
			if !e.value.ReadASN1Enum(&reason) {
				return nil, 0, fetchErrorf(KindParse, "malformed reasonCode")
			}
		case bytes.Equal(e.oid, oidCertIssuer):
			// An entry for another CA's certificate: an indirect CRL.
			return nil, 0, fetchErrorf(KindExtension, "certificateIssuer entry extension (indirect CRL)")
		case bytes.Equal(e.oid, oidInvalidityDate):
		default:
			if e.critical {
				return nil, 0, fetchErrorf(KindExtension, "unknown critical CRL entry extension %s", oidString(e.oid))
			}
		}
	}
	// A complete CRL that lists a serial revokes it, whatever the reason
	// says; removeFromCRL only means something in a delta.
	switch {
	case delta && reason == reasonRemoveFromCRL:
		return serial, classRemoved, nil
	case !delta && reason == reasonCertificateHold:
		return serial, classHeld, nil
	}
	return serial, classRevoked, nil
}

// oidString renders OID content bytes for an error message.
func oidString(content []byte) string {
	var b cryptobyte.Builder
	b.AddASN1(asn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(content) })
	der, err := b.Bytes()
	if err != nil {
		return "?"
	}
	s := cryptobyte.String(der)
	var oid encasn1.ObjectIdentifier
	if !s.ReadASN1ObjectIdentifier(&oid) {
		return "?"
	}
	return oid.String()
}

// checkTimes applies the clock rules: thisUpdate not beyond now+skew, and,
// when fresh is required, nextUpdate not passed.
func (c *crl) checkTimes(now time.Time, skew time.Duration, requireFresh bool) error {
	if c.thisUpdate.After(now.Add(skew)) {
		return fetchErrorf(KindFuture, "thisUpdate %s is in the future", c.thisUpdate.UTC().Format(time.RFC3339))
	}
	if requireFresh && now.After(c.nextUpdate) {
		return fetchErrorf(KindExpired, "nextUpdate %s has passed", c.nextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// compareNumber orders two CRLs of the same kind by CRL number, falling
// back to thisUpdate when either has none.
func compareNumber(a, b *crl) int {
	if a.number != nil && b.number != nil {
		return a.number.Cmp(b.number)
	}
	return a.thisUpdate.Compare(b.thisUpdate)
}

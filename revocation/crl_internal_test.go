package revocation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	encasn1 "encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/pkigen"

	"github.com/certgate/certgate/trust/pathval"
)

func TestSerialKeyMatchesDERContent(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	values := []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(-1), big.NewInt(127), big.NewInt(128),
		big.NewInt(-128), big.NewInt(-129), big.NewInt(255), big.NewInt(256), big.NewInt(-256)}
	for range 500 {
		n := new(big.Int).SetBytes(randBytes(rng, 1+rng.IntN(24)))
		if rng.IntN(4) == 0 {
			n.Neg(n)
		}
		values = append(values, n)
	}
	for _, v := range values {
		der, err := encasn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		s := cryptobyte.String(der)
		var content cryptobyte.String
		if !s.ReadASN1(&content, asn1.INTEGER) {
			t.Fatal("bad DER")
		}
		for w := len(content); w <= len(content)+3; w++ {
			want := make([]byte, w)
			contentKey(content, want)
			got := make([]byte, w)
			if !serialKey(v, got) || string(got) != string(want) {
				t.Fatalf("serialKey(%v, %d) = %x, want %x", v, w, got, want)
			}
		}
		if len(content) > 1 {
			if serialKey(v, make([]byte, len(content)-1)) {
				t.Fatalf("serialKey(%v) fits in %d bytes, but its DER needs %d", v, len(content)-1, len(content))
			}
		}
	}
}

func randBytes(rng *mrand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func buildIndex(serials []*big.Int) serialIndex {
	var contents [][]byte
	for _, s := range serials {
		der, _ := encasn1.Marshal(s)
		in := cryptobyte.String(der)
		var c cryptobyte.String
		in.ReadASN1(&c, asn1.INTEGER)
		contents = append(contents, c)
	}
	var b indexBuilder
	for _, c := range contents {
		b.observe(c)
	}
	b.start(nil)
	for _, c := range contents {
		b.add(c)
	}
	return b.finish()
}

func TestSerialIndex(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	in := map[string]*big.Int{}
	var members []*big.Int
	for range 5000 {
		n := new(big.Int).SetBytes(randBytes(rng, 1+rng.IntN(20)))
		if rng.IntN(10) == 0 {
			n.Neg(n)
		}
		in[n.String()] = n
		members = append(members, n)
	}
	x := buildIndex(members)
	if x.len() != len(members) {
		t.Fatalf("len %d, want %d", x.len(), len(members))
	}
	for _, m := range members {
		if !x.contains(m) {
			t.Fatalf("member %v not found", m)
		}
	}
	for range 5000 {
		n := new(big.Int).SetBytes(randBytes(rng, 1+rng.IntN(21)))
		if _, ok := in[n.String()]; !ok && x.contains(n) {
			t.Fatalf("non-member %v found", n)
		}
	}
	var empty serialIndex
	if empty.contains(big.NewInt(1)) || empty.len() != 0 {
		t.Error("empty index contains something")
	}
	one := buildIndex([]*big.Int{big.NewInt(0)})
	if !one.contains(big.NewInt(0)) || one.contains(big.NewInt(256)) {
		t.Error("single-entry index wrong")
	}
}

func TestNextRefresh(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	day := &crl{thisUpdate: now, nextUpdate: now.Add(24 * time.Hour)}
	const wide = 1000 * time.Hour
	for _, tc := range []struct {
		name     string
		c        *crl
		min, max time.Duration
		u        float64
		want     time.Duration
	}{
		{"80% of the window", day, time.Minute, wide, 0.5, 24 * time.Hour * 8 / 10},
		{"jitter low", day, time.Minute, wide, 0, time.Duration(float64(24*time.Hour*8/10) * 0.9)},
		{"jitter high", day, time.Minute, wide, 1, time.Duration(float64(24*time.Hour*8/10) * 1.1)},
		{"clamped to max", day, time.Minute, time.Hour, 0.5, time.Hour},
		{"stale: min", &crl{thisUpdate: now.Add(-48 * time.Hour), nextUpdate: now.Add(-24 * time.Hour)}, time.Minute, wide, 0.5, time.Minute},
		{"next publish earlier wins", &crl{thisUpdate: now, nextUpdate: now.Add(24 * time.Hour), nextPublish: now.Add(2 * time.Hour)}, time.Minute, wide, 0.5, 2 * time.Hour},
		{"next publish passed is ignored", &crl{thisUpdate: now, nextUpdate: now.Add(24 * time.Hour), nextPublish: now.Add(-time.Hour)}, time.Minute, wide, 0.5, 24 * time.Hour * 8 / 10},
	} {
		if got := nextRefresh(now, tc.c, tc.min, tc.max, tc.u); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for n, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 4: 80 * time.Second, 20: time.Hour} {
		if got := backoff(n, time.Hour); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

// TestSignatureAlgorithms ingests CRLs signed with each supported family.
func TestSignatureAlgorithms(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		algo x509.SignatureAlgorithm
	}{
		{"ECDSA P-384", p384, 0},
		{"Ed25519", ed, 0},
		{"RSA PKCS#1 SHA-256", rsaKey, x509.SHA256WithRSA},
		{"RSA PKCS#1 SHA-512", rsaKey, x509.SHA512WithRSA},
		{"RSA-PSS SHA-256", rsaKey, x509.SHA256WithRSAPSS},
		{"RSA-PSS SHA-384", rsaKey, x509.SHA384WithRSAPSS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := pkigen.Root(t, "CA "+tc.name, pkigen.Key(tc.key))
			der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
				SignatureAlgorithm: tc.algo, Number: big.NewInt(3),
				ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour),
				RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(42), RevocationTime: time.Now()}},
			}, ca.Cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseCRL(der, issuer{cert: ca.Cert, ski: pathval.KeyID(ca.Cert)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !c.revoked.contains(big.NewInt(42)) || c.revoked.contains(big.NewInt(43)) {
				t.Error("wrong index")
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	root := pkigen.Root(t, "Root")
	// The same key and name twice: one certificate may sign CRLs, one may not.
	signer := pkigen.Root(t, "NoCRLSign")
	noCRLSign := pkigen.Root(t, "NoCRLSign", pkigen.Key(signer.Key), pkigen.KeyUsage(x509.KeyUsageCertSign))
	iss := issuer{cert: root.Cert, ski: pathval.KeyID(root.Cert)}
	now := time.Now()
	good := pkigen.CRLOptions{Number: 1, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	withExt := func(e ...pkix.Extension) pkigen.CRLOptions {
		o := good
		o.ExtraExtensions = e
		return o
	}
	entryExt := func(e pkix.Extension) pkigen.CRLOptions {
		o := good
		o.Revoked = []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: now, ExtraExtensions: []pkix.Extension{e}}}
		return o
	}
	badAKI, _ := encasn1.Marshal(struct {
		ID []byte `asn1:"optional,tag:0"`
	}{ID: []byte{1, 2, 3}})
	// Signed by the right key, but naming another key identifier.
	relabelled := *root.Cert
	relabelled.SubjectKeyId = []byte{1, 2, 3}
	otherAKI, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}, &relabelled, root.Key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		der  []byte
		iss  issuer
		kind string
	}{
		{"CA without cRLSign", signer.MustCRL(t, good), issuer{cert: noCRLSign.Cert, ski: pathval.KeyID(noCRLSign.Cert)}, KindSignature},
		{"duplicate extension", root.MustCRL(t, withExt(pkix.Extension{Id: []int{2, 5, 29, 35}, Value: badAKI})), iss, KindParse},
		{"AKI of another key", otherAKI, iss, KindSignature},
		{"unknown critical entry extension", root.MustCRL(t, entryExt(pkix.Extension{Id: []int{1, 2, 3, 4}, Critical: true, Value: []byte{5, 0}})), iss, KindExtension},
		{"certificateIssuer entry", root.MustCRL(t, entryExt(pkix.Extension{Id: []int{2, 5, 29, 29}, Critical: true, Value: []byte{0x30, 0}})), iss, KindExtension},
		{"unknown non-critical extension is fine", root.MustCRL(t, withExt(pkix.Extension{Id: []int{1, 2, 3, 4}, Value: []byte{5, 0}})), iss, ""},
		{"trailing data", append(root.MustCRL(t, good), 0), iss, KindParse},
		{"PEM of another type", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert.Raw}), iss, KindParse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseCRL(tc.der, tc.iss, nil)
			var fe *FetchError
			switch {
			case tc.kind == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.kind != "" && (!errors.As(err, &fe) || fe.Kind != tc.kind):
				t.Fatalf("err = %v, want kind %s", err, tc.kind)
			}
		})
	}
}

// seedCRLs are valid CRLs of inter: empty, with entries and reasons, a
// delta, with an IDP, and a PEM one.
func seedCRLs(tb testing.TB, inter *pkigen.CA) [][]byte {
	now := time.Now()
	o := pkigen.CRLOptions{Number: 5, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	seeds := [][]byte{inter.MustCRL(tb, o)}
	o.Revoked = []x509.RevocationListEntry{
		{SerialNumber: big.NewInt(1), RevocationTime: now},
		{SerialNumber: big.NewInt(-5), RevocationTime: now},
		{SerialNumber: new(big.Int).Lsh(big.NewInt(1), 150), RevocationTime: now, ReasonCode: 6},
		{SerialNumber: big.NewInt(0x80), RevocationTime: now, ReasonCode: 1},
	}
	seeds = append(seeds, inter.MustCRL(tb, o))
	o.DeltaBase = 4
	o.Revoked[0].ReasonCode = 8
	seeds = append(seeds, inter.MustCRL(tb, o))
	o.DeltaBase = 0
	o.ExtraExtensions = []pkix.Extension{{Id: []int{2, 5, 29, 28}, Critical: true, Value: []byte{0x30, 0x03, 0x81, 0x01, 0xff}}}
	seeds = append(seeds, inter.MustCRL(tb, o))
	for _, v := range idpSeeds {
		o.ExtraExtensions = []pkix.Extension{{Id: []int{2, 5, 29, 28}, Critical: true, Value: v}}
		seeds = append(seeds, inter.MustCRL(tb, o))
	}
	seeds = append(seeds, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: seeds[1]}))
	return seeds
}

// differential checks an accepted CRL against crypto/x509's parser: it
// must parse there too, with the same entries, numbers and times, and every
// listed serial must be in one of the indexes.
func differential(t *testing.T, data []byte, c *crl, ca *x509.Certificate) {
	der, err := decodeCRL(data)
	if err != nil {
		t.Fatalf("accepted, but decodeCRL fails: %v", err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("accepted, but x509.ParseRevocationList refuses: %v", err)
	}
	if err := rl.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("accepted, but x509 says the signature is bad: %v", err)
	}
	if len(rl.RevokedCertificateEntries) != c.entries {
		t.Fatalf("%d entries, x509 has %d", c.entries, len(rl.RevokedCertificateEntries))
	}
	if (rl.Number == nil) != (c.number == nil) || (rl.Number != nil && rl.Number.Cmp(c.number) != 0) {
		t.Fatalf("number %v, x509 has %v", c.number, rl.Number)
	}
	if !rl.ThisUpdate.Equal(c.thisUpdate) || !rl.NextUpdate.Equal(c.nextUpdate) {
		t.Fatalf("times %v %v, x509 has %v %v", c.thisUpdate, c.nextUpdate, rl.ThisUpdate, rl.NextUpdate)
	}
	for _, e := range rl.RevokedCertificateEntries {
		if !c.revoked.contains(e.SerialNumber) && !c.held.contains(e.SerialNumber) && !c.removed.contains(e.SerialNumber) {
			t.Fatalf("serial %v listed but not indexed", e.SerialNumber)
		}
	}
	if n := c.revoked.len() + c.held.len() + c.removed.len(); n != c.entries {
		t.Fatalf("indexes hold %d serials, CRL has %d", n, c.entries)
	}
}

func checkIngest(t *testing.T, data []byte, iss issuer) {
	c, err := parseCRL(data, iss, nil)
	if err != nil {
		var fe *FetchError
		if !errors.As(err, &fe) || fe.Kind == "" {
			t.Fatalf("error without a kind: %v", err)
		}
		return
	}
	differential(t, data, c, iss.cert)
}

// FuzzIngest feeds arbitrary bytes to the CRL ingest path.
func FuzzIngest(f *testing.F) {
	inter := pkigen.Root(f, "Root").Intermediate(f, "Inter")
	iss := issuer{cert: inter.Cert, ski: pathval.KeyID(inter.Cert)}
	for _, s := range seedCRLs(f, inter) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte("-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) { checkIngest(t, data, iss) })
}

// FuzzIngestSignedTBS fuzzes the TBSCertList and signs whatever comes out,
// so the fuzzer reaches the code behind the signature check.
func FuzzIngestSignedTBS(f *testing.F) {
	inter := pkigen.Root(f, "Root").Intermediate(f, "Inter")
	iss := issuer{cert: inter.Cert, ski: pathval.KeyID(inter.Cert)}
	for _, s := range seedCRLs(f, inter)[:4] {
		rl, err := x509.ParseRevocationList(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rl.RawTBSRevocationList)
	}
	ecdsaSHA256 := []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	f.Fuzz(func(t *testing.T, tbs []byte) {
		digest := sha256.Sum256(tbs)
		sig, err := inter.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		var b cryptobyte.Builder
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(tbs)
			b.AddBytes(ecdsaSHA256)
			b.AddASN1BitString(sig)
		})
		der, err := b.Bytes()
		if err != nil {
			return
		}
		checkIngest(t, der, iss)
	})
}

func TestKeyIDIsMethodOne(t *testing.T) {
	ca := pkigen.Root(t, "Root") // pkigen writes RFC 5280 method-1 SKIs
	bare := *ca.Cert
	bare.SubjectKeyId = nil
	if got := pathval.KeyID(&bare); string(got) != string(ca.Cert.SubjectKeyId) {
		t.Fatalf("computed SKI %x, want %x", got, ca.Cert.SubjectKeyId)
	}
}

// FuzzSkipTime: the hand-written date check accepts exactly what the full
// parse accepts, and consumes the same bytes.
func FuzzSkipTime(f *testing.F) {
	for _, s := range []string{"261125101500Z", "20261125101500Z", "260230101500Z", "240229000000Z", "230229000000Z", "991231235959Z", "000101000000Z", "261125106000Z", "2611251015Z", "19000229000000Z", "20000229000000Z"} {
		f.Add(byte(0x17), []byte(s))
		f.Add(byte(0x18), []byte(s))
	}
	f.Fuzz(func(t *testing.T, tag byte, v []byte) {
		if len(v) > 100 {
			return
		}
		der := append([]byte{tag, byte(len(v))}, v...)
		der = append(der, 0xAA) // a following byte must be left alone
		a, b := cryptobyte.String(der), cryptobyte.String(der)
		_, okFull := readTime(&a)
		okFast := skipTime(&b)
		if okFull != okFast {
			t.Fatalf("tag %#x %q: readTime %v, skipTime %v", tag, v, okFull, okFast)
		}
		if okFull && len(a) != len(b) {
			t.Fatalf("consumed differently: %d vs %d", len(a), len(b))
		}
	})
}

// TestMalformedCRLFiles ingests the malformed CRLs kept in
// testdata/malformed (signed by testdata/malformed/ca.pem, valid for a
// century) and checks each is refused for its own reason, never a panic;
// they also seed FuzzIngest.
func TestMalformedCRLFiles(t *testing.T) {
	iss := malformedIssuer(t)
	want := map[string]string{
		"truncated.der":                  KindParse,
		"garbage.der":                    KindParse,
		"bad-base64.pem":                 KindParse,
		"wrong-signer.der":               KindSignature,
		"tampered.der":                   KindSignature,
		"other-issuer.der":               KindSignature,
		"unknown-critical-extension.der": KindExtension,
		"indirect-idp.der":               KindExtension,
	}
	for name, kind := range want {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "malformed", name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseCRL(data, iss, nil)
			var fe *FetchError
			if !errors.As(err, &fe) || fe.Kind != kind {
				t.Fatalf("got %v, want a %s refusal", err, kind)
			}
		})
	}
	data, err := os.ReadFile(filepath.Join("testdata", "malformed", "good.der"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseCRL(data, iss, nil); err != nil {
		t.Fatalf("the control CRL is refused: %v", err)
	}
}

func malformedIssuer(tb testing.TB) issuer {
	pemBytes, err := os.ReadFile(filepath.Join("testdata", "malformed", "ca.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return issuer{cert: ca, ski: pathval.KeyID(ca)}
}

// FuzzIngestMalformedSeeds fuzzes from the kept malformed CRLs.
func FuzzIngestMalformedSeeds(f *testing.F) {
	iss := malformedIssuer(f)
	files, _ := filepath.Glob(filepath.Join("testdata", "malformed", "*.*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkIngest(t, data, iss) })
}

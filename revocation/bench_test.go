package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/pkigen"

	"github.com/certgate/certgate/trust/pathval"
)

const benchEntries = 1_000_000

// bench1M returns a CRL of benchEntries serials (16 random bytes each, as AD
// CS writes them; about 35 MB of DER), the path it is stored at and its CA.
// Building it takes a few seconds, so it is kept in the temp dir
// (certgate-bench-crl-1m.der, with its CA in certgate-bench-crl-1m.ca.pem)
// and rebuilt only when missing or unreadable.
func bench1M(b *testing.B) (string, []byte, *x509.Certificate) {
	b.Helper()
	derPath := filepath.Join(os.TempDir(), "certgate-bench-crl-1m.der")
	caPath := filepath.Join(os.TempDir(), "certgate-bench-crl-1m.ca.pem")
	if der, err := os.ReadFile(derPath); err == nil {
		if pemCA, err := os.ReadFile(caPath); err == nil {
			if blk, _ := pem.Decode(pemCA); blk != nil {
				if ca, err := x509.ParseCertificate(blk.Bytes); err == nil {
					return derPath, der, ca
				}
			}
		}
	}
	ca, err := pkigen.NewRoot("certgate bench CA")
	if err != nil {
		b.Fatal(err)
	}
	der := build1M(b, ca)
	if err := os.WriteFile(derPath, der, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(caPath, pkigen.CertPEM(ca.Cert), 0o644); err != nil {
		b.Fatal(err)
	}
	return derPath, der, ca.Cert
}

func build1M(b *testing.B, ca *pkigen.CA) []byte {
	rng := mrand.New(mrand.NewPCG(1, benchEntries))
	now := time.Now().UTC().Truncate(time.Second)
	ai := []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02} // ecdsa-with-SHA256
	var tb cryptobyte.Builder
	tb.AddASN1(asn1.SEQUENCE, func(t *cryptobyte.Builder) {
		t.AddASN1Int64(1)
		t.AddBytes(ai)
		t.AddBytes(ca.Cert.RawSubject)
		t.AddASN1UTCTime(now.Add(-time.Hour))
		t.AddASN1GeneralizedTime(now.Add(10 * 365 * 24 * time.Hour))
		t.AddASN1(asn1.SEQUENCE, func(l *cryptobyte.Builder) {
			var s [16]byte
			for range benchEntries {
				for i := range s {
					s[i] = byte(rng.Uint32())
				}
				s[0] |= 0x01 // never a leading zero byte
				l.AddASN1(asn1.SEQUENCE, func(e *cryptobyte.Builder) {
					e.AddASN1BigInt(new(big.Int).SetBytes(s[:]))
					e.AddASN1UTCTime(now.Add(-2 * time.Hour))
				})
			}
		})
		t.AddASN1(asn1.Tag(0).Constructed().ContextSpecific(), func(x *cryptobyte.Builder) {
			x.AddASN1(asn1.SEQUENCE, func(x *cryptobyte.Builder) {
				x.AddASN1(asn1.SEQUENCE, func(e *cryptobyte.Builder) { // AKI
					e.AddASN1ObjectIdentifier([]int{2, 5, 29, 35})
					e.AddASN1(asn1.OCTET_STRING, func(v *cryptobyte.Builder) {
						v.AddASN1(asn1.SEQUENCE, func(v *cryptobyte.Builder) {
							v.AddASN1(asn1.Tag(0).ContextSpecific(), func(v *cryptobyte.Builder) { v.AddBytes(ca.Cert.SubjectKeyId) })
						})
					})
				})
				x.AddASN1(asn1.SEQUENCE, func(e *cryptobyte.Builder) { // CRL number
					e.AddASN1ObjectIdentifier([]int{2, 5, 29, 20})
					e.AddASN1(asn1.OCTET_STRING, func(v *cryptobyte.Builder) { v.AddASN1Int64(1) })
				})
			})
		})
	})
	tbs := tb.BytesOrPanic()
	digest := sha256.Sum256(tbs)
	sig, err := ca.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	var out cryptobyte.Builder
	out.AddASN1(asn1.SEQUENCE, func(o *cryptobyte.Builder) {
		o.AddBytes(tbs)
		o.AddBytes(ai)
		o.AddASN1BitString(sig)
	})
	return out.BytesOrPanic()
}

// firstSerials returns the first n serials listed in der.
func firstSerials(b *testing.B, der []byte, n int) []*big.Int {
	rl := cryptobyte.String(der)
	var list, tbs, revoked cryptobyte.String
	var tag asn1.Tag
	if !rl.ReadASN1(&list, asn1.SEQUENCE) || !list.ReadASN1(&tbs, asn1.SEQUENCE) {
		b.Fatal("bad bench CRL")
	}
	for range 5 { // version, signature, issuer, thisUpdate, nextUpdate
		var skip cryptobyte.String
		tbs.ReadAnyASN1(&skip, &tag)
	}
	tbs.ReadASN1(&revoked, asn1.SEQUENCE)
	var out []*big.Int
	for range n {
		var ent cryptobyte.String
		sn := new(big.Int)
		if !revoked.ReadASN1(&ent, asn1.SEQUENCE) || !ent.ReadASN1Integer(sn) {
			b.Fatal("bad entry")
		}
		out = append(out, sn)
	}
	return out
}

// BenchmarkLookup1M measures Check (and the bare index lookup) against a
// CRL of a million entries, loaded the way serve loads it (file:// fetch).
func BenchmarkLookup1M(b *testing.B) {
	path, der, ca := bench1M(b)
	c := New(Options{Logger: slog.New(slog.DiscardHandler), MaxCRLSize: 128 << 20})
	c.SetSources([]Source{{Issuer: ca, CRLURL: "file://" + path}})
	if err := c.RefreshNow(context.Background()); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	rng := mrand.New(mrand.NewPCG(7, 7))
	const n = 1 << 14
	chains := make([][]*x509.Certificate, n)
	for i := range chains {
		var s [16]byte
		for j := range s {
			s[j] = byte(rng.Uint32())
		}
		chains[i] = []*x509.Certificate{{SerialNumber: new(big.Int).SetBytes(s[:])}, ca}
	}
	b.Run("check-not-revoked", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := c.Check(chains[i&(n-1)], now); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	idx := &c.snap.Load().cas[string(ca.SubjectKeyId)].base.revoked
	hits := firstSerials(b, der, n)
	b.Run("index-revoked", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !idx.contains(hits[i&(n-1)]) {
				b.Fatal("revoked serial not found")
			}
			i++
		}
	})
	b.Run("index-not-revoked", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if idx.contains(chains[i&(n-1)][0].SerialNumber) {
				b.Fatal("random serial found")
			}
			i++
		}
	})
	b.Run("check-revoked", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if c.Check([]*x509.Certificate{{SerialNumber: hits[i&(n-1)]}, ca}, now) == nil {
				b.Fatal("revoked serial admitted")
			}
			i++
		}
	})
}

// BenchmarkIngest1M measures reading and verifying a 1M-entry CRL file and
// building its index: time per ingest, retained heap per entry, and the
// peak RSS of one ingest (Linux: /proc/self/clear_refs resets VmHWM, then
// VmHWM is read after the ingest).
func BenchmarkIngest1M(b *testing.B) {
	path, der, ca := bench1M(b)
	iss := issuer{cert: ca, ski: pathval.KeyID(ca)}
	ingest := func() *crl {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			b.Fatal(err)
		}
		body, err := readCapped(f, 128<<20, fi.Size())
		if err != nil {
			b.Fatal(err)
		}
		c, err := parseCRL(body, iss, nil)
		if err != nil {
			b.Fatal(err)
		}
		putBody(body) // as doFetch does: the next ingest reuses it
		return c
	}
	size := float64(len(der))
	der = nil // only the file is read from here on

	// Peak RSS of one ingest, from a settled heap.
	runtime.GC()
	debug.FreeOSMemory()
	rssBefore := procStatusKB(b, "VmRSS")
	peakOK := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	first := ingest()
	var peak int64
	if peakOK {
		peak = procStatusKB(b, "VmHWM")
	}
	runtime.KeepAlive(first)
	first = nil

	// Retained heap per entry: from empty pools, or the kept CRL would sit
	// in memory counted before it.
	var m0, m1 runtime.MemStats
	runtime.GC()
	drainPools()
	runtime.GC()
	runtime.ReadMemStats(&m0)
	kept := ingest()
	drainPools()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perEntry := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(kept.entries)
	runtime.KeepAlive(kept)

	b.ReportAllocs()
	for b.Loop() {
		if c := ingest(); c.entries != benchEntries {
			b.Fatalf("%d entries", c.entries)
		}
	}
	// b.Loop resets user metrics when it starts timing: report after it.
	b.ReportMetric(perEntry, "retained-B/entry")
	b.ReportMetric(size/(1<<20), "CRL-MB")
	if peakOK {
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
		b.ReportMetric(float64(peak-rssBefore)*1024/size, "RSS-growth/CRL-size")
	}
}

func procStatusKB(b *testing.B, field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	for _, line := range bytes.Split(data, []byte("\n")) {
		if rest, ok := strings.CutPrefix(string(line), field+":"); ok {
			v, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return v
			}
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// drainPools empties the body and index pools.
func drainPools() {
	for bodyPool.Get() != nil {
	}
	for slabPool.Get() != nil {
	}
}

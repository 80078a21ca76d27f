package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/revocation"
)

// crlMaker signs large CRLs quickly: the revokedCertificates list is
// encoded once, and each new CRL (a higher number, a later thisUpdate)
// only wraps and signs it. crypto/x509.CreateRevocationList takes tens of
// seconds and gigabytes for a million entries.
type crlMaker struct {
	ca      *pkigen.CA
	revoked []byte // the whole revokedCertificates SEQUENCE, or nil
	entries int
	sample  []*big.Int // a few listed serials, for lookups that must hit
}

// newCRLMaker lists n serials: extra first, then random 16-byte serials (as
// AD CS writes them) drawn from seed.
func newCRLMaker(ca *pkigen.CA, n int, seed uint64, extra ...*big.Int) (*crlMaker, error) {
	if n < len(extra) {
		return nil, fmt.Errorf("crl: %d entries cannot hold %d listed serials", n, len(extra))
	}
	when := []byte(time.Now().UTC().Add(-2 * time.Hour).Format("060102150405Z"))
	rng := mrand.New(mrand.NewPCG(seed, uint64(n)))
	// 35 bytes per random entry: SEQUENCE{INTEGER(16), UTCTime(13)}.
	body := make([]byte, 0, n*35+64)
	m := &crlMaker{ca: ca, entries: n}
	entry := func(serial []byte) {
		content := 2 + len(serial) + 2 + len(when)
		body = append(body, 0x30)
		body = appendLength(body, content)
		body = append(body, 0x02)
		body = appendLength(body, len(serial))
		body = append(body, serial...)
		body = append(body, 0x17, byte(len(when)))
		body = append(body, when...)
	}
	for _, s := range extra {
		entry(integerContent(s))
	}
	var s [16]byte
	for i := len(extra); i < n; i++ {
		for j := 0; j < 16; j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				s[j+k] = byte(v >> (8 * k))
			}
		}
		s[0] = s[0]&0x7f | 0x40 // positive, no leading zero: always 16 bytes
		entry(s[:])
		if len(m.sample) < 1024 {
			m.sample = append(m.sample, new(big.Int).SetBytes(s[:]))
		}
	}
	if n > 0 {
		m.revoked = appendLength([]byte{0x30}, len(body))
		m.revoked = append(m.revoked, body...)
	}
	return m, nil
}

// integerContent is the DER INTEGER content of a positive serial.
func integerContent(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) == 0 {
		return []byte{0}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n < 1<<8:
		return append(b, 0x81, byte(n))
	case n < 1<<16:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n < 1<<24:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

var (
	oidECDSAWithSHA256 = []int{1, 2, 840, 10045, 4, 3, 2}
	oidRSAWithSHA256   = []int{1, 2, 840, 113549, 1, 1, 11}
)

// sign returns a DER CRL with the given number and times.
func (m *crlMaker) sign(number int64, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	algo := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			switch m.ca.Key.(type) {
			case *ecdsa.PrivateKey:
				b.AddASN1ObjectIdentifier(oidECDSAWithSHA256)
			case *rsa.PrivateKey:
				b.AddASN1ObjectIdentifier(oidRSAWithSHA256)
				b.AddASN1NULL()
			}
		})
	}
	switch m.ca.Key.(type) {
	case *ecdsa.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, fmt.Errorf("crl: CA key %T: want ECDSA or RSA", m.ca.Key)
	}
	var tb cryptobyte.Builder
	tb.AddASN1(cbasn1.SEQUENCE, func(t *cryptobyte.Builder) {
		t.AddASN1Int64(1) // v2
		algo(t)
		t.AddBytes(m.ca.Cert.RawSubject)
		t.AddASN1UTCTime(thisUpdate.UTC())
		t.AddASN1UTCTime(nextUpdate.UTC())
		if m.revoked != nil {
			t.AddBytes(m.revoked)
		}
		t.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(x *cryptobyte.Builder) {
			x.AddASN1(cbasn1.SEQUENCE, func(x *cryptobyte.Builder) {
				x.AddASN1(cbasn1.SEQUENCE, func(e *cryptobyte.Builder) { // authorityKeyIdentifier
					e.AddASN1ObjectIdentifier([]int{2, 5, 29, 35})
					e.AddASN1(cbasn1.OCTET_STRING, func(v *cryptobyte.Builder) {
						v.AddASN1(cbasn1.SEQUENCE, func(v *cryptobyte.Builder) {
							v.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(v *cryptobyte.Builder) { v.AddBytes(m.ca.Cert.SubjectKeyId) })
						})
					})
				})
				x.AddASN1(cbasn1.SEQUENCE, func(e *cryptobyte.Builder) { // cRLNumber
					e.AddASN1ObjectIdentifier([]int{2, 5, 29, 20})
					e.AddASN1(cbasn1.OCTET_STRING, func(v *cryptobyte.Builder) { v.AddASN1Int64(number) })
				})
			})
		})
	})
	tbs, err := tb.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(tbs)
	sig, err := m.ca.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(o *cryptobyte.Builder) {
		o.AddBytes(tbs)
		algo(o)
		o.AddASN1BitString(sig)
	})
	return out.Bytes()
}

// crlResult is the JSON line of the crl mode.
type crlResult struct {
	Mode     string  `json:"mode"`
	Label    string  `json:"label,omitempty"`
	Entries  int     `json:"entries"`
	DERBytes int64   `json:"der_bytes"`
	IngestS  float64 `json:"ingest_s"`
	// IngestCPUS is the CPU time of the ingest (all threads, the GC's
	// included): unlike the wall time it holds on a busy machine.
	IngestCPUS  float64 `json:"ingest_cpu_s"`
	RetainedB   int64   `json:"retained_heap_bytes"`
	PerEntryB   float64 `json:"retained_bytes_per_entry"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	PeakRSSKB   int64   `json:"peak_rss_kb"`
	// PeakGrowthRatio is (peak RSS − RSS before) / DER size.
	PeakGrowthRatio float64 `json:"peak_rss_growth_over_der"`
	LookupMissNs    float64 `json:"lookup_not_revoked_ns"`
	LookupMissCPUNs float64 `json:"lookup_not_revoked_cpu_ns"`
	LookupMissAlloc float64 `json:"lookup_not_revoked_allocs"`
	LookupHitNs     float64 `json:"lookup_revoked_ns"`
	LookupHitCPUNs  float64 `json:"lookup_revoked_cpu_ns"`
	LookupHitAlloc  float64 `json:"lookup_revoked_allocs"`
	BuildS          float64 `json:"build_s,omitempty"`
}

// runCRL measures the revocation package the way `serve` uses it: a
// Checker with one file:// source, RefreshNow, then Check.
func runCRL(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("crl", flag.ContinueOnError)
	crlPath := fs.String("crl", "", "DER CRL to ingest (default: build one of --entries in a temp folder)")
	caPath := fs.String("ca", "", "PEM of the CRL's issuer (with --crl)")
	entries := fs.Int("entries", 1_000_000, "entries of the CRL built when --crl is not given")
	label := fs.String("label", "", "free text copied into the JSON line")
	lookupTime := fs.Duration("lookup-time", time.Second, "minimum time of each lookup benchmark")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*crlPath == "") != (*caPath == "") {
		return usagef("crl: --crl and --ca go together")
	}
	res := crlResult{Mode: "crl", Label: *label}
	var issuer *x509.Certificate
	var hits []*big.Int
	if *crlPath == "" {
		if *entries < 1 {
			return usagef("crl: --entries must be positive")
		}
		dir, err := os.MkdirTemp("", "certgate-bench-crl-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		t0 := time.Now()
		ca, err := pkigen.NewRoot("certgate bench CRL CA")
		if err != nil {
			return err
		}
		m, err := newCRLMaker(ca, *entries, crlSeed)
		if err != nil {
			return err
		}
		der, err := m.sign(1, time.Now().Add(-time.Minute), time.Now().Add(30*24*time.Hour))
		if err != nil {
			return err
		}
		*crlPath = filepath.Join(dir, "crl.der")
		if err := os.WriteFile(*crlPath, der, 0o644); err != nil {
			return err
		}
		issuer, hits = ca.Cert, m.sample
		res.BuildS = round3(time.Since(t0).Seconds())
	} else {
		certs, err := readPEMCerts(*caPath)
		if err != nil {
			return fmt.Errorf("crl: --ca: %w", err)
		}
		issuer = certs[0]
		der, err := os.ReadFile(*crlPath)
		if err != nil {
			return fmt.Errorf("crl: %w", err)
		}
		if hits, err = listedSerials(der, 1024); err != nil {
			return fmt.Errorf("crl: %s: %w", *crlPath, err)
		}
	}
	fi, err := os.Stat(*crlPath)
	if err != nil {
		return err
	}
	res.DERBytes = fi.Size()

	// A settled heap, and the peak-RSS mark reset (Linux: writing 5 to
	// clear_refs resets VmHWM to the current RSS).
	runtime.GC()
	debug.FreeOSMemory()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	res.RSSBeforeKB, _ = statusKB(0, "VmRSS")
	peakOK := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	c := revocation.New(revocation.Options{
		Logger:     slog.New(slog.DiscardHandler),
		MaxCRLSize: max(fi.Size()*2, 64<<20),
		// The cost of an ingest, unpaced; serve paces background refreshes
		// to a quarter of a core (revocation.Options.IngestShare).
		IngestShare: 1,
	})
	c.SetSources([]revocation.Source{{Issuer: issuer, CRLURL: (&url.URL{Scheme: "file", Path: mustAbs(*crlPath)}).String()}})
	t0, cpu0 := time.Now(), selfCPU()
	if err := c.RefreshNow(ctx); err != nil {
		return fmt.Errorf("crl: ingest: %w", err)
	}
	res.IngestS = round3(time.Since(t0).Seconds())
	res.IngestCPUS = round3((selfCPU() - cpu0).Seconds())
	if peakOK {
		res.PeakRSSKB, _ = statusKB(0, "VmHWM")
	}
	// Twice: the fetched body's buffer waits in a sync.Pool for the next
	// refresh, and a pool gives its contents up over two collections; it
	// is not part of what a loaded CRL keeps.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	st := c.Status()
	if len(st) != 1 {
		return fmt.Errorf("crl: %d sources in status, want 1", len(st))
	}
	res.Entries = st[0].Entries
	res.RetainedB = int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	if res.Entries > 0 {
		res.PerEntryB = round3(float64(res.RetainedB) / float64(res.Entries))
	}
	if peakOK && res.DERBytes > 0 {
		res.PeakGrowthRatio = round3(float64(res.PeakRSSKB-res.RSSBeforeKB) * 1024 / float64(res.DERBytes))
	}

	// Lookups: serials that are not listed, then serials that are.
	rng := mrand.New(mrand.NewPCG(7, 7))
	const n = 1 << 12
	misses := make([][]*x509.Certificate, n)
	for i := range misses {
		var s [16]byte
		for j := range s {
			s[j] = byte(rng.Uint32())
		}
		misses[i] = []*x509.Certificate{{SerialNumber: new(big.Int).SetBytes(s[:])}, issuer}
	}
	if len(hits) == 0 {
		return errors.New("crl: no listed serial to look up")
	}
	hitChains := make([][]*x509.Certificate, len(hits))
	for i, h := range hits {
		hitChains[i] = []*x509.Certificate{{SerialNumber: h}, issuer}
	}
	now := time.Now()
	measure := func(chains [][]*x509.Certificate, wantRevoked bool) (lookup, error) {
		return timeLookups(*lookupTime, len(chains), func(i int) error {
			err := c.Check(chains[i], now)
			if (err != nil) != wantRevoked {
				return fmt.Errorf("crl: lookup of a listed=%v serial: %v", wantRevoked, err)
			}
			return nil
		})
	}
	miss, err := measure(misses, false)
	if err != nil {
		return err
	}
	hit, err := measure(hitChains, true)
	if err != nil {
		return err
	}
	res.LookupMissNs, res.LookupMissCPUNs, res.LookupMissAlloc = miss.ns, miss.cpuNs, miss.allocs
	res.LookupHitNs, res.LookupHitCPUNs, res.LookupHitAlloc = hit.ns, hit.cpuNs, hit.allocs
	runtime.KeepAlive(c)
	human := fmt.Sprintf("crl: %d entries (%.1f MB DER): ingest %.3fs (%.3fs CPU), retained %.1f B/entry, peak RSS %.0f MB (growth %.2f× DER), lookup %.1f ns (%.1f CPU, %.2f allocs) not revoked, %.1f ns (%.2f allocs) revoked",
		res.Entries, float64(res.DERBytes)/(1<<20), res.IngestS, res.IngestCPUS, res.PerEntryB, float64(res.PeakRSSKB)/1024,
		res.PeakGrowthRatio, res.LookupMissNs, res.LookupMissCPUNs, res.LookupMissAlloc, res.LookupHitNs, res.LookupHitAlloc)
	return emit(out, res, human)
}

// lookup is the cost of one Check: wall and CPU nanoseconds, and heap
// allocations.
type lookup struct {
	ns, cpuNs, allocs float64
}

// timeLookups calls f(i % n) in batches for at least d. The process CPU
// time is measured beside the wall time: with one goroutine busy it is the
// lookups' own, and it does not grow when another process takes the core.
func timeLookups(d time.Duration, n int, f func(i int) error) (lookup, error) {
	const batch = 4096
	for i := range min(n, batch) { // warm up
		if err := f(i % n); err != nil {
			return lookup{}, err
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start, cpu0 := time.Now(), selfCPU()
	ops := 0
	for time.Since(start) < d || ops == 0 {
		for range batch {
			if err := f(ops % n); err != nil {
				return lookup{}, err
			}
			ops++
		}
	}
	wall, cpu := time.Since(start), selfCPU()-cpu0
	runtime.ReadMemStats(&m1)
	return lookup{
		ns:     round3(float64(wall.Nanoseconds()) / float64(ops)),
		cpuNs:  round3(float64(cpu.Nanoseconds()) / float64(ops)),
		allocs: round3(float64(m1.Mallocs-m0.Mallocs) / float64(ops)),
	}, nil
}

// listedSerials returns the first n serials of a DER CRL.
func listedSerials(der []byte, n int) ([]*big.Int, error) {
	s := cryptobyte.String(der)
	var list, tbs, revoked cryptobyte.String
	if !s.ReadASN1(&list, cbasn1.SEQUENCE) || !list.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil, errors.New("not a DER CRL")
	}
	var skip cryptobyte.String
	var tag cbasn1.Tag
	if tbs.PeekASN1Tag(cbasn1.INTEGER) {
		tbs.ReadAnyASN1(&skip, &tag) // version
	}
	for range 3 { // signature, issuer, thisUpdate
		if !tbs.ReadAnyASN1(&skip, &tag) {
			return nil, errors.New("truncated TBS")
		}
	}
	if tbs.PeekASN1Tag(cbasn1.UTCTime) || tbs.PeekASN1Tag(cbasn1.GeneralizedTime) {
		tbs.ReadAnyASN1(&skip, &tag) // nextUpdate
	}
	if !tbs.PeekASN1Tag(cbasn1.SEQUENCE) {
		return nil, errors.New("no revoked certificates")
	}
	tbs.ReadASN1(&revoked, cbasn1.SEQUENCE)
	var out []*big.Int
	for len(out) < n && !revoked.Empty() {
		var ent cryptobyte.String
		sn := new(big.Int)
		if !revoked.ReadASN1(&ent, cbasn1.SEQUENCE) || !ent.ReadASN1Integer(sn) {
			return nil, errors.New("bad revoked entry")
		}
		out = append(out, sn)
	}
	return out, nil
}

func readPEMCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := parsePEMCerts(b)
	if len(pool) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// crlServer publishes the big CRL over HTTP with a higher CRL number on
// every fetch, as a CA publishing a new CRL, so that every refresh of the
// server under test installs a new one. The CRLs are signed ahead, so that
// serving costs the load generator's core little during a run; after the
// last one it repeats it (a full re-ingest that installs nothing).
type crlServer struct {
	mu   sync.Mutex
	crls [][]byte
	next int
	hits int
}

func newCRLServer(m *crlMaker, count int, firstNumber int64) (*crlServer, error) {
	s := &crlServer{}
	now := time.Now()
	for i := range count {
		der, err := m.sign(firstNumber+int64(i), now.Add(-time.Minute+time.Duration(i)*time.Second), now.Add(30*24*time.Hour))
		if err != nil {
			return nil, err
		}
		s.crls = append(s.crls, der)
	}
	return s, nil
}

func (s *crlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	der := s.crls[s.next]
	if s.next < len(s.crls)-1 {
		s.next++
	}
	s.hits++
	s.mu.Unlock()
	// No ETag or Last-Modified: every refresh downloads and ingests.
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Content-Length", strconv.Itoa(len(der)))
	w.Write(der)
}

func runCRLServe(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("crl-serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	dir := fs.String("dir", "", "a `pki` folder: its root signs the CRLs (required)")
	entries := fs.Int("entries", 1_000_000, "entries of each CRL (the serials of the pki's big CRL)")
	count := fs.Int("count", 16, "CRLs signed ahead, each with a higher number")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("crl-serve: --dir is required")
	}
	if *count < 1 || *count > 256 || *entries < 1 {
		return usagef("crl-serve: --count must be 1..256 and --entries positive")
	}
	ca, err := loadCA(*dir)
	if err != nil {
		return fmt.Errorf("crl-serve: %w", err)
	}
	revoked, err := readPEMCerts(filepath.Join(*dir, fileRevoked))
	if err != nil {
		return fmt.Errorf("crl-serve: %w", err)
	}
	m, err := newCRLMaker(ca, *entries, crlSeed, revoked[0].SerialNumber)
	if err != nil {
		return err
	}
	srv, err := newCRLServer(m, *count, 1000)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("crl-serve: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "crl-serve listening on %s: http://%s/crl.der (%d CRLs of %d entries)\n", ln.Addr(), ln.Addr(), *count, *entries)
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

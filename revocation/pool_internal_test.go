package revocation

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"runtime"
	"testing"
	"unsafe"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/trust/pathval"
)

// TestRecycledBuffersKeepCRLsIntact: a CRL in force must not change when
// the body it was parsed from, or the tables of a CRL dropped beside it,
// are reused for the next ingest. Both pools only take buffers of 256 KiB
// and more, so the CRLs here have 12,000 entries.
func TestRecycledBuffersKeepCRLsIntact(t *testing.T) {
	ca := pkigen.Root(t, "Pool Root")
	iss := issuer{cert: ca.Cert, ski: pathval.KeyID(ca.Cert)}
	const n = 12000
	makeCRL := func(number, first int64) ([]byte, []*big.Int) {
		o := pkigen.CRLOptions{Number: number}
		var serials []*big.Int
		for i := range int64(n) {
			// 16-byte serials as AD CS writes them.
			s := new(big.Int).Lsh(big.NewInt(first+i), 100)
			serials = append(serials, s)
			o.Revoked = append(o.Revoked, x509.RevocationListEntry{SerialNumber: s})
		}
		return ca.MustCRL(t, o), serials
	}
	ingest := func(der []byte) *crl {
		body, err := readCapped(bytes.NewReader(der), 64<<20, int64(len(der)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCRL(body, iss, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Scribble over the body before it goes back, as the next fetch will.
		for i := range body {
			body[i] = 0xa5
		}
		putBody(body)
		return c
	}
	check := func(name string, c *crl, in, out []*big.Int) {
		t.Helper()
		for _, s := range in {
			if !c.revoked.contains(s) {
				t.Fatalf("%s: listed serial %x not found", name, s)
			}
		}
		for _, s := range out {
			if c.revoked.contains(s) {
				t.Fatalf("%s: unlisted serial %x found", name, s)
			}
		}
	}
	derA, serialsA := makeCRL(1, 1)
	derB, serialsB := makeCRL(2, 1_000_000)
	derC, serialsC := makeCRL(3, 2_000_000)
	a := ingest(derA)
	// Dropped at once: its table goes to the pool after a collection.
	dropped := ingest(derB)
	check("B", dropped, serialsB, serialsA)
	droppedSlab := uintptr(unsafe.Pointer(&dropped.revoked.slab[0]))
	dropped = nil
	// The cleanup that pools B's table runs after a collection finds B
	// gone, on its own goroutine: wait for it, boundedly.
	for i := 0; i < 50; i++ {
		runtime.GC()
		runtime.Gosched()
		if p := slabPool.Get(); p != nil {
			slabPool.Put(p)
			break
		}
	}
	c := ingest(derC) // takes the body of B and, most likely, B's table
	// sync.Pool may drop an item (always possible, often under -race): the
	// checks below hold either way, this says whether reuse was exercised.
	t.Logf("table reused: %v", uintptr(unsafe.Pointer(&c.revoked.slab[0])) == droppedSlab)
	check("A after two reuses", a, serialsA, append(serialsB, serialsC...))
	check("C on recycled buffers", c, serialsC, append(serialsA, serialsB...))
	if len(c.revoked.slab) < minPooledSlab || len(derC) < minPooledBody {
		t.Fatalf("table %d bytes, body %d bytes: too small to be pooled, the test proves nothing", len(c.revoked.slab), len(derC))
	}
}

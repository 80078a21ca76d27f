package revocation

import (
	"bytes"
	"hash/maphash"
	"math/big"
	"math/bits"
	"runtime"
	"sync"
)

// maxSerialLen bounds a serial's DER content. RFC 5280 allows 20 octets;
// 64 leaves room for non-conforming CAs while keeping lookup buffers on the
// stack.
const maxSerialLen = 64

// loadFactor is the share of occupied slots. At 0.55 an absent serial (the
// common case: most clients are not revoked) probes about three adjacent
// slots, usually within one cache line, and memory is 1.8 × width bytes per
// serial.
const loadFactor = 0.55

// zeroKey is an empty slot's content, for comparisons only.
var zeroKey [maxSerialLen]byte

// serialIndex is a set of serial numbers built once and then only read.
//
// Every key is the serial's two's-complement DER content sign-extended to
// the index's width, so all keys have the same length and sit in one flat
// slab used as an open-addressing hash table with linear probing. A lookup
// is one seeded hash and, on a table too big for the caches, one memory
// miss: a sorted array would take twenty for a million serials. An all-zero
// slot is empty; the serial 0, whose key is all zeros, is kept aside in
// hasZero.
type serialIndex struct {
	width   int // bytes per key; 0 for an empty index
	n       int // serials added, duplicates included
	slots   uint64
	seed    maphash.Seed
	hasZero bool
	slab    []byte
}

func (x *serialIndex) len() int { return x.n }

// slot maps a hash onto [0, slots) without a division.
func (x *serialIndex) slot(h uint64) uint64 {
	hi, _ := bits.Mul64(h, x.slots)
	return hi
}

// contains reports whether serial is in the set. It does not allocate.
func (x *serialIndex) contains(serial *big.Int) bool {
	w := x.width
	if w == 0 || serial == nil {
		return false
	}
	var buf [maxSerialLen]byte
	k := buf[:w]
	if !serialKey(serial, k) {
		return false
	}
	if bytes.Equal(k, zeroKey[:w]) {
		return x.hasZero
	}
	found := x.probe(k)
	// The slab goes back to slabPool once the CRL holding x is garbage
	// (recycleIndexes): x must stay reachable until the probe is over,
	// or a refresh could overwrite the table under it.
	runtime.KeepAlive(x)
	return found
}

// probe looks k (not all zeros) up in the table.
func (x *serialIndex) probe(k []byte) bool {
	w := len(k)
	last := k[w-1]
	i := x.slot(maphash.Bytes(x.seed, k))
	for {
		s := x.slab[i*uint64(w) : (i+1)*uint64(w)]
		// The last byte differs between most serials (random or
		// sequential), so testing it first skips most full comparisons.
		switch s[w-1] {
		case last:
			if bytes.Equal(s, k) {
				return true
			}
			if last == 0 && bytes.Equal(s, zeroKey[:w]) {
				return false
			}
		case 0:
			if bytes.Equal(s, zeroKey[:w]) {
				return false
			}
		}
		if i++; i == x.slots {
			i = 0
		}
	}
}

// serialKey writes serial's two's-complement form, sign-extended to
// len(k), into k. It reports false when the serial does not fit, in which
// case it cannot be in an index of that width.
func serialKey(serial *big.Int, k []byte) bool {
	w := len(k)
	switch serial.Sign() {
	case 0:
		clear(k)
		return true
	case 1:
		// The top bit of a positive key is its sign bit.
		if serial.BitLen() > 8*w-1 {
			return false
		}
		serial.FillBytes(k)
		return true
	}
	// A negative key can hold magnitudes up to 2^(8w-1) inclusive.
	n := serial.BitLen()
	if n > 8*w || (n == 8*w && serial.TrailingZeroBits() != uint(n-1)) {
		return false
	}
	serial.FillBytes(k) // magnitude
	carry := byte(1)
	for i := w - 1; i >= 0; i-- {
		v := ^k[i] + carry
		if carry == 1 && v != 0 {
			carry = 0
		}
		k[i] = v
	}
	return true
}

// contentKey writes a DER INTEGER's content bytes, sign-extended to len(k),
// into k. The caller guarantees len(content) <= len(k) and content non-empty.
func contentKey(content, k []byte) {
	pad := byte(0)
	if content[0]&0x80 != 0 {
		pad = 0xff
	}
	p := len(k) - len(content)
	for i := 0; i < p; i++ {
		k[i] = pad
	}
	copy(k[p:], content)
}

// indexBuilder makes a serialIndex in two passes over the same serials:
// observe (to size the table), then add. It allocates only the final slab.
type indexBuilder struct {
	n, width int
	idx      serialIndex
}

// observe records one serial during the sizing pass.
func (b *indexBuilder) observe(content []byte) {
	b.n++
	if len(content) > b.width {
		b.width = len(content)
	}
}

// start takes the table after the sizing pass, from slabPool when a
// dropped CRL left one of a fitting size.
func (b *indexBuilder) start(pace *pacer) {
	if b.n == 0 {
		return
	}
	slots := uint64(float64(b.n)/loadFactor) + 1
	b.idx = serialIndex{
		width: b.width,
		slots: slots,
		seed:  maphash.MakeSeed(),
		slab:  getSlab(int(slots*uint64(b.width)), pace),
	}
}

// add inserts one serial; it must be one that observe saw.
func (b *indexBuilder) add(content []byte) {
	x := &b.idx
	w := x.width
	x.n++
	var buf [maxSerialLen]byte
	k := buf[:w]
	contentKey(content, k)
	if bytes.Equal(k, zeroKey[:w]) {
		x.hasZero = true
		return
	}
	i := x.slot(maphash.Bytes(x.seed, k))
	for {
		s := x.slab[i*uint64(w) : (i+1)*uint64(w)]
		if bytes.Equal(s, zeroKey[:w]) {
			copy(s, k)
			return
		}
		if bytes.Equal(s, k) {
			return // a duplicate entry
		}
		if i++; i == x.slots {
			i = 0
		}
	}
}

// finish returns the index.
func (b *indexBuilder) finish() serialIndex { return b.idx }

// Index tables are recycled: a refresh of a big CRL builds a new table of
// about the same size as the one it replaces (16 MB for a million serials),
// and allocating it fresh each time, zeroed by the allocator and faulted in
// page by page, was most of what a refresh cost the handshakes running
// beside it. Once the replaced CRL is garbage (no Check can still be
// reading it: contains keeps its index reachable), its tables go to
// slabPool; sync.Pool lets the collector free them when refreshes stop.
var slabPool sync.Pool // of *[]byte

// minPooledSlab keeps small tables out of the pool: they cost nothing to
// allocate, and a pool of them would only hold memory.
const minPooledSlab = 256 << 10

// getSlab returns a zeroed slab of n bytes.
func getSlab(n int, pace *pacer) []byte {
	if n < minPooledSlab {
		return make([]byte, n)
	}
	for range 2 { // the pool may hold a table of another CRL: try a second one
		p, _ := slabPool.Get().(*[]byte)
		if p == nil {
			break
		}
		// Reuse up to twice the size needed; a bigger one is left to the
		// collector rather than wasted on a small CRL.
		if s := *p; cap(s) >= n && cap(s) <= 2*n {
			s = s[:n]
			clearPaced(s, pace)
			return s
		}
		slabPool.Put(p)
	}
	return make([]byte, n)
}

// clearPaced zeroes s in hashChunk pieces, yielding between them: a
// memclr of 16 MB cannot be preempted either.
func clearPaced(s []byte, pace *pacer) {
	for len(s) > 0 {
		n := min(len(s), hashChunk)
		clear(s[:n])
		s = s[n:]
		if len(s) > 0 {
			pace.yield()
		}
	}
}

// recycleIndexes hands c's tables to slabPool once c is unreachable.
func recycleIndexes(c *crl) {
	var slabs [3][]byte
	pooled := false
	for i, x := range [3]*serialIndex{&c.revoked, &c.held, &c.removed} {
		if len(x.slab) >= minPooledSlab {
			slabs[i], pooled = x.slab, true
		}
	}
	if !pooled {
		return
	}
	runtime.AddCleanup(c, func(slabs [3][]byte) {
		for _, s := range slabs {
			if s != nil {
				slabPool.Put(&s)
			}
		}
	}, slabs)
}

package ldapdir

import (
	"sync"
	"time"

	"github.com/certgate/certgate/trust"
)

// key identifies one lookup: the attribute and the normalised value.
type key struct {
	attr  trust.Attribute
	value string
}

// answer is one cached search result; an empty users slice is a negative
// answer ("no such user").
type answer struct {
	users []trust.User
	at    time.Time
}

// cache holds answers by key, bounded in size. It does not expire entries
// itself; the directory decides by age whether an answer is fresh, stale but
// servable, or unusable.
type cache struct {
	mu  sync.Mutex
	m   map[key]answer
	max int
	// maxAge is the age past which an answer can never be served again
	// (the longer TTL plus MaxStale); such entries go first when full.
	maxAge time.Duration
}

func newCache(size int, maxAge time.Duration) *cache {
	return &cache{m: make(map[key]answer), max: size, maxAge: maxAge}
}

func (c *cache) get(k key) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[k]
	return a, ok
}

func (c *cache) put(k key, a answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evict(a.at)
	}
	c.m[k] = a
}

// evict makes room: first every answer too old to serve, then, if that
// freed less than a tenth, arbitrary ones (Go's map order) down to 90%, so
// that a full cache pays one sweep per tenth of its size rather than one
// per insert.
func (c *cache) evict(now time.Time) {
	for k, a := range c.m {
		if now.Sub(a.at) >= c.maxAge {
			delete(c.m, k)
		}
	}
	target := c.max - c.max/10
	if target >= c.max {
		target = c.max - 1
	}
	for k := range c.m {
		if len(c.m) <= target {
			break
		}
		delete(c.m, k)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// flight is one search in progress that several lookups wait for.
type flight struct {
	done  chan struct{}
	users []trust.User
	err   error
}

// cloneUsers copies users so that callers cannot change a cached answer.
func cloneUsers(us []trust.User) []trust.User {
	if len(us) == 0 {
		return nil
	}
	out := make([]trust.User, len(us))
	for i, u := range us {
		u.ProxyAddresses = append([]string(nil), u.ProxyAddresses...)
		u.CertificateUserIDs = append([]string(nil), u.CertificateUserIDs...)
		out[i] = u
	}
	return out
}

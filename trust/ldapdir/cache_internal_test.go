package ldapdir

import (
	"fmt"
	"testing"
	"time"

	"github.com/certgate/certgate/trust"
)

func TestCacheBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(100, time.Hour)
	k := func(i int) key { return key{trust.AttrUserPrincipalName, fmt.Sprint(i)} }
	for i := range 100 {
		c.put(k(i), answer{at: t0})
	}
	if c.len() != 100 {
		t.Fatalf("len = %d", c.len())
	}
	// Updating a present key never evicts.
	c.put(k(5), answer{at: t0})
	if c.len() != 100 {
		t.Fatalf("len after update = %d", c.len())
	}
	// Full of servable answers: a new key evicts a tenth.
	c.put(k(100), answer{at: t0.Add(time.Minute)})
	if n := c.len(); n != 91 {
		t.Fatalf("len after eviction = %d, want 91", n)
	}
	if _, ok := c.get(k(100)); !ok {
		t.Fatal("the new answer was evicted")
	}
	// Answers too old to serve go first, all of them.
	for i := 200; c.len() < 100; i++ {
		c.put(k(i), answer{at: t0.Add(time.Minute)})
	}
	c.put(k(1000), answer{at: t0.Add(2 * time.Hour)}) // every t0 answer is now past maxAge
	for i := range 100 {
		if a, ok := c.get(k(i)); ok && a.at.Equal(t0) {
			t.Fatalf("answer %d, past maxAge, survived eviction", i)
		}
	}
	if _, ok := c.get(k(1000)); !ok {
		t.Fatal("the new answer was evicted")
	}
}

func TestCacheSizeOne(t *testing.T) {
	c := newCache(1, time.Hour)
	c.put(key{trust.AttrUserPrincipalName, "a"}, answer{})
	c.put(key{trust.AttrUserPrincipalName, "b"}, answer{})
	if c.len() != 1 {
		t.Fatalf("len = %d, want 1", c.len())
	}
	if _, ok := c.get(key{trust.AttrUserPrincipalName, "b"}); !ok {
		t.Fatal("latest answer missing")
	}
}

package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"slices"
	"time"
)

// assertionKeyInfo is one published assertion key on the status page. The
// age is the key file's modification time, the best record of when the key
// was made that survives restarts and is the same on every replica.
type assertionKeyInfo struct {
	KID      string    `json:"kid"`
	Alg      string    `json:"alg"`
	File     string    `json:"file"`
	Role     string    `json:"role"` // signing (first key of a route) or published
	Routes   []string  `json:"routes"`
	Modified time.Time `json:"modified"`
	Age      string    `json:"age"`
}

// assertionKeys lists the keys of the state b in force, signing keys first.
func assertionKeys(b *built, now time.Time) []assertionKeyInfo {
	if b == nil || b.policy == nil {
		return nil
	}
	var out []assertionKeyInfo
	idx := map[string]int{}
	for _, rt := range b.policy.Routes {
		if rt.Assertion == nil {
			continue
		}
		for i, k := range rt.Assertion.Keys() {
			role := "published"
			if i == 0 {
				role = "signing"
			}
			j, ok := idx[k.ID]
			if !ok {
				j = len(out)
				idx[k.ID] = j
				out = append(out, assertionKeyInfo{KID: k.ID, Alg: k.Alg, File: k.File, Role: role, Modified: k.ModTime.UTC(), Age: human(now.Sub(k.ModTime))})
			}
			if role == "signing" {
				out[j].Role = role
			}
			if !slices.Contains(out[j].Routes, rt.Name) {
				out[j].Routes = append(out[j].Routes, rt.Name)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b assertionKeyInfo) int {
		if a.Role == b.Role {
			return 0
		}
		if a.Role == "signing" {
			return -1
		}
		return 1
	})
	return out
}

// assertionCollector exports the key ids in use. A kid names a key, never a
// user, so it is a safe label; the series set changes only with the config.
type assertionCollector struct {
	inst *instance
	keys *prometheus.Desc
	mod  *prometheus.Desc
}

func newAssertionCollector(inst *instance) *assertionCollector {
	return &assertionCollector{
		inst: inst,
		keys: prometheus.NewDesc("certgate_assertion_keys", "Assertion keys in the JWKS (always 1), by kid, algorithm and role: signing (the first key of a route) or published (kept so that earlier assertions still verify).", []string{"kid", "alg", "role"}, nil),
		mod:  prometheus.NewDesc("certgate_assertion_key_modified_timestamp_seconds", "Modification time of each assertion key's file, to alert on keys older than the rotation policy.", []string{"kid"}, nil),
	}
}

func (c *assertionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.keys
	ch <- c.mod
}

func (c *assertionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range assertionKeys(c.inst.built(), time.Now()) {
		ch <- prometheus.MustNewConstMetric(c.keys, prometheus.GaugeValue, 1, k.KID, k.Alg, k.Role)
		ch <- prometheus.MustNewConstMetric(c.mod, prometheus.GaugeValue, unix(k.Modified), k.KID)
	}
}

var _ prometheus.Collector = (*assertionCollector)(nil)

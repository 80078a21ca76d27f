package config

import (
	"reflect"
	"strings"
	"sync"
)

// yamlKeysByType maps a config struct's Go type name, as yaml.v3 names it
// in "field x not found in type config.Route", to the keys it accepts.
var yamlKeysByType = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		name := t.String()
		if _, done := out[name]; done {
			return
		}
		out[name] = nil
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			switch {
			case tag == "-" || !f.IsExported():
				continue
			case tag == "" && f.Anonymous:
				walk(f.Type)
				out[name] = append(out[name], out[f.Type.String()]...)
				continue
			case tag == "":
				tag = strings.ToLower(f.Name)
			}
			out[name] = append(out[name], tag)
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Config]())
	return out
})

// nearestKey returns the key of typeName closest to key (a letter-case
// slip, or at most two edits for keys of five letters or more), or "".
func nearestKey(key, typeName string) string {
	best, bestD := "", 3
	if len(key) < 5 {
		bestD = 2
	}
	for _, k := range yamlKeysByType()[typeName] {
		if strings.EqualFold(k, key) {
			return k
		}
		if d := editDistance(strings.ToLower(key), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStatusJSONDocumented: every field name /status.json can carry is in
// docs/status-json.md.
func TestStatusJSONDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/status-json.md")
	must(t, err)
	doc := string(b)
	seen := map[reflect.Type]bool{}
	n := 0
	var walk func(t reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			n++
			if !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/status-json.md does not name %s (%s.%s)", name, typ.Name(), typ.Field(i).Name)
			}
			walk(typ.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[statusDoc]())
	if n < 40 {
		t.Fatalf("only %d fields found", n)
	}
}

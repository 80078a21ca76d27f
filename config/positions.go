package config

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// positions remembers where each key path of the file is, so that errors
// found after decoding (defaults, validation) can still name a line, and
// which keys the file set, so that defaults never overwrite an explicit value.
type positions struct {
	keys   map[string]int      // key path → line of the key (or of the list item)
	set    map[string]bool     // key paths with a non-null value in the file
	values map[[2]int]string   // line, column of a value → its key path
	byLine map[int][]lineEntry // line → keys on it, in file order
}

type lineEntry struct {
	path string
	tag  string // short tag of the value, such as "!!seq"
}

func newPositions(root *yaml.Node) *positions {
	p := &positions{
		keys:   map[string]int{},
		set:    map[string]bool{},
		values: map[[2]int]string{},
		byLine: map[int][]lineEntry{},
	}
	p.walk(root, "")
	return p
}

func (p *positions) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" {
				// Merged keys have no position of their own in this file.
				continue
			}
			child := joinPath(path, k.Value)
			p.record(child, k.Line, v)
			p.walk(v, child)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			child := path + "[" + strconv.Itoa(i) + "]"
			p.record(child, item.Line, item)
			p.walk(item, child)
		}
	}
	// Aliases are not followed: they have no lines of their own, and not
	// following them keeps the walk linear even for alias bombs.
}

func (p *positions) record(path string, line int, v *yaml.Node) {
	if _, dup := p.keys[path]; !dup {
		p.keys[path] = line
		p.byLine[line] = append(p.byLine[line], lineEntry{path, v.ShortTag()})
	}
	p.values[[2]int{v.Line, v.Column}] = path
	if !(v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null") {
		p.set[path] = true
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// parentPath drops the last element of a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// isSet reports whether the file gave the key a value. Without positions (a
// Config built in code) nothing counts as set, so zero values get defaults.
func (p *positions) isSet(path string) bool {
	return p != nil && p.set[path]
}

// keyAt finds the path of the key named name on line.
func (p *positions) keyAt(line int, name string) string {
	if p == nil {
		return name
	}
	for _, e := range p.byLine[line] {
		if e.path == name || strings.HasSuffix(e.path, "."+name) {
			return e.path
		}
	}
	return name
}

func (p *positions) valueAt(line, col int) string {
	if p == nil {
		return ""
	}
	if path, ok := p.values[[2]int{line, col}]; ok {
		return path
	}
	return p.deepestAt(line, "")
}

// deepestAt returns the most nested key path on line whose value has the
// given short tag (any tag if none has it): on a line such as
// `admin: {listen: [x]}` an error about a !!seq is about admin.listen.
func (p *positions) deepestAt(line int, tag string) string {
	if p == nil {
		return ""
	}
	best, bestTagged := "", ""
	for _, e := range p.byLine[line] {
		if len(e.path) > len(best) {
			best = e.path
		}
		if e.tag == tag && len(e.path) > len(bestTagged) {
			bestTagged = e.path
		}
	}
	if bestTagged != "" {
		return bestTagged
	}
	return best
}

// lineOf returns the line of path, or of its nearest ancestor the file has
// (a missing key is reported at the mapping that lacks it).
func (c *Config) lineOf(path string) int {
	if c.pos == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := c.pos.keys[p]; ok {
			return l
		}
	}
	return 0
}

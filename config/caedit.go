package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The editor below changes the file as text, at positions taken from the
// yaml.Node tree, instead of re-encoding the tree: yaml.v3's encoder drops
// blank lines, re-spaces comments and re-indents lists, so a re-encoded file
// would differ from the original everywhere. Splicing keeps every byte outside
// the change. Layouts it cannot splice safely (a flow-style list, a value that
// spans lines) are refused with a message rather than rewritten.

const casKey = "trustedCertificateAuthorities"

// CAInfo describes one configured CA, as `certgate ca list` prints it.
type CAInfo struct {
	Index     int           // position in trustedCertificateAuthorities
	Type      AuthorityType // root or intermediate
	Subject   string        // RFC 4514
	SKI       string        // upper-case hex
	CRL       string
	DeltaCRL  string
	CRLExempt bool
	NotAfter  time.Time
	File      string // trustedCertificate as written in the config
}

// CAChanges are the changes SetCA makes; nil fields are left as they are.
// An empty CRL or DeltaCRL removes the URL.
type CAChanges struct {
	Type      *string
	CRL       *string
	DeltaCRL  *string
	CRLExempt *bool
}

// ListCAs returns the CAs configured in the file at path. It reads their
// certificates but does not validate the rest of the config, so a config
// with an unrelated mistake can still be inspected.
func ListCAs(path string) ([]CAInfo, error) {
	d, err := readDoc(path)
	if err != nil {
		return nil, err
	}
	c, err := d.decode()
	if err != nil {
		return nil, err
	}
	out := make([]CAInfo, 0, len(c.CAs))
	for i := range c.CAs {
		cert, err := ParseCertificateFile(c.Path(c.CAs[i].TrustedCertificate))
		if err != nil {
			return nil, c.Errorf(caPath(i)+".trustedCertificate", "%w", err)
		}
		c.CAs[i].Certificate = cert
		out = append(out, caInfo(i, c.CAs[i]))
	}
	return out, nil
}

func caPath(i int) string { return casKey + "[" + strconv.Itoa(i) + "]" }

func caInfo(i int, ca CA) CAInfo {
	return CAInfo{
		Index:     i,
		Type:      ca.AuthorityType,
		Subject:   SubjectString(ca.Certificate),
		SKI:       FormatSKI(KeyID(ca.Certificate)),
		CRL:       ca.CRL,
		DeltaCRL:  ca.DeltaCRL,
		CRLExempt: ca.CRLExempt,
		NotAfter:  ca.Certificate.NotAfter,
		File:      ca.TrustedCertificate,
	}
}

// AddCA appends a CA to the file at path. It reads certFile (PEM or DER),
// refuses a certificate that is not a CA or whose SKI is already configured,
// and writes trustedIssuer and trustedIssuerSKI from the certificate so the
// entry documents itself. trustedCertificate is stored relative to the
// config's folder when certFile is inside it. With no crl URL the entry gets
// crlExempt: true only when exempt is set; otherwise the result would not
// load and nothing is written.
func AddCA(path string, typ string, certFile string, crl, deltaCRL string, exempt bool) (CAInfo, error) {
	if t := AuthorityType(typ); t != Root && t != Intermediate {
		return CAInfo{}, fmt.Errorf("CA type %q is not allowed, want root or intermediate", typ)
	}
	cert, err := ParseCertificateFile(certFile)
	if err != nil {
		return CAInfo{}, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return CAInfo{}, fmt.Errorf("%s is not a CA certificate (%s, basic constraints CA=false)", certFile, SubjectString(cert))
	}
	d, err := readDoc(path)
	if err != nil {
		return CAInfo{}, err
	}
	c, err := d.decode()
	if err != nil {
		return CAInfo{}, err
	}
	ski := FormatSKI(KeyID(cert))
	if i := findCA(c, KeyID(cert)); i >= 0 {
		return CAInfo{}, c.Errorf(caPath(i), "a CA with SKI %s is already configured", ski)
	}

	entry := []kv{{"authorityType", typ}, {"trustedCertificate", d.relPath(certFile)}}
	if crl != "" {
		entry = append(entry, kv{"crlDistributionPoint", crl})
	}
	if deltaCRL != "" {
		entry = append(entry, kv{"deltaCrlDistributionPoint", deltaCRL})
	}
	if exempt {
		entry = append(entry, kv{"crlExempt", "true"})
	}
	entry = append(entry, kv{"trustedIssuer", SubjectString(cert)}, kv{"trustedIssuerSKI", ski})

	edits, err := d.appendItem(entry)
	if err != nil {
		return CAInfo{}, err
	}
	var info CAInfo
	err = d.commit(edits, func(nc *Config) error {
		i := findCA(nc, KeyID(cert))
		if i < 0 || len(nc.CAs) != len(c.CAs)+1 {
			return errors.New("internal error: the added CA is not in the result")
		}
		info = caInfo(i, nc.CAs[i])
		return nil
	})
	return info, err
}

// openCA reads the config at path and finds the CA whose SKI (hex, any
// case, colons allowed) is ski: what remove and set both start from.
func openCA(path, ski string) (d *doc, c *Config, want []byte, i int, err error) {
	if want, err = ParseSKI(ski); err != nil {
		return
	}
	if d, err = readDoc(path); err != nil {
		return
	}
	if c, err = d.decode(); err != nil {
		return
	}
	if i = findCA(c, want); i < 0 {
		err = fmt.Errorf("%s: no CA with SKI %s", d.name, FormatSKI(want))
	}
	return
}

// RemoveCA removes the CA whose SKI (hex, any case, colons allowed) is ski.
func RemoveCA(path, ski string) error {
	d, c, want, i, err := openCA(path, ski)
	if err != nil {
		return err
	}
	edits, err := d.removeItem(i)
	if err != nil {
		return err
	}
	return d.commit(edits, func(nc *Config) error {
		if findCA(nc, want) >= 0 || len(nc.CAs) != len(c.CAs)-1 {
			return errors.New("internal error: the CA is still in the result")
		}
		return nil
	})
}

// SetCA changes the type and CRL URLs of the CA whose SKI is ski. Setting a
// CRL URL on a crlExempt entry drops the exemption unless changes says
// otherwise.
func SetCA(path, ski string, changes CAChanges) error {
	d, c, want, i, err := openCA(path, ski)
	if err != nil {
		return err
	}
	exempt := changes.CRLExempt
	if changes.CRL != nil && *changes.CRL != "" && exempt == nil && c.CAs[i].CRLExempt {
		f := false
		exempt = &f
	}
	var set []kv
	if changes.Type != nil {
		set = append(set, kv{"authorityType", *changes.Type})
	}
	if changes.CRL != nil {
		set = append(set, kv{"crlDistributionPoint", *changes.CRL})
	}
	if changes.DeltaCRL != nil {
		set = append(set, kv{"deltaCrlDistributionPoint", *changes.DeltaCRL})
	}
	if exempt != nil {
		v := ""
		if *exempt {
			v = "true"
		}
		set = append(set, kv{"crlExempt", v})
	}
	if len(set) == 0 {
		return errors.New("nothing to change")
	}
	edits, err := d.setKeys(i, set)
	if err != nil {
		return err
	}
	return d.commit(edits, func(nc *Config) error {
		j := findCA(nc, want)
		if j != i {
			return errors.New("internal error: the CA moved in the result")
		}
		got := nc.CAs[j]
		for _, s := range set {
			var now string
			switch s.key {
			case "authorityType":
				now = string(got.AuthorityType)
			case "crlDistributionPoint":
				now = got.CRL
			case "deltaCrlDistributionPoint":
				now = got.DeltaCRL
			case "crlExempt":
				if got.CRLExempt {
					now = "true"
				}
			}
			if now != s.val {
				return fmt.Errorf("internal error: %s is %q in the result, want %q", s.key, now, s.val)
			}
		}
		return nil
	})
}

// findCA returns the index of the CA with the given SKI, reading each
// entry's certificate; an entry whose file cannot be read is matched by its
// trustedIssuerSKI, so that a CA whose file is gone can still be removed.
func findCA(c *Config, ski []byte) int {
	for i, ca := range c.CAs {
		cert := ca.Certificate
		if cert == nil && ca.TrustedCertificate != "" {
			cert, _ = ParseCertificateFile(c.Path(ca.TrustedCertificate))
		}
		if cert != nil {
			if bytes.Equal(KeyID(cert), ski) {
				return i
			}
			continue
		}
		if b, err := ParseSKI(ca.TrustedIssuerSKI); err == nil && bytes.Equal(b, ski) {
			return i
		}
	}
	return -1
}

type kv struct{ key, val string }

// doc is a config file being edited: its text as lines, and its node tree.
type doc struct {
	name  string // as given, for messages and for Parse
	dir   string // config folder, for relative paths
	real  string // the file written (symlinks resolved)
	data  []byte
	lines []string // without line endings
	ends  []string // each line's ending as in the file
	eol   string   // the file's line ending, for inserted lines
	root  *yaml.Node
	key   *yaml.Node // trustedCertificateAuthorities key, or nil
	seq   *yaml.Node // its value, or nil
}

func readDoc(path string) (*doc, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	data, err := readFileLimit(real, maxConfigSize)
	if err != nil {
		return nil, err
	}
	root, err := decodeNode(data, path)
	if err != nil {
		return nil, err
	}
	d := &doc{name: path, dir: filepath.Dir(path), real: real, data: data, root: root, eol: "\n"}
	if bytes.Contains(data, []byte("\r\n")) {
		d.eol = "\r\n"
	}
	for rest := string(data); rest != ""; {
		line, end := rest, ""
		if i := strings.IndexByte(rest, '\n'); i >= 0 {
			line, end = rest[:i], "\n"
			rest = rest[i+1:]
		} else {
			rest = ""
		}
		if strings.HasSuffix(line, "\r") && end == "\n" {
			line, end = line[:len(line)-1], "\r\n"
		}
		d.lines = append(d.lines, line)
		d.ends = append(d.ends, end)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == casKey {
			d.key, d.seq = root.Content[i], root.Content[i+1]
		}
	}
	return d, nil
}

// decode decodes the file without loading or validating it: editing must
// work on a file that does not load yet (adding the first root CA).
func (d *doc) decode() (*Config, error) {
	c, err := Decode(d.data, d.name)
	if err != nil {
		return nil, err
	}
	c.Dir = d.dir
	return c, nil
}

func (d *doc) relPath(file string) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		return file
	}
	dir, err := filepath.Abs(d.dir)
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return abs
	}
	return filepath.ToSlash(rel)
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

func isComment(s string) bool { return strings.HasPrefix(strings.TrimLeft(s, " \t"), "#") }

// isContent reports a line that holds YAML (neither blank nor a comment).
func isContent(s string) bool { return !isBlank(s) && !isComment(s) }

// item is where one list entry sits in the file (0-based line indexes).
type item struct {
	node    *yaml.Node
	head    int // first line: leading comments directly above the dash
	dash    int // the line with the "-"
	end     int // last line of the entry's own content
	dashCol int
	keyCol  int
}

var errLayout = errors.New("cannot edit this layout of " + casKey + " in place; write it as a block list (one \"- authorityType: ...\" entry per CA)")

// items locates every entry of the CA list.
func (d *doc) items() ([]item, error) {
	if d.seq == nil || d.seq.Kind != yaml.SequenceNode {
		return nil, nil
	}
	if d.seq.Style&yaml.FlowStyle != 0 {
		if len(d.seq.Content) == 0 {
			return nil, nil
		}
		return nil, errLayout
	}
	out := make([]item, 0, len(d.seq.Content))
	lower := d.key.Line - 1 // the key's line; items start below it
	for _, n := range d.seq.Content {
		if n.Kind != yaml.MappingNode || n.Style&yaml.FlowStyle != 0 || n.Line < 1 || n.Line > len(d.lines) {
			return nil, errLayout
		}
		it := item{node: n, keyCol: n.Column - 1}
		l := n.Line - 1
		text := d.lines[l]
		if it.keyCol > len(text) {
			return nil, errLayout
		}
		prefix := text[:it.keyCol]
		if t := strings.TrimLeft(prefix, " "); strings.HasPrefix(t, "-") {
			it.dash, it.dashCol = l, len(prefix)-len(t)
		} else if t == "" {
			// "-" alone on a line above the first key.
			j := l - 1
			for j > lower && !isContent(d.lines[j]) {
				j--
			}
			if j <= lower || strings.TrimSpace(strings.SplitN(d.lines[j], "#", 2)[0]) != "-" {
				return nil, errLayout
			}
			it.dash, it.dashCol = j, indentOf(d.lines[j])
		} else {
			return nil, errLayout
		}
		stop := it.dash + 1
		for stop < len(d.lines) && !(isContent(d.lines[stop]) && indentOf(d.lines[stop]) <= it.dashCol) {
			stop++
		}
		it.end = stop - 1
		for it.end > it.dash && (isBlank(d.lines[it.end]) || isComment(d.lines[it.end]) && indentOf(d.lines[it.end]) <= it.dashCol) {
			it.end--
		}
		if maxLine(n)-1 > it.end {
			return nil, errLayout
		}
		it.head = it.dash
		for it.head-1 > lower && isComment(d.lines[it.head-1]) {
			it.head--
		}
		lower = it.end
		out = append(out, it)
	}
	return out, nil
}

// maxLine is the last line any part of n starts on (1-based).
func maxLine(n *yaml.Node) int {
	m := n.Line
	for _, c := range n.Content {
		if l := maxLine(c); l > m {
			m = l
		}
	}
	if n.Kind == yaml.ScalarNode && (n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || strings.Contains(n.Value, "\n")) {
		m += strings.Count(n.Value, "\n") + 1
	}
	return m
}

// edit replaces lines [at, at+del) with ins.
type edit struct {
	at, del int
	ins     []string
}

func (d *doc) entryLines(entry []kv, dashCol, keyCol int) []string {
	out := make([]string, len(entry))
	for i, e := range entry {
		prefix := strings.Repeat(" ", keyCol)
		if i == 0 {
			prefix = strings.Repeat(" ", dashCol) + "-" + strings.Repeat(" ", keyCol-dashCol-1)
		}
		out[i] = prefix + e.key + ": " + yamlScalar(e.key, e.val)
	}
	return out
}

// yamlScalar writes a value the way the encoder would quote it, so that a
// subject with a leading "#" or a hex SKI that looks like a number stays a
// string.
func yamlScalar(key, val string) string {
	if key == "crlExempt" {
		return val
	}
	b, err := yaml.Marshal(val)
	if err != nil || bytes.Count(b, []byte("\n")) != 1 {
		return strconv.Quote(val)
	}
	return strings.TrimSuffix(string(b), "\n")
}

func (d *doc) appendItem(entry []kv) ([]edit, error) {
	items, err := d.items()
	if err != nil {
		return nil, err
	}
	if len(items) > 0 {
		last := items[len(items)-1]
		lines := d.entryLines(entry, last.dashCol, last.keyCol)
		if separatedByBlank(d, items) {
			lines = append([]string{""}, lines...)
		}
		return []edit{{at: last.end + 1, ins: lines}}, nil
	}
	dashCol, keyCol := d.listIndent()
	lines := d.entryLines(entry, dashCol, keyCol)
	switch {
	case d.key == nil:
		// No list yet: add the key at the end of the file.
		head := []string{casKey + ":"}
		if n := len(d.lines); n > 0 && !isBlank(d.lines[n-1]) {
			head = append([]string{""}, head...)
		}
		return []edit{{at: len(d.lines), ins: append(head, lines...)}}, nil
	case d.seq.Kind == yaml.ScalarNode && d.seq.ShortTag() == "!!null" && (d.seq.Line == d.key.Line || d.seq.Line == 0):
		return []edit{{at: d.key.Line, ins: lines}}, nil
	case d.seq.Kind == yaml.SequenceNode && d.seq.Line == d.key.Line:
		// "trustedCertificateAuthorities: []": drop the brackets, keep
		// any comment.
		l := d.key.Line - 1
		text := d.lines[l]
		start := d.seq.Column - 1
		close := strings.IndexByte(text[min(start, len(text)):], ']')
		if start > len(text) || close < 0 {
			return nil, errLayout
		}
		rest := text[start+close+1:]
		newLine := strings.TrimRight(text[:start], " ")
		if strings.TrimSpace(rest) != "" {
			newLine += " " + strings.TrimLeft(rest, " ")
		}
		return []edit{{at: l, del: 1, ins: append([]string{newLine}, lines...)}}, nil
	}
	return nil, errLayout
}

func separatedByBlank(d *doc, items []item) bool {
	for k := 0; k+1 < len(items); k++ {
		for l := items[k].end + 1; l < items[k+1].head; l++ {
			if isBlank(d.lines[l]) {
				return true
			}
		}
	}
	return false
}

// listIndent guesses how the file indents a new list: the dash column and
// key column of other block lists at the top level, else the file's mapping
// indentation, else two spaces.
func (d *doc) listIndent() (dashCol, keyCol int) {
	step := 0
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		v := d.root.Content[i+1]
		switch {
		case v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0:
			first := v.Content[0]
			if first.Kind == yaml.MappingNode && first.Line >= 1 && first.Line <= len(d.lines) {
				text := d.lines[first.Line-1]
				if k := first.Column - 1; k <= len(text) {
					if t := strings.TrimLeft(text[:k], " "); strings.HasPrefix(t, "-") {
						return k - len(t), k
					}
				}
			}
		case v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && step == 0:
			step = v.Content[0].Column - 1
		}
	}
	if step <= 0 {
		step = 2
	}
	return step, step + 2
}

func (d *doc) removeItem(i int) ([]edit, error) {
	items, err := d.items()
	if err != nil {
		return nil, err
	}
	if i >= len(items) {
		return nil, errLayout
	}
	it := items[i]
	if i+1 < len(items) {
		// The trailing blank lines go too; the next entry keeps its own
		// leading comments.
		return []edit{{at: it.head, del: items[i+1].head - it.head}}, nil
	}
	start := it.head
	if i > 0 {
		for start-1 > items[i-1].end && isBlank(d.lines[start-1]) {
			start--
		}
	}
	return []edit{{at: start, del: it.end + 1 - start}}, nil
}

// setKeys sets (or, for an empty value, clears) keys of entry i.
func (d *doc) setKeys(i int, set []kv) ([]edit, error) {
	items, err := d.items()
	if err != nil {
		return nil, err
	}
	if i >= len(items) {
		return nil, errLayout
	}
	it := items[i]
	var edits []edit
	var appended []string
	for _, s := range set {
		k, v := findKey(it.node, s.key)
		if k == nil {
			if s.val != "" {
				appended = append(appended, strings.Repeat(" ", it.keyCol)+s.key+": "+yamlScalar(s.key, s.val))
			}
			continue
		}
		l := k.Line - 1
		if s.val == "" && l != it.dash && v.Line == k.Line && isContent(d.lines[l]) && indentOf(d.lines[l]) == k.Column-1 {
			edits = append(edits, edit{at: l, del: 1})
			continue
		}
		val := s.val
		if val == "" {
			// The key shares the "-" line, so the line stays and the
			// value is emptied.
			if s.key == "crlExempt" {
				val = "false"
			} else {
				val = `""`
			}
		} else {
			val = yamlScalar(s.key, val)
		}
		newLine, err := replaceValue(d.lines[l], v, k)
		if err != nil {
			return nil, err
		}
		edits = append(edits, edit{at: l, del: 1, ins: []string{newLine(val)}})
	}
	if len(appended) > 0 {
		edits = append(edits, edit{at: it.end + 1, ins: appended})
	}
	return edits, nil
}

func findKey(m *yaml.Node, key string) (k, v *yaml.Node) {
	for j := 0; j+1 < len(m.Content); j += 2 {
		if m.Content[j].Value == key {
			return m.Content[j], m.Content[j+1]
		}
	}
	return nil, nil
}

// replaceValue returns a function that puts a new value text in place of
// the single-line scalar v on line, keeping whatever follows it (a comment).
func replaceValue(line string, v, k *yaml.Node) (func(string) string, error) {
	bad := fmt.Errorf("cannot edit %s at line %d in place: its value is not a one-line scalar", k.Value, k.Line)
	if v.Kind != yaml.ScalarNode || v.Line != k.Line || v.Tag != "" && v.Style&yaml.TaggedStyle != 0 {
		return nil, bad
	}
	start := v.Column - 1
	if start > len(line) {
		return nil, bad
	}
	end := -1
	switch {
	case v.Style&yaml.DoubleQuotedStyle != 0:
		if start >= len(line) || line[start] != '"' {
			return nil, bad
		}
		for j := start + 1; j < len(line); j++ {
			if line[j] == '\\' {
				j++
			} else if line[j] == '"' {
				end = j + 1
				break
			}
		}
	case v.Style&yaml.SingleQuotedStyle != 0:
		if start >= len(line) || line[start] != '\'' {
			return nil, bad
		}
		for j := start + 1; j < len(line); j++ {
			if line[j] == '\'' {
				if j+1 < len(line) && line[j+1] == '\'' {
					j++
					continue
				}
				end = j + 1
				break
			}
		}
	case v.Style == 0:
		end = len(line)
		if c := strings.Index(line[start:], " #"); c >= 0 {
			end = start + c
		}
		for end > start && line[end-1] == ' ' {
			end--
		}
		if line[start:end] != v.Value && !(v.ShortTag() == "!!null" && start == end) {
			return nil, bad
		}
	default:
		return nil, bad
	}
	if end < 0 {
		return nil, bad
	}
	if start == end && start == len(line) && (start == 0 || line[start-1] != ' ') {
		// "key:" with nothing after it: add the space the value needs.
		return func(val string) string { return line + " " + val }, nil
	}
	return func(val string) string { return line[:start] + val + line[end:] }, nil
}

// commit applies edits, checks that the result loads and has the intended
// effect, and replaces the file atomically. Nothing is written otherwise.
func (d *doc) commit(edits []edit, check func(*Config) error) error {
	out, err := d.apply(edits)
	if err != nil {
		return err
	}
	c, err := Parse(out, d.name, d.dir)
	if err != nil {
		return fmt.Errorf("refusing the change (%s is unchanged); after it the config would not load:\n%w", d.name, withoutLines(err))
	}
	if err := check(c); err != nil {
		return err
	}
	return writeAtomic(d.real, out, d.data)
}

// withoutLines drops file and line from the errors of an edited config
// that was never written: they would point into the file on disk, where
// those lines hold something else. The key paths say where, as edited.
func withoutLines(err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		var ce *Error
		if errors.As(e, &ce) {
			cp := *ce
			cp.File, cp.Line = "", 0
			e = &cp
		}
		out[i] = e
	}
	return errors.Join(out...)
}

func (d *doc) apply(edits []edit) ([]byte, error) {
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at > edits[j].at })
	lines := append([]string(nil), d.lines...)
	ends := append([]string(nil), d.ends...)
	if n := len(ends); n > 0 && ends[n-1] == "" {
		// Inserted lines may follow the last line, which then needs an end.
		ends[n-1] = d.eol
	}
	limit := len(lines) + 1
	for _, e := range edits {
		if e.at < 0 || e.at+e.del > len(lines) || e.at+e.del > limit {
			return nil, errors.New("internal error: overlapping edits")
		}
		limit = e.at
		newEnds := make([]string, len(e.ins))
		for i := range newEnds {
			newEnds[i] = d.eol
		}
		lines = append(lines[:e.at], append(append([]string(nil), e.ins...), lines[e.at+e.del:]...)...)
		ends = append(ends[:e.at], append(newEnds, ends[e.at+e.del:]...)...)
	}
	var b bytes.Buffer
	for i := range lines {
		b.WriteString(lines[i])
		b.WriteString(ends[i])
	}
	// Keep a file that had no final newline that way when nothing was
	// appended after its last line.
	if len(d.ends) > 0 && d.ends[len(d.ends)-1] == "" && len(lines) > 0 && lines[len(lines)-1] == d.lines[len(d.lines)-1] {
		b.Truncate(b.Len() - len(d.eol))
	}
	return b.Bytes(), nil
}

// writeAtomic replaces path with data through a temporary file in the same
// folder (fsync, rename, fsync of the folder), keeping the file's mode. It
// refuses when the file changed since it was read (was) so that two
// concurrent edits cannot silently drop one another.
func writeAtomic(path string, data, was []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	now, err := readFileLimit(path, maxConfigSize)
	if err != nil {
		return err
	}
	if !bytes.Equal(now, was) {
		return fmt.Errorf("%s changed while it was being edited; nothing written, try again", path)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	if df, err := os.Open(dir); err == nil {
		// The rename is durable only once the folder is synced.
		_ = df.Sync()
		df.Close()
	}
	return nil
}

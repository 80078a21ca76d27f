package trust

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseError is a problem in a users file, located by file and line.
type ParseError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// FileDirectory is the embedded directory: the users of a users.yaml file,
// indexed at load time so that lookups on the handshake path are map reads.
// It is immutable and safe for concurrent use; a reload parses a new one.
type FileDirectory struct {
	users   []User
	byUPN   map[string][]User
	byProxy map[string][]User
	byCUID  map[string][]User
	// cuidKeys maps each certificateUserIds value as the file spells it
	// to its key.
	cuidKeys map[string]string
}

var _ Directory = (*FileDirectory)(nil)

// LoadUsers reads and parses a users.yaml file; see [ParseUsers].
func LoadUsers(path string) (*FileDirectory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading users file: %w", err)
	}
	return ParseUsers(data, path)
}

// ParseUsers parses a users.yaml document; name labels errors
// ("users.yaml:4: unknown key \"mail\"").
//
// The document is a mapping with one key, users, a list of mappings with
// the keys userPrincipalName (required, unique ignoring case),
// proxyAddresses, certificateUserIds, accountEnabled and
// stsRefreshTokensValidFrom (RFC 3339). Unknown and repeated keys are
// errors. accountEnabled defaults to true when absent, as for a new
// directory account: listing a user is what admits them, and disabling is
// the explicit act. A proxy address may be shared by two users; a binding on
// it then finds both and refuses as identity_ambiguous. YAML aliases are
// refused: they buy nothing in this file and can expand without bound.
func ParseUsers(data []byte, name string) (*FileDirectory, error) {
	users, _, _, err := parseUsersDoc(data, name)
	if err != nil {
		return nil, err
	}
	return newFileDirectory(users), nil
}

// Users returns the users in file order. Their slices are shared with the
// directory: callers must not modify them.
func (d *FileDirectory) Users() []User { return append([]User(nil), d.users...) }

// Lookup finds the users whose attr matches value: userPrincipalName
// ignoring case; proxyAddresses ignoring case and an SMTP:/smtp: prefix on
// either side; certificateUserIds by [CertificateUserIDKey] (tag and hex in
// any case, DNs normalised and in either order). The returned slice is
// shared: callers must not modify it. It never fails for a known attribute.
func (d *FileDirectory) Lookup(_ context.Context, attr Attribute, value string) ([]User, error) {
	switch attr {
	case AttrUserPrincipalName:
		return d.byUPN[strings.ToLower(value)], nil
	case AttrProxyAddresses:
		return d.byProxy[proxyKey(value)], nil
	case AttrCertificateUserIDs:
		if k, ok := d.cuidKeys[value]; ok {
			// A spelling the file holds: no normalisation on the
			// handshake path.
			return d.byCUID[k], nil
		}
		return d.byCUID[cuidKey(value)], nil
	}
	return nil, fmt.Errorf("file directory: unknown attribute %q", attr)
}

func newFileDirectory(users []User) *FileDirectory {
	d := &FileDirectory{
		users:    users,
		byUPN:    make(map[string][]User, len(users)),
		byProxy:  make(map[string][]User, len(users)),
		byCUID:   make(map[string][]User),
		cuidKeys: make(map[string]string),
	}
	add := func(m map[string][]User, k string, u User) {
		l := m[k]
		// One user listing an address twice (SMTP: and smtp:) is one match.
		if n := len(l); n > 0 && l[n-1].UserPrincipalName == u.UserPrincipalName {
			return
		}
		m[k] = append(l, u)
	}
	for _, u := range users {
		add(d.byUPN, strings.ToLower(u.UserPrincipalName), u)
		for _, p := range u.ProxyAddresses {
			add(d.byProxy, proxyKey(p), u)
		}
		for _, c := range u.CertificateUserIDs {
			k := cuidKey(c)
			add(d.byCUID, k, u)
			d.cuidKeys[c] = k
		}
	}
	return d
}

// proxyKey folds a proxy address: the SMTP: prefix (primary or secondary)
// goes, case goes. Other prefixes (SIP:, X500:) stay, so they never match a
// bare e-mail address.
func proxyKey(v string) string {
	if len(v) >= 5 && strings.EqualFold(v[:5], "smtp:") {
		v = v[5:]
	}
	return strings.ToLower(v)
}

// cuidKey is [CertificateUserIDKey].
func cuidKey(s string) string { return CertificateUserIDKey(s) }

// asciiUpper upper-cases ASCII letters only: tags and hex are ASCII, and
// Unicode case mapping (the Kelvin sign folds to k) must not make two
// different values equal. It returns s itself when nothing changes.
func asciiUpper(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for j := i; j < len(b); j++ {
		if 'a' <= b[j] && b[j] <= 'z' {
			b[j] -= 'a' - 'A'
		}
	}
	return string(b)
}

// parseUsersDoc parses a users document, returning the users, the YAML
// mapping node of each (for in-place edits) and the document node.
func parseUsersDoc(data []byte, name string) ([]User, []*yaml.Node, *yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, nil, yamlError(name, err)
	}
	p := &usersParser{name: name}
	users, nodes, err := p.document(&doc)
	if err != nil {
		return nil, nil, nil, err
	}
	return users, nodes, &doc, nil
}

// yamlError turns "yaml: line 3: did not find expected key" into
// "users.yaml:3: did not find expected key".
func yamlError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, convErr := strconv.Atoi(num); convErr == nil {
				return &ParseError{File: name, Line: line, Msg: text}
			}
		}
	}
	return &ParseError{File: name, Msg: msg}
}

type usersParser struct{ name string }

func (p *usersParser) errorf(n *yaml.Node, format string, args ...any) error {
	return &ParseError{File: p.name, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// node refuses aliases wherever a value is read.
func (p *usersParser) node(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return p.errorf(n, "YAML aliases are not supported")
	}
	return nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func (p *usersParser) document(doc *yaml.Node) ([]User, []*yaml.Node, error) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil, &ParseError{File: p.name, Msg: "empty file, want a mapping with a users: list"}
	}
	root := doc.Content[0]
	if err := p.node(root); err != nil {
		return nil, nil, err
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, p.errorf(root, "want a mapping with a users: list")
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "users":
			if list != nil {
				return nil, nil, p.errorf(k, "repeated key \"users\"")
			}
			list = v
		default:
			return nil, nil, p.errorf(k, "unknown key %q", k.Value)
		}
	}
	if list == nil {
		return nil, nil, p.errorf(root, "missing key \"users\"")
	}
	if err := p.node(list); err != nil {
		return nil, nil, err
	}
	if isNull(list) {
		return nil, nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, nil, p.errorf(list, "users: want a list")
	}
	users := make([]User, 0, len(list.Content))
	nodes := make([]*yaml.Node, 0, len(list.Content))
	firstLine := make(map[string]int, len(list.Content))
	for _, item := range list.Content {
		u, err := p.user(item)
		if err != nil {
			return nil, nil, err
		}
		key := strings.ToLower(u.UserPrincipalName)
		if line, dup := firstLine[key]; dup {
			return nil, nil, p.errorf(item, "duplicate userPrincipalName %q (first at line %d)", u.UserPrincipalName, line)
		}
		firstLine[key] = item.Line
		users = append(users, u)
		nodes = append(nodes, item)
	}
	return users, nodes, nil
}

func (p *usersParser) user(n *yaml.Node) (User, error) {
	u := User{AccountEnabled: true}
	if err := p.node(n); err != nil {
		return u, err
	}
	if n.Kind != yaml.MappingNode {
		return u, p.errorf(n, "user: want a mapping")
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := p.node(v); err != nil {
			return u, err
		}
		if seen[k.Value] {
			return u, p.errorf(k, "repeated key %q", k.Value)
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "userPrincipalName":
			u.UserPrincipalName, err = p.scalar(k, v)
		case "proxyAddresses":
			u.ProxyAddresses, err = p.list(k, v)
		case "certificateUserIds":
			u.CertificateUserIDs, err = p.list(k, v)
		case "accountEnabled":
			if !isNull(v) {
				if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
					return u, p.errorf(v, "accountEnabled: want true or false")
				}
				err = v.Decode(&u.AccountEnabled)
			}
		case "stsRefreshTokensValidFrom":
			var s string
			if s, err = p.scalar(k, v); err == nil && s != "" {
				if u.SessionsValidFrom, err = time.Parse(time.RFC3339, s); err != nil {
					return u, p.errorf(v, "stsRefreshTokensValidFrom: %q is not an RFC 3339 time", s)
				}
			}
		default:
			return u, p.errorf(k, "unknown key %q", k.Value)
		}
		if err != nil {
			return u, err
		}
	}
	if strings.TrimSpace(u.UserPrincipalName) == "" {
		return u, p.errorf(n, "user without a userPrincipalName")
	}
	return u, nil
}

// scalar reads a string value; null is "".
func (p *usersParser) scalar(k, v *yaml.Node) (string, error) {
	if isNull(v) {
		return "", nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", p.errorf(v, "%s: want a single value", k.Value)
	}
	return v.Value, nil
}

// list reads a list of non-empty strings; null is empty.
func (p *usersParser) list(k, v *yaml.Node) ([]string, error) {
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, p.errorf(v, "%s: want a list", k.Value)
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		if err := p.node(e); err != nil {
			return nil, err
		}
		if e.Kind != yaml.ScalarNode || isNull(e) || strings.TrimSpace(e.Value) == "" {
			return nil, p.errorf(e, "%s: want non-empty strings", k.Value)
		}
		out = append(out, e.Value)
	}
	return out, nil
}

// SetSessionsValidFrom sets stsRefreshTokensValidFrom of user upn (matched
// ignoring case) to t in the users file at path, in place: the file is
// edited as a YAML node tree, so comments and key order stay, and written
// atomically (temporary file, fsync, rename) with its mode kept. A symlink
// is followed and its target rewritten. An unknown user or a file that does
// not parse is refused and the file is left alone. The time is written in
// UTC with its fractional seconds, so a session established a moment
// before t is not let through by rounding.
func SetSessionsValidFrom(path, upn string, t time.Time) error {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	info, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	users, nodes, doc, err := parseUsersDoc(data, path)
	if err != nil {
		return err
	}
	idx := -1
	for i, u := range users {
		if strings.EqualFold(u.UserPrincipalName, upn) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("%s: no user %q", path, upn)
	}
	value := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: t.UTC().Format(time.RFC3339Nano)}
	m := nodes[idx]
	set := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "stsRefreshTokensValidFrom" {
			value.LineComment = m.Content[i+1].LineComment
			m.Content[i+1] = value
			set = true
		}
	}
	if !set {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "stsRefreshTokensValidFrom"}, value)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("%s: encoding: %w", path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("%s: encoding: %w", path, err)
	}
	// Never write a file the proxy would then refuse to load.
	if _, err := ParseUsers(buf.Bytes(), path); err != nil {
		return fmt.Errorf("edited users file does not parse: %w", err)
	}
	return writeFileAtomic(target, buf.Bytes(), info.Mode().Perm())
}

// writeFileAtomic replaces path with data so that readers (the proxy's
// file poller) see the old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	// The rename is durable only once the directory entry is on disk.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Package wbxml is the small part of WAP Binary XML (WBXML 1.3, as
// MS-ASWBXML profiles it for ActiveSync) that the example EAS client and
// backend need: elements, code pages, inline strings and opaque data. It
// does not do attributes, entities, string tables or extensions, which
// ActiveSync does not use, and refuses them.
package wbxml

import (
	"bytes"
	"errors"
	"fmt"
)

// Code pages (MS-ASWBXML 2.1.2.1).
const (
	PageAirSync         byte = 0
	PageEmail           byte = 2
	PageFolderHierarchy byte = 7
	PagePing            byte = 13
	PageProvision       byte = 14
	PageComposeMail     byte = 21
)

// Tags used by the example, by code page.
const (
	// AirSync (page 0).
	AirSyncSync            byte = 0x05
	AirSyncAdd             byte = 0x07
	AirSyncSyncKey         byte = 0x0B
	AirSyncServerID        byte = 0x0D
	AirSyncStatus          byte = 0x0E
	AirSyncCollection      byte = 0x0F
	AirSyncClass           byte = 0x10
	AirSyncCollectionID    byte = 0x12
	AirSyncGetChanges      byte = 0x13
	AirSyncMoreAvailable   byte = 0x14
	AirSyncWindowSize      byte = 0x15
	AirSyncCommands        byte = 0x16
	AirSyncCollections     byte = 0x1C
	AirSyncApplicationData byte = 0x1D

	// Email (page 2).
	EmailSubject byte = 0x14
	EmailFrom    byte = 0x18

	// FolderHierarchy (page 7).
	FolderDisplayName byte = 0x07
	FolderServerID    byte = 0x08
	FolderParentID    byte = 0x09
	FolderType        byte = 0x0A
	FolderStatus      byte = 0x0C
	FolderChanges     byte = 0x0E
	FolderAdd         byte = 0x0F
	FolderSyncKey     byte = 0x12
	FolderSync        byte = 0x16
	FolderCount       byte = 0x17

	// Ping (page 13).
	PingPing              byte = 0x05
	PingStatus            byte = 0x07
	PingHeartbeatInterval byte = 0x08
	PingFolders           byte = 0x09
	PingFolder            byte = 0x0A
	PingID                byte = 0x0B
	PingClass             byte = 0x0C

	// Provision (page 14).
	ProvisionProvision  byte = 0x05
	ProvisionPolicies   byte = 0x06
	ProvisionPolicy     byte = 0x07
	ProvisionPolicyType byte = 0x08
	ProvisionPolicyKey  byte = 0x09
	ProvisionStatus     byte = 0x0B

	// ComposeMail (page 21).
	ComposeSendMail        byte = 0x05
	ComposeSaveInSentItems byte = 0x08
	ComposeMime            byte = 0x10
	ComposeClientID        byte = 0x11
	ComposeStatus          byte = 0x12
)

// Global tokens (WBXML 1.3 section 7.1).
const (
	tokSwitchPage = 0x00
	tokEnd        = 0x01
	tokStrI       = 0x03
	tokOpaque     = 0xC3
	bitContent    = 0x40
	bitAttributes = 0x80
)

// header is WBXML 1.3, unknown public identifier, UTF-8 (MIBenum 106), and
// an empty string table: what every ActiveSync body starts with.
var header = []byte{0x03, 0x01, 0x6A, 0x00}

// MaxDepth bounds element nesting, so a hostile body cannot recurse deep.
const MaxDepth = 64

// Node is an element: its code page and tag, its text (inline strings and
// opaque data, concatenated), and its child elements.
type Node struct {
	Page     byte
	Tag      byte
	Text     string
	Children []*Node
	// Opaque makes Encode write Text as opaque data (as devices send
	// MIME) rather than as an inline string.
	Opaque bool
}

// Element makes a node with children.
func Element(page, tag byte, children ...*Node) *Node {
	return &Node{Page: page, Tag: tag, Children: children}
}

// Opaque makes a node holding opaque data.
func Opaque(page, tag byte, data []byte) *Node {
	return &Node{Page: page, Tag: tag, Text: string(data), Opaque: true}
}

// Text makes a node holding a string.
func Text(page, tag byte, text string) *Node {
	return &Node{Page: page, Tag: tag, Text: text}
}

// Find returns the first node, depth first from n itself, with that page
// and tag, or nil.
func (n *Node) Find(page, tag byte) *Node {
	if n == nil {
		return nil
	}
	if n.Page == page && n.Tag == tag {
		return n
	}
	for _, c := range n.Children {
		if f := c.Find(page, tag); f != nil {
			return f
		}
	}
	return nil
}

// FindAll returns every node, depth first from n itself, with that page
// and tag.
func (n *Node) FindAll(page, tag byte) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	if n.Page == page && n.Tag == tag {
		out = append(out, n)
	}
	for _, c := range n.Children {
		out = append(out, c.FindAll(page, tag)...)
	}
	return out
}

// Encode writes root as a WBXML document. It returns an error for a tag
// outside 0x05..0x3F, the range a tag token can hold.
func Encode(root *Node) ([]byte, error) {
	b := append([]byte(nil), header...)
	page := byte(0)
	var enc func(n *Node, depth int) error
	enc = func(n *Node, depth int) error {
		if n.Tag < 0x05 || n.Tag > 0x3F {
			return fmt.Errorf("wbxml: tag 0x%02x of page %d is not a tag token", n.Tag, n.Page)
		}
		if depth > MaxDepth {
			return fmt.Errorf("wbxml: deeper than %d elements", MaxDepth)
		}
		if n.Page != page {
			b = append(b, tokSwitchPage, n.Page)
			page = n.Page
		}
		if n.Text == "" && len(n.Children) == 0 {
			b = append(b, n.Tag)
			return nil
		}
		b = append(b, n.Tag|bitContent)
		if n.Text != "" {
			if n.Opaque || bytes.IndexByte([]byte(n.Text), 0) >= 0 {
				// An inline string ends at NUL; opaque data can hold one.
				b = append(b, tokOpaque)
				b = appendMBUint32(b, uint32(len(n.Text)))
				b = append(b, n.Text...)
			} else {
				b = append(b, tokStrI)
				b = append(b, n.Text...)
				b = append(b, 0)
			}
		}
		for _, c := range n.Children {
			if err := enc(c, depth+1); err != nil {
				return err
			}
		}
		b = append(b, tokEnd)
		return nil
	}
	if root == nil {
		return nil, errors.New("wbxml: no root element")
	}
	if err := enc(root, 1); err != nil {
		return nil, err
	}
	return b, nil
}

func appendMBUint32(b []byte, v uint32) []byte {
	var tmp [5]byte
	i := len(tmp) - 1
	tmp[i] = byte(v & 0x7F)
	for v >>= 7; v > 0; v >>= 7 {
		i--
		tmp[i] = byte(v&0x7F) | 0x80
	}
	return append(b, tmp[i:]...)
}

// SyntaxError reports where and why a body is not WBXML this package reads.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("wbxml: at byte %d: %s", e.Offset, e.Msg)
}

type decoder struct {
	b    []byte
	off  int
	page byte
}

func (d *decoder) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: d.off, Msg: fmt.Sprintf(format, args...)}
}

func (d *decoder) byte() (byte, error) {
	if d.off >= len(d.b) {
		return 0, d.errorf("unexpected end")
	}
	c := d.b[d.off]
	d.off++
	return c, nil
}

// mbUint32 reads a multi-byte integer: 7 bits a byte, high bit "more".
func (d *decoder) mbUint32() (uint32, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		c, err := d.byte()
		if err != nil {
			return 0, err
		}
		if v > 1<<25-1 {
			return 0, d.errorf("multi-byte integer overflows 32 bits")
		}
		v = v<<7 | uint32(c&0x7F)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, d.errorf("multi-byte integer longer than 5 bytes")
}

// Decode reads a WBXML document with exactly one root element.
func Decode(b []byte) (*Node, error) {
	d := &decoder{b: b}
	if v, err := d.byte(); err != nil {
		return nil, err
	} else if v != 0x03 && v != 0x02 && v != 0x01 {
		return nil, &SyntaxError{0, fmt.Sprintf("version byte 0x%02x, want 0x01 to 0x03", v)}
	}
	pub, err := d.mbUint32()
	if err != nil {
		return nil, err
	}
	if pub == 0 {
		// The public identifier is a string-table index.
		if _, err := d.mbUint32(); err != nil {
			return nil, err
		}
	}
	if cs, err := d.mbUint32(); err != nil {
		return nil, err
	} else if cs != 106 {
		return nil, d.errorf("charset %d, want 106 (UTF-8)", cs)
	}
	n, err := d.mbUint32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(d.b)-d.off) {
		return nil, d.errorf("string table of %d bytes but only %d follow", n, len(d.b)-d.off)
	}
	d.off += int(n) // nothing here refers to it: STR_T is refused

	root, err := d.element(1)
	if err != nil {
		return nil, err
	}
	if d.off != len(d.b) {
		return nil, d.errorf("%d bytes after the root element", len(d.b)-d.off)
	}
	return root, nil
}

// element reads one element, after any SWITCH_PAGE in front of it.
func (d *decoder) element(depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, d.errorf("deeper than %d elements", MaxDepth)
	}
	for {
		c, err := d.byte()
		if err != nil {
			return nil, err
		}
		if c == tokSwitchPage {
			if d.page, err = d.byte(); err != nil {
				return nil, err
			}
			continue
		}
		d.off--
		break
	}
	tag, _ := d.byte()
	if tag&bitAttributes != 0 || tag&0x3F < 0x05 {
		// Attributes, or a global token (ENTITY, LITERAL, EXT_*, PI, STR_T).
		return nil, d.errorf("unsupported token 0x%02x where an element was expected", tag)
	}
	n := &Node{Page: d.page, Tag: tag & 0x3F}
	if tag&bitContent == 0 {
		return n, nil
	}
	var text []byte
	for {
		c, err := d.byte()
		if err != nil {
			return nil, err
		}
		switch c {
		case tokEnd:
			n.Text = string(text)
			return n, nil
		case tokStrI:
			end := bytes.IndexByte(d.b[d.off:], 0)
			if end < 0 {
				return nil, d.errorf("inline string without its NUL")
			}
			text = append(text, d.b[d.off:d.off+end]...)
			d.off += end + 1
		case tokOpaque:
			l, err := d.mbUint32()
			if err != nil {
				return nil, err
			}
			if uint64(l) > uint64(len(d.b)-d.off) {
				return nil, d.errorf("opaque data of %d bytes but only %d follow", l, len(d.b)-d.off)
			}
			text = append(text, d.b[d.off:d.off+int(l)]...)
			d.off += int(l)
		default:
			// A child element; element refuses the other global tokens.
			d.off--
			child, err := d.element(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, child)
		}
	}
}

package pathval

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/certgate/certgate/internal/certfmt"
)

// kind is a GeneralName choice (RFC 5280 §4.2.1.6), its context tag number.
type kind int

const (
	kindOther kind = iota
	kindEmail
	kindDNS
	kindX400
	kindDir
	kindEDI
	kindURI
	kindIP
	kindRegID
)

var kindNames = [...]string{"otherName", "rfc822Name", "dNSName", "x400Address", "directoryName", "ediPartyName", "uniformResourceIdentifier", "iPAddress", "registeredID"}

func (k kind) String() string { return kindNames[k] }

// generalName is one name of a certificate or one subtree base. For the
// forms this package does not interpret (otherName, x400Address,
// ediPartyName, registeredID) only the kind and, for otherName, the type-id
// are kept: a constraint of such a form rejects any name of that form.
type generalName struct {
	kind kind
	str  string // rfc822Name, dNSName, URI as written; otherName type-id
	dir  name
	ip   []byte // 4 or 16 bytes for a name; 8 or 32 (address, mask) for a subtree
}

func (g generalName) String() string {
	switch g.kind {
	case kindDir:
		return "directoryName " + describeName(g.dir)
	case kindIP:
		if len(g.ip) == 8 || len(g.ip) == 32 {
			n := &net.IPNet{IP: g.ip[:len(g.ip)/2], Mask: g.ip[len(g.ip)/2:]}
			return "iPAddress " + n.String()
		}
		return "iPAddress " + net.IP(g.ip).String()
	case kindEmail, kindDNS, kindURI:
		return fmt.Sprintf("%s %q", g.kind, g.str)
	case kindOther:
		return "otherName " + g.str
	}
	return g.kind.String()
}

// describeName renders a prepared name for explanations; the prepared form
// is lower-case, which is how the comparison saw it.
func describeName(n name) string {
	parts := make([]string, 0, len(n.rdns))
	for i := len(n.rdns) - 1; i >= 0; i-- {
		var atvs []string
		for _, a := range strings.Split(n.rdns[i], "\x02") {
			oid, v, _ := strings.Cut(a, "\x01")
			if u, err := strconv.Unquote(strings.TrimPrefix(v, "s")); err == nil && strings.HasPrefix(v, "s") {
				v = u
			} else {
				v = "#" + strings.TrimPrefix(v, "b")
			}
			atvs = append(atvs, certfmt.AttrName(oid)+"="+v)
		}
		parts = append(parts, strings.Join(atvs, "+"))
	}
	return `"` + strings.Join(parts, ",") + `"`
}

var errBadGeneralName = errors.New("GeneralName does not parse")

// readGeneralName reads one GeneralName. subtree says it is the base of a
// GeneralSubtree, where iPAddress holds an address and a mask.
func readGeneralName(in *cryptobyte.String, subtree bool) (generalName, error) {
	var body cryptobyte.String
	var tag cbasn1.Tag
	if !in.ReadAnyASN1(&body, &tag) {
		return generalName{}, errBadGeneralName
	}
	if tag&0xc0 != 0x80 { // class context-specific
		return generalName{}, errBadGeneralName
	}
	k := kind(tag & 0x1f)
	constructed := tag&0x20 != 0
	g := generalName{kind: k}
	switch k {
	case kindOther:
		var oid asn1.ObjectIdentifier
		if !constructed || !body.ReadASN1ObjectIdentifier(&oid) {
			return g, errBadGeneralName
		}
		g.str = oid.String()
	case kindEmail, kindDNS, kindURI:
		if constructed {
			return g, errBadGeneralName
		}
		for _, c := range body {
			if c < 0x20 || c > 0x7e {
				return g, fmt.Errorf("%s is not printable IA5String", k)
			}
		}
		g.str = string(body)
	case kindDir:
		var inner cryptobyte.String
		if !constructed || !body.ReadASN1Element(&inner, cbasn1.SEQUENCE) || !body.Empty() {
			return g, errBadGeneralName
		}
		n, err := parseName(inner)
		if err != nil {
			return g, err
		}
		g.dir = n
	case kindIP:
		want := []int{4, 16}
		if subtree {
			want = []int{8, 32}
		}
		if constructed || (len(body) != want[0] && len(body) != want[1]) {
			return g, fmt.Errorf("iPAddress of %d bytes", len(body))
		}
		g.ip = bytes.Clone(body)
		if subtree && !validMask(g.ip[len(g.ip)/2:]) {
			return g, errors.New("iPAddress constraint with a non-contiguous mask")
		}
	case kindX400, kindEDI, kindRegID:
	default:
		return g, errBadGeneralName
	}
	return g, nil
}

func validMask(m []byte) bool {
	_, bits := net.IPMask(m).Size()
	return bits != 0
}

// parseGeneralNames reads a SEQUENCE OF GeneralName (a subjectAltName value).
func parseGeneralNames(v []byte) ([]generalName, error) {
	in := cryptobyte.String(v)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, errBadGeneralName
	}
	var out []generalName
	for !seq.Empty() {
		g, err := readGeneralName(&seq, false)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// constraints is one certificate's nameConstraints extension.
type constraints struct {
	permitted, excluded []generalName
}

// parseNameConstraints reads the extension value. RFC 5280 §4.2.1.10 says
// minimum is 0 and maximum absent in every subtree and that the extension
// is never empty; anything else is refused rather than half-understood.
func parseNameConstraints(v []byte) (constraints, error) {
	var c constraints
	in := cryptobyte.String(v)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return c, errors.New("nameConstraints is not a SEQUENCE")
	}
	read := func(tag cbasn1.Tag) ([]generalName, error) {
		var subtrees cryptobyte.String
		var present bool
		if !seq.ReadOptionalASN1(&subtrees, &present, tag) {
			return nil, errors.New("nameConstraints subtrees do not parse")
		}
		if !present {
			return nil, nil
		}
		if subtrees.Empty() {
			return nil, errors.New("nameConstraints with an empty subtree list")
		}
		var out []generalName
		for !subtrees.Empty() {
			var st cryptobyte.String
			if !subtrees.ReadASN1(&st, cbasn1.SEQUENCE) {
				return nil, errors.New("GeneralSubtree does not parse")
			}
			g, err := readGeneralName(&st, true)
			if err != nil {
				return nil, err
			}
			if !st.Empty() {
				// minimum DEFAULT 0 is omitted in DER; any field here is a
				// minimum other than 0 or a maximum, which §4.2.1.10 forbids.
				return nil, errors.New("GeneralSubtree with minimum or maximum")
			}
			out = append(out, g)
		}
		return out, nil
	}
	var err error
	if c.permitted, err = read(cbasn1.Tag(0).ContextSpecific().Constructed()); err != nil {
		return c, err
	}
	if c.excluded, err = read(cbasn1.Tag(1).ContextSpecific().Constructed()); err != nil {
		return c, err
	}
	if !seq.Empty() {
		return c, errors.New("nameConstraints has trailing data")
	}
	if c.permitted == nil && c.excluded == nil {
		return c, errors.New("nameConstraints without subtrees")
	}
	return c, nil
}

// match reports whether name n lies within subtree base b (same kind).
// ok is false when n cannot be read in the form the constraint needs (a
// URI without a host, a mailbox without "@"), which callers treat as
// outside every permitted subtree and inside every excluded one.
func match(n, b generalName) (in bool, ok bool) {
	switch n.kind {
	case kindDNS:
		return matchDomain(strings.TrimSuffix(strings.ToLower(n.str), "."), strings.ToLower(b.str)), true
	case kindEmail:
		local, host, found := strings.Cut(n.str, "@")
		if !found || local == "" || host == "" || strings.Contains(host, "@") {
			return false, false
		}
		c := b.str
		if cl, ch, at := strings.Cut(c, "@"); at {
			return cl == local && strings.EqualFold(ch, host), true
		}
		if strings.HasPrefix(c, ".") {
			return hasSuffixFold(host, c) && len(host) > len(c), true
		}
		return strings.EqualFold(host, c), true
	case kindURI:
		u, err := url.Parse(n.str)
		if err != nil {
			return false, false
		}
		host := u.Hostname()
		if host == "" || net.ParseIP(host) != nil {
			return false, false
		}
		c := strings.ToLower(b.str)
		host = strings.ToLower(host)
		if strings.HasPrefix(c, ".") {
			return strings.HasSuffix(host, c) && len(host) > len(c), true
		}
		return host == c, true
	case kindIP:
		if len(n.ip)*2 != len(b.ip) {
			return false, true
		}
		addr, mask := b.ip[:len(n.ip)], b.ip[len(n.ip):]
		for i := range n.ip {
			if n.ip[i]&mask[i] != addr[i]&mask[i] {
				return false, true
			}
		}
		return true, true
	case kindDir:
		return n.dir.hasPrefix(b.dir), true
	}
	// otherName, x400Address, ediPartyName, registeredID: this package
	// cannot say whether the name is within the subtree, and §4.2.1.10
	// leaves two choices, process the constraint or reject; it rejects.
	return false, false
}

// matchDomain: "example.com" covers itself and its subdomains, ".example.com"
// (a common, non-RFC spelling) only the subdomains, "" everything.
func matchDomain(host, c string) bool {
	c = strings.TrimSuffix(c, ".")
	if c == "" {
		return true
	}
	if strings.HasPrefix(c, ".") {
		return strings.HasSuffix(host, c) && len(host) > len(c)
	}
	return host == c || strings.HasSuffix(host, "."+c)
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// sameForm says whether constraint b constrains name n: same GeneralName
// choice, and for otherName the same type-id.
func sameForm(n, b generalName) bool {
	if n.kind != b.kind {
		return false
	}
	if n.kind == kindOther {
		return n.str == b.str
	}
	return true
}

// nameState is the permitted_subtrees / excluded_subtrees of §6.1.2 (b),
// (c). permitted keeps one list per constraining certificate: a name must
// fall in every list that has a subtree of its form, which is the
// intersection of §6.1.4 (g) without computing it. Each list remembers its
// certificate, for the explanation.
type nameState struct {
	permitted []subtrees
	excluded  []subtrees
}

type subtrees struct {
	from  string // the CA that set them, as Describe names it
	bases []generalName
}

func (s *nameState) add(c constraints, from string) {
	if c.permitted != nil {
		s.permitted = append(s.permitted, subtrees{from, c.permitted})
	}
	if c.excluded != nil {
		s.excluded = append(s.excluded, subtrees{from, c.excluded})
	}
}

// check returns a description of the first name of names that the
// constraints refuse, or "".
func (s *nameState) check(names []generalName) string {
	for _, n := range names {
		for _, set := range s.excluded {
			for _, b := range set.bases {
				if !sameForm(n, b) {
					continue
				}
				if in, ok := match(n, b); in || !ok {
					return fmt.Sprintf("%s is within the excluded subtree %s of %s", n, b, set.from)
				}
			}
		}
		for _, set := range s.permitted {
			constrained, in := false, false
			for _, b := range set.bases {
				if !sameForm(n, b) {
					continue
				}
				constrained = true
				if m, ok := match(n, b); m && ok {
					in = true
					break
				}
			}
			if constrained && !in {
				return fmt.Sprintf("%s is not within the permitted %s subtrees of %s", n, n.kind, set.from)
			}
		}
	}
	return ""
}

package pathval

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
	"testing"
	"time"
)

// check runs Verify with root as the only anchor and inters configured,
// and compares the reason ("" = accepted).
func check(t *testing.T, root *issued, inters []*issued, leaf *issued, sent []*issued, want Reason, wantText ...string) []*x509.Certificate {
	t.Helper()
	v := New(certs(root), certs(inters...), Options{})
	chain, err := v.Verify(leaf.cert, certs(sent...), t0)
	if got := reasonOf(t, err); got != want {
		t.Fatalf("reason %q (%v), want %q", got, err, want)
	}
	for _, w := range wantText {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("error %v does not mention %q", err, w)
		}
	}
	if err == nil {
		if chain[0] != leaf.cert || chain[len(chain)-1] != root.cert {
			t.Fatalf("chain does not run from the leaf to the root: %v", chain)
		}
	}
	return chain
}

func TestBasicPaths(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	inter := mk(t, spec{cn: "Inter", ca: true, key: 1}, root, nil)
	leaf := mk(t, spec{cn: "alice", key: 2}, inter, nil)

	if ch := check(t, root, []*issued{inter}, leaf, nil, ""); len(ch) != 3 {
		t.Fatalf("chain of %d, want 3", len(ch))
	}
	check(t, root, nil, leaf, []*issued{inter}, "")                                         // sent by the client
	check(t, root, nil, leaf, nil, Untrusted, `its issuer "CN=Inter"`, "unknown authority") // missing
	check(t, root, nil, mk(t, spec{cn: "direct", key: 2}, root, nil), nil, "")

	// A configured intermediate is never an anchor.
	v := New(nil, certs(inter), Options{})
	if _, err := v.Verify(leaf.cert, nil, t0); reasonOf(t, err) != Untrusted {
		t.Fatalf("intermediate used as anchor: %v", err)
	}

	// A foreign self-signed certificate sent along is explained.
	foreign := mk(t, spec{cn: "Root", ca: true, key: 3}, nil, nil)
	fleaf := mk(t, spec{cn: "mallory", key: 2}, foreign, nil)
	check(t, root, nil, fleaf, []*issued{foreign}, Untrusted, "does not verify")
}

func TestPrefersShortestPath(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	inter := mk(t, spec{cn: "Inter", ca: true, key: 1}, root, nil)
	// The same Inter key cross-signed by a second CA under the root: a
	// longer path to the same anchor.
	other := mk(t, spec{cn: "Other", ca: true, key: 3}, root, nil)
	cross := mk(t, spec{cn: "Inter", ca: true, key: 1}, other, nil)
	leaf := mk(t, spec{cn: "alice", key: 2}, inter, nil)
	if ch := check(t, root, []*issued{cross, other, inter}, leaf, nil, ""); len(ch) != 3 {
		t.Fatalf("chain of %d, want the shortest (3)", len(ch))
	}
	// With the short path broken (its Inter expired), the long one is used.
	oldInter := mk(t, spec{cn: "Inter", ca: true, key: 1, notAfter: t0.Add(-time.Hour)}, root, nil)
	if ch := check(t, root, []*issued{oldInter, cross, other}, leaf, nil, ""); len(ch) != 4 {
		t.Fatalf("chain of %d, want the cross-signed path (4)", len(ch))
	}
}

func TestNameChainingRFC5280Section7_1(t *testing.T) {
	pr, utf := asn1.TagPrintableString, asn1.TagUTF8String
	caName := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Test Certificates", pr}}, []atv{{oidCN, "Issuing CA", pr}})
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	inter := mk(t, spec{rawSubject: caName, ca: true, key: 1}, root, nil)
	cases := []struct {
		name   string
		issuer []byte
		want   Reason
	}{
		{"same bytes", caName, ""},
		{"case", rawName(t, []atv{{oidC, "us", pr}}, []atv{{oidO, "TEST CERTIFICATES", pr}}, []atv{{oidCN, "issuing ca", pr}}), ""},
		{"whitespace", rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "  Test   Certificates ", pr}}, []atv{{oidCN, "Issuing CA", pr}}), ""},
		{"UTF8String rollover", rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Test Certificates", utf}}, []atv{{oidCN, "Issuing CA", utf}}), ""},
		{"other value", rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Test Certificates", pr}}, []atv{{oidCN, "Issuing CA2", pr}}), Untrusted},
		{"RDN order", rawName(t, []atv{{oidO, "Test Certificates", pr}}, []atv{{oidC, "US", pr}}, []atv{{oidCN, "Issuing CA", pr}}), Untrusted},
		{"inner space matters", rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "TestCertificates", pr}}, []atv{{oidCN, "Issuing CA", pr}}), Untrusted},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf := mk(t, spec{cn: "alice", key: 2}, inter, tc.issuer)
			check(t, root, []*issued{inter}, leaf, nil, tc.want)
		})
	}
	if !SameName(caName, cases[3].issuer) || SameName(caName, cases[4].issuer) {
		t.Fatal("SameName disagrees with path building")
	}
}

func TestValidity(t *testing.T) {
	past, future := t0.Add(-48*time.Hour), t0.Add(48*time.Hour)
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	oldRoot := mk(t, spec{cn: "Old Root", ca: true, notAfter: t0.Add(-time.Hour)}, nil, nil)
	inter := mk(t, spec{cn: "Inter", ca: true, key: 1}, root, nil)
	expInter := mk(t, spec{cn: "Inter", ca: true, key: 1, notBefore: past, notAfter: t0.Add(-time.Hour)}, root, nil)
	newInter := mk(t, spec{cn: "Inter", ca: true, key: 1, notBefore: t0.Add(time.Hour), notAfter: future}, root, nil)
	leaf := mk(t, spec{cn: "alice", key: 2}, inter, nil)

	check(t, root, []*issued{expInter}, leaf, nil, Expired, `CA "CN=Inter"`, "expired at")
	check(t, root, []*issued{newInter}, leaf, nil, NotYetValid, `CA "CN=Inter"`)
	check(t, oldRoot, nil, mk(t, spec{cn: "bob", key: 2}, oldRoot, nil), nil, Expired, `CA "CN=Old Root"`)
	check(t, root, []*issued{inter}, mk(t, spec{cn: "carol", key: 2, notAfter: t0.Add(-time.Second)}, inter, nil), nil, Expired, `certificate "CN=carol"`)
	check(t, root, []*issued{inter}, mk(t, spec{cn: "dave", key: 2, notBefore: t0.Add(time.Second)}, inter, nil), nil, NotYetValid)
}

func TestBasicConstraintsAndKeyUsage(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	noBC := mk(t, spec{cn: "NoBC", key: 1, noBC: true, ku: x509.KeyUsageCertSign}, root, nil)
	notCA := mk(t, spec{cn: "NotCA", key: 1, ku: x509.KeyUsageCertSign}, root, nil)
	noCertSign := mk(t, spec{cn: "NoCertSign", ca: true, key: 1, ku: x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}, root, nil)
	for _, ca := range []*issued{noBC, notCA, noCertSign} {
		t.Run(ca.cert.Subject.CommonName, func(t *testing.T) {
			leaf := mk(t, spec{cn: "alice", key: 2}, ca, nil)
			check(t, root, []*issued{ca}, leaf, nil, BadUsage, ca.cert.Subject.CommonName)
		})
	}
	// An anchor is a name and a key: a root without basicConstraints (a
	// v1-style root) anchors; one that says cA FALSE or lacks keyCertSign
	// does not, because its extensions are honoured when present.
	bare := mk(t, spec{cn: "Bare Root", noBC: true, ku: x509.KeyUsageCertSign}, nil, nil)
	check(t, bare, nil, mk(t, spec{cn: "alice", key: 2}, bare, nil), nil, "")
	noSignRoot := mk(t, spec{cn: "No Sign Root", ca: true, ku: x509.KeyUsageCRLSign}, nil, nil)
	check(t, noSignRoot, nil, mk(t, spec{cn: "alice", key: 2}, noSignRoot, nil), nil, BadUsage, "keyCertSign")
}

func TestPathLenConstraint(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true, pathLen: intp(1)}, nil, nil)
	a := mk(t, spec{cn: "A", ca: true, key: 1, pathLen: intp(0)}, root, nil)
	// Self-issued: same name, new key (a key rollover under A).
	aNew := mk(t, spec{cn: "A", ca: true, key: 3}, a, nil)
	b := mk(t, spec{cn: "B", ca: true, key: 4}, a, nil)

	check(t, root, []*issued{a, aNew}, mk(t, spec{cn: "alice", key: 2}, aNew, nil), nil, "")
	check(t, root, []*issued{a, b}, mk(t, spec{cn: "bob", key: 2}, b, nil), nil, BadUsage, `CA "CN=B"`, "pathLenConstraint")

	// The anchor's own pathLenConstraint counts.
	r0 := mk(t, spec{cn: "Root0", ca: true, pathLen: intp(0), key: 5}, nil, nil)
	i0 := mk(t, spec{cn: "I0", ca: true, key: 1}, r0, nil)
	check(t, r0, []*issued{i0}, mk(t, spec{cn: "carol", key: 2}, i0, nil), nil, BadUsage, "pathLenConstraint")
	check(t, r0, nil, mk(t, spec{cn: "dave", key: 2}, r0, nil), nil, "")
}

func TestCriticalExtensions(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	unknown := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}
	policies := pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 32}, Critical: true, Value: mustMarshal(t, []struct{ ID asn1.ObjectIdentifier }{{asn1.ObjectIdentifier{2, 5, 29, 32, 0}}})}
	nonCritical := unknown
	nonCritical.Critical = false

	check(t, root, nil, mk(t, spec{cn: "a", key: 2, extra: []pkix.Extension{unknown}}, root, nil), nil, Untrusted, "unhandled critical extension 1.3.6.1.4.1.99999.1")
	check(t, root, nil, mk(t, spec{cn: "b", key: 2, extra: []pkix.Extension{nonCritical}}, root, nil), nil, "")
	check(t, root, nil, mk(t, spec{cn: "c", key: 2, extra: []pkix.Extension{policies}}, root, nil), nil, "")
	inter := mk(t, spec{cn: "Inter", ca: true, key: 1, extra: []pkix.Extension{unknown}}, root, nil)
	check(t, root, []*issued{inter}, mk(t, spec{cn: "d", key: 2}, inter, nil), nil, Untrusted, `CA "CN=Inter"`, "critical")
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtKeyUsage(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	check(t, root, nil, mk(t, spec{cn: "a", key: 2}, root, nil), nil, "") // no EKU allows
	check(t, root, nil, mk(t, spec{cn: "b", key: 2, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, root, nil), nil, "")
	check(t, root, nil, mk(t, spec{cn: "c", key: 2, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}, root, nil), nil, "")
	check(t, root, nil, mk(t, spec{cn: "d", key: 2, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, root, nil), nil, BadUsage, "clientAuth")
	srvCA := mk(t, spec{cn: "Server CA", ca: true, key: 1, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, root, nil)
	check(t, root, []*issued{srvCA}, mk(t, spec{cn: "e", key: 2}, srvCA, nil), nil, BadUsage, `CA "CN=Server CA"`)
	// A CA certificate as the target is not refused for being a CA
	// (RFC 5280 puts no condition on it; PKITS 4.6.8).
	check(t, root, nil, mk(t, spec{cn: "f", key: 2, ca: true}, root, nil), nil, "")
}

func TestNameConstraints(t *testing.T) {
	pr := asn1.TagPrintableString
	contoso := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}})
	sales := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}}, []atv{{oidOU, "Sales", pr}})
	userIn := rawName(t, []atv{{oidC, "us", asn1.TagUTF8String}}, []atv{{oidO, "CONTOSO", pr}}, []atv{{oidCN, "alice", pr}})
	userSales := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}}, []atv{{oidOU, "Sales", pr}}, []atv{{oidCN, "bob", pr}})
	userOut := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Fabrikam", pr}}, []atv{{oidCN, "eve", pr}})
	emailDN := func(e string) []byte {
		return rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}}, []atv{{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, e, asn1.TagIA5String}})
	}

	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	type tc struct {
		name string
		ca   spec
		leaf spec
		want Reason
	}
	dnCA := spec{cn: "DN CA", ca: true, key: 1, extra: []pkix.Extension{dnConstraints(t, true, [][]byte{contoso}, [][]byte{sales})}}
	cases := []tc{
		{"DN permitted, §7.1 compare", dnCA, spec{rawSubject: userIn, key: 2}, ""},
		{"DN outside permitted", dnCA, spec{rawSubject: userOut, key: 2}, NameConstraints},
		{"DN in excluded", dnCA, spec{rawSubject: userSales, key: 2}, NameConstraints},
		{"DN in a SAN directoryName is constrained too", spec{cn: "DN CA", ca: true, key: 1, extra: []pkix.Extension{dnConstraints(t, true, [][]byte{contoso}, nil)}},
			spec{rawSubject: userIn, key: 2, extra: []pkix.Extension{sanDirName(t, userOut)}}, NameConstraints},
		{"DNS permitted", spec{cn: "C", ca: true, key: 1, permDNS: []string{"contoso.com"}}, spec{cn: "a", key: 2, dns: []string{"host.contoso.com"}}, ""},
		{"DNS label boundary", spec{cn: "C", ca: true, key: 1, permDNS: []string{"contoso.com"}}, spec{cn: "a", key: 2, dns: []string{"evilcontoso.com"}}, NameConstraints},
		{"DNS excluded", spec{cn: "C", ca: true, key: 1, exclDNS: []string{"bad.contoso.com"}}, spec{cn: "a", key: 2, dns: []string{"x.bad.contoso.com"}}, NameConstraints},
		{"email host", spec{cn: "C", ca: true, key: 1, permEmail: []string{"contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"alice@contoso.com"}}, ""},
		{"email host exact only", spec{cn: "C", ca: true, key: 1, permEmail: []string{"contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"alice@mail.contoso.com"}}, NameConstraints},
		{"email domain", spec{cn: "C", ca: true, key: 1, permEmail: []string{".contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"alice@mail.contoso.com"}}, ""},
		{"email mailbox", spec{cn: "C", ca: true, key: 1, permEmail: []string{"alice@contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"bob@contoso.com"}}, NameConstraints},
		{"email excluded", spec{cn: "C", ca: true, key: 1, exclEmail: []string{"contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"alice@CONTOSO.com"}}, NameConstraints},
		{"subject emailAddress constrained", spec{cn: "C", ca: true, key: 1, permEmail: []string{"contoso.com"}}, spec{rawSubject: emailDN("eve@fabrikam.com"), key: 2}, NameConstraints},
		{"subject emailAddress inside", spec{cn: "C", ca: true, key: 1, permEmail: []string{"contoso.com"}}, spec{rawSubject: emailDN("alice@contoso.com"), key: 2}, ""},
		{"URI host", spec{cn: "C", ca: true, key: 1, permURI: []string{"contoso.com"}}, spec{cn: "a", key: 2, uris: []string{"https://contoso.com/x"}}, ""},
		{"URI other host", spec{cn: "C", ca: true, key: 1, permURI: []string{"contoso.com"}}, spec{cn: "a", key: 2, uris: []string{"https://www.contoso.com/x"}}, NameConstraints},
		{"URI domain", spec{cn: "C", ca: true, key: 1, permURI: []string{".contoso.com"}}, spec{cn: "a", key: 2, uris: []string{"ftp://www.contoso.com:21/x"}}, ""},
		{"other forms unconstrained", spec{cn: "C", ca: true, key: 1, permDNS: []string{"contoso.com"}}, spec{cn: "a", key: 2, emails: []string{"x@fabrikam.com"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca := mk(t, c.ca, root, nil)
			leaf := mk(t, c.leaf, ca, nil)
			check(t, root, []*issued{ca}, leaf, nil, c.want)
		})
	}
}

func sanDirName(t *testing.T, name []byte) pkix.Extension {
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name})
	if err != nil {
		t.Fatal(err)
	}
	v, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: gn})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidSAN, Value: v}
}

func TestNameConstraintsIPAndIntersection(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	ipCA := mk(t, spec{cn: "IP CA", ca: true, key: 1, permIP: []string{"10.1.0.0/16"}}, root, nil)
	check(t, root, []*issued{ipCA}, mk(t, spec{cn: "in", key: 2, ips: []string{"10.1.2.3"}}, ipCA, nil), nil, "")
	check(t, root, []*issued{ipCA}, mk(t, spec{cn: "out", key: 2, ips: []string{"10.2.2.3"}}, ipCA, nil), nil, NameConstraints)
	check(t, root, []*issued{ipCA}, mk(t, spec{cn: "v6", key: 2, ips: []string{"2001:db8::1"}}, ipCA, nil), nil, NameConstraints)
	a := mk(t, spec{cn: "A", ca: true, key: 1, permDNS: []string{"contoso.com"}}, root, nil)
	b := mk(t, spec{cn: "B", ca: true, key: 3, permDNS: []string{"sales.contoso.com", "fabrikam.com"}}, a, nil)
	// Intersection: within both.
	check(t, root, []*issued{a, b}, mk(t, spec{cn: "x", key: 2, dns: []string{"h.sales.contoso.com"}}, b, nil), nil, "")
	// Within B's but not A's.
	check(t, root, []*issued{a, b}, mk(t, spec{cn: "y", key: 2, dns: []string{"fabrikam.com"}}, b, nil), nil, NameConstraints)
	// Within A's but not B's.
	check(t, root, []*issued{a, b}, mk(t, spec{cn: "z", key: 2, dns: []string{"hr.contoso.com"}}, b, nil), nil, NameConstraints)
}

// §6.1.3 (b): a self-issued intermediate is not held to the constraints
// above it (its name may be outside them), the end entity is.
func TestSelfIssuedExemptFromNameConstraints(t *testing.T) {
	pr := asn1.TagPrintableString
	permitted := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}})
	caName := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Other", pr}}, []atv{{oidCN, "CA", pr}})
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	ca := mk(t, spec{rawSubject: caName, ca: true, key: 1}, root, nil)
	constrained := mk(t, spec{rawSubject: caName, ca: true, key: 3, extra: []pkix.Extension{dnConstraints(t, true, [][]byte{permitted}, nil)}}, ca, nil)
	selfIssued := mk(t, spec{rawSubject: caName, ca: true, key: 4}, constrained, nil)
	inside := rawName(t, []atv{{oidC, "US", pr}}, []atv{{oidO, "Contoso", pr}}, []atv{{oidCN, "alice", pr}})
	check(t, root, []*issued{ca, constrained, selfIssued}, mk(t, spec{rawSubject: inside, key: 2}, selfIssued, nil), nil, "")
	check(t, root, []*issued{ca, constrained, selfIssued}, mk(t, spec{cn: "outside", key: 2}, selfIssued, nil), nil, NameConstraints)
}

func TestMalformedNames(t *testing.T) {
	for _, v := range [][]byte{
		{0x30, 0x03, 0x82, 0x05, 'x'},        // truncated dNSName
		{0x30, 0x02, 0x87, 0x03},             // truncated iPAddress
		{0x30, 0x03, 0x87, 0x01, 0x01},       // iPAddress of 1 byte
		{0x30, 0x04, 0xa4, 0x02, 0x31, 0x00}, // directoryName that is not a Name
		{0x30, 0x03, 0x81, 0x01, 0x00},       // rfc822Name with a control byte
		{0x30, 0x03, 0x82, 0x01, 'x', 0x00},  // trailing byte
	} {
		if _, err := parseGeneralNames(v); err == nil {
			t.Errorf("parseGeneralNames(% x) accepted", v)
		}
	}
	for _, v := range [][]byte{
		{0x30, 0x00},             // no subtrees
		{0x30, 0x02, 0xa0, 0x00}, // empty permitted
		{0x30, 0x09, 0xa0, 0x07, 0x30, 0x05, 0x82, 0x01, 'x', 0x80, 0x00}, // minimum present
		{0x30, 0x0a, 0xa0, 0x08, 0x30, 0x06, 0x87, 0x04, 10, 0, 0, 0},     // IP subtree without a mask
	} {
		if _, err := parseNameConstraints(v); err == nil {
			t.Errorf("parseNameConstraints(% x) accepted", v)
		}
	}
	if _, err := parseName([]byte{0x30, 0x02, 0x31, 0x00}); err == nil {
		t.Error("parseName accepted an empty RDN")
	}
}

func TestWorkIsBounded(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	// Many sent certificates named like the leaf's issuer, none signing it.
	var sent []*issued
	for i := range 40 {
		sent = append(sent, mk(t, spec{cn: "Inter", ca: true, key: 3 + i%4, ski: []byte{1, 2, 3}}, root, nil))
	}
	real := mk(t, spec{cn: "Inter", ca: true, key: 1, ski: []byte{9, 9, 9}}, root, nil)
	// The leaf's authorityKeyIdentifier points at the decoys, which are
	// tried first.
	leaf := mk(t, spec{cn: "alice", key: 2}, &issued{cert: withSKI(real.cert, []byte{1, 2, 3}), key: real.key}, nil)
	v := New(certs(root), nil, Options{MaxSignatureChecks: 10})
	_, err := v.Verify(leaf.cert, certs(append(sent, real)...), t0)
	if reasonOf(t, err) != Untrusted || !strings.Contains(err.Error(), "signature checks") {
		t.Fatalf("error %v, want untrusted after the signature check budget", err)
	}
}

func TestCheckCA(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	good := mk(t, spec{cn: "Good", ca: true, key: 1}, root, nil)
	expired := mk(t, spec{cn: "Expired", ca: true, key: 1, notAfter: t0.Add(-time.Hour)}, root, nil)
	notCA := mk(t, spec{cn: "NotCA", key: 1}, root, nil)
	stray := mk(t, spec{cn: "Stray", ca: true, key: 1}, mk(t, spec{cn: "Elsewhere", ca: true, key: 5}, nil, nil), nil)
	v := New(certs(root), certs(good, expired, notCA, stray), Options{})
	for _, c := range []struct {
		ca   *issued
		want Reason
	}{{root, ""}, {good, ""}, {expired, Expired}, {notCA, BadUsage}, {stray, Untrusted}} {
		if got := reasonOf(t, v.CheckCA(c.ca.cert, t0)); got != c.want {
			t.Errorf("%s: %q, want %q", c.ca.cert.Subject.CommonName, got, c.want)
		}
	}
}

func withSKI(c *x509.Certificate, ski []byte) *x509.Certificate {
	cp := *c
	cp.SubjectKeyId = ski
	return &cp
}

// Certificates that all sign each other (one name, one key) have many
// orderings; path building stops at its bound instead of trying them all.
func TestVisitsAreBounded(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	var loop []*issued
	for range 7 {
		loop = append(loop, mk(t, spec{cn: "Loop", ca: true, key: 3}, nil, nil))
	}
	leaf := mk(t, spec{cn: "alice", key: 2}, loop[0], nil)
	v := New(certs(root), nil, Options{})
	_, err := v.Verify(leaf.cert, certs(loop...), t0)
	if reasonOf(t, err) != Untrusted || !strings.Contains(err.Error(), "stopped at its bound") {
		t.Fatalf("error %v, want untrusted at the bound", err)
	}
}

func TestFormatName(t *testing.T) {
	dc := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	raw := rawName(t, []atv{{dc, "com", asn1.TagIA5String}}, []atv{{dc, "contoso", asn1.TagIA5String}}, []atv{{oidCN, "CONTOSO-DC-CA, Issuing", asn1.TagUTF8String}})
	if got, want := FormatName(raw), `CN=CONTOSO-DC-CA\, Issuing,DC=contoso,DC=com`; got != want {
		t.Fatalf("FormatName = %q, want %q", got, want)
	}
	if got := FormatName([]byte{1, 2}); got != "#0102" {
		t.Fatalf("FormatName of garbage = %q", got)
	}
}

func TestCheckCRLSigner(t *testing.T) {
	root := mk(t, spec{cn: "Root", ca: true}, nil, nil)
	crlOnly := x509.KeyUsageCRLSign
	unknown := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}
	aName := rawName(t, []atv{{oidCN, "A", asn1.TagPrintableString}})
	// A forbids its own name below it: a self-issued CRL key of A, a
	// final certificate, is held to that (§6.1.3 (b)); A itself is not.
	a := mk(t, spec{rawSubject: aName, ca: true, key: 1, extra: []pkix.Extension{dnConstraints(t, true, nil, [][]byte{aName})}}, root, nil)
	srvCA := mk(t, spec{cn: "Server CA", ca: true, key: 4, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, root, nil)
	r0 := mk(t, spec{cn: "Root0", ca: true, key: 5, pathLen: intp(0)}, nil, nil)
	mid := mk(t, spec{cn: "Mid", ca: true, key: 6}, r0, nil)
	rootNoCRLSign := mk(t, spec{cn: "Root2", ca: true, key: 7, ku: x509.KeyUsageCertSign}, nil, nil)

	v := New(certs(root, r0, rootNoCRLSign), certs(a, srvCA, mid), Options{})
	for _, c := range []struct {
		name   string
		signer *issued
		want   Reason
		text   string
	}{
		{"end entity with cRLSign", mk(t, spec{cn: "Inter", key: 2, ku: crlOnly}, root, nil), "", ""},
		{"a CA", mk(t, spec{cn: "Inter", ca: true, key: 2}, root, nil), "", ""},
		{"no extKeyUsage nesting", mk(t, spec{cn: "Server CA", key: 2, ku: crlOnly, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, srvCA, nil), "", ""},
		{"keyUsage without cRLSign", mk(t, spec{cn: "Inter", key: 2}, root, nil), BadUsage, "cRLSign"},
		{"expired", mk(t, spec{cn: "Inter", key: 2, ku: crlOnly, notAfter: t0.Add(-time.Hour)}, root, nil), Expired, ""},
		{"unknown critical extension", mk(t, spec{cn: "Inter", key: 2, ku: crlOnly, extra: []pkix.Extension{unknown}}, root, nil), Untrusted, "critical"},
		{"self-issued, excluded by its issuer's name constraints", mk(t, spec{rawSubject: aName, key: 2, ku: crlOnly}, a, nil), NameConstraints, ""},
		{"under a CA beyond the root's pathLenConstraint", mk(t, spec{cn: "Mid", key: 2, ku: crlOnly}, mid, nil), BadUsage, "pathLenConstraint"},
		{"not from a configured root", mk(t, spec{cn: "Inter", key: 2, ku: crlOnly}, mk(t, spec{cn: "Elsewhere", ca: true, key: 3}, nil, nil), nil), Untrusted, ""},
		{"an anchor", root, "", ""},
		{"an anchor without cRLSign", rootNoCRLSign, BadUsage, "cRLSign"},
	} {
		err := v.CheckCRLSigner(c.signer.cert, t0)
		if got := reasonOf(t, err); got != c.want || err != nil && !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %q mentioning %q", c.name, err, c.want, c.text)
		}
	}
	// The CA a self-issued signer hangs from is not under its own
	// constraints, as CheckCA agrees.
	if err := v.CheckCA(a.cert, t0); err != nil {
		t.Errorf("CheckCA(A) = %v", err)
	}
}

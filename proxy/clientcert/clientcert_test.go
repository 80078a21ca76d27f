package clientcert_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy/clientcert"
)

// pki is root → intermediate → leaf, returned in TLS order. The leaf is
// signed here rather than by pkigen so it can carry URI SANs and an
// awkward subject.
func pki(tb testing.TB, subject pkix.Name) []*x509.Certificate {
	tb.Helper()
	root := pkigen.Root(tb, "Root")
	inter := root.Intermediate(tb, "Inter")
	key := inter.Leaf(tb, "k").Key
	spiffe, _ := url.Parse("spiffe://contoso.com/alice")
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(7),
		Subject:        subject,
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		DNSNames:       []string{"alice.contoso.com", "a.contoso.com"},
		URIs:           []*url.URL{spiffe},
		EmailAddresses: []string{"alice@contoso.com"},
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.Cert, key.Public(), inter.Key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return []*x509.Certificate{leaf, inter.Cert, root.Cert}
}

func TestRFC9440(t *testing.T) {
	chain := pki(t, pkix.Name{CommonName: "alice"})
	cert, list := clientcert.RFC9440(chain)
	if got := decodeByteSequence(t, cert); !bytes.Equal(got, chain[0].Raw) {
		t.Error("Client-Cert is not the leaf")
	}
	items := strings.Split(list, ", ")
	if len(items) != 2 {
		t.Fatalf("Client-Cert-Chain has %d items: %q", len(items), list)
	}
	for i, it := range items {
		if got := decodeByteSequence(t, it); !bytes.Equal(got, chain[i+1].Raw) {
			t.Errorf("chain item %d is not chain[%d]", i, i+1)
		}
	}

	cert, list = clientcert.RFC9440(chain[:1])
	if cert == "" || list != "" {
		t.Errorf("leaf only: %q, %q; want a Client-Cert and no chain", cert, list)
	}
	cert, list = clientcert.RFC9440(nil)
	if cert != "" || list != "" {
		t.Errorf("empty chain: %q, %q", cert, list)
	}
}

// decodeByteSequence reads an RFC 8941 Byte Sequence.
func decodeByteSequence(t *testing.T, s string) []byte {
	t.Helper()
	if len(s) < 2 || s[0] != ':' || s[len(s)-1] != ':' {
		t.Fatalf("not a byte sequence: %q", s)
	}
	b, err := base64.StdEncoding.DecodeString(s[1 : len(s)-1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestXFCC(t *testing.T) {
	chain := pki(t, pkix.Name{CommonName: "Alice Smith", Organization: []string{"Contoso, Ltd"}})
	h := clientcert.XFCC(chain, "spiffe://contoso.com/certgate", []string{"alice@contoso.com"}, []string{"alice@contoso.com", "a.smith@contoso.com"})
	elems, err := clientcert.ParseXFCC(h)
	if err != nil {
		t.Fatalf("%v\n%s", err, h)
	}
	if len(elems) != 1 {
		t.Fatalf("%d elements", len(elems))
	}
	e := elems[0]
	sum := sha256.Sum256(chain[0].Raw)
	want := map[string][]string{
		"By":      {"spiffe://contoso.com/certgate"},
		"Hash":    {hex.EncodeToString(sum[:])},
		"Subject": {"CN=Alice Smith,O=Contoso\\, Ltd"},
		"URI":     {"spiffe://contoso.com/alice"},
		"DNS":     {"alice.contoso.com", "a.contoso.com"},
		"Email":   {"alice@contoso.com", "a.smith@contoso.com"},
		"UPN":     {"alice@contoso.com"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(e[k], v) {
			t.Errorf("%s = %q, want %q", k, e[k], v)
		}
	}
	certs, err := clientcert.DecodeXFCCCerts(e["Cert"][0])
	if err != nil || len(certs) != 1 || !certs[0].Equal(chain[0]) {
		t.Errorf("Cert does not decode to the leaf: %v", err)
	}
	certs, err = clientcert.DecodeXFCCCerts(e["Chain"][0])
	if err != nil || len(certs) != 3 {
		t.Fatalf("Chain: %d certs, %v", len(certs), err)
	}
	for i := range chain {
		if !certs[i].Equal(chain[i]) {
			t.Errorf("Chain[%d] differs", i)
		}
	}
	// Key order as Envoy writes it.
	order := regexp.MustCompile(`(^|;)([A-Za-z]+)=`).FindAllStringSubmatch(h, -1)
	var keys []string
	for _, m := range order {
		keys = append(keys, m[2])
	}
	if got := strings.Join(keys, ","); got != "By,Hash,Cert,Chain,Subject,URI,DNS,DNS,Email,Email,UPN" {
		t.Errorf("key order %s", got)
	}
}

// TestXFCCEnvoyEncoding checks the byte-level shape Envoy writes: Cert and
// Chain quoted, the PEM percent-encoded with only unreserved bytes left.
func TestXFCCEnvoyEncoding(t *testing.T) {
	chain := pki(t, pkix.Name{CommonName: "alice"})
	h := clientcert.XFCC(chain, "", nil, nil)
	if strings.HasPrefix(h, "By=") {
		t.Error("empty By was written")
	}
	if !strings.Contains(h, `;Cert="-----BEGIN%20CERTIFICATE-----%0A`) {
		t.Errorf("Cert is not URL-encoded PEM in quotes: %.120s", h)
	}
	cert := regexp.MustCompile(`Cert="([^"]*)"`).FindStringSubmatch(h)[1]
	if !regexp.MustCompile(`^[A-Za-z0-9%-]+$`).MatchString(cert) {
		t.Error("Cert holds bytes other than letters, digits, hyphens and percent escapes")
	}
	if pemText, err := url.PathUnescape(cert); err != nil || pemText != string(pkigen.CertPEM(chain[0])) {
		t.Errorf("Cert does not decode to the leaf's PEM: %v", err)
	}
	if !strings.Contains(h, `;Subject="CN=alice"`) {
		t.Errorf("Subject not quoted: %s", h)
	}
}

func TestXFCCAwkwardValues(t *testing.T) {
	chain := pki(t, pkix.Name{CommonName: "a\"b;c=d\\e\nf"})
	h := clientcert.XFCC(chain, "by=x;y", []string{"ok@contoso.com", "bad\r\nInjected: 1"}, []string{"  spaced  "})
	if strings.ContainsAny(h, "\r\n") {
		t.Fatalf("control characters reached the header: %q", h)
	}
	elems, err := clientcert.ParseXFCC(h)
	if err != nil {
		t.Fatal(err)
	}
	e := elems[0]
	if got := e["Subject"]; len(got) != 1 || got[0] != escapeNL(chain[0].Subject.String()) {
		t.Errorf("Subject = %q, want %q", got, escapeNL(chain[0].Subject.String()))
	}
	if got := e["By"]; len(got) != 1 || got[0] != "by=x;y" {
		t.Errorf("By = %q", got)
	}
	if got := e["UPN"]; !reflect.DeepEqual(got, []string{"ok@contoso.com"}) {
		t.Errorf("UPN = %q; the one with CR LF must be left out", got)
	}
	if got := e["Email"]; !reflect.DeepEqual(got, []string{"  spaced  "}) {
		t.Errorf("Email = %q", got)
	}
}

func escapeNL(s string) string { return strings.ReplaceAll(s, "\n", `\0A`) }

func TestParseXFCC(t *testing.T) {
	tests := []struct {
		in   string
		want []map[string][]string
	}{
		{"", nil},
		{`By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
			[]map[string][]string{{"By": {"http://frontend.lyft.com"}, "Hash": {"468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"},
				"Subject": {"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client"}, "URI": {"http://testclient.lyft.com"}}}},
		{`by=a;HASH=1, By=b;uri=x;URI=y;X-Custom=z`,
			[]map[string][]string{{"By": {"a"}, "Hash": {"1"}}, {"By": {"b"}, "URI": {"x", "y"}, "X-Custom": {"z"}}}},
		{`Subject="a\"b\\c,d;e=f" ; DNS=x ,By=y`,
			[]map[string][]string{{"Subject": {`a"b\c,d;e=f`}, "DNS": {"x"}}, {"By": {"y"}}}},
		{`By=`, []map[string][]string{{"By": {""}}}},
	}
	for _, tt := range tests {
		got, err := clientcert.ParseXFCC(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestParseXFCCErrors(t *testing.T) {
	tests := map[string]string{
		`By="abc`:        "at offset 7: unterminated quoted value",
		`By="abc\`:       "unterminated quoted value",
		`By="a"b`:        "at offset 6: want ';' or ',' after a quoted value",
		`By=a"b`:         `'"' inside an unquoted value`,
		`By`:             "want '=' after a key",
		`=x`:             "empty key",
		`By=a;`:          "missing key=value pair",
		`By=a,`:          "missing key=value pair",
		`By=a;;Hash=b`:   "want '=' after a key",
		`B y=a`:          "want '=' after a key",
		"By=a\r\nHash=b": "at offset 4: control character 0x0d",
		"By=\"a\x00\"":   "control character 0x00",
		strings.Repeat("x", clientcert.MaxXFCCLength+1): "longer than",
	}
	for in, msg := range tests {
		_, err := clientcert.ParseXFCC(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%.40q: err = %v, want %q", in, err, msg)
		}
	}
}

func TestDecodeXFCCCertsErrors(t *testing.T) {
	for in, msg := range map[string]string{
		"%zz":   "invalid URL escape",
		"":      "no CERTIFICATE block",
		"hello": "no CERTIFICATE block",
		url.PathEscape("-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n"):                 `PEM block "KEY"`,
		url.PathEscape("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"): "certificate 1:",
	} {
		_, err := clientcert.DecodeXFCCCerts(in)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err = %v, want %q", in, err, msg)
		}
	}
}

// format writes parsed elements back with the same quoting rules XFCC
// uses, keys sorted; parsing the result must give the elements back.
func format(elems []map[string][]string) string {
	var out []string
	for _, e := range elems {
		keys := make([]string, 0, len(e))
		for k := range e {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var pairs []string
		for _, k := range keys {
			for _, v := range e[k] {
				pairs = append(pairs, k+"="+clientcert.QuoteIfNeeded(v))
			}
		}
		out = append(out, strings.Join(pairs, ";"))
	}
	return strings.Join(out, ",")
}

func FuzzXFCCRoundTrip(f *testing.F) {
	chain := pki(f, pkix.Name{CommonName: "alice"})
	f.Add("spiffe://contoso.com/certgate", "alice@contoso.com", "alice@contoso.com", `By=a;Hash=1,By=b;Subject="x\"y";URI=u`)
	f.Add("", "a;b=c", `q"uote\`, `By="unterminated`)
	f.Add(" lead", "trail ", "\x00", "by=a , BY = b")
	f.Add("x", "y", "z", clientcert.XFCC(chain, "by", []string{"u"}, []string{"e"}))
	f.Fuzz(func(t *testing.T, by, upn, email, raw string) {
		// What XFCC writes parses back to what it was given.
		h := clientcert.XFCC(chain, by, []string{upn}, []string{email})
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("control byte in header %q", h)
		}
		elems, err := clientcert.ParseXFCC(h)
		if err != nil {
			t.Fatalf("XFCC output does not parse: %v\n%s", err, h)
		}
		if len(elems) != 1 {
			t.Fatalf("%d elements from one XFCC call", len(elems))
		}
		check := func(key, in string) {
			got := elems[0][key]
			switch {
			case in == "" && key == "By", strings.ContainsFunc(in, func(r rune) bool { return r < 0x20 || r == 0x7f }):
				if got != nil {
					t.Fatalf("%s = %q, want it left out", key, got)
				}
			case len(got) != 1 || got[0] != in:
				t.Fatalf("%s = %q, want [%q]", key, got, in)
			}
		}
		check("By", by)
		check("UPN", upn)
		check("Email", email)
		if certs, err := clientcert.DecodeXFCCCerts(elems[0]["Cert"][0]); err != nil || !certs[0].Equal(chain[0]) {
			t.Fatalf("Cert: %v", err)
		}

		// Any header that parses survives formatting and parsing again.
		parsed, err := clientcert.ParseXFCC(raw)
		if err != nil {
			return
		}
		again, err := clientcert.ParseXFCC(format(parsed))
		if err != nil {
			t.Fatalf("reformatted %q does not parse: %v", format(parsed), err)
		}
		if !reflect.DeepEqual(again, parsed) {
			t.Fatalf("round trip:\n got %q\nwant %q", again, parsed)
		}
		for _, e := range parsed {
			for _, v := range e["Cert"] {
				_, _ = clientcert.DecodeXFCCCerts(v) // must not panic
			}
		}
	})
}

func BenchmarkXFCC(b *testing.B) {
	chain := pki(b, pkix.Name{CommonName: "alice"})
	b.ReportAllocs()
	for b.Loop() {
		_ = clientcert.XFCC(chain, "", []string{"alice@contoso.com"}, []string{"alice@contoso.com"})
	}
}

func BenchmarkRFC9440(b *testing.B) {
	chain := pki(b, pkix.Name{CommonName: "alice"})
	b.ReportAllocs()
	for b.Loop() {
		_, _ = clientcert.RFC9440(chain)
	}
}

// FuzzRFC9440RoundTrip: whatever bytes a certificate holds, Client-Cert and
// Client-Cert-Chain are RFC 8941 byte sequences that decode back to them,
// in order, and never contain a character that could end the header.
func FuzzRFC9440RoundTrip(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, []byte{}, []byte{0xff, 0xfe})
	f.Add([]byte("\r\nX-Remote-User: evil"), []byte(":"), []byte(","))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		chain := []*x509.Certificate{{Raw: a}, {Raw: b}, {Raw: c}}
		cert, rest := clientcert.RFC9440(chain)
		for _, h := range []string{cert, rest} {
			if strings.ContainsAny(h, "\r\n\x00") {
				t.Fatalf("header value %q can break the header", h)
			}
		}
		if got := decodeByteSequence(t, cert); !bytes.Equal(got, a) {
			t.Fatalf("Client-Cert decodes to %x, want %x", got, a)
		}
		items := strings.Split(rest, ", ")
		if len(items) != 2 || !bytes.Equal(decodeByteSequence(t, items[0]), b) || !bytes.Equal(decodeByteSequence(t, items[1]), c) {
			t.Fatalf("Client-Cert-Chain %q does not decode to the chain", rest)
		}
	})
}

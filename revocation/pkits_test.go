package revocation_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkits"
	"github.com/certgate/certgate/revocation"
)

// pkitsRevocationSections are the PKITS sections whose verdict is the
// revocation check's: CRLs (4.4), key rollover (4.5), a CA key without
// cRLSign (4.7.4, 4.7.5), CRL scope (4.14) and delta CRLs (4.15).
func pkitsRevocationCase(id string) bool {
	for _, p := range []string{"4.4.", "4.5.", "4.14.", "4.15."} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return id == "4.7.4" || id == "4.7.5"
}

// pkitsExplained are refusals whose explanation matters: the scope or
// signer rule that decided them.
var pkitsExplained = map[string][]string{
	"4.4.21":  {"CRL signer", "revoked"},
	"4.14.3":  {"no CRL covers this certificate", "partitioned"},
	"4.14.8":  {"no CRL covers this certificate", "partitioned"},
	"4.14.9":  {"no CRL covers this certificate", "partitioned"},
	"4.14.11": {"user certificates only"},
	"4.14.12": {"CA certificates only"},
	"4.14.14": {"attribute certificates only"},
	"4.5.2":   {"listed"},
	"4.5.5":   {"listed"},
}

// TestPKITSRevocation drives the revocation cases of NIST PKITS through the
// Checker alone, with every CA of the path configured with the CRLs the
// suite gives it, served over HTTP on 127.0.0.1, and the path as the
// verified chain. The path validation of these cases (and the end-to-end
// verdict) is TestPKITS in cmd/certgate; here the revocation share is shown
// on its own, including material the configuration may refuse elsewhere
// (a CRL-signing certificate that is not a CA).
func TestPKITSRevocation(t *testing.T) {
	cases, err := pkits.Applicable()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		der, err := pkits.CRL(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".crl"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(der)
	}))
	t.Cleanup(srv.Close)
	at := time.Date(2011, 4, 15, 0, 0, 0, 0, time.UTC)
	n := 0
	for _, c := range cases {
		if !pkitsRevocationCase(c.ID) {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			byName := map[string]*x509.Certificate{}
			for _, name := range c.Path {
				der, err := pkits.Cert(name)
				if err != nil {
					t.Fatal(err)
				}
				cert, err := x509.ParseCertificate(der)
				if err != nil {
					// 4.4.15, 4.14.4-6: crypto/x509 refuses them, so no
					// chain of them reaches Check (cmd/certgate says
					// malformed_certificate).
					t.Skipf("%s: %v", name, err)
				}
				byName[name] = cert
			}
			chain := issuanceChain(t, byName[c.Leaf()], c.Path, byName)
			var srcs []revocation.Source
			for _, name := range c.Path[:len(c.Path)-1] {
				crl := c.CRLs[name]
				src := revocation.Source{Issuer: byName[name], CRLURL: srv.URL + "/absent-" + name + ".crl"}
				if crl.BaseCRL != "" {
					src.CRLURL = srv.URL + "/" + crl.BaseCRL + ".crl"
				}
				if crl.DeltaCRL != "" {
					src.DeltaCRLURL = srv.URL + "/" + crl.DeltaCRL + ".crl"
				}
				srcs = append(srcs, src)
			}
			logs := &logBuf{}
			ch := revocation.New(revocation.Options{Now: func() time.Time { return at }, Logger: logs.logger()})
			ch.SetSources(srcs)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = ch.RefreshNow(ctx) // failures are judged by Check, as in serve
			err := ch.Check(chain, at)
			switch {
			case c.Accept && err != nil:
				t.Fatalf("%s (%s): refused, suite accepts: %v", c.ID, c.Title, err)
			case !c.Accept && err == nil:
				t.Fatalf("%s (%s): admitted, suite rejects", c.ID, c.Title)
			case err != nil:
				for _, w := range pkitsExplained[c.ID] {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q does not say %q", c.ID, err, w)
					}
				}
			}
			n++
		})
	}
	// 51 applicable cases, of which 4 crypto/x509 cannot parse.
	if n != 47 {
		t.Errorf("%d revocation cases decided, want 47", n)
	}
}

// issuanceChain is the chain a path validator hands Check: from the leaf,
// each certificate's issuer among the path's CAs (by signature), up to the
// anchor. The suite's path also lists certificates outside it (a separate
// CRL-signing certificate, the other certificate of a key rollover).
func issuanceChain(t *testing.T, leaf *x509.Certificate, path []string, byName map[string]*x509.Certificate) []*x509.Certificate {
	t.Helper()
	chain := []*x509.Certificate{leaf}
	anchor := byName[path[0]]
	for cur := leaf; cur != anchor; {
		var next *x509.Certificate
		for _, name := range path[:len(path)-1] {
			p := byName[name]
			if p != cur && !slices.Contains(chain, p) && p.CheckSignature(cur.SignatureAlgorithm, cur.RawTBSCertificate, cur.Signature) == nil {
				next = p
				break
			}
		}
		if next == nil {
			// A bad signature (4.1.2-like material): the path as given.
			return reversed(path, byName)
		}
		chain = append(chain, next)
		cur = next
	}
	return chain
}

func reversed(path []string, byName map[string]*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for i := len(path) - 1; i >= 0; i-- {
		out = append(out, byName[path[i]])
	}
	return out
}

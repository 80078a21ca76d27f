package verifyassertion_test

import (
	"net/http/httptest"
	"testing"

	verifyassertion "github.com/certgate/certgate/examples/verify-assertion"
)

// FuzzVerify feeds arbitrary assertion and Client-Cert headers, as anyone
// who can reach a backend can send: Verify must never panic and never
// accept claims that certgate's key did not sign.
func FuzzVerify(f *testing.F) {
	k := key(&testing.T{}, "ES256")
	j := newJWKS(&testing.T{}, k)
	defer j.srv.Close()
	v, err := verifyassertion.New(verifyassertion.Options{JWKSURL: j.srv.URL, Audience: aud, Now: newClock(t0).Now})
	if err != nil {
		f.Fatal(err)
	}
	good := sign(&testing.T{}, k, aud, t0)
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Certgate-Assertion", good)
	signed, err := v.Verify(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "")
	f.Add(good, clientCert(leaf))
	f.Add(good[:len(good)-2]+"AA", "")
	f.Add("eyJhbGciOiJub25lIn0.e30.", ":AAAA:")
	f.Add("a.b.c", "::")
	f.Fuzz(func(t *testing.T, tok, cc string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Certgate-Assertion", tok)
		if cc != "" {
			r.Header.Set("Client-Cert", cc)
		}
		// Accepted claims can only be the ones certgate signed (base64's
		// unused trailing bits may differ; the signed bytes cannot).
		c, err := v.Verify(r)
		if err == nil && (c.ID != signed.ID || c.Subject != signed.Subject || c.Expiry != signed.Expiry) {
			t.Fatalf("accepted claims certgate did not sign: %q -> %+v", tok, c)
		}
	})
}

// Package verifyassertion is what a Go backend behind certgate needs to
// trust certgate's signed identity assertion instead of a bare header: an
// HTTP middleware that verifies the assertion against certgate's JWKS,
// checks its audience, issuer and lifetime, and, when the client
// certificate is forwarded (Client-Cert, RFC 9440), that the assertion was
// made for that certificate (cnf.x5t#S256, RFC 8705).
//
//	v, err := verifyassertion.New(verifyassertion.Options{
//		JWKSURL:  "http://127.0.0.1:9090/.well-known/jwks.json",
//		Audience: "http://app.internal:8080",
//	})
//	http.ListenAndServe(":8080", v.Middleware(app))
//
// In the app, [FromContext] returns the verified claims; use their Subject,
// not the X-Remote-User header, as the user.
//
// The JWKS is cached and fetched again when an assertion names a key id
// the cache does not hold (certgate rotated its key), at most once per
// MinRefresh, so forged key ids cannot make the backend hammer certgate.
package verifyassertion

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Options configure a [Verifier].
type Options struct {
	// JWKSURL is certgate's /.well-known/jwks.json (admin listener, or
	// jwks.proxyPath on the client listener).
	JWKSURL string
	// Audience must equal the aud claim: the route's assertion.audience,
	// by default its backend URL as written in certgate's config.
	Audience string
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Header carries the assertion; default X-Certgate-Assertion.
	Header string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 10s.
	Leeway time.Duration
	// MaxAge is how long a fetched JWKS is used before it is fetched
	// again; default 5m.
	MaxAge time.Duration
	// MinRefresh is the shortest time between two fetches (an unknown kid
	// triggers one); default 10s.
	MinRefresh time.Duration
	// RequireClientCert refuses requests without a Client-Cert header to
	// check cnf against; without it, cnf is checked when the header is there.
	RequireClientCert bool
	// Client fetches the JWKS; default a client with a 5s timeout.
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Claims are the verified claims of an assertion.
type Claims struct {
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	Audience  any    `json:"aud"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
	ID        string `json:"jti"`
	Binding   *struct {
		CertificateField string `json:"certificateField"`
		UserAttribute    string `json:"userAttribute"`
	} `json:"binding,omitempty"`
	IssuerSKI    string `json:"issuer_ski,omitempty"`
	Confirmation struct {
		X5tS256 string `json:"x5t#S256"`
	} `json:"cnf"`
}

// Error is a refused assertion; the middleware answers 401 with Reason.
type Error struct{ Reason string }

func (e *Error) Error() string { return "assertion refused: " + e.Reason }

func refuse(format string, args ...any) error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Verifier checks assertions; it is safe for concurrent use.
type Verifier struct {
	o Options

	mu        sync.Mutex // serialises fetches
	keys      jose.JSONWebKeySet
	fetched   time.Time
	lastTried time.Time
}

// New checks o and returns a Verifier. The JWKS is fetched on first use.
func New(o Options) (*Verifier, error) {
	if o.JWKSURL == "" || o.Audience == "" {
		return nil, errors.New("verifyassertion: JWKSURL and Audience are required")
	}
	if o.Header == "" {
		o.Header = "X-Certgate-Assertion"
	}
	if o.Leeway == 0 {
		o.Leeway = 10 * time.Second
	}
	if o.MaxAge == 0 {
		o.MaxAge = 5 * time.Minute
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{o: o}, nil
}

// The algorithms certgate signs with. Naming them is what keeps "none"
// and HMAC-with-the-public-key forgeries out.
var algs = []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA}

// Verify checks the assertion of r and returns its claims.
func (v *Verifier) Verify(r *http.Request) (*Claims, error) {
	vals := r.Header.Values(v.o.Header)
	if len(vals) != 1 {
		return nil, refuse("want exactly one %s header, got %d", v.o.Header, len(vals))
	}
	jws, err := jose.ParseSignedCompact(vals[0], algs)
	if err != nil {
		return nil, refuse("not a compact JWS with ES256 or EdDSA: %v", err)
	}
	h := jws.Signatures[0].Protected
	key, err := v.key(r.Context(), h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, refuse("key %s is for %s, the assertion says %s", h.KeyID, key.Algorithm, h.Algorithm)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, refuse("bad signature by key %s", h.KeyID)
	}
	var c Claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, refuse("claims are not JSON: %v", err)
	}
	if err := v.check(&c, r); err != nil {
		return nil, err
	}
	return &c, nil
}

func (v *Verifier) check(c *Claims, r *http.Request) error {
	now := v.o.Now()
	lw := int64(v.o.Leeway / time.Second)
	switch {
	case c.Subject == "":
		return refuse("no sub")
	case c.Expiry == 0 || now.Unix() > c.Expiry+lw:
		return refuse("expired at %s", time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	case now.Unix()+lw < c.NotBefore || now.Unix()+lw < c.IssuedAt:
		return refuse("issued in the future (%s)", time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339))
	case !audienceMatches(c.Audience, v.o.Audience):
		return refuse("audience %v is not %q", c.Audience, v.o.Audience)
	case v.o.Issuer != "" && c.Issuer != v.o.Issuer:
		return refuse("issuer %q is not %q", c.Issuer, v.o.Issuer)
	}
	cc := r.Header.Get("Client-Cert")
	if cc == "" {
		if v.o.RequireClientCert {
			return refuse("no Client-Cert header to check cnf against")
		}
		return nil
	}
	// RFC 9440: a Structured Field byte sequence, ":base64(DER):".
	der, err := base64.StdEncoding.DecodeString(strings.Trim(strings.TrimSpace(cc), ":"))
	if err != nil {
		return refuse("Client-Cert is not :base64:")
	}
	sum := sha256.Sum256(der)
	if c.Confirmation.X5tS256 != base64.RawURLEncoding.EncodeToString(sum[:]) {
		return refuse("cnf.x5t#S256 does not match the forwarded client certificate")
	}
	return nil
}

func audienceMatches(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// key returns the JWK for kid, fetching the JWKS when the cache is old or
// lacks kid, but never more often than MinRefresh.
func (v *Verifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.o.Now()
	found := v.keys.Key(kid)
	sinceTry := now.Sub(v.lastTried)
	due := (now.Sub(v.fetched) >= v.o.MaxAge && sinceTry >= v.o.MaxAge) ||
		(len(found) == 0 && sinceTry >= v.o.MinRefresh)
	if due {
		v.lastTried = now
		set, err := v.fetch(ctx)
		if err == nil {
			v.keys, v.fetched = set, now
			found = v.keys.Key(kid)
		} else if len(v.keys.Keys) == 0 {
			return nil, fmt.Errorf("verifyassertion: fetching %s: %w", v.o.JWKSURL, err)
		}
		// On a failed refresh the cached keys keep working.
	}
	if len(found) == 0 {
		return nil, refuse("unknown key id %q", kid)
	}
	return &found[0], nil
}

func (v *Verifier) fetch(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.o.JWKSURL, nil)
	if err != nil {
		return set, err
	}
	resp, err := v.o.Client.Do(req)
	if err != nil {
		return set, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return set, fmt.Errorf("status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return set, err
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return set, fmt.Errorf("not a JWKS: %w", err)
	}
	return set, nil
}

type ctxKey struct{}

// FromContext returns the claims the middleware verified.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(*Claims)
	return c, ok
}

// Middleware admits only requests with a valid assertion; others get 401
// with the reason (502 when the JWKS cannot be fetched at all).
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Verify(r)
		if err != nil {
			var refused *Error
			if errors.As(err, &refused) {
				http.Error(w, err.Error(), http.StatusUnauthorized)
			} else {
				http.Error(w, err.Error(), http.StatusBadGateway)
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, c)))
	})
}

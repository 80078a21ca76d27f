package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// DefaultHeader is the request header an assertion travels in.
const DefaultHeader = "X-Certgate-Assertion"

// DefaultLifetime is how long an assertion is valid: long enough for a
// backend to queue a request, short enough that a leaked one is soon useless.
const DefaultLifetime = 60 * time.Second

// Options configure a [Signer].
type Options struct {
	// Keys are the route's keys, newest first: Keys[0] signs, the others
	// are only published. At least one is required.
	Keys []*Key
	// Issuer is the iss claim; required.
	Issuer string
	// Audience is the aud claim; required (config defaults it to the
	// route's backend URL).
	Audience string
	// Header is the request header; "" means DefaultHeader.
	Header string
	// Lifetime is exp - iat; 0 means DefaultLifetime.
	Lifetime time.Duration
	// Reuse lets one assertion serve the requests of one connection and
	// route for this long after it was signed (0: a fresh one per request).
	// It must be shorter than Lifetime: a reused assertion always has at
	// least Lifetime - Reuse left.
	Reuse time.Duration
}

// Signer signs assertions for one route. It is immutable and safe for
// concurrent use; a reload builds a new one.
type Signer struct {
	opts   Options
	key    *Key
	signer jose.Signer
}

// NewSigner checks o and prepares the signing key.
func NewSigner(o Options) (*Signer, error) {
	if len(o.Keys) == 0 || o.Keys[0] == nil {
		return nil, errors.New("assertion: no signing key")
	}
	if o.Issuer == "" {
		return nil, errors.New("assertion: issuer is required")
	}
	if o.Audience == "" {
		return nil, errors.New("assertion: audience is required")
	}
	if o.Header == "" {
		o.Header = DefaultHeader
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Lifetime < time.Second {
		return nil, fmt.Errorf("assertion: lifetime %s is shorter than 1s (claims count whole seconds)", o.Lifetime)
	}
	if o.Reuse < 0 || o.Reuse >= o.Lifetime {
		return nil, fmt.Errorf("assertion: reuse %s must be at least 0 and shorter than the lifetime %s", o.Reuse, o.Lifetime)
	}
	k := o.Keys[0]
	var sk any = k.private
	if _, native := k.private.(*ecdsa.PrivateKey); !native {
		if _, native := k.private.(ed25519.PrivateKey); !native {
			sk = cryptosigner.Opaque(k.private)
		}
	}
	js, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.Alg),
		Key:       jose.JSONWebKey{Key: sk, KeyID: k.ID},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("assertion: key %s: %w", k.ID, err)
	}
	o.Keys = append([]*Key(nil), o.Keys...)
	return &Signer{opts: o, key: k, signer: js}, nil
}

// KeyFromSigner wraps a crypto.Signer (an HSM or KMS key, or a test's
// failing signer) as a signing key. Only ECDSA P-256 and Ed25519 public
// keys are accepted.
func KeyFromSigner(s crypto.Signer) (*Key, error) {
	k := &Key{private: s}
	switch pub := s.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s; ES256 needs P-256", pub.Curve.Params().Name)
		}
		k.Alg = ES256
	case ed25519.PublicKey:
		k.Alg = EdDSA
	default:
		return nil, fmt.Errorf("%T public key; want ECDSA P-256 or Ed25519", pub)
	}
	k.public = jose.JSONWebKey{Key: s.Public(), Algorithm: k.Alg, Use: "sig"}
	tp, err := k.public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k.ID = base64.RawURLEncoding.EncodeToString(tp)
	k.public.KeyID = k.ID
	return k, nil
}

// Header is the request header the route's assertions travel in.
func (s *Signer) Header() string { return s.opts.Header }

// Reuse is how long one assertion may serve a connection's requests.
func (s *Signer) Reuse() time.Duration { return s.opts.Reuse }

// SigningKey is the key that signs.
func (s *Signer) SigningKey() *Key { return s.key }

// Keys are every key of the route, the signing key first.
func (s *Signer) Keys() []*Key { return append([]*Key(nil), s.opts.Keys...) }

// Audience is the aud claim.
func (s *Signer) Audience() string { return s.opts.Audience }

// Issuer is the iss claim.
func (s *Signer) Issuer() string { return s.opts.Issuer }

// Subject is what the request's assertion says about its client.
type Subject struct {
	// User is the bound user's userPrincipalName (sub).
	User string
	// BindingField and BindingAttribute name the binding that matched
	// (PrincipalName / userPrincipalName, ...).
	BindingField, BindingAttribute string
	// IssuerSKI is the key identifier of the CA that issued the client
	// certificate, upper-case hex as in certgate's logs and metrics.
	IssuerSKI string
	// Leaf is the client certificate's DER, for cnf.x5t#S256.
	Leaf []byte
}

// Claims is the assertion's payload. Times are NumericDates (seconds).
type Claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Binding   *Binding `json:"binding,omitempty"`
	IssuerSKI string   `json:"issuer_ski,omitempty"`
	// Confirmation binds the assertion to the client certificate (RFC 8705
	// §3.1): a backend that also receives the certificate (Client-Cert)
	// checks that its SHA-256 thumbprint matches.
	Confirmation Confirmation `json:"cnf"`
}

// Binding is the binding that matched, as in the config.
type Binding struct {
	CertificateField string `json:"certificateField"`
	UserAttribute    string `json:"userAttribute"`
}

// Confirmation is the cnf claim.
type Confirmation struct {
	X5tS256 string `json:"x5t#S256"`
}

// Thumbprint is the base64url (unpadded) SHA-256 of a certificate's DER,
// the x5t#S256 of RFC 8705.
func Thumbprint(der []byte) string {
	h := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Sign makes an assertion for sub issued at now, and returns it with the
// time it stops being valid.
func (s *Signer) Sign(sub Subject, now time.Time) (string, time.Time, error) {
	if sub.User == "" {
		// An assertion about nobody would still be a valid signature.
		return "", time.Time{}, errors.New("assertion: no user to assert")
	}
	var jti [16]byte
	rand.Read(jti[:]) // never fails (crypto/rand crashes the process instead)
	iat := now.Unix()
	exp := now.Add(s.opts.Lifetime)
	c := Claims{
		Issuer:       s.opts.Issuer,
		Subject:      sub.User,
		Audience:     s.opts.Audience,
		IssuedAt:     iat,
		NotBefore:    iat,
		Expiry:       exp.Unix(),
		ID:           base64.RawURLEncoding.EncodeToString(jti[:]),
		IssuerSKI:    sub.IssuerSKI,
		Confirmation: Confirmation{X5tS256: Thumbprint(sub.Leaf)},
	}
	if sub.BindingField != "" {
		c.Binding = &Binding{CertificateField: sub.BindingField, UserAttribute: sub.BindingAttribute}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("assertion: %w", err)
	}
	jws, err := s.signer.Sign(payload)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("assertion: signing with key %s: %w", s.key.ID, err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("assertion: %w", err)
	}
	return tok, time.Unix(exp.Unix(), 0), nil
}

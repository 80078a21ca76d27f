package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// The signature algorithms certgate signs with: both are deterministic in
// size, fast to verify, and supported by every JOSE library backends use.
const (
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

// maxKeyFileSize bounds a key file read; a PEM key is well under 1 KiB.
const maxKeyFileSize = 64 << 10

// Key is one signing key read from a file.
type Key struct {
	// ID is the key's "kid": its RFC 7638 JWK thumbprint (SHA-256,
	// base64url). It is derived from the public key, so the same key file
	// always gets the same id on every replica and nothing has to be
	// configured or kept in step.
	ID string
	// Alg is ES256 for an ECDSA P-256 key, EdDSA for an Ed25519 key.
	Alg string
	// File is the path the key was read from ("" for ParseKey).
	File string
	// ModTime is the file's modification time, shown as the key's age.
	ModTime time.Time

	private crypto.Signer
	public  jose.JSONWebKey
}

// LoadKey reads a private key from a PEM file (PKCS #8 "PRIVATE KEY" or
// SEC 1 "EC PRIVATE KEY"). Errors name the file and never echo its content.
func LoadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes; not a key file", path, maxKeyFileSize)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k.File, k.ModTime = path, fi.ModTime()
	return k, nil
}

// ParseKey parses a PEM private key: ECDSA P-256 (ES256) or Ed25519 (EdDSA).
// Other key types and curves are refused rather than mapped to an algorithm
// backends might not expect.
func ParseKey(data []byte) (*Key, error) {
	var blk *pem.Block
	rest := data
	for {
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no PEM private key (want a PKCS #8 \"PRIVATE KEY\" or an \"EC PRIVATE KEY\" block)")
		}
		if blk.Type == "PRIVATE KEY" || blk.Type == "EC PRIVATE KEY" {
			break
		}
		if blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] != "" {
			// certgate reloads keys unattended; there is nobody to ask for
			// a passphrase. File permissions protect the key instead.
			return nil, errors.New("the private key is encrypted; certgate needs it unencrypted (openssl pkey -in KEY -out KEY.pem), readable only by certgate")
		}
		// EC PARAMETERS blocks (openssl ecparam -genkey) precede the key.
	}
	var raw any
	var err error
	if blk.Type == "EC PRIVATE KEY" {
		raw, err = x509.ParseECPrivateKey(blk.Bytes)
	} else {
		raw, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		// x509's messages describe the structure, never the key bytes.
		return nil, fmt.Errorf("cannot parse the %s block: %w", blk.Type, err)
	}
	k := &Key{}
	switch p := raw.(type) {
	case *ecdsa.PrivateKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s; ES256 needs P-256", p.Curve.Params().Name)
		}
		k.private, k.Alg = p, ES256
	case ed25519.PrivateKey:
		k.private, k.Alg = p, EdDSA
	default:
		return nil, fmt.Errorf("%T key; want ECDSA P-256 (ES256) or Ed25519 (EdDSA)", raw)
	}
	k.public = jose.JSONWebKey{Key: k.private.Public(), Algorithm: k.Alg, Use: "sig"}
	tp, err := k.public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	k.ID = base64.RawURLEncoding.EncodeToString(tp)
	k.public.KeyID = k.ID
	return k, nil
}

// Public returns the key's public half as a JWK.
func (k *Key) Public() jose.JSONWebKey { return k.public }

// KeySet is the set of public keys published as a JWKS.
type KeySet struct {
	keys []jose.JSONWebKey
	json []byte
}

// NewKeySet publishes keys in the order given, each id once. Two different
// keys with one id cannot happen with thumbprint ids.
func NewKeySet(keys ...*Key) *KeySet {
	s := &KeySet{}
	seen := map[string]bool{}
	for _, k := range keys {
		if k == nil || seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		s.keys = append(s.keys, k.public)
	}
	set := jose.JSONWebKeySet{Keys: s.keys}
	if set.Keys == nil {
		set.Keys = []jose.JSONWebKey{}
	}
	// Marshal once: the JWKS is served on every backend's cache miss.
	s.json, _ = json.Marshal(set)
	return s
}

// JSON returns the JWKS document (RFC 7517 §5).
func (s *KeySet) JSON() []byte {
	if s == nil {
		return []byte(`{"keys":[]}`)
	}
	return s.json
}

// IDs returns the key ids in the set.
func (s *KeySet) IDs() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.KeyID
	}
	return ids
}

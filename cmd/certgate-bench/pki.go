package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// The files `pki` writes into its folder.
const (
	fileRoot       = "root.pem"
	fileRootKey    = "root-key.pem"
	fileServer     = "server.pem"
	fileServerKey  = "server-key.pem"
	fileClient     = "client.pem"
	fileClientKey  = "client-key.pem"
	fileRevoked    = "revoked.pem"
	fileRevokedKey = "revoked-key.pem"
	fileSmallDER   = "crl-small.der"
	fileSmallPEM   = "crl-small.pem"
	fileBigDER     = "crl-big.der"
	fileBigPEM     = "crl-big.pem"
	// Signing keys for certgate's identity assertions (assertions.sh).
	fileAssertES256 = "assertion-es256.pem"
	fileAssertEd    = "assertion-ed25519.pem"
)

// benchUser is the client's identity: its UPN (what certgate binds) and
// its subject CN (what nginx can pass on).
const benchUser = "alice@contoso.com"

// crlSeed fixes the big CRL's serials, so that crl-serve publishes the
// same list under higher numbers.
const crlSeed = 20261125

// benchPKI is what `pki` makes; tests use it directly.
type benchPKI struct {
	dir     string
	root    *pkigen.CA
	maker   *crlMaker
	revoked *pkigen.Leaf
}

// makePKI writes a one-level PKI (root → leaves) so that nginx, which
// wants a CRL for every CA of the chain, and certgate check the same
// single CRL. Both servers get ECDSA P-256 certificates.
func makePKI(dir string, bigEntries int) (*benchPKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := pkigen.NewRoot("certgate bench root")
	if err != nil {
		return nil, err
	}
	server, err := root.NewServer([]string{"localhost", "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	client, err := root.NewLeaf(benchUser, pkigen.UPN(benchUser), pkigen.Email(benchUser))
	if err != nil {
		return nil, err
	}
	revoked, err := root.NewLeaf("mallory@contoso.com", pkigen.UPN("mallory@contoso.com"))
	if err != nil {
		return nil, err
	}
	write := []struct {
		path string
		fn   func(string) error
	}{
		{fileRoot, func(p string) error { return pkigen.WriteCert(p, root.Cert) }},
		{fileRootKey, func(p string) error { return pkigen.WriteKey(p, root.Key) }},
		{fileServer, func(p string) error { return pkigen.WriteCert(p, server.Cert) }},
		{fileServerKey, func(p string) error { return pkigen.WriteKey(p, server.Key) }},
		{fileClient, func(p string) error { return pkigen.WriteCert(p, client.Cert) }},
		{fileClientKey, func(p string) error { return pkigen.WriteKey(p, client.Key) }},
		{fileRevoked, func(p string) error { return pkigen.WriteCert(p, revoked.Cert) }},
		{fileRevokedKey, func(p string) error { return pkigen.WriteKey(p, revoked.Key) }},
		{fileAssertES256, func(p string) error {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			return pkigen.WriteKey(p, k)
		}},
		{fileAssertEd, func(p string) error {
			_, k, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			return pkigen.WriteKey(p, k)
		}},
	}
	for _, w := range write {
		if err := w.fn(filepath.Join(dir, w.path)); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC().Truncate(time.Second)
	// The small CRL: the revoked client and nine others, signed by crypto/x509.
	entries := pkigen.Revoke(now.Add(-2*time.Hour), revoked.Cert.SerialNumber)
	for i := range 9 {
		entries = append(entries, pkigen.Revoke(now.Add(-2*time.Hour), big.NewInt(int64(0x7000_0000+i)))...)
	}
	small, err := root.CRL(pkigen.CRLOptions{Number: 1, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(30 * 24 * time.Hour), Revoked: entries})
	if err != nil {
		return nil, err
	}
	if err := writeCRL(dir, fileSmallDER, fileSmallPEM, small); err != nil {
		return nil, err
	}
	maker, err := newCRLMaker(root, bigEntries, crlSeed, revoked.Cert.SerialNumber)
	if err != nil {
		return nil, err
	}
	big, err := maker.sign(2, now.Add(-time.Minute), now.Add(30*24*time.Hour))
	if err != nil {
		return nil, err
	}
	if err := writeCRL(dir, fileBigDER, fileBigPEM, big); err != nil {
		return nil, err
	}
	return &benchPKI{dir: dir, root: root, maker: maker, revoked: revoked}, nil
}

func writeCRL(dir, derName, pemName string, der []byte) error {
	if err := os.WriteFile(filepath.Join(dir, derName), der, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, pemName))
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "X509 CRL", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadCA reads the root and its key back from a `pki` folder.
func loadCA(dir string) (*pkigen.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, fileRoot))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", fileRoot)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, fileRootKey))
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("%s: no PEM block", fileRootKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", fileRootKey)
	}
	return &pkigen.CA{Cert: cert, Key: signer, Chain: []*x509.Certificate{cert}}, nil
}

func runPKI(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fs.String("dir", "", "folder to write the PKI into (required)")
	entries := fs.Int("entries", 1_000_000, "entries of the big CRL")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("pki: --dir is required")
	}
	if *entries < 1 || *entries > 20_000_000 {
		return usagef("pki: --entries must be between 1 and 20000000")
	}
	t0 := time.Now()
	p, err := makePKI(*dir, *entries)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	fi, err := os.Stat(filepath.Join(*dir, fileBigDER))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pki in %s: root %q, client %s, big CRL %d entries (%.1f MB DER) in %.1fs\n",
		p.dir, p.root.Cert.Subject.CommonName, benchUser, *entries, float64(fi.Size())/(1<<20), time.Since(t0).Seconds())
	return nil
}

// parsePEMCerts returns the CERTIFICATE blocks of b that parse.
func parsePEMCerts(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

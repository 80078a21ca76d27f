package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	verifyassertion "github.com/certgate/certgate/examples/verify-assertion"
	"github.com/certgate/certgate/internal/pkigen"
)

// demoPKI is the throwaway PKI of `certgate demo`, kept in one folder so
// the printed curl lines keep working across runs.
type demoPKI struct {
	dir   string
	root  *pkigen.CA
	inter *pkigen.CA
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dir := fs.String("dir", filepath.Join(os.TempDir(), "certgate-demo"), "folder for the demo PKI and config (made once, reused)")
	listen := fs.String("listen", "127.0.0.1:8443", "proxy address")
	adminListen := fs.String("admin", "127.0.0.1:0", "admin address (/metrics /healthz /readyz)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr("demo takes no arguments, got %q", pos[0])
	}
	// Take the port and the folder before touching anything in it: a
	// second demo on the same folder or port must fail while the running
	// one's config and CRL cache are still intact (it hot-reloads them).
	probe, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: cannot listen on %s (another certgate demo? pass --listen): %w", *listen, err)
	}
	defer probe.Close()
	*listen = probe.Addr().String()
	unlock, err := lockDemoDir(*dir)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer unlock()
	pki, err := loadOrMakeDemoPKI(*dir)
	if err != nil {
		return fmt.Errorf("demo PKI in %s: %w", *dir, err)
	}
	if err := ensureDemoAssertionKey(pki.dir); err != nil {
		return fmt.Errorf("demo assertion key in %s: %w", *dir, err)
	}

	// The CRL server: CRLs are signed afresh at every start, the intermediate's
	// listing bob as revoked.
	crlLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	crls, err := pki.crls()
	if err != nil {
		return err
	}
	crlSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		der, ok := crls[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		w.Write(der)
	}), ReadHeaderTimeout: 5 * time.Second}
	go crlSrv.Serve(crlLn)
	defer crlSrv.Close()

	// The echo backend shows what a backend receives from certgate, and
	// verifies the signed assertion as a backend that trusts only it would.
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	echo := &demoEcho{}
	backend := &http.Server{Handler: echo, ReadHeaderTimeout: 5 * time.Second}
	go backend.Serve(backendLn)
	defer backend.Close()

	cfgPath := filepath.Join(pki.dir, "certgate.yaml")
	crlBase := "http://" + crlLn.Addr().String()
	if err := os.WriteFile(cfgPath, []byte(demoConfig(*listen, *adminListen, crlBase, "http://"+backendLn.Addr().String())), 0o644); err != nil {
		return err
	}
	// The probe held the port until here; certgate listens on it again at
	// once (the folder lock keeps other demos out of the gap).
	probe.Close()
	inst, err := startFromConfig(ctx, cfgPath, stderr, instanceOptions{})
	if err != nil {
		return err
	}
	defer inst.close()
	jwksURL := ""
	if a := inst.adminAddr(); a != "" {
		jwksURL = "http://" + a + "/.well-known/jwks.json"
		// The audience is the route's default: its backend as configured.
		v, err := verifyassertion.New(verifyassertion.Options{JWKSURL: jwksURL, Audience: "http://" + backendLn.Addr().String(), Issuer: "certgate-demo"})
		if err != nil {
			return err
		}
		echo.v.Store(v)
	}

	addr := inst.proxyAddr()
	port := addr[strings.LastIndex(addr, ":")+1:]
	d := pki.dir
	base := fmt.Sprintf("curl --cacert %s https://localhost:%s/", filepath.Join(d, "ca", "root.pem"), port)
	cert := func(name string) string {
		return fmt.Sprintf(" --cert %s --key %s", filepath.Join(d, "clients", name+".pem"), filepath.Join(d, "clients", name+"-key.pem"))
	}
	fmt.Fprintf(stdout, `certgate demo is running (Ctrl-C stops it). PKI and config: %s
  proxy    https://localhost:%s  (config %s)
  admin    http://%s  (/metrics /healthz /readyz /status)
  CRLs     %s/root.crl %s/intermediate.crl
  backend  %s (echoes what it receives and verifies the signed assertion)
  JWKS     %s (the assertion's public keys)

Try:
  # accepted: the backend sees X-Remote-User: alice@contoso.com and verifies X-Certgate-Assertion
  %s
  # refused (495 revoked): bob's certificate is on the intermediate's CRL
  %s
  # refused (496 no_certificate): no client certificate
  %s
  # refused (403 identity_unmapped): mallory's certificate is valid but maps to no user
  %s
  # accepted, and the spoofed headers are removed before the backend sees them
  %s
`, d, port, cfgPath, inst.adminAddr(), crlBase, crlBase, backendLn.Addr(), jwksURL,
		base+cert("alice"),
		base+cert("bob"),
		base,
		base+cert("mallory"),
		base+cert("alice")+" -H 'X-Remote-User: admin@contoso.com' -H 'X_Remote_User: admin@contoso.com' -H 'X-Certgate-Assertion: forged'",
	)
	<-ctx.Done()
	fmt.Fprintln(stdout, "certgate demo: stopping")
	return nil
}

func demoConfig(listen, admin, crlBase, backend string) string {
	return fmt.Sprintf(`# Written by certgate demo at every start; edit a copy, not this file.
listen: %q
admin:
  listen: %q
serverTLS:
  certFile: tls/server.pem
  keyFile: tls/server-key.pem
clientAuth:
  # The default: refused clients get 495/496/403 with the reason code and
  # a hint, so curl and a browser show why; "handshake" refuses them with a
  # TLS alert instead.
  rejectWith: http
trustedCertificateAuthorities:
  - authorityType: root
    trustedCertificate: ca/root.pem
    crlDistributionPoint: %s/root.crl
  - authorityType: intermediate
    trustedCertificate: ca/intermediate.pem
    crlDistributionPoint: %s/intermediate.crl
revocation:
  onUnavailable: deny
  cacheDir: crl-cache
identity:
  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: proxyAddresses}
  directory:
    file: users.yaml
  header: X-Remote-User
routes:
  - name: web
    kind: web
    pathPrefix: /
    backend: %s
    # A signed identity assertion (a JWT in X-Certgate-Assertion) with
    # every request: the echo backend verifies it against the JWKS at
    # http://<admin>/.well-known/jwks.json.
    assertion:
      keys: [keys/assertion.pem]
      issuer: certgate-demo
`, listen, admin, crlBase, crlBase, backend)
}

const demoUsers = `# The demo's directory: bindings look users up here.
users:
  - userPrincipalName: alice@contoso.com
    proxyAddresses: ["SMTP:alice@contoso.com", "smtp:a.smith@contoso.com"]
    accountEnabled: true
  - userPrincipalName: bob@contoso.com
    proxyAddresses: ["SMTP:bob@contoso.com"]
    accountEnabled: true
`

// demoEcho is the demo's backend: it echoes the request's headers and
// verifies its assertion with examples/verify-assertion.
type demoEcho struct {
	v atomic.Pointer[verifyassertion.Verifier] // nil until certgate's admin listener is up
}

func (e *demoEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	echoBackend(w, r)
	v := e.v.Load()
	if v == nil {
		fmt.Fprintln(w, "\nthe assertion was not checked: no admin listener serves the JWKS")
		return
	}
	c, err := v.Verify(r)
	if err != nil {
		fmt.Fprintf(w, "\nthe assertion was REFUSED: %v\n", err)
		return
	}
	fmt.Fprintln(w, "\nthe assertion verified against certgate's JWKS; its claims:")
	b, _ := json.MarshalIndent(c, "  ", "  ")
	fmt.Fprintf(w, "  %s\n", b)
}

func echoBackend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello %s\n\nthe backend received %s %s with these headers:\n", r.Header.Get("X-Remote-User"), r.Method, r.URL.RequestURI())
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
}

func loadOrMakeDemoPKI(dir string) (*demoPKI, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	p := &demoPKI{dir: dir}
	rootPath := filepath.Join(dir, "ca", "root.pem")
	if _, err := os.Stat(rootPath); err == nil {
		var err error
		if p.root, err = loadCA(filepath.Join(dir, "ca", "root"), nil); err != nil {
			return nil, err
		}
		if p.inter, err = loadCA(filepath.Join(dir, "ca", "intermediate"), p.root); err != nil {
			return nil, err
		}
		return p, nil
	}
	var err error
	if p.root, err = pkigen.NewRoot("certgate demo root CA"); err != nil {
		return nil, err
	}
	if p.inter, err = p.root.NewIntermediate("certgate demo intermediate CA"); err != nil {
		return nil, err
	}
	server, err := p.inter.NewServer([]string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		return nil, err
	}
	leaves := map[string][]pkigen.Option{
		"alice":   {pkigen.UPN("alice@contoso.com"), pkigen.Email("alice@contoso.com")},
		"bob":     {pkigen.UPN("bob@contoso.com"), pkigen.Email("bob@contoso.com"), pkigen.Serial(big.NewInt(0xb0b))},
		"mallory": {pkigen.UPN("mallory@fabrikam.com")},
	}
	for name, opts := range leaves {
		l, err := p.inter.NewLeaf(name, opts...)
		if err != nil {
			return nil, err
		}
		if err := pkigen.WriteLeaf(filepath.Join(dir, "clients", name+".pem"), filepath.Join(dir, "clients", name+"-key.pem"), l, true); err != nil {
			return nil, err
		}
	}
	if err := pkigen.WriteLeaf(filepath.Join(dir, "tls", "server.pem"), filepath.Join(dir, "tls", "server-key.pem"), server, true); err != nil {
		return nil, err
	}
	for name, ca := range map[string]*pkigen.CA{"root": p.root, "intermediate": p.inter} {
		if err := pkigen.WriteCert(filepath.Join(dir, "ca", name+".pem"), ca.Cert); err != nil {
			return nil, err
		}
		if err := pkigen.WriteKey(filepath.Join(dir, "ca", name+"-key.pem"), ca.Key); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(demoUsers), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

func loadCA(base string, parent *pkigen.CA) (*pkigen.CA, error) {
	certPEM, err := os.ReadFile(base + ".pem")
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(base + "-key.pem")
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New(base + ": not PEM")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New(base + ": key cannot sign")
	}
	ca := &pkigen.CA{Cert: c, Key: signer, Chain: []*x509.Certificate{c}}
	if parent != nil {
		ca.Chain = append(ca.Chain, parent.Chain...)
	}
	return ca, nil
}

// ensureDemoAssertionKey makes the demo's assertion signing key (Ed25519)
// once; a demo folder from an older certgate gets one at its next start.
func ensureDemoAssertionKey(dir string) error {
	path := filepath.Join(dir, "keys", "assertion.pem")
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	return pkigen.WriteKey(path, k)
}

// crls signs both CRLs for now; bob (serial 0xb0b) is revoked.
func (p *demoPKI) crls() (map[string][]byte, error) {
	now := time.Now()
	number := now.Unix() // grows across runs, as a CRL number must
	rootCRL, err := p.root.CRL(pkigen.CRLOptions{Number: number, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)})
	if err != nil {
		return nil, err
	}
	interCRL, err := p.inter.CRL(pkigen.CRLOptions{Number: number, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		Revoked: pkigen.Revoke(now.Add(-time.Hour), big.NewInt(0xb0b))})
	if err != nil {
		return nil, err
	}
	return map[string][]byte{"/root.crl": rootCRL, "/intermediate.crl": interCRL}, nil
}

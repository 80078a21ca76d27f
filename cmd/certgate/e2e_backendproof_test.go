package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	verifyassertion "github.com/certgate/certgate/examples/verify-assertion"
	"github.com/certgate/certgate/internal/pkigen"
	"github.com/certgate/certgate/proxy/assertion"
)

// The tests of this file show SPEC's "proof that the request came through
// certgate": a backend that trusts only certgate's client certificate, or
// only its signed assertion, admits requests through certgate and refuses
// the same request sent to it directly with a forged identity header.

// writeAtomic replaces path in one rename, so the reload poller never reads
// a half-written file.
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	tmp := path + ".tmp"
	must(t, os.WriteFile(tmp, data, 0o600))
	must(t, os.Rename(tmp, path))
}

func leafFiles(t *testing.T, l *pkigen.Leaf) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := pkigen.KeyPEM(l.Key)
	must(t, err)
	return pkigen.CertPEM(l.Cert), k
}

// nginxBackend is a real nginx on 127.0.0.1 with ssl_verify_client on: it
// admits only clients whose certificate chains to clientCA.
type nginxBackend struct {
	url  string
	root *pkigen.CA // signs nginx's server certificate
	dir  string
}

func startNginx(t *testing.T, clientCA *x509.Certificate) *nginxBackend {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err == nil {
			bin = "/usr/sbin/nginx"
		} else if os.Getenv("CI") != "" {
			t.Fatal("nginx is required in CI (.ci/run installs nginx-light)")
		} else {
			t.Skip("nginx not installed")
		}
	}
	dir := t.TempDir()
	n := &nginxBackend{root: pkigen.Root(t, "Backend Server CA"), dir: dir}
	srv := n.root.Server(t, []string{"localhost", "127.0.0.1"})
	must(t, pkigen.WriteLeaf(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), srv, false))
	must(t, pkigen.WriteCert(filepath.Join(dir, "client-ca.pem"), clientCA))
	must(t, pkigen.WriteCert(filepath.Join(dir, "server-ca.pem"), n.root.Cert))
	// nginx takes a port number; one picked by the kernel and released is
	// free unless another process grabs it in between, which the start
	// check below reports.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s ssl;
    ssl_certificate %[1]s/server.pem;
    ssl_certificate_key %[1]s/server-key.pem;
    ssl_client_certificate %[1]s/client-ca.pem;
    ssl_verify_client on;
    location / {
      default_type text/plain;
      return 200 "backend admitted client=$ssl_client_s_dn verify=$ssl_client_verify user=$http_x_remote_user\n";
    }
  }
}
`, dir, addr)
	must(t, os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644))
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", filepath.Join(dir, "nginx.conf"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	opsWaitFor(t, "nginx to listen on "+addr, func() bool {
		select {
		case <-exited:
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), logs)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	n.url = "https://" + addr
	return n
}

// curlDirect sends a request straight to a backend, as an attacker who
// can reach it would.
func curlDirect(t *testing.T, url, cacert string, extra ...string) curlResult {
	t.Helper()
	args := append([]string{"-sS", "--max-time", "20", "--cacert", cacert, "-o", "-", "-w", "\n%{http_code}"}, extra...)
	cmd := exec.Command("curl", append(args, url)...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	res := curlResult{stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	}
	s := o.String()
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		fmt.Sscanf(s[i+1:], "%d", &res.code)
		res.body = s[:i]
	}
	return res
}

func TestBackendClientCertAgainstNginx(t *testing.T) {
	requireCurl(t)
	ownCA := pkigen.Root(t, "certgate Client CA")
	good := ownCA.Leaf(t, "certgate proxy")
	otherCA := pkigen.Root(t, "Somebody Else's CA")
	wrong := otherCA.Leaf(t, "certgate proxy")
	ng := startNginx(t, ownCA.Cert)

	o := newOpsEnv(t, envConfig{
		routes: fmt.Sprintf(`  - name: owa
    backend: %s
    backendCA: backend/server-ca.pem
    backendClientCert: tls/certgate-client.pem
    backendClientKey: tls/certgate-client-key.pem
`, ng.url),
		beforeStart: func(e *env) {
			c, k := leafFiles(t, good)
			writeAtomic(t, filepath.Join(e.dir, "tls", "certgate-client.pem"), c)
			writeAtomic(t, filepath.Join(e.dir, "tls", "certgate-client-key.pem"), k)
			must(t, pkigen.WriteCert(filepath.Join(e.dir, "backend", "server-ca.pem"), ng.root.Cert))
		},
	})
	alice := o.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	ac, ak := o.writeLeaf("alice", alice)
	forged := []string{"-H", "X-Remote-User: alice@contoso.com"}

	// Through certgate: nginx verified certgate's certificate.
	r := o.curl(ac, ak, forged...)
	if r.code != 200 || !strings.Contains(r.body, "verify=SUCCESS") || !strings.Contains(r.body, "CN=certgate proxy") || !strings.Contains(r.body, "user=alice@contoso.com") {
		t.Fatalf("through certgate: %d %q %s", r.code, r.body, r.stderr)
	}
	// Straight to nginx with the forged header: refused, with no
	// certificate and with a certificate of another CA.
	ca := filepath.Join(ng.dir, "server-ca.pem")
	if r := curlDirect(t, ng.url+"/", ca, forged...); r.code != 400 || strings.Contains(r.body, "backend admitted") || !strings.Contains(r.body, "No required SSL certificate was sent") {
		t.Fatalf("direct without a certificate: %d %q", r.code, r.body)
	}
	wc, wk := o.writeLeaf("wrong", wrong)
	if r := curlDirect(t, ng.url+"/", ca, append(forged, "--cert", wc, "--key", wk)...); r.code != 400 || strings.Contains(r.body, "backend admitted") {
		t.Fatalf("direct with another CA's certificate: %d %q", r.code, r.body)
	}

	// The pair is reloaded when its files change: certgate now presents
	// the wrong certificate, and nginx refuses certgate too.
	okBefore := o.reloads(t, "ok")
	c, k := leafFiles(t, wrong)
	writeAtomic(t, filepath.Join(o.dir, "tls", "certgate-client-key.pem"), k)
	writeAtomic(t, filepath.Join(o.dir, "tls", "certgate-client.pem"), c)
	opsWaitFor(t, "the reload of the new pair", func() bool {
		return o.reloads(t, "ok") > okBefore && !strings.Contains(o.curl(ac, ak).body, "backend admitted")
	})
	if r := o.curl(ac, ak); r.code != 400 || !strings.Contains(r.body, "The SSL certificate error") {
		t.Fatalf("with the wrong pair: %d %q", r.code, r.body)
	}

	// A key that does not match the certificate is refused and the pair in
	// service stays; the error names both files.
	errBefore := o.reloads(t, "error")
	c, _ = leafFiles(t, good)
	writeAtomic(t, filepath.Join(o.dir, "tls", "certgate-client.pem"), c)
	opsWaitFor(t, "a failed reload", func() bool { return o.reloads(t, "error") > errBefore })
	o.expectReloadError(t, "routes[0].backendClientCert", "certgate-client.pem and ", "certgate-client-key.pem", "private key does not match public key")
	if r := o.curl(ac, ak); r.code != 400 {
		t.Fatalf("after a broken pair the previous (wrong) pair must still serve: %d %q", r.code, r.body)
	}
	// The right key completes the good pair: admitted again.
	_, k = leafFiles(t, good)
	writeAtomic(t, filepath.Join(o.dir, "tls", "certgate-client-key.pem"), k)
	opsWaitFor(t, "the good pair in service", func() bool { return strings.Contains(o.curl(ac, ak).body, "verify=SUCCESS") })
}

func TestBackendClientCertRefusedPairs(t *testing.T) {
	ca := pkigen.Root(t, "certgate Client CA")
	now := time.Now()
	expired := ca.Leaf(t, "certgate old", pkigen.Validity(now.Add(-48*time.Hour), now.Add(-time.Hour)))
	good := ca.Leaf(t, "certgate proxy")
	serverOnly := ca.Leaf(t, "certgate server", pkigen.EKU(x509.ExtKeyUsageServerAuth))
	other := ca.Leaf(t, "other")
	for _, tc := range []struct {
		name      string
		cert, key *pkigen.Leaf
		want      []string
	}{
		{"expired", expired, expired, []string{"routes[0].backendClientCert", "client.pem (CN=certgate old) expired at", "key ", "client-key.pem"}},
		{"mismatched", good, other, []string{"routes[0].backendClientCert", "client.pem and ", "client-key.pem: private key does not match public key"}},
		{"server-only usage", serverOnly, serverOnly, []string{"client.pem (CN=certgate server) does not allow client authentication"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, _ := leafFiles(t, tc.cert)
			_, k := leafFiles(t, tc.key)
			writeAtomic(t, filepath.Join(dir, "client.pem"), c)
			writeAtomic(t, filepath.Join(dir, "client-key.pem"), k)
			must(t, pkigen.WriteCert(filepath.Join(dir, "root.pem"), ca.Cert))
			writeAtomic(t, filepath.Join(dir, "certgate.yaml"), []byte(`serverTLS: {certFile: root.pem, keyFile: client-key.pem}
trustedCertificateAuthorities:
  - {authorityType: root, trustedCertificate: root.pem, crlExempt: true}
routes:
  - name: owa
    backend: https://127.0.0.1:8443
    backendClientCert: client.pem
    backendClientKey: client-key.pem
`))
			code, out, errb := runCLI(t, "validate", "--config", filepath.Join(dir, "certgate.yaml"))
			if code != 2 {
				t.Fatalf("validate exit %d, want 2; stdout %q stderr %q", code, out, errb)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb, w) {
					t.Errorf("validate's error %q lacks %q", errb, w)
				}
			}
		})
	}
}

// assertedBackend is an https backend that trusts nothing but certgate's
// signed assertion, checked by examples/verify-assertion against the JWKS
// on certgate's admin listener.
type assertedBackend struct {
	srv     *httptest.Server
	v       atomic.Pointer[verifyassertion.Verifier]
	fetches atomic.Int32
	mu      sync.Mutex
	kids    []string
}

func newAssertedBackend(t *testing.T) *assertedBackend {
	b := &assertedBackend{}
	b.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := b.v.Load()
		if v == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := verifyassertion.FromContext(r.Context())
			b.mu.Lock()
			b.kids = append(b.kids, kidOf(r.Header.Get("X-Certgate-Assertion")))
			b.mu.Unlock()
			fmt.Fprintf(w, "verified sub=%s aud=%v binding=%s cnf=%s\n", c.Subject, c.Audience, c.Binding.CertificateField, c.Confirmation.X5tS256)
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// trust points the backend at certgate's JWKS.
func (b *assertedBackend) trust(t *testing.T, jwksURL string, maxAge time.Duration) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: countingTransport{&b.fetches}}
	v, err := verifyassertion.New(verifyassertion.Options{JWKSURL: jwksURL, Audience: b.srv.URL, RequireClientCert: true, MaxAge: maxAge, Client: client})
	must(t, err)
	b.v.Store(v)
}

func (b *assertedBackend) lastKid() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.kids) == 0 {
		return ""
	}
	return b.kids[len(b.kids)-1]
}

type countingTransport struct{ n *atomic.Int32 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func kidOf(tok string) string {
	h, _, _ := strings.Cut(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(b, &hdr)
	return hdr.Kid
}

func writeAssertionKey(t *testing.T, path, alg string) *assertion.Key {
	t.Helper()
	var pemBytes []byte
	var err error
	if alg == "EdDSA" {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		pemBytes, err = pkigen.KeyPEM(k)
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pemBytes, err = pkigen.KeyPEM(k)
	}
	must(t, err)
	writeAtomic(t, path, pemBytes)
	k, err := assertion.LoadKey(path)
	must(t, err)
	return k
}

func assertionRoute(backend string, keys ...string) string {
	return fmt.Sprintf(`  - name: app
    backend: %s
    backendCA: backend-ca.pem
    assertion:
      keys: [%s]
      issuer: certgate-e2e
`, backend, strings.Join(keys, ", "))
}

func TestAssertionAdmitsThroughCertgateOnly(t *testing.T) {
	requireCurl(t)
	be := newAssertedBackend(t)
	var k *assertion.Key
	o := newOpsEnv(t, envConfig{
		identity:  "  directory: {file: users.yaml}\n  forwardClientCert: rfc9440\n",
		routes:    assertionRoute(be.srv.URL, "keys/a.pem"),
		extraYAML: "jwks:\n  proxyPath: /.well-known/certgate-jwks.json\n",
		beforeStart: func(e *env) {
			k = writeAssertionKey(t, filepath.Join(e.dir, "keys", "a.pem"), "ES256")
			must(t, pkigen.WriteCert(filepath.Join(e.dir, "backend-ca.pem"), be.srv.Certificate()))
		},
	})
	be.trust(t, o.adminURL("/.well-known/jwks.json"), time.Minute)
	alice := o.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	ac, ak := o.writeLeaf("alice", alice)
	forgedHeaders := []string{"-H", "X-Remote-User: alice@contoso.com", "-H", "X_Certgate_Assertion: forged"}

	// Through certgate, forged copies and all: certgate's assertion, bound
	// to alice's certificate.
	r := o.curl(ac, ak, forgedHeaders...)
	want := fmt.Sprintf("verified sub=alice@contoso.com aud=%s binding=PrincipalName cnf=%s", be.srv.URL, assertion.Thumbprint(alice.Cert.Raw))
	if r.code != 200 || !strings.Contains(r.body, want) {
		t.Fatalf("through certgate: %d %q, want %q", r.code, r.body, want)
	}
	if kid := be.lastKid(); kid != k.ID {
		t.Fatalf("signed by %q, want %q", kid, k.ID)
	}

	// Straight to the backend: a forged header, a forged assertion, and an
	// assertion signed by another key with certgate's kid are all refused.
	caPath := filepath.Join(o.dir, "backend-ca.pem")
	attacker := writeAssertionKey(t, filepath.Join(t.TempDir(), "attacker.pem"), "ES256")
	sg, err := assertion.NewSigner(assertion.Options{Keys: []*assertion.Key{attacker}, Issuer: "certgate-e2e", Audience: be.srv.URL})
	must(t, err)
	forgedTok, _, err := sg.Sign(assertion.Subject{User: "alice@contoso.com", Leaf: alice.Cert.Raw}, time.Now())
	must(t, err)
	// The attacker's assertion, relabelled with certgate's kid.
	parts := strings.SplitN(forgedTok, ".", 2)
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"` + k.ID + `","typ":"JWT"}`))
	relabelled := hdr + "." + parts[1]
	clientCert := "Client-Cert: :" + base64.StdEncoding.EncodeToString(alice.Cert.Raw) + ":"
	for name, extra := range map[string][]string{
		"header only":       {"-H", "X-Remote-User: alice@contoso.com", "-H", clientCert},
		"attacker's key":    {"-H", "X-Certgate-Assertion: " + forgedTok, "-H", clientCert},
		"certgate's kid":    {"-H", "X-Certgate-Assertion: " + relabelled, "-H", clientCert},
		"garbage assertion": {"-H", "X-Certgate-Assertion: forged", "-H", clientCert},
	} {
		if r := curlDirect(t, be.srv.URL+"/", caPath, extra...); r.code != 401 || strings.Contains(r.body, "verified") {
			t.Errorf("direct, %s: %d %q", name, r.code, r.body)
		}
	}
	// A genuine assertion copied from a request does not pass with another
	// client's certificate.
	mallory := o.inter.Leaf(t, "mallory", pkigen.UPN("mallory@contoso.com"))
	genuine, _, err := (func() (string, time.Time, error) {
		s := o.inst.srv.Policy().Routes[0].Assertion
		return s.Sign(assertion.Subject{User: "alice@contoso.com", Leaf: alice.Cert.Raw}, time.Now())
	})()
	must(t, err)
	if r := curlDirect(t, be.srv.URL+"/", caPath, "-H", "X-Certgate-Assertion: "+genuine, "-H", "Client-Cert: :"+base64.StdEncoding.EncodeToString(mallory.Cert.Raw)+":"); r.code != 401 || !strings.Contains(r.body, "cnf") {
		t.Errorf("genuine assertion with another certificate: %d %q", r.code, r.body)
	}

	// The JWKS is on the admin listener and, with jwks.proxyPath, on the
	// client listener (the request does not reach the backend).
	if ids := jwksKids(t, o.adminURL("/.well-known/jwks.json")); len(ids) != 1 || ids[0] != k.ID {
		t.Errorf("admin JWKS kids %v, want [%s]", ids, k.ID)
	}
	if r := o.curl(ac, ak, o.url("/.well-known/certgate-jwks.json")); r.code != 200 || !strings.Contains(r.body, `"kid":"`+k.ID+`"`) || strings.Contains(r.body, `"d":`) {
		t.Errorf("proxy JWKS: %d %q", r.code, r.body)
	}
	// The JWKS, the metrics and the status page show the key.
	mfs := opsScrape(t, o.adminURL("/metrics"))
	if v := opsMetric(t, mfs, "certgate_assertions_signed_total", map[string]string{"route": "app"}); v < 1 {
		t.Errorf("certgate_assertions_signed_total{route=app} = %v", v)
	}
	if v := opsMetric(t, mfs, "certgate_assertion_keys", map[string]string{"kid": k.ID, "role": "signing", "alg": "ES256"}); v != 1 {
		t.Errorf("certgate_assertion_keys{kid=%s,role=signing} = %v", k.ID, v)
	}
	if v := opsMetric(t, mfs, "certgate_assertion_signing_errors_total", map[string]string{"route": "app"}); v != 0 {
		t.Errorf("signing errors = %v", v)
	}
	page := httpGet(t, o.adminURL("/status"))
	if !strings.Contains(page, `data-kid="`+k.ID+`"`) || !strings.Contains(page, "signing") {
		t.Errorf("status page lacks the signing key %s", k.ID)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	return string(b)
}

func jwksKids(t *testing.T, url string) []string {
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	must(t, json.Unmarshal([]byte(httpGet(t, url)), &doc))
	var ids []string
	for _, k := range doc.Keys {
		ids = append(ids, k.Kid)
	}
	return ids
}

// TestAssertionKeyRotation rotates the signing key the documented way while
// a client sends requests without pause: publish the new key, let backends
// pick it up, make it sign, drop the old one. The backend verifies every
// request; then a key file broken in place keeps the key in memory signing.
func TestAssertionKeyRotation(t *testing.T) {
	be := newAssertedBackend(t)
	var k1, k2 *assertion.Key
	var dir string
	o := newOpsEnv(t, envConfig{
		identity: "  directory: {file: users.yaml}\n  forwardClientCert: rfc9440\n",
		routes:   assertionRoute(be.srv.URL, "keys/k1.pem"),
		beforeStart: func(e *env) {
			dir = e.dir
			k1 = writeAssertionKey(t, filepath.Join(e.dir, "keys", "k1.pem"), "ES256")
			k2 = writeAssertionKey(t, filepath.Join(e.dir, "keys", "k2.pem"), "EdDSA")
			must(t, pkigen.WriteCert(filepath.Join(e.dir, "backend-ca.pem"), be.srv.Certificate()))
		},
	})
	jwks := o.adminURL("/.well-known/jwks.json")
	// Backends refresh the JWKS every 200ms here (MaxAge), as they would
	// every few minutes in production.
	be.trust(t, jwks, 200*time.Millisecond)
	alice := o.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	pool := x509.NewCertPool()
	pool.AddCert(o.root.Cert)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "localhost",
		Certificates: []tls.Certificate{{Certificate: [][]byte{alice.Cert.Raw, o.inter.Cert.Raw}, PrivateKey: alice.Key}},
	}}}
	url := o.url("/")

	var sent, failed atomic.Int32
	var firstFailure atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Paced (a few hundred a second at most, the machine is shared)
		// and bounded even if stop never comes.
		pace := time.NewTicker(3 * time.Millisecond)
		defer pace.Stop()
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			resp, err := client.Get(url)
			sent.Add(1)
			if err != nil {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, body))
			}
		}
	}()
	defer func() { close(stop); <-done }()
	waitKid := func(kid string) {
		opsWaitFor(t, "requests signed by "+kid, func() bool { return be.lastKid() == kid })
	}
	reconfig := func(keys ...string) {
		okBefore := o.reloads(t, "ok")
		o.writeConfig(envConfig{identity: "  directory: {file: users.yaml}\n  forwardClientCert: rfc9440\n", routes: assertionRoute(be.srv.URL, keys...)})
		opsWaitFor(t, "the reload", func() bool { return o.reloads(t, "ok") > okBefore })
	}
	waitKid(k1.ID)

	// 1. Publish k2; k1 still signs.
	reconfig("keys/k1.pem", "keys/k2.pem")
	if ids := jwksKids(t, jwks); len(ids) != 2 || ids[0] != k1.ID || ids[1] != k2.ID {
		t.Fatalf("JWKS after publishing k2: %v", ids)
	}
	f := be.fetches.Load()
	opsWaitFor(t, "the backend to fetch the JWKS with k2", func() bool { return be.fetches.Load() > f })
	// 2. k2 signs; k1 stays published for assertions already issued.
	reconfig("keys/k2.pem", "keys/k1.pem")
	waitKid(k2.ID)
	// 3. Retire k1.
	reconfig("keys/k2.pem")
	if ids := jwksKids(t, jwks); len(ids) != 1 || ids[0] != k2.ID {
		t.Fatalf("JWKS after retiring k1: %v", ids)
	}
	// 4. A key file broken in place: the reload fails naming the file, and
	// k2, already in memory, keeps signing.
	writeAtomic(t, filepath.Join(dir, "keys", "k2.pem"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	o.expectReloadError(t, "routes[0].assertion.keys[0]", filepath.Join(dir, "keys", "k2.pem"), "cannot parse the PRIVATE KEY block")
	n := sent.Load()
	opsWaitFor(t, "more requests after the failed reload", func() bool { return sent.Load() > n+5 })
	if kid := be.lastKid(); kid != k2.ID {
		t.Fatalf("after the broken key file, requests are signed by %q, want %q", kid, k2.ID)
	}
	close(stop)
	<-done
	stop = make(chan struct{})
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	t.Logf("%d requests, all verified by the backend, across the rotation", sent.Load())
}

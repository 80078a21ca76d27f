package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// env is one running certgate with its PKI, its backend and its files, all
// in a test's temporary folder.
type env struct {
	t       *testing.T
	dir     string
	root    *pkigen.CA
	inter   *pkigen.CA
	inst    *instance
	backend *recorder
	logs    *syncBuffer
}

// recorder is a backend that remembers every request it received.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	srv  *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(context.Background()))
		r.mu.Unlock()
		fmt.Fprintf(w, "hello %s\n", req.Header.Get("X-Remote-User"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// envConfig adjusts the generated config.
type envConfig struct {
	rejectWith string // "" = handshake
	extraYAML  string // appended at top level
	identity   string // replaces the identity section
	caYAML     string // replaces the CA list
	routes     string // replaces the routes section
	users      string // users.yaml content

	// now is instanceOptions.now; nil = time.Now.
	now func() time.Time
	// readyzGrace is instanceOptions.readyzGrace; nil = sleep.
	readyzGrace func(time.Duration)
	// beforeStart runs once the PKI and files exist and before certgate
	// starts (to publish CRLs signed by e.root and e.inter, say).
	beforeStart func(e *env)

	// serverTLS replaces the body of the serverTLS section (indented two
	// spaces); challengeMaxVersion is instanceOptions.challengeMaxVersion.
	serverTLS           string
	challengeMaxVersion uint16
}

const defaultUsers = `users:
  - userPrincipalName: alice@contoso.com
    proxyAddresses: ["SMTP:alice@contoso.com", "smtp:a.smith@contoso.com"]
    accountEnabled: true
  - userPrincipalName: dave@contoso.com
    proxyAddresses: ["SMTP:dave@contoso.com"]
    accountEnabled: false
`

func newEnv(t *testing.T, ec envConfig) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	e.root = pkigen.Root(t, "Test Root CA")
	e.inter = e.root.Intermediate(t, "Test Intermediate CA")
	server := e.inter.Server(t, []string{"localhost", "127.0.0.1"})
	must(t, pkigen.WriteCert(filepath.Join(e.dir, "ca", "root.pem"), e.root.Cert))
	must(t, pkigen.WriteCert(filepath.Join(e.dir, "ca", "inter.pem"), e.inter.Cert))
	must(t, pkigen.WriteLeaf(filepath.Join(e.dir, "tls", "server.pem"), filepath.Join(e.dir, "tls", "server-key.pem"), server, true))
	if ec.users == "" {
		ec.users = defaultUsers
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "users.yaml"), []byte(ec.users), 0o644))
	e.backend = newRecorder(t)
	e.writeConfig(ec)
	if ec.beforeStart != nil {
		ec.beforeStart(e)
	}
	inst, err := startFromConfig(context.Background(), filepath.Join(e.dir, "certgate.yaml"), e.logs, instanceOptions{now: ec.now, challengeMaxVersion: ec.challengeMaxVersion, readyzGrace: ec.readyzGrace})
	if err != nil {
		t.Fatalf("start: %v\nlogs:\n%s", err, e.logs)
	}
	e.inst = inst
	t.Cleanup(inst.close)
	return e
}

func (e *env) writeConfig(ec envConfig) {
	cas := ec.caYAML
	if cas == "" {
		cas = `  - authorityType: root
    trustedCertificate: ca/root.pem
    crlExempt: true
  - authorityType: intermediate
    trustedCertificate: ca/inter.pem
    crlExempt: true
`
	}
	identity := ec.identity
	if identity == "" {
		identity = `  bindings:
    - {certificateField: PrincipalName, userAttribute: userPrincipalName}
    - {certificateField: RFC822Name, userAttribute: proxyAddresses}
  directory:
    file: users.yaml
`
	}
	routes := ec.routes
	if routes == "" {
		routes = fmt.Sprintf(`  - name: web
    kind: web
    pathPrefix: /
    backend: %s
`, e.backend.srv.URL)
	}
	reject := ec.rejectWith
	if reject == "" {
		reject = "handshake"
	}
	serverTLS := ec.serverTLS
	if serverTLS == "" {
		serverTLS = "  certFile: tls/server.pem\n  keyFile: tls/server-key.pem\n"
	}
	cfg := fmt.Sprintf(`# test config
listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
serverTLS:
%sclientAuth:
  rejectWith: %s
trustedCertificateAuthorities:
%sidentity:
%sroutes:
%slogging:
  format: json
  level: debug
reload:
  pollInterval: 100ms
%s`, serverTLS, reject, cas, identity, routes, ec.extraYAML)
	must(e.t, os.WriteFile(filepath.Join(e.dir, "certgate.yaml"), []byte(cfg), 0o644))
}

// writeLeaf stores a client certificate and key for curl.
func (e *env) writeLeaf(name string, l *pkigen.Leaf) (certPath, keyPath string) {
	certPath = filepath.Join(e.dir, "clients", name+".pem")
	keyPath = filepath.Join(e.dir, "clients", name+"-key.pem")
	must(e.t, pkigen.WriteLeaf(certPath, keyPath, l, true))
	return certPath, keyPath
}

func (e *env) url(path string) string {
	addr := e.inst.proxyAddr()
	return "https://localhost:" + addr[strings.LastIndex(addr, ":")+1:] + path
}

type curlResult struct {
	code   int // HTTP status, 0 when the request failed
	body   string
	stderr string
	exit   int
}

// curl runs the real curl against the proxy, as a user would.
func (e *env) curl(certPath, keyPath string, extra ...string) curlResult {
	e.t.Helper()
	args := []string{"-sS", "--max-time", "20", "--cacert", filepath.Join(e.dir, "ca", "root.pem"),
		"-o", "-", "-w", "\n%{http_code}"}
	if certPath != "" {
		args = append(args, "--cert", certPath, "--key", keyPath)
	}
	args = append(args, extra...)
	if !hasURL(extra) {
		args = append(args, e.url("/"))
	}
	cmd := exec.Command("curl", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := curlResult{stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.exit = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("curl: %v", err)
	}
	s := out.String()
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		fmt.Sscanf(s[i+1:], "%d", &res.code)
		res.body = s[:i]
	}
	return res
}

func hasURL(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "https://") {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func requireCurl(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
}

var _ = x509.Certificate{}

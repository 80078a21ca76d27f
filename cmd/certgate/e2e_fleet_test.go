package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
)

// fleet is several certgate replicas started from one config file: one
// PKI, one backend, one optional session-ticket key file, distinct ports,
// as behind an L4 balancer.
type fleet struct {
	*env
	insts   []*instance
	logs    []*syncBuffer // per replica; logs[0] is env.logs
	keyFile string
	client  tls.Certificate
}

func newFleet(t *testing.T, n int, sharedKeys bool) *fleet {
	t.Helper()
	f := &fleet{}
	var ec envConfig
	if sharedKeys {
		f.keyFile = filepath.Join(t.TempDir(), "secret", "tickets.keys")
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"tickets", "new", "--file", f.keyFile}, &out, &errb); err != nil {
			t.Fatalf("tickets new: %v (%s)", err, errb.String())
		}
		ec.serverTLS = "  certFile: tls/server.pem\n  keyFile: tls/server-key.pem\n  sessionTicketKeyFile: " + f.keyFile + "\n"
	}
	f.env = newEnv(t, ec)
	f.insts, f.logs = []*instance{f.inst}, []*syncBuffer{f.env.logs}
	for i := 1; i < n; i++ {
		logs := &syncBuffer{}
		inst, err := startFromConfig(context.Background(), filepath.Join(f.dir, "certgate.yaml"), logs, instanceOptions{})
		if err != nil {
			t.Fatalf("start replica %d: %v\n%s", i, err, logs)
		}
		t.Cleanup(inst.close)
		f.insts, f.logs = append(f.insts, inst), append(f.logs, logs)
	}
	alice := f.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))
	f.client = tls.Certificate{Certificate: [][]byte{alice.Cert.Raw, f.inter.Cert.Raw}, PrivateKey: alice.Key, Leaf: alice.Cert}
	return f
}

// tlsClient is one device: its session cache is what it resumes from.
func (f *fleet) tlsClient(version uint16) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(f.root.Cert)
	return &tls.Config{
		RootCAs:      roots,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{f.client},
		MinVersion:   version,
		MaxVersion:   version,
		// One cache entry per server name: replicas share it, as they
		// share a name behind a balancer.
		ClientSessionCache: tls.NewLRUClientSessionCache(4),
	}
}

type fleetResult struct {
	code    int
	body    string
	resumed bool
	version uint16
}

// get makes one request on a new connection to replica i.
func (f *fleet) get(t *testing.T, i int, c *tls.Config) fleetResult {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: c, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	addr := f.insts[i].proxyAddr()
	resp, err := hc.Get("https://localhost:" + addr[strings.LastIndex(addr, ":")+1:] + "/")
	if err != nil {
		t.Fatalf("replica %d: %v", i, err)
	}
	defer resp.Body.Close()
	// Reading the body also reads the TLS 1.3 NewSessionTicket messages
	// that precede it, which fills the session cache.
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("replica %d: body: %v", i, err)
	}
	return fleetResult{code: resp.StatusCode, body: string(body), resumed: resp.TLS.DidResume, version: resp.TLS.Version}
}

func (f *fleet) mustGet(t *testing.T, i int, c *tls.Config, wantResumed bool) {
	t.Helper()
	r := f.get(t, i, c)
	if r.code != 200 || !strings.Contains(r.body, "hello alice@contoso.com") {
		t.Fatalf("replica %d: got %d %q, want 200 hello alice", i, r.code, r.body)
	}
	if r.version != c.MaxVersion {
		t.Fatalf("replica %d: negotiated %s, want %s", i, tls.VersionName(r.version), tls.VersionName(c.MaxVersion))
	}
	if r.resumed != wantResumed {
		t.Fatalf("replica %d: DidResume = %v, want %v", i, r.resumed, wantResumed)
	}
}

// writeKeys replaces the key file as an operator (or a Secret update) would.
func (f *fleet) writeKeys(t *testing.T, data []byte) {
	t.Helper()
	must(t, writeSecretFile(f.keyFile, data))
}

func (f *fleet) readKeys(t *testing.T) [][32]byte {
	t.Helper()
	keys, err := loadTicketKeys(f.keyFile)
	must(t, err)
	return keys
}

// waitReload waits until every replica has logged one more line whose
// message starts with msg than before (the replicas poll the files).
func (f *fleet) waitReload(t *testing.T, msg string, before []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i, l := range f.logs {
		for strings.Count(l.String(), `"msg":"`+msg) <= before[i] {
			if time.Now().After(deadline) {
				t.Fatalf("replica %d did not log %q within 10s:\n%s", i, msg, l)
			}
			time.Sleep(20 * time.Millisecond) // polling an effect of the replicas' file watch
		}
	}
}

func (f *fleet) count(msg string) []int {
	n := make([]int, len(f.logs))
	for i, l := range f.logs {
		n[i] = strings.Count(l.String(), `"msg":"`+msg)
	}
	return n
}

var fleetVersions = []struct {
	name string
	v    uint16
}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}}

// A session from replica 0 resumes on replica 1 when both read the same
// session-ticket key file.
func TestFleetSharedTicketKeysResumeAcrossReplicas(t *testing.T) {
	f := newFleet(t, 2, true)
	for _, tv := range fleetVersions {
		t.Run(tv.name, func(t *testing.T) {
			c := f.tlsClient(tv.v)
			f.mustGet(t, 0, c, false)
			f.mustGet(t, 1, c, true)
			f.mustGet(t, 0, c, true)
		})
	}
	// The resumed requests reached the backend with the identity header.
	if n := len(f.backend.requests()); n != 2*3 {
		t.Errorf("backend saw %d requests, want 6", n)
	}
}

// Without a shared file each replica has its own keys: the device falls
// back to a full handshake on the other replica.
func TestFleetWithoutSharedKeysDoesNotResume(t *testing.T) {
	f := newFleet(t, 2, false)
	for _, tv := range fleetVersions {
		t.Run(tv.name, func(t *testing.T) {
			c := f.tlsClient(tv.v)
			f.mustGet(t, 0, c, false)
			// Control: the same device does resume where its ticket came from.
			f.mustGet(t, 0, c, true)
			c2 := f.tlsClient(tv.v)
			f.mustGet(t, 0, c2, false)
			f.mustGet(t, 1, c2, false)
		})
	}
}

// Rotation: `certgate tickets new` puts a new key first and keeps the old
// one second; the replicas pick the file up by polling, old tickets still
// resume, and new tickets are sealed with the new key (proved by dropping
// the old key: only the new ticket still resumes).
func TestFleetTicketKeyRotation(t *testing.T) {
	for _, tv := range fleetVersions {
		t.Run(tv.name, func(t *testing.T) {
			f := newFleet(t, 2, true)
			k1 := f.readKeys(t)
			if len(k1) != 1 {
				t.Fatalf("new key file has %d keys, want 1", len(k1))
			}
			// Two devices holding tickets sealed with the first key.
			oldA, oldB := f.tlsClient(tv.v), f.tlsClient(tv.v)
			f.mustGet(t, 0, oldA, false)
			f.mustGet(t, 0, oldB, false)

			before := f.count("reloaded")
			var out bytes.Buffer
			// As an operator would: the file named by the config.
			must(t, run(context.Background(), []string{"tickets", "new", "--config", filepath.Join(f.dir, "certgate.yaml")}, &out, io.Discard))
			if !strings.Contains(out.String(), f.keyFile+": new session-ticket key first; 2 key(s)") {
				t.Errorf("tickets new said %q", out.String())
			}
			k2 := f.readKeys(t)
			if len(k2) != 2 || k2[1] != k1[0] || k2[0] == k1[0] {
				t.Fatalf("after rotation: %d keys, old key second = %v", len(k2), len(k2) == 2 && k2[1] == k1[0])
			}
			f.waitReload(t, "reloaded", before)

			// Sealed with the old key, opened on the other replica.
			f.mustGet(t, 1, oldA, true)
			// A new device gets a ticket after the rotation.
			fresh := f.tlsClient(tv.v)
			f.mustGet(t, 0, fresh, false)

			// Keep only the new key.
			before = f.count("reloaded")
			f.writeKeys(t, formatTicketKeys(k2[:1]))
			f.waitReload(t, "reloaded", before)
			f.mustGet(t, 1, fresh, true) // sealed with the new key
			f.mustGet(t, 1, oldB, false) // the old key is gone: full handshake

			// A broken file is refused and the keys in service stay.
			before = f.count("reload failed")
			f.writeKeys(t, []byte("# broken\nnot-a-key\n"))
			f.waitReload(t, "reload failed", before)
			if !strings.Contains(f.logs[1].String(), "tickets.keys:2: not a base64-encoded 32-byte key") {
				t.Errorf("reload error does not name file and line:\n%s", f.logs[1])
			}
			f.mustGet(t, 0, fresh, true)
		})
	}
}

// A replica refuses to start with a damaged key file, naming file and line.
func TestFleetBadTicketKeyFileRefusesStart(t *testing.T) {
	f := newFleet(t, 1, true)
	keys := f.readKeys(t)
	f.writeKeys(t, append(formatTicketKeys(keys), []byte("c2hvcnQ=\n")...))
	var logs syncBuffer
	inst, err := startFromConfig(context.Background(), filepath.Join(f.dir, "certgate.yaml"), &logs, instanceOptions{})
	if err == nil {
		inst.close()
		t.Fatal("started with a damaged key file")
	}
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("error %v is not a configuration error (exit 2)", err)
	}
	if want := fmt.Sprintf("tickets.keys:%d: not a base64-encoded 32-byte key", strings.Count(string(formatTicketKeys(keys)), "\n")+1); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
}

func TestTicketKeyFileParse(t *testing.T) {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	many := ""
	for i := range maxTicketKeys + 1 {
		many += key(byte(i+1)) + "\n"
	}
	cases := []struct {
		name, in string
		keys     int
		err      string
	}{
		{"comments and blanks", "# c\n\n  " + key(1) + "  \n# d\n" + key(2) + "\n", 2, ""},
		{"crlf", key(1) + "\r\n" + key(2) + "\r\n", 2, ""},
		{"empty", "# only a comment\n\n", 0, "k: no keys"},
		{"not base64", key(1) + "\n!!!\n", 0, "k:2: not a base64-encoded 32-byte key"},
		{"short", "# x\n" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "\n", 0, "k:2: not a base64-encoded"},
		{"long", base64.StdEncoding.EncodeToString(make([]byte, 48)) + "\n", 0, "k:1: not a base64-encoded"},
		{"unpadded", strings.TrimRight(key(1), "=") + "\n", 0, "k:1: not a base64-encoded"},
		{"duplicate", key(1) + "\n" + key(1) + "\n", 0, "k:2: key repeats"},
		{"too many", many, 0, fmt.Sprintf("k:%d: more than %d keys", maxTicketKeys+1, maxTicketKeys)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseTicketKeys([]byte(tc.in), "k")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				// The error names the line, never its (secret) content.
				for _, line := range strings.Split(tc.in, "\n") {
					if l := strings.TrimSpace(line); len(l) > 8 && !strings.HasPrefix(l, "#") && strings.Contains(err.Error(), l) {
						t.Errorf("error leaks line content: %v", err)
					}
				}
				return
			}
			if err != nil || len(keys) != tc.keys {
				t.Fatalf("got %d keys, err %v; want %d", len(keys), err, tc.keys)
			}
			if keys[0] != [32]byte(bytes.Repeat([]byte{1}, 32)) {
				t.Error("first key is not the first line")
			}
		})
	}
}

func TestTicketsNewRotatesAndKeepsN(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	var seen [][32]byte
	for i := range 5 {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"tickets", "new", "--file", path}, &out, io.Discard); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		keys, err := loadTicketKeys(path)
		must(t, err)
		want := min(i+1, defaultTicketKeep)
		if len(keys) != want {
			t.Fatalf("round %d: %d keys, want %d", i, len(keys), want)
		}
		// Newest first, and the previous order kept behind it.
		for j := 1; j < len(keys); j++ {
			if keys[j] != seen[len(seen)-j] {
				t.Fatalf("round %d: key %d is not the one rotated in %d rounds ago", i, j, j)
			}
		}
		seen = append(seen, keys[0])
	}
	fi, err := os.Stat(path)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	// --keep 1 drops every old key; a damaged file is not overwritten.
	must(t, run(context.Background(), []string{"tickets", "new", "--file", path, "--keep", "1"}, io.Discard, io.Discard))
	if keys, _ := loadTicketKeys(path); len(keys) != 1 {
		t.Errorf("--keep 1 left %d keys", len(keys))
	}
	must(t, os.WriteFile(path, []byte("garbage\n"), 0o600))
	err = run(context.Background(), []string{"tickets", "new", "--file", path}, io.Discard, io.Discard)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("rotating a damaged file: %v, want exit 2 naming %s:1", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "garbage\n" {
		t.Error("damaged file was overwritten")
	}
	for _, args := range [][]string{{"tickets"}, {"tickets", "new"}, {"tickets", "new", "--file", path, "--keep", "0"}, {"tickets", "new", "--file", path, "--config", "c.yaml"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

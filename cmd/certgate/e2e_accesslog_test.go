package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/certgate/certgate/internal/pkigen"
)

// TestAccessLog: with accessLog set, every request leaves one line with
// method, path, status, body bytes, duration, the bound user and the
// route, in JSON or in nginx's combined format; a reload that switches
// the format reopens the file.
func TestAccessLog(t *testing.T) {
	e := newEnv(t, envConfig{extraYAML: "accessLog:\n  format: json\n  file: access.log\n"})
	alice := e.inter.Leaf(t, "alice", pkigen.UPN("alice@contoso.com"))
	c := e.mtlsClient(alice, false)
	get := func(path string, h map[string]string) (int, int) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url(path), nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, len(b)
	}
	code, n := get("/some/path?q=1", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	// A connection's requests are served in order, and a line is written
	// when its request ends, possibly after the client has its answer:
	// one more request on the same connection orders the file.
	get("/sync", nil)
	logPath := filepath.Join(e.dir, "access.log")
	lines := readLines(t, logPath)
	if len(lines) < 1 {
		t.Fatalf("no lines")
	}
	var rec struct {
		Method, Path, Proto, User, Route, Remote, Time string
		Status, Bytes                                  int
		Duration                                       *float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if rec.Method != "GET" || rec.Path != "/some/path?q=1" || rec.Status != 200 || rec.Bytes != n || n == 0 ||
		rec.User != "alice@contoso.com" || rec.Route != "web" || rec.Duration == nil || rec.Proto != "HTTP/1.1" {
		t.Fatalf("line %s (body %d bytes)", lines[0], n)
	}

	// Combined, after a reload: a hostile User-Agent cannot forge a field.
	e.writeConfig(envConfig{extraYAML: "accessLog:\n  format: combined\n  file: access.log\n"})
	must(t, e.inst.reload(t.Context(), "test"))
	code, n = get("/other", map[string]string{"User-Agent": `evil" 200 0 "x`, "Referer": "https://ref.example/"})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	get("/sync", nil)
	lines = readLines(t, logPath)
	if len(lines) < 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	combined := regexp.MustCompile(`^127\.0\.0\.1 - alice@contoso\.com \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /other HTTP/1\.1" 200 (\d+) "https://ref\.example/" "evil\\x22 200 0 \\x22x"$`)
	m := combined.FindStringSubmatch(lines[2])
	if m == nil || m[1] != itoa(n) {
		t.Fatalf("combined line %q (body %d bytes)", lines[2], n)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

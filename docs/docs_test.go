// Package docs_test keeps the reference in docs/ in step with the code: a
// config key, reason code, backend header, metric or users-file key that
// the code has and the pages do not fails the test command.
package docs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/revocation"
	"github.com/certgate/certgate/trust"
)

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// configKeys walks the config schema: every key as a dotted path, "[]"
// after a list.
func configKeys(prefix string, t reflect.Type, out *[]string) {
	list := ""
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			list = "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[config.Config]().PkgPath() || t.Name() == "Duration" {
		return
	}
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		p := tag
		if prefix != "" {
			p = prefix + list + "." + tag
		}
		*out = append(*out, p)
		configKeys(p, t.Field(i).Type, out)
	}
}

func TestConfigurationDocumentsEveryKey(t *testing.T) {
	doc := read(t, "configuration.md")
	var keys []string
	configKeys("", reflect.TypeFor[config.Config](), &keys)
	if len(keys) < 90 {
		t.Fatalf("only %d keys found; the schema walk is broken", len(keys))
	}
	for _, k := range keys {
		if !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("configuration.md has no row for %s", k)
		}
	}
}

func TestReasonCodesDocumented(t *testing.T) {
	doc := read(t, "reason-codes.md")
	codes := proxy.ReasonCodes()
	// The constants of each package, so a new one the proxy does not
	// answer for is caught too.
	for _, c := range []string{string(trust.OK), string(trust.NoCertificate), string(trust.Untrusted), string(trust.Expired),
		string(trust.NotYetValid), string(trust.BadUsage), string(trust.NameConstraints), string(trust.IdentityUnmapped),
		string(trust.IdentityAmbiguous), string(trust.UserDisabled), string(trust.DirectoryUnavailable),
		revocation.ReasonRevoked, revocation.ReasonCRLUnavailable, revocation.ReasonCRLStale, revocation.ReasonOCSPUnavailable,
		proxy.ReasonSessionRevoked, proxy.ReasonEASUserMismatch, proxy.ReasonMisdirected, proxy.ReasonNoCertificate} {
		found := false
		for _, have := range codes {
			found = found || have == c
		}
		if !found {
			t.Errorf("reason %s has no refusal answer in proxy", c)
		}
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(doc, -1) {
		documented[m[1]] = strings.TrimSpace(m[2])
	}
	for _, c := range codes {
		status, ok := documented[c]
		switch {
		case !ok:
			t.Errorf("reason-codes.md has no row for %s", c)
		case c != "ok" && !strings.HasPrefix(status, itoa(proxy.RefusalStatus(c))):
			t.Errorf("reason-codes.md gives %s the status %q, the proxy answers %d", c, status, proxy.RefusalStatus(c))
		}
	}
	if len(documented) != len(codes) {
		t.Errorf("reason-codes.md documents %d codes, the code has %d", len(documented), len(codes))
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestHeadersDocumented(t *testing.T) {
	doc := strings.ToLower(read(t, "headers.md"))
	for _, h := range proxy.ReservedHeaders() {
		if !strings.Contains(doc, "`"+h+"`") {
			t.Errorf("headers.md does not name the removed header %s", h)
		}
	}
}

func TestUsersFileExampleLoads(t *testing.T) {
	doc := read(t, "users-file.md")
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml example")
	}
	example := doc[start+8 : start+8+end]
	d, err := trust.ParseUsers([]byte(example), "users-file.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Users()) != 2 || d.Users()[0].SessionsValidFrom.IsZero() || d.Users()[1].AccountEnabled {
		t.Errorf("example parsed as %+v", d.Users())
	}
	for _, k := range []string{"userPrincipalName", "proxyAddresses", "certificateUserIds", "accountEnabled", "stsRefreshTokensValidFrom"} {
		if !strings.Contains(example, k+":") || !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("users-file.md does not show and document %s", k)
		}
	}
}

// TestMetricsDocumented: every certgate_* series the code defines has a row.
func TestMetricsDocumented(t *testing.T) {
	doc := read(t, "metrics.md")
	name := regexp.MustCompile(`"(certgate_[a-z_]+)"`)
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "certgate-bench" || d.Name() == "examples" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(b), -1) {
			found++
			if !strings.Contains(doc, "| `"+m[1]+"` |") {
				t.Errorf("metrics.md has no row for %s (%s)", m[1], path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Fatalf("only %d metric names found in the code", found)
	}
}

// TestSelfContained: a clone needs nothing outside it. The README and the
// reference example used to send readers to ../shared/SPEC.md.
func TestSelfContained(t *testing.T) {
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != ".." {
			return filepath.SkipDir
		}
		ext := filepath.Ext(path)
		if d.IsDir() || (ext != ".md" && ext != ".yaml" && ext != ".yml" && ext != ".sh") {
			return nil
		}
		text := read(t, path)
		for _, bad := range []string{"../shared", "SPEC.md"} {
			if strings.Contains(text, bad) {
				t.Errorf("%s points outside the repository (%s)", path, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAppendJSONStringMatchesEncodingJSON: whatever a client puts in a
// path, the line stays one valid JSON object that reads back as the
// same text (invalid UTF-8 as U+FFFD, as encoding/json has it).
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "/plain", `q"uote\back`, "new\nline\r\x00\x1f\x7f", "caf\xc3\xa9", "bad\xff\xfeutf8", "\u2028\u2029", "<script>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q reads back as %q, encoding/json as %q", s, back, wantBack)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("/x?y=\"z\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: not JSON: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q reads back as %q, encoding/json as %q", s, back, wantBack)
		}
		for _, c := range appendLogText(nil, s) {
			if c < 0x20 || c >= 0x7f || c == '"' {
				t.Fatalf("combined text of %q holds byte %#x", s, c)
			}
		}
	})
}

// BenchmarkAccessLog prices one line: formatting (no allocation) and the
// write(2) to a file, which is what a request pays with the log on.
func BenchmarkAccessLog(b *testing.B) {
	r, _ := http.NewRequest("GET", "https://mail.example.com/Microsoft-Server-ActiveSync?Cmd=Ping&User=alice&DeviceId=ABC&DeviceType=iPhone", nil)
	r.RequestURI = r.URL.RequestURI()
	r.RemoteAddr = "192.0.2.10:51234"
	r.Header.Set("User-Agent", "Apple-iPhone14C2/2006.100")
	rec := accessRecord{start: time.Now(), status: 200, bytes: 1234, user: "alice@contoso.com", route: "eas", buf: make([]byte, 0, 512)}
	for _, format := range []string{AccessLogJSON, AccessLogCombined} {
		b.Run(format+"/format", func(b *testing.B) {
			l, _ := NewAccessLog(io.Discard, format)
			b.ReportAllocs()
			for b.Loop() {
				l.write(&rec, r)
			}
		})
		b.Run(format+"/file", func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "access.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			l, _ := NewAccessLog(f, format)
			b.ReportAllocs()
			for b.Loop() {
				l.write(&rec, r)
			}
		})
	}
}

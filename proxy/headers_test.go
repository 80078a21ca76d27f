package proxy

import (
	"net/http"
	"testing"
)

func TestStripRemovesEverySpelling(t *testing.T) {
	s := newHeaderSet("X-Employee-Id")
	h := http.Header{}
	spoofed := []string{
		"X-Remote-User", "x-remote-user", "X_Remote_User", "X_REMOTE-user",
		"Client-Cert", "client_cert_chain", "X-Forwarded-Client-Cert", "X_Forwarded_For",
		"Forwarded", "X-Real-Ip", "x_employee_id", "X-EMPLOYEE-ID",
	}
	for _, k := range spoofed {
		h[k] = []string{"evil"} // raw keys: what a client can make arrive
	}
	kept := []string{"Accept", "X-Remote-Users", "X-Remote-Use", "Authorization", "Ms-Asprotocolversion"}
	for _, k := range kept {
		h[k] = []string{"fine"}
	}
	s.strip(h)
	for _, k := range spoofed {
		if _, ok := h[k]; ok {
			t.Errorf("%q survived", k)
		}
	}
	for _, k := range kept {
		if h.Get(k) != "fine" {
			t.Errorf("%q was removed", k)
		}
	}
}

func TestStripAllocatesNothing(t *testing.T) {
	s := newHeaderSet("X-Remote-User")
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl"}, "Content-Type": {"application/vnd.ms-sync.wbxml"}}
	if n := testing.AllocsPerRun(100, func() { s.strip(h) }); n != 0 {
		t.Fatalf("strip allocates %v times per request", n)
	}
}

// FuzzStripHeaders checks the property the proxy relies on: after strip, no
// header that folds (case, '_' as '-') onto a reserved name is left, and
// nothing else is touched.
func FuzzStripHeaders(f *testing.F) {
	for _, seed := range []string{"X-Remote-User", "x_remote_user", "Client-Cert", "Accept", "X-Remote-User\x00", "X-REMOTE_USER", "forwarded", ""} {
		f.Add(seed, "X-Remote-User")
	}
	f.Fuzz(func(t *testing.T, name, extra string) {
		s := newHeaderSet(extra)
		h := http.Header{name: {"v"}}
		s.strip(h)
		// Compare byte strings: strings.Map would rewrite invalid UTF-8.
		norm := string(bytesFold([]byte(name)))
		reserved := norm == string(bytesFold([]byte(extra)))
		for _, r := range reservedHeaders {
			reserved = reserved || norm == r
		}
		_, present := h[name]
		if reserved && present {
			t.Fatalf("reserved header %q survived", name)
		}
		if !reserved && !present {
			t.Fatalf("header %q was removed", name)
		}
	})
}

func bytesFold(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

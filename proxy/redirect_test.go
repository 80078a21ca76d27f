package proxy

import (
	"net/http"
	"net/url"
	"testing"
)

func TestRewriteLocation(t *testing.T) {
	for _, tc := range []struct {
		target, loc, want string
	}{
		// The backend's own address, as SOGo builds it from Host.
		{"http://127.0.0.1:20000", "http://127.0.0.1:20000/SOGo/so/alice@contoso.com/Mail", "https://mail.contoso.com:8443/SOGo/so/alice@contoso.com/Mail"},
		{"http://127.0.0.1:20000", "HTTP://127.0.0.1:20000/a?b=c#d", "https://mail.contoso.com:8443/a?b=c#d"},
		{"http://backend", "http://BACKEND:80/x", "https://mail.contoso.com:8443/x"},
		{"https://owa.internal", "https://owa.internal:443/owa/", "https://mail.contoso.com:8443/owa/"},
		// A base path on the backend URL is taken off again.
		{"http://127.0.0.1:20000/SOGo", "http://127.0.0.1:20000/SOGo/Microsoft-Server-ActiveSync", "https://mail.contoso.com:8443/Microsoft-Server-ActiveSync"},
		{"http://127.0.0.1:20000/SOGo/", "http://127.0.0.1:20000/SOGo", "https://mail.contoso.com:8443/"},
		{"http://127.0.0.1:20000", "http://127.0.0.1:20000/a%2Fb", "https://mail.contoso.com:8443/a%2Fb"},
		// Anything else stays as it is.
		{"http://127.0.0.1:20000/SOGo", "http://127.0.0.1:20000/SOGoX/y", "http://127.0.0.1:20000/SOGoX/y"},
		{"http://127.0.0.1:20000", "http://127.0.0.1:20001/x", "http://127.0.0.1:20001/x"},
		{"http://127.0.0.1:20000", "https://127.0.0.1:20000/x", "https://127.0.0.1:20000/x"},
		{"http://127.0.0.1:20000", "https://login.example.com/x", "https://login.example.com/x"},
		{"http://127.0.0.1:20000", "/SOGo/alice", "/SOGo/alice"},
		{"http://127.0.0.1:20000", "//127.0.0.1:20000/x", "//127.0.0.1:20000/x"},
		{"http://127.0.0.1:20000", "http://u:p@127.0.0.1:20000/x", "http://u:p@127.0.0.1:20000/x"},
		{"http://127.0.0.1:20000", "http://[::1/x", "http://[::1/x"},
	} {
		target, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{"Location": {tc.loc}}
		rewriteLocation(h, target, "mail.contoso.com:8443")
		if got := h.Get("Location"); got != tc.want {
			t.Errorf("target %s, Location %s: got %s, want %s", tc.target, tc.loc, got, tc.want)
		}
	}
	h := http.Header{}
	rewriteLocation(h, &url.URL{Scheme: "http", Host: "b"}, "c")
	if _, ok := h["Location"]; ok {
		t.Error("a response without Location got one")
	}
}

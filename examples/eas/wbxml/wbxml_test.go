package wbxml_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/certgate/certgate/examples/eas/wbxml"
)

func pingDoc() *wbxml.Node {
	return wbxml.Element(wbxml.PagePing, wbxml.PingPing,
		wbxml.Text(wbxml.PagePing, wbxml.PingHeartbeatInterval, "480"),
		wbxml.Element(wbxml.PagePing, wbxml.PingFolders,
			wbxml.Element(wbxml.PagePing, wbxml.PingFolder,
				wbxml.Text(wbxml.PagePing, wbxml.PingID, "1"),
				wbxml.Text(wbxml.PagePing, wbxml.PingClass, "Email"))))
}

// TestEncodeBytes pins the encoding against bytes written out by hand from
// WBXML 1.3 and MS-ASWBXML: header, SWITCH_PAGE 13, Ping with content, an
// inline string, END.
func TestEncodeBytes(t *testing.T) {
	b, err := wbxml.Encode(wbxml.Element(wbxml.PagePing, wbxml.PingPing,
		wbxml.Text(wbxml.PagePing, wbxml.PingHeartbeatInterval, "80"),
		wbxml.Element(wbxml.PageAirSync, wbxml.AirSyncStatus)))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x03, 0x01, 0x6A, 0x00, 0x00, 0x0D, 0x45, 0x48, 0x03, '8', '0', 0x00, 0x01, 0x00, 0x00, 0x0E, 0x01}
	if !bytes.Equal(b, want) {
		t.Errorf("got  % x\nwant % x", b, want)
	}
}

func TestRoundTrip(t *testing.T) {
	docs := []*wbxml.Node{
		pingDoc(),
		wbxml.Text(wbxml.PageAirSync, wbxml.AirSyncSyncKey, "with\x00nul"), // goes out as OPAQUE
		wbxml.Element(wbxml.PageFolderHierarchy, wbxml.FolderSync),
	}
	for _, d := range docs {
		b, err := wbxml.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wbxml.Decode(b)
		if err != nil {
			t.Fatalf("% x: %v", b, err)
		}
		if !reflect.DeepEqual(got, d) {
			t.Errorf("round trip of % x:\n got %+v\nwant %+v", b, got, d)
		}
	}
	if n := pingDoc().Find(wbxml.PagePing, wbxml.PingClass); n == nil || n.Text != "Email" {
		t.Errorf("Find Class = %+v", n)
	}
	if n := pingDoc().Find(wbxml.PageAirSync, wbxml.AirSyncSync); n != nil {
		t.Errorf("Find on another page = %+v", n)
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := wbxml.Encode(nil); err == nil {
		t.Error("nil root encoded")
	}
	if _, err := wbxml.Encode(wbxml.Element(0, 0x04)); err == nil || !strings.Contains(err.Error(), "not a tag token") {
		t.Errorf("tag 0x04: %v", err)
	}
	deep := wbxml.Element(0, 5)
	for range wbxml.MaxDepth {
		deep = wbxml.Element(0, 5, deep)
	}
	if _, err := wbxml.Encode(deep); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Errorf("deep: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	h := []byte{0x03, 0x01, 0x6A, 0x00}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	deep := cat(h, bytes.Repeat([]byte{0x45}, wbxml.MaxDepth+1))
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "at byte 0: unexpected end"},
		{"not wbxml", []byte("<?xml version"), "version byte 0x3c"},
		{"charset", []byte{0x03, 0x01, 0x04, 0x00, 0x45, 0x01}, "charset 4, want 106"},
		{"string table too long", []byte{0x03, 0x01, 0x6A, 0x7F}, "string table of 127 bytes but only 0 follow"},
		{"mb overflow", []byte{0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, "overflows 32 bits"},
		{"no root", h, "unexpected end"},
		{"unclosed", cat(h, []byte{0x45}), "unexpected end"},
		{"string without nul", cat(h, []byte{0x45, 0x03, 'a'}), "inline string without its NUL"},
		{"opaque too long", cat(h, []byte{0x45, 0xC3, 0x10, 'a'}), "opaque data of 16 bytes but only 1 follow"},
		{"attributes", cat(h, []byte{0x85}), "unsupported token 0x85"},
		{"entity", cat(h, []byte{0x45, 0x02, 0x01}), "unsupported token 0x02"},
		{"str_t", cat(h, []byte{0x45, 0x83, 0x00, 0x01}), "unsupported token 0x83"},
		{"trailing", cat(h, []byte{0x05, 0x05}), "1 bytes after the root element"},
		{"too deep", deep, "deeper than 64 elements"},
		{"switch page at end", cat(h, []byte{0x00}), "unexpected end"},
	}
	for _, tt := range tests {
		_, err := wbxml.Decode(tt.in)
		var se *wbxml.SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want SyntaxError with %q", tt.name, err, tt.msg)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := wbxml.Encode(pingDoc())
	f.Add(b)
	b, _ = wbxml.Encode(wbxml.Text(0, 5, "a\x00b"))
	f.Add(b)
	f.Add([]byte{0x03, 0x00, 0x00, 0x6A, 0x02, 'x', 0x00, 0x45, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := wbxml.Decode(in)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a document that decodes the same.
		out, err := wbxml.Encode(n)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", n, err)
		}
		n2, err := wbxml.Decode(out)
		if err != nil {
			t.Fatalf("re-encoded % x does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(n, n2) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", n2, n)
		}
	})
}

// An Opaque node is written as opaque data even without a NUL, as devices
// send MIME, and reads back as the same text.
func TestOpaqueNode(t *testing.T) {
	b, err := wbxml.Encode(wbxml.Opaque(wbxml.PageComposeMail, wbxml.ComposeMime, []byte("Subject: x")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte{0xC3, 10}) {
		t.Errorf("no OPAQUE token of length 10 in % x", b)
	}
	n, err := wbxml.Decode(b)
	if err != nil || n.Text != "Subject: x" || n.Page != wbxml.PageComposeMail {
		t.Errorf("decoded %+v, %v", n, err)
	}
}

package ldapdir_test

import (
	"testing"
	"time"

	"github.com/certgate/certgate/trust/ldapdir"
)

func TestParseTime(t *testing.T) {
	at := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	ok := []struct {
		in   string
		want time.Time
	}{
		{"20261125100000Z", at(2026, 11, 25, 10, 0, 0, 0)},
		{"20261125100000.0Z", at(2026, 11, 25, 10, 0, 0, 0)},
		{"20261125100000.5Z", at(2026, 11, 25, 10, 0, 0, 5e8)},
		{"20261125100000,25Z", at(2026, 11, 25, 10, 0, 0, 25e7)},
		{"202611251000Z", at(2026, 11, 25, 10, 0, 0, 0)},
		{"2026112510Z", at(2026, 11, 25, 10, 0, 0, 0)},
		{"2026112510.5Z", at(2026, 11, 25, 10, 30, 0, 0)},   // fraction of an hour
		{"202611251000.5Z", at(2026, 11, 25, 10, 0, 30, 0)}, // fraction of a minute
		{"20261125110000+0100", at(2026, 11, 25, 10, 0, 0, 0)},
		{"20261125050000-05", at(2026, 11, 25, 10, 0, 0, 0)},
		{"20261125100000.1234567891234Z", at(2026, 11, 25, 10, 0, 0, 123456789)},
		{"2026-11-25T10:00:00Z", at(2026, 11, 25, 10, 0, 0, 0)},
		{"2026-11-25T11:00:00+01:00", at(2026, 11, 25, 10, 0, 0, 0)},
		{"2026-11-25T10:00:00.25Z", at(2026, 11, 25, 10, 0, 0, 25e7)},
	}
	for _, tt := range ok {
		got, err := ldapdir.ParseTime(tt.in)
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{
		"", "yesterday", "20261125100000", "2026112510000Z", "20261325100000Z", "20260230100000Z",
		"20261125240000Z", "20261125106000Z", "20261125100000.Z", "20261125100000ZZ", "20261125100000+2400",
		"20261125100000+01000", "2026-11-25", "2026-11-25 10:00:00", "-2026112510Z", "2026112510+1",
	} {
		if got, err := ldapdir.ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseTime: no input panics, and a parsed time survives a round trip
// through the GeneralizedTime form certgate would write.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"20261125100000Z", "20261125100000.0Z", "2026112510.5+0130", "2026-11-25T10:00:00Z", "99991231235960Z", "0000010100Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ldapdir.ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, got)
		}
		if got.Year() < 0 || got.Year() > 9999 {
			return // RFC 3339 reaches years a 4-digit GeneralizedTime cannot write
		}
		gt := got.Format("20060102150405.999999999Z")
		back, err := ldapdir.ParseTime(gt)
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v; its form %q reads back as %v, %v", s, got, gt, back, err)
		}
	})
}

package config

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("15s", "1h30m") or as an integer number of seconds.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(n, "want a duration such as \"15s\" or a number of seconds, got %s", kindName(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return valueError(n, "%s", err)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDuration reads a Go duration string or an integer number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
			return 0, fmt.Errorf("%q is out of range for a duration", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (want e.g. \"15s\", \"5m\", \"1h\" or a number of seconds)", s)
	}
	return d, nil
}

// Size is a number of bytes, written in YAML as an integer or with a unit:
// "64MiB", "20MB", "512KiB", "1GiB". Units are case-sensitive so that "Mb"
// (megabit) is refused rather than guessed.
type Size int64

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(n, "want a size such as \"64MiB\" or a number of bytes, got %s", kindName(n))
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return valueError(n, "%s", err)
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as an integer number of bytes.
func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

// String formats the size with the largest binary unit that divides it.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		mul  int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mul == 0 {
			return strconv.FormatInt(int64(s)/u.mul, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

var sizeUnits = map[string]int64{
	"":    1,
	"B":   1,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
}

// ParseSize reads a size: a non-negative integer number of bytes, optionally
// followed (with or without a space) by one of B, kB, KB, MB, GB, TB, KiB,
// MiB, GiB, TiB.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	bad := fmt.Errorf("%q is not a size (want bytes, or a number with B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s)
	if i == 0 {
		return 0, bad
	}
	mul, ok := sizeUnits[strings.TrimLeft(t[i:], " ")]
	if !ok {
		return 0, bad
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q is too large for a size", s)
	}
	return Size(n * mul), nil
}

// AuthorityType says whether a configured CA is a trust anchor or only
// path-building material.
type AuthorityType string

// The authority types.
const (
	Root         AuthorityType = "root"
	Intermediate AuthorityType = "intermediate"
)

// RejectWith says how a rejected client is told.
type RejectWith string

// The ways to reject a client.
const (
	RejectHandshake RejectWith = "handshake" // a TLS alert (bad_certificate)
	RejectHTTP      RejectWith = "http"      // default: 495/496/403 with the reason code and a hint
)

// OnUnavailable says what a missing or stale CRL means.
type OnUnavailable string

// The answers to a missing or stale CRL.
const (
	Deny  OnUnavailable = "deny"
	Allow OnUnavailable = "allow"
)

// OCSPMode says whether and how strictly client certificates are checked
// with OCSP.
type OCSPMode string

// The OCSP modes.
const (
	OCSPOff  OCSPMode = "off"
	OCSPSoft OCSPMode = "soft" // a responder that cannot answer is ignored
	OCSPHard OCSPMode = "hard" // a responder that cannot answer rejects
)

// UnmarshalYAML accepts the words and also a YAML boolean false, because
// YAML 1.1 tools (and habits) write `off` as false.
func (m *OCSPMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return valueError(n, "want one of off, soft, hard, got %s", kindName(n))
	}
	if n.ShortTag() == "!!bool" {
		if b, err := strconv.ParseBool(n.Value); err == nil && !b {
			*m = OCSPOff
			return nil
		}
		return valueError(n, "%q is ambiguous, want one of off, soft, hard", n.Value)
	}
	*m = OCSPMode(n.Value)
	return nil
}

// ForwardClientCert says how the client certificate is passed to backends.
type ForwardClientCert string

// The client certificate forwarding formats.
const (
	ForwardNone    ForwardClientCert = "none"
	ForwardRFC9440 ForwardClientCert = "rfc9440" // Client-Cert and Client-Cert-Chain
	ForwardXFCC    ForwardClientCert = "xfcc"    // Envoy's X-Forwarded-Client-Cert
)

// RouteKind is the kind of backend a route fronts.
type RouteKind string

// The route kinds.
const (
	KindWeb RouteKind = "web"
	KindEAS RouteKind = "eas" // Exchange ActiveSync: the User parameter must name the bound user
)

// LogFormat is the log line format.
type LogFormat string

// The log formats.
const (
	LogJSON LogFormat = "json"
	LogText LogFormat = "text"
)

// AccessLogFormat is the access log line format.
type AccessLogFormat string

// The access log formats.
const (
	AccessJSON     AccessLogFormat = "json"
	AccessCombined AccessLogFormat = "combined"
)

// LogLevel is the lowest level logged.
type LogLevel string

// The log levels.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

// Slog returns the level as a log/slog level.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// valueError reports a bad scalar in the form yaml.v3 collects (a TypeError
// line), so decoding goes on and every bad value is reported at once. The
// column lets Parse find the exact key path of the value.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, fmt.Sprintf(format, args...))}}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a scalar"
}

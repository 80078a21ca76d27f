package eas

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// MaxQueryLength bounds the raw query ParseQuery reads. IIS refuses
// queries over 2048 bytes by default (maxQueryString); four times that
// leaves room for long attachment names without letting a client make the
// proxy decode megabytes.
const MaxQueryLength = 8192

// Options flags of the base64 form's Options parameter (MS-ASHTTP
// 2.2.1.1.1.1.3).
const (
	OptionSaveInSent      byte = 0x01
	OptionAcceptMultiPart byte = 0x02
)

// ReasonUserMismatch is the SPEC reason code of a request whose User does
// not name the bound user, or cannot be read.
const ReasonUserMismatch = "eas_user_mismatch"

// Query is what an ActiveSync request line says, in either form.
type Query struct {
	Cmd        string // canonical command name, e.g. "Sync"; as sent for unknown plain-form commands
	User       string // empty when the request names none (the base64 form need not)
	DeviceID   string // letters and digits as sent; a binary (GUID) base64-form ID as lower-case hex
	DeviceType string
	// Base64 is true for the base64-encoded form (MS-ASHTTP 2.2.1.1.1.1).
	Base64 bool
	// ProtocolVersion ("14.1") and Locale come only with the base64 form;
	// the plain form sends the version in the MS-ASProtocolVersion header.
	ProtocolVersion string
	Locale          uint16
	// PolicyKey is the base64 form's policy key; 0 when absent. The plain
	// form sends it in the X-MS-PolicyKey header.
	PolicyKey uint32

	AttachmentName string
	CollectionID   string
	ItemID         string
	LongID         string
	Occurrence     string
	// Options holds OptionSaveInSent and OptionAcceptMultiPart; the plain
	// form's SaveInSent=T sets OptionSaveInSent.
	Options byte
}

// ParseError says why a query could not be read. Offset is the byte offset
// in the decoded base64 structure, or -1 for the plain form.
type ParseError struct {
	Base64 bool
	Offset int
	Msg    string
}

func (e *ParseError) Error() string {
	if e.Base64 && e.Offset >= 0 {
		return fmt.Sprintf("eas: base64 query: at byte %d: %s", e.Offset, e.Msg)
	}
	if e.Base64 {
		return "eas: base64 query: " + e.Msg
	}
	return "eas: query: " + e.Msg
}

// ReasonCode is "eas_user_mismatch": the User of an unreadable query cannot
// be shown to name the bound user.
func (e *ParseError) ReasonCode() string { return ReasonUserMismatch }

// commands maps base64-form command codes to names (MS-ASHTTP
// 2.2.1.1.1.1.2). Codes 5 to 8 were the 2.5-era hierarchy commands, which
// the base64 form (12.1 and later) cannot carry.
var commands = [...]string{
	0: "Sync", 1: "SendMail", 2: "SmartForward", 3: "SmartReply", 4: "GetAttachment",
	9: "FolderSync", 10: "FolderCreate", 11: "FolderDelete", 12: "FolderUpdate",
	13: "MoveItems", 14: "GetItemEstimate", 15: "MeetingResponse", 16: "Search",
	17: "Settings", 18: "Ping", 19: "ItemOperations", 20: "Provision",
	21: "ResolveRecipients", 22: "ValidateCert", 23: "Find",
}

// Tags of the base64 form's command parameters.
const (
	tagAttachmentName = 0
	tagCollectionID   = 1
	tagItemID         = 3
	tagLongID         = 4
	tagOccurrence     = 6
	tagOptions        = 7
	tagUser           = 8
)

// ParseQuery reads an ActiveSync request's raw query (URL.RawQuery, never
// the decoded form) in either form. An empty query gives a zero Query and
// no error: OPTIONS requests carry none.
//
// A query is read as the base64 form when, percent-decoded, it is made only
// of the standard base64 alphabet with at most two trailing '='; every
// plain query has a '=' between a name and a value, so the two cannot be
// confused. The base64 form is percent-decoded with url.PathUnescape,
// because QueryUnescape would turn its '+' into a space.
func ParseQuery(rawQuery string) (Query, error) {
	if rawQuery == "" {
		return Query{}, nil
	}
	if len(rawQuery) > MaxQueryLength {
		return Query{}, &ParseError{Offset: -1, Msg: fmt.Sprintf("longer than %d bytes", MaxQueryLength)}
	}
	if !strings.Contains(rawQuery, "&") {
		if s, err := url.PathUnescape(rawQuery); err == nil && looksBase64(s) {
			return parseBase64(s)
		}
	}
	return parsePlain(rawQuery)
}

func looksBase64(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" || len(s)-len(body) > 2 {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(isAlnum(c) || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func parseBase64(s string) (Query, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return Query{}, &ParseError{Base64: true, Offset: -1, Msg: "not valid base64"}
	}
	r := reader{b: b}
	q := Query{Base64: true}
	ver, _ := r.byte()
	code, _ := r.byte()
	lo, _ := r.byte()
	hi, ok := r.byte()
	if !ok {
		return Query{}, r.errorf("truncated header: %d bytes, need at least 4", len(b))
	}
	q.ProtocolVersion = fmt.Sprintf("%d.%d", ver/10, ver%10)
	if int(code) >= len(commands) || commands[code] == "" {
		return Query{}, &ParseError{Base64: true, Offset: 1, Msg: fmt.Sprintf("unknown command code %d", code)}
	}
	q.Cmd = commands[code]
	q.Locale = uint16(lo) | uint16(hi)<<8

	id, err := r.lengthPrefixed("device ID")
	if err != nil {
		return Query{}, err
	}
	if len(id) == 0 {
		return Query{}, r.errorf("device ID length is 0")
	}
	if allAlnum(id) {
		q.DeviceID = string(id)
	} else {
		q.DeviceID = hex.EncodeToString(id)
	}

	at := r.off
	pk, err := r.lengthPrefixed("policy key")
	if err != nil {
		return Query{}, err
	}
	switch len(pk) {
	case 0:
	case 4:
		q.PolicyKey = binary.LittleEndian.Uint32(pk)
	default:
		return Query{}, &ParseError{Base64: true, Offset: at, Msg: fmt.Sprintf("policy key length %d, want 0 or 4", len(pk))}
	}

	dt, err := r.lengthPrefixed("device type")
	if err != nil {
		return Query{}, err
	}
	q.DeviceType = string(dt)

	var seen [tagUser + 1]bool
	for r.off < len(r.b) {
		at := r.off
		tag, _ := r.byte()
		v, err := r.lengthPrefixed(fmt.Sprintf("parameter %d", tag))
		if err != nil {
			return Query{}, err
		}
		if int(tag) < len(seen) {
			if seen[tag] {
				return Query{}, &ParseError{Base64: true, Offset: at, Msg: fmt.Sprintf("parameter %d given twice", tag)}
			}
			seen[tag] = true
		}
		switch tag {
		case tagAttachmentName:
			q.AttachmentName = string(v)
		case tagCollectionID:
			q.CollectionID = string(v)
		case tagItemID:
			q.ItemID = string(v)
		case tagLongID:
			q.LongID = string(v)
		case tagOccurrence:
			q.Occurrence = string(v)
		case tagOptions:
			if len(v) != 1 {
				return Query{}, &ParseError{Base64: true, Offset: at, Msg: fmt.Sprintf("Options is %d bytes, want 1", len(v))}
			}
			q.Options = v[0]
		case tagUser:
			q.User = string(v)
		default:
			// Unknown tags cannot carry the User, so skipping them keeps
			// newer clients working without weakening the User check.
		}
	}
	return q, nil
}

func allAlnum(b []byte) bool {
	for _, c := range b {
		if !isAlnum(c) {
			return false
		}
	}
	return true
}

// reader walks the decoded base64 structure; every read is bounds-checked.
type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	c := r.b[r.off]
	r.off++
	return c, true
}

func (r *reader) lengthPrefixed(what string) ([]byte, error) {
	at := r.off
	n, ok := r.byte()
	if !ok {
		return nil, &ParseError{Base64: true, Offset: at, Msg: "truncated before the " + what + " length"}
	}
	if len(r.b)-r.off < int(n) {
		return nil, &ParseError{Base64: true, Offset: at, Msg: fmt.Sprintf("%s length %d but only %d bytes follow", what, n, len(r.b)-r.off)}
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return v, nil
}

func (r *reader) errorf(format string, args ...any) error {
	return &ParseError{Base64: true, Offset: r.off, Msg: fmt.Sprintf(format, args...)}
}

// parsePlain reads Cmd=Sync&User=...; names are matched case-insensitively
// because IIS and ASP.NET do, so "user=" is as much a User as "User=".
func parsePlain(raw string) (Query, error) {
	var q Query
	seen := map[string]bool{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return Query{}, &ParseError{Offset: -1, Msg: fmt.Sprintf("parameter name %q: bad escape", k)}
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return Query{}, &ParseError{Offset: -1, Msg: fmt.Sprintf("parameter %s: bad escape", key)}
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] >= 0x7f {
				// ASP.NET compares names case-insensitively with Unicode
				// case mapping ("uſer" is "USER" to it): a name that is
				// not plain ASCII could be a User this parser does not
				// see. ActiveSync names are ASCII.
				return Query{}, &ParseError{Offset: -1, Msg: fmt.Sprintf("parameter name %q is not plain ASCII", key)}
			}
		}
		lk := strings.ToLower(key)
		var dst *string
		switch lk {
		case "cmd":
			dst = &q.Cmd
		case "user":
			dst = &q.User
		case "deviceid":
			dst = &q.DeviceID
		case "devicetype":
			dst = &q.DeviceType
		case "attachmentname":
			dst = &q.AttachmentName
		case "collectionid":
			dst = &q.CollectionID
		case "itemid":
			dst = &q.ItemID
		case "longid":
			dst = &q.LongID
		case "occurrence":
			dst = &q.Occurrence
		case "saveinsent":
		default:
			continue
		}
		if seen[lk] {
			return Query{}, &ParseError{Offset: -1, Msg: fmt.Sprintf("parameter %s given twice", key)}
		}
		seen[lk] = true
		if dst != nil {
			*dst = val
		} else if strings.EqualFold(val, "T") {
			q.Options |= OptionSaveInSent
		}
	}
	if c, ok := canonicalCommand(q.Cmd); ok {
		q.Cmd = c
	}
	return q, nil
}

// EncodeBase64Query writes q in the base64 form, as a client would put it
// after the '?'. It is the inverse of ParseQuery for the base64 form: an
// empty ProtocolVersion means "14.1", DeviceID must be 1 to 255 letters and
// digits, and every other field must fit its one-byte length.
func EncodeBase64Query(q Query) (string, error) {
	ver := q.ProtocolVersion
	if ver == "" {
		ver = "14.1"
	}
	vb, err := versionByte(ver)
	if err != nil {
		return "", err
	}
	code := -1
	for i, c := range commands {
		if c != "" && strings.EqualFold(c, q.Cmd) {
			code = i
		}
	}
	if code < 0 {
		return "", fmt.Errorf("eas: encode: command %q has no base64 code", q.Cmd)
	}
	if q.DeviceID == "" || len(q.DeviceID) > 255 || !allAlnum([]byte(q.DeviceID)) {
		return "", fmt.Errorf("eas: encode: DeviceID must be 1 to 255 letters and digits, got %q", q.DeviceID)
	}
	b := []byte{vb, byte(code), byte(q.Locale), byte(q.Locale >> 8)}
	b = append(b, byte(len(q.DeviceID)))
	b = append(b, q.DeviceID...)
	if q.PolicyKey != 0 {
		b = append(b, 4)
		b = binary.LittleEndian.AppendUint32(b, q.PolicyKey)
	} else {
		b = append(b, 0)
	}
	if len(q.DeviceType) > 255 {
		return "", fmt.Errorf("eas: encode: DeviceType longer than 255 bytes")
	}
	b = append(b, byte(len(q.DeviceType)))
	b = append(b, q.DeviceType...)
	params := []struct {
		tag byte
		v   string
	}{
		{tagAttachmentName, q.AttachmentName},
		{tagCollectionID, q.CollectionID},
		{tagItemID, q.ItemID},
		{tagLongID, q.LongID},
		{tagOccurrence, q.Occurrence},
		{tagUser, q.User},
	}
	for _, p := range params {
		if p.v == "" {
			continue
		}
		if len(p.v) > 255 {
			return "", fmt.Errorf("eas: encode: parameter %d longer than 255 bytes", p.tag)
		}
		b = append(b, p.tag, byte(len(p.v)))
		b = append(b, p.v...)
	}
	if q.Options != 0 {
		b = append(b, tagOptions, 1, q.Options)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// versionByte turns "14.1" into 141; only the form ParseQuery produces is
// accepted, so encoding and parsing round-trip.
func versionByte(v string) (byte, error) {
	maj, min, ok := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	m, err2 := strconv.Atoi(min)
	if !ok || err1 != nil || err2 != nil || a < 0 || m < 0 || m > 9 || a*10+m > 255 ||
		fmt.Sprintf("%d.%d", a, m) != v {
		return 0, fmt.Errorf("eas: encode: protocol version %q is not of the form 14.1", v)
	}
	return byte(a*10 + m), nil
}

// Package easbackend is a toy Exchange ActiveSync server that trusts a
// front proxy for authentication: it takes the user from an identity header
// (X-Remote-User by default) and answers OPTIONS, Sync, Ping, FolderSync
// and Autodiscover just well enough for a client, and certgate's end-to-end
// tests, to see a real EAS exchange through the proxy.
//
// Every response carries X-Seen-Remote-User with the identity the backend
// received, so a test can assert what reached it. A request without the
// identity header gets 401: a backend behind a trusted proxy must not
// serve anonymous requests.
//
// It must only ever listen where nothing but the proxy can reach it
// (loopback, a Unix socket, a pod network with a NetworkPolicy): it
// believes the identity header it is given.
package easbackend

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/proxy/eas"
)

// The OPTIONS answer of MS-ASHTTP example 4.3.
const (
	ProtocolVersions = "2.5,12.0,12.1,14.0,14.1,16.0,16.1"
	ProtocolCommands = "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert,Find"
	ServerVersion    = "16.1"
)

// SeenHeader is the response header that echoes the identity received.
const SeenHeader = "X-Seen-Remote-User"

// Options configure the backend. The zero value is usable.
type Options struct {
	// IdentityHeader names the header the proxy puts the user in; default
	// X-Remote-User.
	IdentityHeader string
	// PingHold is how long a Ping is held before the backend answers that
	// nothing changed (a real server holds it for the client's
	// HeartbeatInterval, up to an hour); default 5s.
	PingHold time.Duration
	// MaxBody bounds request bodies; default 16 MiB.
	MaxBody int64
	// OnRequest, when set, sees every request first (tests record them).
	OnRequest func(*http.Request)
	// After makes the Ping hold timer; default time.After. Tests inject
	// one they fire themselves.
	After func(time.Duration) <-chan time.Time
}

// Handler returns the backend. A nil logger discards logs.
func Handler(logger *slog.Logger, opts Options) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdentityHeader == "" {
		opts.IdentityHeader = "X-Remote-User"
	}
	if opts.PingHold <= 0 {
		opts.PingHold = 5 * time.Second
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.After == nil {
		opts.After = time.After
	}
	return &backend{log: logger, opts: opts}
}

type backend struct {
	log  *slog.Logger
	opts Options
}

// setExact sets a header under its exact MS-ASHTTP spelling; Header.Set
// would write Ms-Server-Activesync.
func setExact(h http.Header, key, value string) { h[key] = []string{value} }

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.opts.OnRequest != nil {
		b.opts.OnRequest(r)
	}
	user := r.Header.Get(b.opts.IdentityHeader)
	h := w.Header()
	h.Set(SeenHeader, user)
	setExact(h, "MS-Server-ActiveSync", ServerVersion)
	if user == "" {
		b.log.Warn("request without identity", "method", r.Method, "remote", r.RemoteAddr)
		http.Error(w, "no "+b.opts.IdentityHeader+": this backend serves only requests from its proxy", http.StatusUnauthorized)
		return
	}
	if strings.EqualFold(r.URL.Path, "/autodiscover/autodiscover.xml") {
		b.autodiscover(w, r, user)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		b.log.Info("eas options", "identity", user)
		setExact(h, "MS-ASProtocolVersions", ProtocolVersions)
		setExact(h, "MS-ASProtocolCommands", ProtocolCommands)
		h.Set("Allow", "OPTIONS,POST")
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodPost:
	default:
		h.Set("Allow", "OPTIONS,POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}

	q, err := eas.ParseQuery(r.URL.RawQuery)
	if err != nil || q.Cmd == "" {
		http.Error(w, fmt.Sprintf("bad ActiveSync query: %v", err), http.StatusBadRequest)
		return
	}
	body, status, err := b.readBody(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	b.log.Info("eas request", "cmd", q.Cmd, "identity", user, "query_user", q.User,
		"device_type", q.DeviceType, "base64", q.Base64, "body_bytes", len(body))
	h.Set("X-Seen-Body-Bytes", strconv.Itoa(len(body)))

	switch q.Cmd {
	case "Sync":
		// The toy answer echoes what the backend saw: SyncKey is the
		// number of body bytes it read, CollectionId the identity.
		p := wbxml.PageAirSync
		b.reply(w, wbxml.Element(p, wbxml.AirSyncSync,
			wbxml.Element(p, wbxml.AirSyncCollections,
				wbxml.Element(p, wbxml.AirSyncCollection,
					wbxml.Text(p, wbxml.AirSyncSyncKey, strconv.Itoa(len(body))),
					wbxml.Text(p, wbxml.AirSyncCollectionID, user),
					wbxml.Text(p, wbxml.AirSyncStatus, "1")))))
	case "Ping":
		select {
		case <-b.opts.After(b.opts.PingHold):
		case <-r.Context().Done():
			b.log.Info("ping abandoned by the client", "identity", user, "err", r.Context().Err())
			return
		}
		// Status 1: the heartbeat expired and nothing changed.
		b.reply(w, wbxml.Element(wbxml.PagePing, wbxml.PingPing, wbxml.Text(wbxml.PagePing, wbxml.PingStatus, "1")))
	case "FolderSync":
		p := wbxml.PageFolderHierarchy
		b.reply(w, wbxml.Element(p, wbxml.FolderSync,
			wbxml.Text(p, wbxml.FolderStatus, "1"),
			wbxml.Text(p, wbxml.FolderSyncKey, "1"),
			wbxml.Element(p, wbxml.FolderChanges,
				wbxml.Text(p, wbxml.FolderCount, "1"),
				wbxml.Element(p, wbxml.FolderAdd,
					wbxml.Text(p, wbxml.FolderServerID, "1"),
					wbxml.Text(p, wbxml.FolderParentID, "0"),
					wbxml.Text(p, wbxml.FolderDisplayName, "Inbox"),
					wbxml.Text(p, wbxml.FolderType, "2")))))
	default:
		http.Error(w, q.Cmd+" is not implemented by the example backend", http.StatusNotImplemented)
	}
}

// readBody reads the whole body (bounded) and checks it is WBXML.
func (b *backend) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.opts.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", b.opts.MaxBody)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading body: %v", err)
	}
	if len(body) == 0 {
		// Sync and Ping may come without a body (MS-ASHTTP 2.2.1.1.3).
		return body, 0, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/vnd.ms-sync.wbxml" && mt != "application/vnd.ms-sync" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q, want application/vnd.ms-sync.wbxml", mt)
	}
	if _, err := wbxml.Decode(body); err != nil {
		return nil, http.StatusBadRequest, err
	}
	return body, 0, nil
}

// autodiscover answers an Autodiscover (MS-ASCMD 2.2.1.1) POST with the
// ActiveSync URL on the host the client used; the request body is not read
// beyond its size limit, since the user is the one the proxy bound.
func (b *backend) autodiscover(w http.ResponseWriter, r *http.Request, user string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if _, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, b.opts.MaxBody)); err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		host = r.Host
	}
	var esc strings.Builder
	escape := func(s string) string {
		esc.Reset()
		_ = xml.EscapeText(&esc, []byte(s))
		return esc.String()
	}
	u := escape("https://" + host + "/Microsoft-Server-ActiveSync")
	b.log.Info("eas autodiscover", "identity", user, "host", host)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006">
    <Culture>en:us</Culture>
    <User><DisplayName>%[1]s</DisplayName><EMailAddress>%[1]s</EMailAddress></User>
    <Action><Settings><Server><Type>MobileSync</Type><Url>%[2]s</Url><Name>%[2]s</Name></Server></Settings></Action>
  </Response>
</Autodiscover>
`, escape(user), u)
}

func (b *backend) reply(w http.ResponseWriter, n *wbxml.Node) {
	out, err := wbxml.Encode(n)
	if err != nil {
		b.log.Error("encoding a response", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.ms-sync.wbxml")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

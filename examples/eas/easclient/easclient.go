// Package easclient is a small Exchange ActiveSync client: it sends
// OPTIONS, Provision, FolderSync, Sync, Ping and SendMail requests the way
// a phone does, in the plain or the base64 query form, so certgate's tests
// and demos can drive an EAS route without a device.
package easclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/proxy/eas"
)

// ContentType is the media type of ActiveSync WBXML bodies.
const ContentType = "application/vnd.ms-sync.wbxml"

// Client sends ActiveSync requests. The zero value is not usable: set URL.
// A Client is safe for concurrent use if its fields are not changed.
type Client struct {
	// HTTP sends the requests; nil means http.DefaultClient. For mTLS, give
	// it a Transport whose TLSClientConfig holds the client certificate.
	HTTP *http.Client
	// URL is the ActiveSync endpoint, such as
	// https://mail.contoso.com/Microsoft-Server-ActiveSync.
	URL string

	User       string // the query's User; empty sends none
	DeviceID   string // letters and digits, as MS-ASHTTP requires
	DeviceType string
	// ProtocolVersion is sent in MS-ASProtocolVersion (plain form) or in
	// the query (base64 form); empty means "14.1".
	ProtocolVersion string
	PolicyKey       uint32
	// Base64Query sends the base64-encoded query form (MS-ASHTTP
	// 2.2.1.1.1.1) instead of Cmd=...&User=....
	Base64Query bool
	// Header is added to every request (tests use it to send, say, a
	// spoofed identity header).
	Header http.Header
}

func (c *Client) version() string {
	if c.ProtocolVersion == "" {
		return "14.1"
	}
	return c.ProtocolVersion
}

// Query returns the query string the client sends for cmd.
func (c *Client) Query(cmd string) (string, error) {
	if c.Base64Query {
		return eas.EncodeBase64Query(eas.Query{
			Cmd: cmd, User: c.User, DeviceID: c.DeviceID, DeviceType: c.DeviceType,
			ProtocolVersion: c.version(), PolicyKey: c.PolicyKey, Locale: 0x0409,
		})
	}
	v := "Cmd=" + url.QueryEscape(cmd)
	if c.User != "" {
		v += "&User=" + url.QueryEscape(c.User)
	}
	return v + "&DeviceId=" + url.QueryEscape(c.DeviceID) + "&DeviceType=" + url.QueryEscape(c.DeviceType), nil
}

// Options asks which versions and commands the server supports.
func (c *Client) Options(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, c.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("easclient: %w", err)
	}
	c.addHeaders(req)
	return c.send(req)
}

// Do POSTs one command with a WBXML body (nil for none). The caller closes
// the response body.
func (c *Client) Do(ctx context.Context, cmd string, body []byte) (*http.Response, error) {
	q, err := c.Query(cmd)
	if err != nil {
		return nil, fmt.Errorf("easclient: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("easclient: %w", err)
	}
	// Set RawQuery directly: the base64 form's '+' and '/' go out as they
	// are, as devices send them.
	req.URL.RawQuery = q
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	if !c.Base64Query {
		// The base64 form carries these in the query instead.
		req.Header["MS-ASProtocolVersion"] = []string{c.version()}
		if c.PolicyKey != 0 {
			req.Header["X-MS-PolicyKey"] = []string{strconv.FormatUint(uint64(c.PolicyKey), 10)}
		}
	}
	c.addHeaders(req)
	return c.send(req)
}

// Sync sends a Sync command with body (see SyncRequest).
func (c *Client) Sync(ctx context.Context, body []byte) (*http.Response, error) {
	return c.Do(ctx, "Sync", body)
}

// Ping sends a Ping asking the server to hold it for heartbeat (whole
// seconds) before answering that nothing changed.
func (c *Client) Ping(ctx context.Context, heartbeat time.Duration) (*http.Response, error) {
	return c.Do(ctx, "Ping", PingRequest(heartbeat))
}

// PingFolders sends a Ping watching the given folders (server IDs from
// FolderSync) of one class ("Email") for heartbeat.
func (c *Client) PingFolders(ctx context.Context, heartbeat time.Duration, class string, ids ...string) (*http.Response, error) {
	return c.Do(ctx, "Ping", PingFoldersRequest(heartbeat, class, ids...))
}

// Provision asks for the device policy (policyKey "0" or empty at first)
// or acknowledges it (the temporary key the server gave, status "1").
func (c *Client) Provision(ctx context.Context, policyKey, status string) (*http.Response, error) {
	return c.Do(ctx, "Provision", ProvisionRequest(policyKey, status))
}

// SendMail submits mime (an RFC 5322 message) with the EAS 14 WBXML
// SendMail command, keeping a copy in Sent Items.
func (c *Client) SendMail(ctx context.Context, clientID string, mime []byte) (*http.Response, error) {
	return c.Do(ctx, "SendMail", SendMailRequest(clientID, mime))
}

// FolderSync asks for the folder hierarchy from syncKey ("0" at first).
func (c *Client) FolderSync(ctx context.Context, syncKey string) (*http.Response, error) {
	return c.Do(ctx, "FolderSync", FolderSyncRequest(syncKey))
}

func (c *Client) addHeaders(req *http.Request) {
	req.Header.Set("User-Agent", "certgate-easclient/1")
	for k, v := range c.Header {
		req.Header[k] = append(req.Header[k], v...)
	}
}

func (c *Client) send(req *http.Request) (*http.Response, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("easclient: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	return resp, nil
}

// ReadWBXML reads and closes resp's body and decodes it.
func ReadWBXML(resp *http.Response) (*wbxml.Node, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("easclient: reading body: %w", err)
	}
	n, err := wbxml.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("easclient: %w", err)
	}
	return n, nil
}

func mustEncode(n *wbxml.Node) []byte {
	b, err := wbxml.Encode(n)
	if err != nil {
		// The documents below use fixed, valid tags.
		panic(err)
	}
	return b
}

// SyncRequest is a minimal Sync body for one collection.
func SyncRequest(syncKey, collectionID string) []byte {
	p := wbxml.PageAirSync
	return mustEncode(wbxml.Element(p, wbxml.AirSyncSync,
		wbxml.Element(p, wbxml.AirSyncCollections,
			wbxml.Element(p, wbxml.AirSyncCollection,
				wbxml.Text(p, wbxml.AirSyncSyncKey, syncKey),
				wbxml.Text(p, wbxml.AirSyncCollectionID, collectionID)))))
}

// SyncChangesRequest asks for the changes of one collection since syncKey
// (not "0": the first Sync only fetches a key), at most window at a time.
func SyncChangesRequest(syncKey, collectionID string, window int) []byte {
	p := wbxml.PageAirSync
	return mustEncode(wbxml.Element(p, wbxml.AirSyncSync,
		wbxml.Element(p, wbxml.AirSyncCollections,
			wbxml.Element(p, wbxml.AirSyncCollection,
				wbxml.Text(p, wbxml.AirSyncSyncKey, syncKey),
				wbxml.Text(p, wbxml.AirSyncCollectionID, collectionID),
				wbxml.Element(p, wbxml.AirSyncGetChanges),
				wbxml.Text(p, wbxml.AirSyncWindowSize, strconv.Itoa(window))))))
}

// PingFoldersRequest is a Ping body watching folders of one class.
func PingFoldersRequest(heartbeat time.Duration, class string, ids ...string) []byte {
	p := wbxml.PagePing
	folders := wbxml.Element(p, wbxml.PingFolders)
	for _, id := range ids {
		folders.Children = append(folders.Children, wbxml.Element(p, wbxml.PingFolder,
			wbxml.Text(p, wbxml.PingID, id),
			wbxml.Text(p, wbxml.PingClass, class)))
	}
	return mustEncode(wbxml.Element(p, wbxml.PingPing,
		wbxml.Text(p, wbxml.PingHeartbeatInterval, strconv.Itoa(int(heartbeat/time.Second))),
		folders))
}

// ProvisionRequest asks for (policyKey "" or "0") or acknowledges (the
// server's temporary key and status "1") the EAS provisioning policy.
func ProvisionRequest(policyKey, status string) []byte {
	p := wbxml.PageProvision
	policy := wbxml.Element(p, wbxml.ProvisionPolicy,
		wbxml.Text(p, wbxml.ProvisionPolicyType, "MS-EAS-Provisioning-WBXML"))
	if policyKey != "" && policyKey != "0" {
		policy.Children = append(policy.Children, wbxml.Text(p, wbxml.ProvisionPolicyKey, policyKey))
	}
	if status != "" {
		policy.Children = append(policy.Children, wbxml.Text(p, wbxml.ProvisionStatus, status))
	}
	return mustEncode(wbxml.Element(p, wbxml.ProvisionProvision,
		wbxml.Element(p, wbxml.ProvisionPolicies, policy)))
}

// SendMailRequest is an EAS 14 SendMail body.
func SendMailRequest(clientID string, mime []byte) []byte {
	p := wbxml.PageComposeMail
	return mustEncode(wbxml.Element(p, wbxml.ComposeSendMail,
		wbxml.Text(p, wbxml.ComposeClientID, clientID),
		wbxml.Element(p, wbxml.ComposeSaveInSentItems),
		wbxml.Opaque(p, wbxml.ComposeMime, mime)))
}

// PingRequest is a Ping body watching the inbox (folder 1) for heartbeat.
func PingRequest(heartbeat time.Duration) []byte {
	p := wbxml.PagePing
	return mustEncode(wbxml.Element(p, wbxml.PingPing,
		wbxml.Text(p, wbxml.PingHeartbeatInterval, strconv.Itoa(int(heartbeat/time.Second))),
		wbxml.Element(p, wbxml.PingFolders,
			wbxml.Element(p, wbxml.PingFolder,
				wbxml.Text(p, wbxml.PingID, "1"),
				wbxml.Text(p, wbxml.PingClass, "Email")))))
}

// FolderSyncRequest is a FolderSync body.
func FolderSyncRequest(syncKey string) []byte {
	p := wbxml.PageFolderHierarchy
	return mustEncode(wbxml.Element(p, wbxml.FolderSync, wbxml.Text(p, wbxml.FolderSyncKey, syncKey)))
}

package easclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/certgate/certgate/examples/eas/easclient"
	"github.com/certgate/certgate/examples/eas/wbxml"
	"github.com/certgate/certgate/proxy/eas"
)

func TestQueryForms(t *testing.T) {
	c := &easclient.Client{User: `CONTOSO\alice`, DeviceID: "dev1", DeviceType: "Android Phone", PolicyKey: 7}
	plain, err := c.Query("Sync")
	if err != nil {
		t.Fatal(err)
	}
	if plain != "Cmd=Sync&User=CONTOSO%5Calice&DeviceId=dev1&DeviceType=Android+Phone" {
		t.Errorf("plain query %q", plain)
	}
	c.Base64Query = true
	b64, err := c.Query("Ping")
	if err != nil {
		t.Fatal(err)
	}
	q, err := eas.ParseQuery(b64)
	if err != nil {
		t.Fatal(err)
	}
	want := eas.Query{Cmd: "Ping", User: `CONTOSO\alice`, DeviceID: "dev1", DeviceType: "Android Phone",
		Base64: true, ProtocolVersion: "14.1", Locale: 0x0409, PolicyKey: 7}
	if q != want {
		t.Errorf("base64 query parses to %+v, want %+v", q, want)
	}

	c.User, c.Base64Query = "", false
	if plain, _ := c.Query("Sync"); strings.Contains(plain, "User=") {
		t.Errorf("empty User sent: %q", plain)
	}
	c.DeviceID, c.Base64Query = "not-alnum", true
	if _, err := c.Query("Sync"); err == nil {
		t.Error("base64 query with a bad DeviceID")
	}
}

func TestRequestShape(t *testing.T) {
	seen := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r }))
	defer srv.Close()
	c := &easclient.Client{HTTP: srv.Client(), URL: srv.URL + "/Microsoft-Server-ActiveSync",
		User: "alice", DeviceID: "d", DeviceType: "t", PolicyKey: 42, ProtocolVersion: "16.1",
		Header: http.Header{"X_Remote_User": {"spoof"}}}
	resp, err := c.Ping(context.Background(), 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r := <-seen
	if r.Method != http.MethodPost || r.URL.Path != "/Microsoft-Server-ActiveSync" {
		t.Errorf("%s %s", r.Method, r.URL.Path)
	}
	for k, want := range map[string]string{
		"Content-Type": easclient.ContentType, "MS-ASProtocolVersion": "16.1", "X-MS-PolicyKey": "42", "X_Remote_User": "spoof",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	// Base64 requests carry version and policy key in the query only.
	c.Base64Query = true
	resp, err = c.Sync(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r = <-seen
	if r.Header.Get("MS-ASProtocolVersion") != "" || r.Header.Get("X-MS-PolicyKey") != "" || r.Header.Get("Content-Type") != "" {
		t.Errorf("base64 request headers %v", r.Header)
	}
	if q, err := eas.ParseQuery(r.URL.RawQuery); err != nil || q.PolicyKey != 42 || q.ProtocolVersion != "16.1" {
		t.Errorf("query %q: %+v %v", r.URL.RawQuery, q, err)
	}
}

func TestBodies(t *testing.T) {
	n, err := wbxml.Decode(easclient.PingRequest(480 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if h := n.Find(wbxml.PagePing, wbxml.PingHeartbeatInterval); h == nil || h.Text != "480" {
		t.Errorf("HeartbeatInterval %+v", h)
	}
	n, err = wbxml.Decode(easclient.SyncRequest("0", "5"))
	if err != nil {
		t.Fatal(err)
	}
	if c := n.Find(wbxml.PageAirSync, wbxml.AirSyncCollectionID); c == nil || c.Text != "5" {
		t.Errorf("CollectionId %+v", c)
	}
	if _, err := wbxml.Decode(easclient.FolderSyncRequest("0")); err != nil {
		t.Error(err)
	}
}

func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := &easclient.Client{URL: url, DeviceID: "d"}
	_, err := c.Options(context.Background())
	if err == nil || !strings.HasPrefix(err.Error(), "easclient: OPTIONS ") {
		t.Errorf("err = %v", err)
	}
}

// The requests a phone sends to a real server decode to what they say.
func TestPhoneRequests(t *testing.T) {
	mime := []byte("Subject: hi\r\n\r\nbody\x00with a NUL\r\n")
	send, err := wbxml.Decode(easclient.SendMailRequest("c1", mime))
	if err != nil {
		t.Fatal(err)
	}
	if m := send.Find(wbxml.PageComposeMail, wbxml.ComposeMime); m == nil || m.Text != string(mime) ||
		send.Find(wbxml.PageComposeMail, wbxml.ComposeClientID).Text != "c1" ||
		send.Find(wbxml.PageComposeMail, wbxml.ComposeSaveInSentItems) == nil {
		t.Errorf("SendMail decodes to %+v", send)
	}
	ping, err := wbxml.Decode(easclient.PingFoldersRequest(5*time.Minute, "Email", "mail%2Fa", "mail%2Fb"))
	if err != nil {
		t.Fatal(err)
	}
	ids := ping.FindAll(wbxml.PagePing, wbxml.PingID)
	if len(ids) != 2 || ids[1].Text != "mail%2Fb" || ping.Find(wbxml.PagePing, wbxml.PingHeartbeatInterval).Text != "300" {
		t.Errorf("Ping decodes to %+v", ping)
	}
	prov, err := wbxml.Decode(easclient.ProvisionRequest("123", "1"))
	if err != nil {
		t.Fatal(err)
	}
	if prov.Find(wbxml.PageProvision, wbxml.ProvisionPolicyKey).Text != "123" || prov.Find(wbxml.PageProvision, wbxml.ProvisionStatus).Text != "1" {
		t.Errorf("Provision decodes to %+v", prov)
	}
	if first, _ := wbxml.Decode(easclient.ProvisionRequest("0", "")); first.Find(wbxml.PageProvision, wbxml.ProvisionPolicyKey) != nil {
		t.Error("the first Provision carries a policy key")
	}
	sync, err := wbxml.Decode(easclient.SyncChangesRequest("1-2", "mail%2Fa", 50))
	if err != nil {
		t.Fatal(err)
	}
	if sync.Find(wbxml.PageAirSync, wbxml.AirSyncGetChanges) == nil || sync.Find(wbxml.PageAirSync, wbxml.AirSyncWindowSize).Text != "50" {
		t.Errorf("Sync decodes to %+v", sync)
	}
}

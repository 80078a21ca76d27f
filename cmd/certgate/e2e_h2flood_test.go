package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/certgate/certgate/internal/pkigen"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestRapidResetFloodKeepsServingOthers opens HTTP/2 streams and resets
// them at once, as in CVE-2023-44487, from an authenticated client, while
// another client keeps making requests. The flood is bounded in count and
// time; the other client must be served throughout.
func TestRapidResetFloodKeepsServingOthers(t *testing.T) {
	e := newEnv(t, envConfig{})
	alice := e.inter.Leaf(t, "Alice", pkigen.UPN("alice@contoso.com"))

	cfg := e.clientTLS(alice)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", e.inst.proxyAddr(), cfg)
	must(t, err)
	defer conn.Close()
	if conn.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated %q, want h2", conn.ConnectionState().NegotiatedProtocol)
	}
	must(t, writeFull(conn, []byte(http2.ClientPreface)))
	fr := http2.NewFramer(conn, conn)
	must(t, fr.WriteSettings())
	go func() { // drain whatever the server says so it never blocks on us
		for {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hbuf.Bytes()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sent := 0
	go func() {
		defer wg.Done()
		deadline := time.Now().Add(5 * time.Second)
		conn.SetWriteDeadline(deadline)
		for id := uint32(1); id < 2*20000 && time.Now().Before(deadline); id += 2 {
			select {
			case <-stop:
				return
			default:
			}
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil {
				return
			}
			if fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
			sent++
		}
	}()

	other := &http.Client{Transport: &http.Transport{TLSClientConfig: e.clientTLS(alice), ForceAttemptHTTP2: true}, Timeout: 10 * time.Second}
	for i := 0; i < 20; i++ {
		resp, err := other.Get(e.url("/"))
		if err != nil {
			t.Fatalf("request %d during the flood: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d during the flood: %d", i, resp.StatusCode)
		}
	}
	close(stop)
	wg.Wait()
	reached := len(e.backend.requests())
	t.Logf("flood sent %d HEADERS+RST_STREAM pairs; backend saw %d requests", sent, reached)
	// Reset streams must not each cost a backend request: Go's HTTP/2
	// server bounds the handlers a reset flood can start.
	if sent >= 1000 && reached > sent/4 {
		t.Fatalf("%d of %d reset streams reached the backend", reached, sent)
	}
}

func writeFull(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return err
}

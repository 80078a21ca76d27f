package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client runs requests one at a time on one HTTP/2 connection, with the
// framer directly: net/http's client costs more CPU per request than the
// servers under test, which would make it the bottleneck.
type h2Client struct {
	conn    net.Conn
	bw      *bufio.Writer
	fr      *http2.Framer
	enc     *hpack.Encoder
	hbuf    bytes.Buffer
	stream  uint32
	host    string
	path    string
	unacked uint32
	body    []byte
}

// connWindow is the connection flow-control window the client grants, so
// that WINDOW_UPDATEs are rare.
const connWindow = 1 << 30

func newH2Client(conn net.Conn, host, path string) (*h2Client, error) {
	c := &h2Client{conn: conn, bw: bufio.NewWriterSize(conn, 16<<10), host: host, path: path, stream: 1}
	c.fr = http2.NewFramer(c.bw, bufio.NewReaderSize(conn, 16<<10))
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.enc = hpack.NewEncoder(&c.hbuf)
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := c.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}); err != nil {
		return nil, err
	}
	if err := c.fr.WriteWindowUpdate(0, connWindow-65535); err != nil {
		return nil, err
	}
	return c, c.bw.Flush()
}

// do sends one GET and reads its response; the body must contain expect.
func (c *h2Client) do(expect []byte) error {
	sid := c.stream
	c.stream += 2
	c.hbuf.Reset()
	for _, f := range [...]hpack.HeaderField{
		{Name: ":method", Value: "GET"},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: c.host},
		{Name: ":path", Value: c.path},
		{Name: "user-agent", Value: "certgate-bench"},
	} {
		if err := c.enc.WriteField(f); err != nil {
			return err
		}
	}
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: c.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	status := ""
	c.body = c.body[:0]
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID == sid {
				if s := f.PseudoValue("status"); s != "" {
					status = s
				}
				if f.StreamEnded() {
					return c.finish(status, expect)
				}
			}
		case *http2.DataFrame:
			n := uint32(len(f.Data()))
			if f.StreamID == sid && len(c.body)+len(f.Data()) <= maxBody {
				c.body = append(c.body, f.Data()...)
			}
			if err := c.consumed(n); err != nil {
				return err
			}
			if f.StreamID == sid && f.StreamEnded() {
				return c.finish(status, expect)
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := c.fr.WriteSettingsAck(); err != nil {
					return err
				}
				if err := c.bw.Flush(); err != nil {
					return err
				}
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := c.fr.WritePing(true, f.Data); err != nil {
					return err
				}
				if err := c.bw.Flush(); err != nil {
					return err
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == sid {
				return fmt.Errorf("stream reset: %v", f.ErrCode)
			}
		case *http2.GoAwayFrame:
			return fmt.Errorf("server sent GOAWAY: %v %q", f.ErrCode, f.DebugData())
		}
	}
}

// consumed returns flow-control credit once enough data has arrived.
func (c *h2Client) consumed(n uint32) error {
	c.unacked += n
	if c.unacked < 1<<20 {
		return nil
	}
	if err := c.fr.WriteWindowUpdate(0, c.unacked); err != nil {
		return err
	}
	c.unacked = 0
	return c.bw.Flush()
}

func (c *h2Client) finish(status string, expect []byte) error {
	if status != "200" {
		return fmt.Errorf("%w: HTTP %s: %q", errBadResponse, status, truncate(c.body))
	}
	if len(expect) > 0 && !bytes.Contains(c.body, expect) {
		return fmt.Errorf("%w: body %q lacks %q", errBadResponse, truncate(c.body), expect)
	}
	return nil
}

var errNotH2 = errors.New("server did not negotiate h2")

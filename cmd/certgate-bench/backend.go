package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"
)

// backend is the echo backend both servers under test forward to. It
// answers every request with "hello <X-Remote-User>\n". It parses only what
// it needs, because it shares a core with the load generator and must not
// be what limits the rate.
type backend struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// maxHeaderBytes bounds one request head.
const maxHeaderBytes = 64 << 10

func startBackend(addr string) (*backend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &backend{ln: ln, conns: map[net.Conn]struct{}{}}
	b.wg.Go(b.accept)
	return b, nil
}

func (b *backend) Addr() string { return b.ln.Addr().String() }

// Close stops accepting and closes every connection.
func (b *backend) Close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *backend) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: back off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Go(func() {
			serveBackendConn(c)
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		})
	}
}

var (
	hdrUser   = []byte("X-Remote-User")
	hdrLength = []byte("Content-Length")
	hdrTE     = []byte("Transfer-Encoding")
	hdrConn   = []byte("Connection")
)

func serveBackendConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 8<<10)
	bw := bufio.NewWriterSize(c, 8<<10)
	var userBuf, body []byte
	for {
		user, closeAfter, err := readBackendRequest(br, &userBuf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				bw.WriteString("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				bw.Flush()
			}
			return
		}
		body = append(append(append(body[:0], "hello "...), user...), '\n')
		bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ")
		bw.WriteString(strconv.Itoa(len(body)))
		if closeAfter {
			bw.WriteString("\r\nConnection: close")
		}
		bw.WriteString("\r\n\r\n")
		bw.Write(body)
		// Flush only when no pipelined request is waiting.
		if br.Buffered() == 0 || closeAfter {
			if bw.Flush() != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

// readBackendRequest reads one request head and discards its body. It
// returns the identity header's value (copied into *scratch's storage).
func readBackendRequest(br *bufio.Reader, scratch *[]byte) (user []byte, closeAfter bool, err error) {
	n := 0
	line, err := br.ReadSlice('\n')
	if err != nil {
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return nil, false, io.EOF
		}
		return nil, false, fmt.Errorf("request line: %w", err)
	}
	n += len(line)
	if bytes.Count(line, []byte(" ")) < 2 || !bytes.Contains(line, []byte(" HTTP/1.")) {
		return nil, false, fmt.Errorf("bad request line %q", truncate(line))
	}
	http10 := bytes.Contains(line, []byte(" HTTP/1.0"))
	closeAfter = http10
	cl, chunked := int64(0), false
	user = (*scratch)[:0]
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return nil, false, fmt.Errorf("header: %w", err)
		}
		if n += len(line); n > maxHeaderBytes {
			return nil, false, errors.New("request head too large")
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, false, fmt.Errorf("bad header %q", truncate(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, hdrUser):
			user = append(user[:0], value...)
		case bytes.EqualFold(name, hdrLength):
			if cl, err = strconv.ParseInt(string(value), 10, 64); err != nil || cl < 0 {
				return nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, hdrTE):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, hdrConn):
			v := bytes.ToLower(value)
			if bytes.Contains(v, []byte("close")) {
				closeAfter = true
			} else if http10 && bytes.Contains(v, []byte("keep-alive")) {
				closeAfter = false
			}
		}
	}
	*scratch = user
	switch {
	case chunked:
		if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
			return nil, false, fmt.Errorf("chunked body: %w", err)
		}
		if err := skipTrailer(br); err != nil {
			return nil, false, err
		}
	case cl > 0:
		if _, err := br.Discard(int(min(cl, 1<<40))); err != nil {
			return nil, false, fmt.Errorf("body: %w", err)
		}
	}
	return user, closeAfter, nil
}

func runBackend(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := parse(fs, args); err != nil {
		return err
	}
	b, err := startBackend(*listen)
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	fmt.Fprintf(out, "backend listening on %s\n", b.Addr())
	<-ctx.Done()
	b.Close()
	return nil
}

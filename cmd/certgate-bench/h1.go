package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"strconv"
)

// maxBody bounds what the client reads of one response body.
const maxBody = 1 << 20

// h1Request is a GET for path; close asks the server to close afterwards.
func h1Request(host, path string, close bool) []byte {
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: certgate-bench\r\n"
	if close {
		req += "Connection: close\r\n"
	}
	return []byte(req + "\r\n")
}

// errBadResponse marks a response that arrived but was not the expected
// 200 with the identity in the body (a refusal, or a wrong backend).
var errBadResponse = errors.New("unexpected response")

// readH1Response reads one HTTP/1.1 response. It parses only what a
// benchmark needs (status, Content-Length, chunked, Connection: close), so
// that the client's cost per request stays far below the server's.
func readH1Response(br *bufio.Reader, expect []byte, buf []byte) (body []byte, closed bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return nil, false, fmt.Errorf("bad status line %q", truncate(line))
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return nil, false, fmt.Errorf("bad status line %q", truncate(line))
	}
	cl, chunked := -1, false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, false, fmt.Errorf("bad header line %q", truncate(line))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if cl, err = strconv.Atoi(string(value)); err != nil || cl < 0 {
				return nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closed = closed || bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		body, err = readAllCapped(httputil.NewChunkedReader(br), buf)
		if err == nil {
			err = skipTrailer(br)
		}
	case cl >= 0:
		if cl > maxBody {
			return nil, false, fmt.Errorf("body of %d bytes", cl)
		}
		if cap(buf) < cl {
			buf = make([]byte, cl)
		}
		body = buf[:cl]
		_, err = io.ReadFull(br, body)
	default:
		body, err = readAllCapped(br, buf)
		closed = true
	}
	if err != nil {
		return nil, false, err
	}
	if code != 200 {
		return body, closed, fmt.Errorf("%w: HTTP %d: %q", errBadResponse, code, truncate(body))
	}
	if len(expect) > 0 && !bytes.Contains(body, expect) {
		return body, closed, fmt.Errorf("%w: body %q lacks %q", errBadResponse, truncate(body), expect)
	}
	return body, closed, nil
}

func readAllCapped(r io.Reader, buf []byte) ([]byte, error) {
	b := buf[:0]
	for {
		if len(b) == cap(b) {
			if len(b) >= maxBody {
				return nil, fmt.Errorf("body over %d bytes", maxBody)
			}
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func skipTrailer(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

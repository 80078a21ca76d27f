package h1

import "errors"

// ErrBadResponse is a backend response head the fast path cannot frame;
// the client gets 502.
var ErrBadResponse = errors.New("h1: malformed backend response")

// Response is a parsed backend response head.
type Response struct {
	Status        int
	ContentLength int64 // -1: not given
	Chunked       bool
	Close         bool // the backend closes after this response
	HeadLen       int
	StatusLine    Span // without CRLF
	NFields       int
	Fields        [MaxFields]Field
	Hop           [MaxFields]bool // hop-by-hop: not forwarded
}

// ParseResponse parses the response head at the start of b.
func ParseResponse(b []byte, r *Response) error {
	end, err := headEnd(b)
	if err == ErrIncomplete {
		return err
	}
	if err != nil {
		return ErrBadResponse
	}
	*r = Response{ContentLength: -1, HeadLen: end}
	line, rest := cutLine(b, 0, end)
	l := b[line.Start:line.End]
	if len(l) < 12 || string(l[:7]) != "HTTP/1." || (l[7] != '0' && l[7] != '1') || l[8] != ' ' || (len(l) > 12 && l[12] != ' ') {
		return ErrBadResponse
	}
	for _, c := range l[9:12] {
		if c < '0' || c > '9' {
			return ErrBadResponse
		}
		r.Status = r.Status*10 + int(c-'0')
	}
	if r.Status < 100 {
		return ErrBadResponse
	}
	r.StatusLine = line
	http10 := l[7] == '0'
	r.Close = http10
	var te, cl bool
	var conn Span
	hasConn := false
	for rest.Start < rest.End {
		line, rest = cutLine(b, rest.Start, rest.End)
		if line.Start == line.End {
			break
		}
		if c := b[line.Start]; c == ' ' || c == '\t' {
			return ErrBadResponse
		}
		j := line.Start
		for j < line.End && isTchar(b[j]) {
			j++
		}
		if j == line.Start || j == line.End || b[j] != ':' {
			return ErrBadResponse
		}
		v0, v1, ok := fieldValue(b, j+1, line.End)
		if !ok {
			return ErrBadResponse
		}
		if r.NFields == MaxFields {
			return ErrBadResponse
		}
		n := b[line.Start:j]
		hop := false
		switch {
		case equalFold(n, "content-length"):
			v, ok := parseLength(b[v0:v1])
			if !ok || (cl && v != r.ContentLength) {
				return ErrBadResponse
			}
			cl = true
			r.ContentLength = v
		case equalFold(n, "transfer-encoding"):
			// The final coding decides; kept for the client, which gets
			// the chunks as they are.
			te = true
			r.Chunked = false
			forTokens(b[v0:v1], func(tok []byte) { r.Chunked = equalFold(tok, "chunked") })
		case equalFold(n, "connection"):
			hop, hasConn, conn = true, true, Span{v0, v1}
			forTokens(b[v0:v1], func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					r.Close = true
				case equalFold(tok, "keep-alive") && http10:
					r.Close = false
				}
			})
		case equalFold(n, "keep-alive"), equalFold(n, "proxy-connection"), equalFold(n, "te"),
			equalFold(n, "trailer"), equalFold(n, "upgrade"), equalFold(n, "proxy-authenticate"):
			hop = true
		}
		r.Fields[r.NFields] = Field{Name: Span{line.Start, j}, Value: Span{v0, v1}}
		r.Hop[r.NFields] = hop
		r.NFields++
	}
	if te {
		if cl {
			r.Close = true // RFC 9112 6.3: Transfer-Encoding wins, then close
		}
		r.ContentLength = -1
		if !r.Chunked {
			r.Close = true // delimited by the close
		}
	}
	if hasConn {
		// Headers the backend named in Connection are hop-by-hop too.
		forTokens(b[conn.Start:conn.End], func(tok []byte) {
			for i := 0; i < r.NFields; i++ {
				f := r.Fields[i].Name
				if equalFoldBytes(b[f.Start:f.End], tok) {
					r.Hop[i] = true
				}
			}
		})
	}
	return nil
}

// NoBody reports whether a response to method has no body whatever its
// head says (RFC 9112 6.3).
func (r *Response) NoBody(head bool) bool {
	return head || r.Status < 200 || r.Status == 204 || r.Status == 304
}

// ChunkScanner follows chunked framing over a byte stream so that a body
// can be copied as it is and its end found.
type ChunkScanner struct {
	state     uint8
	size      int64
	digits    int
	lineBytes int
}

const (
	csSize uint8 = iota
	csExt
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailer
	csTrailerLine
	csTrailerLF
	csEndLF
	csDone
	csSizeWS
)

// maxChunkLine bounds a chunk-size line with its extensions, and the trailer.
const maxChunkLine = 4096

// ErrBadChunk is malformed chunked framing.
var ErrBadChunk = errors.New("h1: malformed chunked body")

// Scan consumes body bytes from p and returns how many belong to the body
// and whether the body ended with them.
func (c *ChunkScanner) Scan(p []byte) (int, bool, error) {
	i := 0
	for i < len(p) {
		b := p[i]
		switch c.state {
		case csSize:
			switch {
			case b >= '0' && b <= '9', b >= 'a' && b <= 'f', b >= 'A' && b <= 'F':
				if c.digits == 15 {
					return i, false, ErrBadChunk
				}
				c.digits++
				c.size = c.size<<4 | int64(unhex(b))
			case b == ';' && c.digits > 0:
				c.state = csExt
			case (b == ' ' || b == '\t') && c.digits > 0:
				// Trailing whitespace only, as net/http reads it.
				c.state = csSizeWS
			case b == '\r' && c.digits > 0:
				c.state = csSizeLF
			default:
				return i, false, ErrBadChunk
			}
		case csSizeWS:
			switch b {
			case ' ', '\t':
			case '\r':
				c.state = csSizeLF
			default:
				return i, false, ErrBadChunk
			}
		case csExt:
			c.lineBytes++
			switch {
			case b == '\r':
				c.state = csSizeLF
			case b == '\n' || c.lineBytes > maxChunkLine:
				return i, false, ErrBadChunk
			}
		case csSizeLF:
			if b != '\n' {
				return i, false, ErrBadChunk
			}
			c.digits, c.lineBytes = 0, 0
			if c.size == 0 {
				c.state = csTrailer
			} else {
				c.state = csData
			}
		case csData:
			n := int64(len(p) - i)
			if n > c.size {
				n = c.size
			}
			c.size -= n
			i += int(n)
			if c.size == 0 {
				c.state = csDataCR
			}
			continue
		case csDataCR:
			if b != '\r' {
				return i, false, ErrBadChunk
			}
			c.state = csDataLF
		case csDataLF:
			if b != '\n' {
				return i, false, ErrBadChunk
			}
			c.state = csSize
		case csTrailer:
			if b == '\r' {
				c.state = csEndLF
			} else if b == '\n' {
				return i, false, ErrBadChunk
			} else {
				c.state = csTrailerLine
				c.lineBytes++
			}
		case csTrailerLine:
			c.lineBytes++
			if c.lineBytes > maxChunkLine {
				return i, false, ErrBadChunk
			}
			if b == '\r' {
				c.state = csTrailerLF
			} else if b == '\n' {
				return i, false, ErrBadChunk
			}
		case csTrailerLF:
			if b != '\n' {
				return i, false, ErrBadChunk
			}
			c.state = csTrailer
		case csEndLF:
			if b != '\n' {
				return i, false, ErrBadChunk
			}
			c.state = csDone
			return i + 1, true, nil
		case csDone:
			return i, true, nil
		}
		i++
	}
	return i, c.state == csDone, nil
}

func unhex(b byte) byte {
	switch {
	case b >= '0' && b <= '9':
		return b - '0'
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10
	}
	return b - 'A' + 10
}

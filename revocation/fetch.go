package revocation

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// validator is what a conditional fetch sends back: the HTTP ETag and
// Last-Modified, or a file's modification time and size.
type validator struct {
	etag, lastModified string
	fileStamp          string
}

// fetchResult is one fetched body, or notModified.
type fetchResult struct {
	body        []byte
	validator   validator
	notModified bool
}

// fetch gets rawURL with a size cap, a timeout and a conditional request.
func (c *Checker) fetch(ctx context.Context, rawURL string, cond validator) (fetchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	u, err := url.Parse(rawURL)
	if err != nil {
		return fetchResult{}, &FetchError{Kind: KindHTTP, URL: rawURL, Err: err}
	}
	var res fetchResult
	switch u.Scheme {
	case "http", "https":
		res, err = c.fetchHTTP(ctx, u, cond)
	case "file":
		res, err = c.fetchFile(u, cond)
	default:
		err = fetchErrorf(KindHTTP, "unsupported URL scheme %q", u.Scheme)
	}
	if err != nil {
		var fe *FetchError
		if !errors.As(err, &fe) {
			fe = &FetchError{Kind: classify(ctx, err), Err: err}
		}
		if fe.URL == "" {
			fe.URL = rawURL
		}
		return fetchResult{}, fe
	}
	return res, nil
}

// classify tells a timeout from any other transport failure.
func classify(ctx context.Context, err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return KindTimeout
	}
	return KindHTTP
}

func (c *Checker) fetchHTTP(ctx context.Context, u *url.URL, cond validator) (fetchResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fetchResult{}, err
	}
	if cond.etag != "" {
		req.Header.Set("If-None-Match", cond.etag)
	}
	if cond.lastModified != "" {
		req.Header.Set("If-Modified-Since", cond.lastModified)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return fetchResult{}, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if cond == (validator{}) {
			// Nothing was asked conditionally: a 304 here proves nothing.
			return fetchResult{}, fetchErrorf(KindHTTP, "HTTP 304 to an unconditional request")
		}
		return fetchResult{notModified: true, validator: cond}, nil
	case http.StatusOK:
	default:
		fe := fetchErrorf(KindHTTP, "HTTP status %s", resp.Status)
		fe.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		return fetchResult{}, fe
	}
	body, err := readCapped(resp.Body, c.opts.MaxCRLSize, resp.ContentLength)
	if err != nil {
		return fetchResult{}, err
	}
	return fetchResult{body: body, validator: validator{
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
	}}, nil
}

// parseRetryAfter reads a Retry-After value, delay-seconds or an HTTP date
// (RFC 9110 §10.2.3), as a wait from now; 0 when absent, unreadable or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (c *Checker) fetchFile(u *url.URL, cond validator) (fetchResult, error) {
	if u.Host != "" && u.Host != "localhost" {
		return fetchResult{}, fetchErrorf(KindIO, "file URL with host %q", u.Host)
	}
	f, err := os.Open(u.Path)
	if err != nil {
		return fetchResult{}, &FetchError{Kind: KindIO, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fetchResult{}, &FetchError{Kind: KindIO, Err: err}
	}
	stamp := fi.ModTime().UTC().Format("2006-01-02T15:04:05.999999999Z") + "/" + strconv.FormatInt(fi.Size(), 10)
	if cond.fileStamp != "" && cond.fileStamp == stamp {
		return fetchResult{notModified: true, validator: cond}, nil
	}
	body, err := readCapped(f, c.opts.MaxCRLSize, fi.Size())
	if err != nil {
		var fe *FetchError
		if !errors.As(err, &fe) {
			err = &FetchError{Kind: KindIO, Err: err}
		}
		return fetchResult{}, err
	}
	return fetchResult{body: body, validator: validator{fileStamp: stamp}}, nil
}

// readCapped reads all of r, refusing more than max bytes, into a buffer
// from bodyPool; the caller hands it back with putBody once nothing refers
// to it. With a size hint it takes one buffer; without, it fills a pooled
// buffer and, past its end, collects chunks and joins them once, so the
// peak stays near twice the body instead of the three times that append
// growth can reach.
func readCapped(r io.Reader, max, hint int64) ([]byte, error) {
	if hint > max {
		return nil, fetchErrorf(KindSize, "body of %d bytes exceeds the %d-byte limit", hint, max)
	}
	lr := io.LimitReader(r, max+1)
	if hint > 0 {
		buf := getBody(int(hint) + 1)[:0] // one spare byte to see EOF without growing
		for {
			n, err := lr.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if int64(len(buf)) > max {
				putBody(buf)
				return nil, fetchErrorf(KindSize, "body exceeds the %d-byte limit", max)
			}
			if err == io.EOF {
				return buf, nil
			}
			if err != nil {
				putBody(buf)
				return nil, err
			}
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)] // the hint was wrong: grow
			}
		}
	}
	var chunks [][]byte
	var total int64
	// The first chunk is whatever the pool holds (usually the last body of
	// about this size): a re-fetched CRL of unknown length fits in it.
	first, pooled := pooledBody()
	size := 64 << 10
	for i := 0; ; i++ {
		var chunk []byte
		if i == 0 && pooled {
			chunk = first
		} else {
			chunk = make([]byte, size)
			size = min(size*2, 4<<20)
		}
		n, err := io.ReadFull(lr, chunk)
		if n > 0 {
			chunks = append(chunks, chunk[:n])
			total += int64(n)
		}
		if total > max {
			if pooled {
				putBody(first)
			}
			return nil, fetchErrorf(KindSize, "body exceeds the %d-byte limit", max)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			if pooled {
				putBody(first)
			}
			return nil, err
		}
	}
	if pooled && len(chunks) == 1 {
		return chunks[0], nil // it all fitted in the pooled buffer
	}
	out := getBody(int(total))[:0]
	for _, ch := range chunks {
		out = append(out, ch...)
	}
	if pooled {
		putBody(first)
	}
	return out, nil
}

// Fetched bodies are recycled: a big CRL is re-fetched at about the same
// size on every refresh, and allocating 35 MB each time (zeroed, faulted
// in, then collected) slowed the handshakes running beside the refresh.
// Nothing built from a body may alias it (the crl type copies what it
// keeps), so the buffer is free again once the fetch is handled.
// sync.Pool lets the collector free it when refreshes stop.
var bodyPool sync.Pool // of *[]byte

// minPooledBody keeps small bodies out of the pool.
const minPooledBody = 256 << 10

// getBody returns a buffer of length n, pooled when one fits.
func getBody(n int) []byte {
	if n >= minPooledBody {
		if p, _ := bodyPool.Get().(*[]byte); p != nil {
			// Reuse up to twice the size needed, else let the collector
			// have it rather than hold a big buffer for a small CRL.
			if b := *p; cap(b) >= n && cap(b) <= 2*n {
				return b[:n]
			}
		}
	}
	return make([]byte, n)
}

// pooledBody returns the pooled buffer at its full capacity, if any.
func pooledBody() ([]byte, bool) {
	p, _ := bodyPool.Get().(*[]byte)
	if p == nil {
		return nil, false
	}
	return (*p)[:cap(*p)], true
}

// putBody gives b back for the next fetch; b must not be used after.
func putBody(b []byte) {
	if cap(b) < minPooledBody {
		return
	}
	b = b[:0]
	bodyPool.Put(&b)
}

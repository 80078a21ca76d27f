package revocation

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// cachePath names a source's cache file: <SKI hex>.crl or <SKI hex>.delta.crl.
func (c *Checker) cachePath(s *source, w which) string {
	name := s.skiHex + ".crl"
	if w == deltaCRL {
		name = s.skiHex + ".delta.crl"
	}
	return filepath.Join(c.opts.CacheDir, name)
}

// loadCache installs the CRLs a previous run kept for s, after verifying
// them again against the current issuer. A file that fails is ignored with
// a log line; a stale one is loaded (its revocations still count) and Check
// reports the CA as crl_stale until a fetch succeeds.
func (c *Checker) loadCache(s *source) {
	if c.opts.CacheDir == "" {
		return
	}
	for _, w := range []which{baseCRL, deltaCRL} {
		if s.feeds[w].url == "" {
			continue
		}
		path := c.cachePath(s, w)
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var body []byte
		if err == nil {
			var fi os.FileInfo
			if fi, err = f.Stat(); err == nil {
				body, err = readCapped(f, c.opts.MaxCRLSize, fi.Size())
			}
			f.Close()
		}
		if err != nil {
			c.countIO(s, &FetchError{Kind: KindIO, URL: path, Err: err})
			continue
		}
		// At start, before traffic: no pacing.
		parsed, err := parseCRL(body, s.iss, nil)
		putBody(body)
		if err == nil {
			err = checkKind(parsed, w)
		}
		if err == nil {
			err = parsed.checkTimes(c.now(), c.opts.Skew, false)
		}
		if err == nil {
			_, err = c.install(s, w, parsed, validator{}, true)
		}
		if err != nil {
			c.log.Warn("cached CRL ignored", "issuer_ski", s.skiHex, "file", path, "crl", w.String(), "err", err)
			continue
		}
		c.log.Info("CRL loaded from cache", "issuer_ski", s.skiHex, "file", path, "crl", w.String(), "kind", "cache",
			"entries", parsed.entries, "number", numberString(parsed.number),
			"this_update", parsed.thisUpdate, "next_update", parsed.nextUpdate,
			"stale", c.now().After(parsed.nextUpdate))
	}
}

// writeCache keeps body as the source's last good CRL: a temporary file in
// the same directory, synced, renamed over the old one, then the directory
// synced, so a crash leaves the old file or the new one, never half of one.
// A failure is logged and counted as "io"; serving goes on.
func (c *Checker) writeCache(s *source, w which, body []byte) {
	if c.opts.CacheDir == "" || c.opts.CacheReadOnly {
		return
	}
	path := c.cachePath(s, w)
	if err := writeAtomic(path, body); err != nil {
		c.countIO(s, &FetchError{Kind: KindIO, URL: path, Err: err})
	}
}

func (c *Checker) countIO(s *source, err *FetchError) {
	c.mu.Lock()
	s.fetchErrors[KindIO]++
	s.lastErr = err.Error()
	c.mu.Unlock()
	c.log.Warn("CRL cache I/O failed", "issuer_ski", s.skiHex, "file", err.URL, "kind", KindIO, "err", err.Err)
}

func writeAtomic(path string, body []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.crl")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(body); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

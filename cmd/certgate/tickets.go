package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/certgate/certgate/config"
)

// Session-ticket key file (serverTLS.sessionTicketKeyFile): one
// base64-encoded (standard alphabet, padded) 32-byte key per line; blank
// lines and lines starting with # are ignored. The first key seals new
// tickets; every key opens tickets. Replicas behind one L4 balancer that
// read the same file resume each other's TLS sessions.
const (
	ticketKeyLen = 32
	// maxTicketKeys bounds the trial decryptions crypto/tls does for every
	// ticket a client presents.
	maxTicketKeys = 16
	// defaultTicketKeep is how many keys `tickets new` keeps: the new one
	// and the two before it, so a ticket survives two rotations.
	defaultTicketKeep = 3
)

const ticketFileHeader = `# certgate session-ticket keys (serverTLS.sessionTicketKeyFile).
# One base64 32-byte key per line: the first seals new tickets, all open them.
# Rotate with: certgate tickets new --file <this file>. Keep this file secret.
`

// loadTicketKeys reads and parses a session-ticket key file.
func loadTicketKeys(path string) ([][32]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("serverTLS.sessionTicketKeyFile: %w", err)
	}
	return parseTicketKeys(b, path)
}

// parseTicketKeys parses the key file format; name prefixes errors, which
// give the line but never its content (it is a secret).
func parseTicketKeys(data []byte, name string) ([][32]byte, error) {
	var keys [][32]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != ticketKeyLen {
			return nil, fmt.Errorf("%s:%d: not a base64-encoded %d-byte key", name, line, ticketKeyLen)
		}
		if len(keys) == maxTicketKeys {
			return nil, fmt.Errorf("%s:%d: more than %d keys; drop the oldest (last) lines", name, line, maxTicketKeys)
		}
		var k [32]byte
		copy(k[:], raw)
		for _, prev := range keys {
			if prev == k {
				return nil, fmt.Errorf("%s:%d: key repeats an earlier line", name, line)
			}
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys (write one with `certgate tickets new --file %s`)", name, name)
	}
	return keys, nil
}

// formatTicketKeys renders keys in the file format.
func formatTicketKeys(keys [][32]byte) []byte {
	var b bytes.Buffer
	b.WriteString(ticketFileHeader)
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k[:]))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// rotateTicketKeys puts a fresh random key first and keeps at most keep
// keys in all, dropping the oldest.
func rotateTicketKeys(old [][32]byte, keep int) ([][32]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	keys := append([][32]byte{k}, old...)
	if len(keys) > keep {
		keys = keys[:keep]
	}
	return keys, nil
}

// runTickets implements `certgate tickets new`: it creates the key file or
// rotates it (a new first key; the previous ones still open tickets).
func runTickets(_ context.Context, args []string, stdout, _ io.Writer) error {
	const use = "usage: certgate tickets new (--file F | --config C) [--keep N]"
	if len(args) > 0 && isHelp(args[0]) {
		return &helpRequested{text: usageOf("tickets")}
	}
	if len(args) == 0 || args[0] != "new" {
		return usageErr(use)
	}
	fset := flag.NewFlagSet("tickets new", flag.ContinueOnError)
	fileFlag := fset.String("file", "", "session-ticket key file to create or rotate")
	cfgFlag := fset.String("config", "", "take the file from this config's serverTLS.sessionTicketKeyFile")
	keep := fset.Int("keep", defaultTicketKeep, "keys to keep, the new one included")
	pos, err := parseFlags(fset, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr("%s (unexpected %q)", use, pos[0])
	}
	if *keep < 1 || *keep > maxTicketKeys {
		return usageErr("--keep %d: must be between 1 and %d", *keep, maxTicketKeys)
	}
	path := *fileFlag
	switch {
	case path != "" && *cfgFlag != "":
		return usageErr("--file and --config are mutually exclusive")
	case path == "" && *cfgFlag == "":
		return usageErr(use)
	case path == "":
		cfg, err := loadConfig(*cfgFlag)
		if err != nil {
			return err
		}
		if cfg.ServerTLS.SessionTicketKeyFile == "" {
			return usageErr("%s: serverTLS.sessionTicketKeyFile is not set", cfg.File)
		}
		path = cfg.Path(cfg.ServerTLS.SessionTicketKeyFile)
	}

	var old [][32]byte
	if b, err := os.ReadFile(path); err == nil {
		// A damaged file is not silently replaced: its keys may still be
		// in service on other replicas.
		if old, err = parseTicketKeys(b, path); err != nil {
			return &exitError{code: 2, err: err}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return &exitError{code: 2, err: err}
	}
	keys, err := rotateTicketKeys(old, *keep)
	if err != nil {
		return err
	}
	if err := writeSecretFile(path, formatTicketKeys(keys)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: new session-ticket key first; %d key(s) in the file, %d dropped\n",
		path, len(keys), len(old)+1-len(keys))
	return nil
}

// writeSecretFile replaces path atomically with a 0600 file, so a replica
// polling it never reads half a key list.
func writeSecretFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tickets-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ticketKeysFor loads cur's session-ticket keys; nil without a key file.
// old is the configuration in service (nil at start): a reload that drops
// the key file is refused, because crypto/tls cannot go back from shared
// keys to its own rotating ones, and keeping a possibly leaked key in
// silence is worse than saying so.
func ticketKeysFor(old, cur *config.Config) ([][32]byte, error) {
	f := cur.ServerTLS.SessionTicketKeyFile
	if f == "" {
		if old != nil && old.ServerTLS.SessionTicketKeyFile != "" {
			return nil, errors.New("serverTLS.sessionTicketKeyFile was removed; the shared keys stay in use until a restart")
		}
		return nil, nil
	}
	return loadTicketKeys(cur.Path(f))
}

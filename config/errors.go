package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem at one place of a config file. Line is 0 and File
// empty when they are not known (for example for a [Config] built in code).
type Error struct {
	File string // the file name as given to Load or Parse
	Line int    // 1-based line of the key, 0 if unknown
	Key  string // key path such as "routes[1].backend"; empty for the whole file
	Err  error
}

// Error formats the problem as "file:line: key: message", leaving out the
// parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error, so that errors.Is(err, fs.ErrNotExist)
// works for a missing file.
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an [*Error] for a key of this config, with the file and line
// the key was read from. Other packages use it to report problems they find
// later (a backend that does not answer, an LDAP bind that fails) in the same
// form as validation errors.
func (c *Config) Errorf(key string, format string, args ...any) *Error {
	return &Error{File: c.File, Line: c.lineOf(key), Key: key, Err: fmt.Errorf(format, args...)}
}

// joinErrors sorts the errors by line (keeping the order of discovery within
// a line) so that a reader can walk the file top to bottom.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].Line, errs[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return errors.Join(out...)
}

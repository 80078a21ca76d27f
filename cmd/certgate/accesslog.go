package main

import (
	"fmt"
	"io"
	"os"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/proxy"
)

// openAccessLog opens the configured access log, or returns nil when the
// config has none. A file is opened anew at every reload, so that after
// logrotate renames it a SIGHUP moves the log to the new file; the old
// file is closed by the runtime once the last request of the policy that
// used it has ended (a long poll may still be writing to it).
func openAccessLog(cfg *config.Config) (*proxy.AccessLog, error) {
	a := cfg.AccessLog
	if a == nil {
		return nil, nil
	}
	var w io.Writer
	switch a.File {
	case "stdout", "":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(cfg.Path(a.File), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("%s: accessLog.file: %w", cfg.File, err)
		}
		w = f
	}
	l, err := proxy.NewAccessLog(w, string(a.Format))
	if err != nil {
		return nil, fmt.Errorf("%s: accessLog.format: %w", cfg.File, err)
	}
	return l, nil
}

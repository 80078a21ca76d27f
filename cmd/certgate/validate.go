package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"
)

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr("validate takes no arguments, got %q", pos[0])
	}
	path := configPath(*cfgFlag)
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	// Building the policy loads the directory, the trust store and the
	// routes exactly as serve would, without listening or fetching.
	b, err := build(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer b.close()
	if cfg.ServerTLS.CertFile != "" {
		if _, err := newServerCertCheck(cfg); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	for i, st := range b.store.CAStatus(time.Now()) {
		if !st.Usable {
			fmt.Fprintf(stderr, "certgate: warning: %s: trustedCertificateAuthorities[%d] (%s) is unusable now, chains that need it are refused: %s\n",
				path, i, cfg.CAs[i].TrustedCertificate, st.Defect)
		}
	}
	fmt.Fprintf(stdout, "%s: OK (%d trusted CAs, %d routes)\n", path, len(cfg.CAs), len(cfg.Routes))
	return nil
}

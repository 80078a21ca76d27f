package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/certgate/certgate/trust"
)

// runUser implements `certgate user revoke-sessions`: it moves the user's
// stsRefreshTokensValidFrom in the directory file; a running serve sees the
// file change, closes the user's older connections and refuses the user
// until a CRL published after that time arrives.
func runUser(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		return &helpRequested{text: usageOf("user")}
	}
	if len(args) == 0 || args[0] != "revoke-sessions" {
		return usageErr("usage: certgate user revoke-sessions (--config F | --users FILE) USER [--at T]")
	}
	fs := flag.NewFlagSet("user revoke-sessions", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	atFlag := fs.String("at", "", "RFC 3339 time (default now)")
	usersFlag := fs.String("users", "", "edit this users.yaml directly instead of the config's directory file (a GitOps checkout, where the config's other paths do not exist)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErr("usage: certgate user revoke-sessions (--config F | --users FILE) USER [--at T]")
	}
	at := time.Now().UTC().Truncate(time.Second)
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usageErr("--at %q: not an RFC 3339 time", *atFlag)
		}
	}
	if *usersFlag != "" {
		if err := trust.SetSessionsValidFrom(*usersFlag, pos[0], at); err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "%s: sessions of %s before %s are revoked\n", *usersFlag, pos[0], at.Format(time.RFC3339))
		return nil
	}
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	d := cfg.Identity.Directory
	if d == nil || d.File == "" {
		return usageErr("%s: identity.directory.file is not set; revoke-sessions edits the directory file (for LDAP, set the sessions-valid-from attribute in the directory)", cfg.File)
	}
	if err := trust.SetSessionsValidFrom(cfg.Path(d.File), pos[0], at); err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stdout, "%s: sessions of %s before %s are revoked\n", cfg.Path(d.File), pos[0], at.Format(time.RFC3339))
	return nil
}

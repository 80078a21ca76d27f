package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/certgate/certgate/config"
)

const caUsage = `usage:
  certgate ca list --config F
  certgate ca add --config F --type root|intermediate --cert FILE [--crl URL] [--delta-crl URL] [--crl-exempt]
  certgate ca remove --config F SKI
  certgate ca set --config F SKI [--type T] [--crl URL] [--delta-crl URL]`

// runCA edits trustedCertificateAuthorities in the config file in place,
// keeping its comments; a running serve notices the change and reloads.
func runCA(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("ca needs a subcommand\n%s", caUsage)
	}
	if isHelp(args[0]) {
		return &helpRequested{text: usageOf("ca")}
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("ca "+sub, flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	var typ, certFile, crl, delta flagString
	exempt := false
	switch sub {
	case "add", "set":
		fs.Var(&typ, "type", "root or intermediate")
		fs.Var(&crl, "crl", "CRL distribution point URL")
		fs.Var(&delta, "delta-crl", "delta CRL URL")
		if sub == "add" {
			fs.Var(&certFile, "cert", "the CA certificate (PEM or DER .cer)")
			fs.BoolVar(&exempt, "crl-exempt", false, "trust this CA without CRL checks (only when it has no CRL)")
		}
	case "list", "remove":
	default:
		return usageErr("unknown ca subcommand %q\n%s", sub, caUsage)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		cas, err := config.ListCAs(path)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		for _, c := range cas {
			urls := strings.TrimSpace(c.CRL + " " + c.DeltaCRL)
			if urls == "" {
				urls = "-"
			}
			fmt.Fprintf(stdout, "%-12s %s  %s  %s\n", c.Type, c.SKI, c.Subject, urls)
		}
		return nil
	case "add":
		if !certFile.set || !typ.set {
			return usageErr("ca add needs --type and --cert\n%s", caUsage)
		}
		info, err := config.AddCA(path, typ.v, certFile.v, crl.v, delta.v, exempt)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "added %s %s (%s)\n", info.Type, info.SKI, info.Subject)
		return nil
	case "remove":
		if len(pos) != 1 {
			return usageErr("ca remove needs one SKI\n%s", caUsage)
		}
		if err := config.RemoveCA(path, pos[0]); err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "removed %s\n", pos[0])
		return nil
	default: // set
		if len(pos) != 1 {
			return usageErr("ca set needs one SKI\n%s", caUsage)
		}
		var ch config.CAChanges
		if typ.set {
			ch.Type = &typ.v
		}
		if crl.set {
			ch.CRL = &crl.v
		}
		if delta.set {
			ch.DeltaCRL = &delta.v
		}
		if err := config.SetCA(path, pos[0], ch); err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "updated %s\n", pos[0])
		return nil
	}
}

// flagString remembers whether it was given, so `--crl ""` can clear a URL.
type flagString struct {
	v   string
	set bool
}

func (f *flagString) String() string     { return f.v }
func (f *flagString) Set(s string) error { f.v, f.set = s, true; return nil }

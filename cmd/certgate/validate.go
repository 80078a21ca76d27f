package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/revocation"
)

// validateResult is `certgate validate --json`.
type validateResult struct {
	Config     string         `json:"config"`
	OK         bool           `json:"ok"`
	Errors     []string       `json:"errors,omitempty"`
	Warnings   []string       `json:"warnings,omitempty"` // CAs that load but are unusable now
	TrustedCAs int            `json:"trustedCAs"`
	Routes     int            `json:"routes"`
	Revocation []caRevocation `json:"revocation"`
}

// caRevocation is one CA's revocation state as validate sees it: the CRL
// in the cache directory (what serve would start with) and the CRL read
// from its file: URL, or fetched from its http(s) URL with --fetch.
type caRevocation struct {
	Key         string    `json:"key"` // trustedCertificateAuthorities[i]
	Subject     string    `json:"subject"`
	IssuerSKI   string    `json:"issuerSki"`
	CRLExempt   bool      `json:"crlExempt,omitempty"`
	CRLURL      string    `json:"crlUrl,omitempty"`
	DeltaCRLURL string    `json:"deltaCrlUrl,omitempty"`
	Cache       *crlState `json:"cache,omitempty"` // absent: nothing cached
	CRL         *crlState `json:"crl,omitempty"`   // absent: not read (http without --fetch)
}

type crlState struct {
	Number     string     `json:"number,omitempty"`
	Entries    int        `json:"entries"`
	ThisUpdate *time.Time `json:"thisUpdate,omitempty"`
	NextUpdate *time.Time `json:"nextUpdate,omitempty"`
	Stale      bool       `json:"stale"`
	Error      string     `json:"error,omitempty"`
}

func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	fetch := fs.Bool("fetch", false, "also fetch the http(s) CRLs once (file: CRLs are always read)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageErr("validate takes no arguments, got %q", pos[0])
	}
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	// Building the policy loads the directory, the trust store and the
	// routes exactly as serve would, without listening.
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
	var warnings []string
	for i, st := range b.store.CAStatus(time.Now()) {
		if !st.Usable {
			warnings = append(warnings, fmt.Sprintf("%s: trustedCertificateAuthorities[%d] (%s) is unusable now, chains that need it are refused: %s",
				path, i, cfg.CAs[i].TrustedCertificate, st.Defect))
		}
	}
	res := validateResult{Config: path, TrustedCAs: len(cfg.CAs), Routes: len(cfg.Routes), Warnings: warnings}
	var errs []error
	res.Revocation, errs = checkCRLs(ctx, cfg, b.sources, *fetch)
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	res.OK = len(errs) == 0
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		for _, w := range res.Warnings {
			fmt.Fprintln(stderr, "certgate: warning: "+w)
		}
		for _, r := range res.Revocation {
			fmt.Fprintln(stdout, r.line())
		}
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, "certgate: "+e)
		}
		if res.OK {
			fmt.Fprintf(stdout, "%s: OK (%d trusted CAs, %d routes)\n", path, len(cfg.CAs), len(cfg.Routes))
		}
	}
	if !res.OK {
		return &exitError{code: 2, err: errSilent}
	}
	return nil
}

// checkCRLs reads the cache directory (read-only) and every file: CRL, and
// with fetch every http(s) one, verifying each as serve would: signature by
// its CA, thisUpdate/nextUpdate, a CRL number not behind the cached one.
func checkCRLs(ctx context.Context, cfg *config.Config, sources []revocation.Source, fetch bool) ([]caRevocation, []error) {
	opts := revocationOptions(cfg, slog.New(slog.DiscardHandler), nil)
	opts.CacheReadOnly = true // the cache of a running serve: look, do not touch
	rev := revocation.New(opts)
	rev.SetSources(sources) // loads and re-verifies the cache
	cached := rev.Status()
	read := func(u string) bool { return fetch || strings.HasPrefix(u, "file:") }
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	_ = rev.RefreshWhere(fctx, read) // failures are in Status, per CA
	after := rev.Status()

	var out []caRevocation
	var errs []error
	for i, src := range sources {
		key := "trustedCertificateAuthorities[" + strconv.Itoa(i) + "]"
		// The URLs as the config spells them (file: ones are resolved in src).
		r := caRevocation{Key: key, Subject: config.SubjectString(src.Issuer), CRLExempt: src.Exempt,
			CRLURL: cfg.CAs[i].CRL, DeltaCRLURL: cfg.CAs[i].DeltaCRL}
		before, ok1 := findStatus(cached, src)
		now, ok2 := findStatus(after, src)
		if !ok1 || !ok2 {
			continue // a second CA with the same SKI: the first one's CRL serves both
		}
		r.IssuerSKI = now.IssuerSKI
		if before.FromCache {
			r.Cache = stateOf(before)
		}
		if src.CRLURL != "" && read(src.CRLURL) {
			st := stateOf(now)
			switch {
			case now.LastError != "":
				st.Error = now.LastError
			case now.Number == "" && now.ThisUpdate.IsZero():
				st.Error = "no CRL was read"
			case now.Stale:
				st.Error = "the CRL is stale: serve would refuse this CA's certificates (revocation.onUnavailable: deny)"
				if now.NextUpdate.After(time.Now()) {
					st.Error = "the delta CRL is missing or stale"
				}
			}
			if st.Error != "" {
				errs = append(errs, cfg.Errorf(key+".crlDistributionPoint", "%s", st.Error))
			}
			r.CRL = st
		}
		out = append(out, r)
	}
	return out, errs
}

func findStatus(all []revocation.SourceStatus, src revocation.Source) (revocation.SourceStatus, bool) {
	for _, s := range all {
		if s.CRLURL == src.CRLURL && s.Subject == certfmt.Subject(src.Issuer) {
			return s, true
		}
	}
	return revocation.SourceStatus{}, false
}

func stateOf(s revocation.SourceStatus) *crlState {
	st := &crlState{Number: s.Number, Entries: s.Entries, Stale: s.Stale}
	if !s.ThisUpdate.IsZero() {
		t, n := s.ThisUpdate.UTC(), s.NextUpdate.UTC()
		st.ThisUpdate, st.NextUpdate = &t, &n
	}
	return st
}

// line is the text form: one CA a line.
func (r caRevocation) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CA %s (SKI %s): ", r.Subject, r.IssuerSKI)
	switch {
	case r.CRLExempt:
		b.WriteString("crlExempt, no CRL checks")
		return b.String()
	case r.CRL == nil:
		fmt.Fprintf(&b, "CRL %s not fetched (--fetch fetches it)", r.CRLURL)
	case r.CRL.Error != "":
		fmt.Fprintf(&b, "CRL %s: ERROR %s", r.CRLURL, r.CRL.Error)
	default:
		fmt.Fprintf(&b, "CRL %s: %s", r.CRLURL, r.CRL.describe())
	}
	if r.Cache == nil {
		b.WriteString("; cache: none")
	} else {
		b.WriteString("; cache: " + r.Cache.describe())
	}
	return b.String()
}

func (s *crlState) describe() string {
	if s.ThisUpdate == nil {
		return "none"
	}
	d := fmt.Sprintf("number %s, %d entries, thisUpdate %s, nextUpdate %s", s.Number, s.Entries,
		s.ThisUpdate.Format(time.RFC3339), s.NextUpdate.Format(time.RFC3339))
	if s.Number == "" {
		d = strings.Replace(d, "number , ", "", 1)
	}
	if s.Stale {
		d += ", stale"
	}
	return d
}

package main

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/certgate/certgate/config"
	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/proxy"
	"github.com/certgate/certgate/trust"
	"github.com/certgate/certgate/trust/pathval"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// errSilent ends a command with its exit code and nothing more to say (the
// command already printed its verdict).
var errSilent = errors.New("")

// checkResult is `certgate check --json`.
type checkResult struct {
	Decision string    `json:"decision"` // accepted | rejected
	Reason   string    `json:"reason"`
	Error    string    `json:"error,omitempty"`
	User     string    `json:"user,omitempty"`
	Binding  string    `json:"binding,omitempty"`
	Value    string    `json:"value,omitempty"`
	Subject  string    `json:"subject"`
	Serial   string    `json:"serial"`
	Chain    []string  `json:"chain,omitempty"`
	At       time.Time `json:"at"`
	// For a chain refused by path validation: the certificate at fault and
	// the rule it broke; for untrusted, the issuer looked for and the CAs
	// tried for it, each with why it did not do.
	Certificate     string   `json:"certificate,omitempty"`
	Rule            string   `json:"rule,omitempty"`
	IssuerLookedFor string   `json:"issuerLookedFor,omitempty"`
	TriedCAs        []string `json:"triedCAs,omitempty"`
}

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	cfgFlag := fs.String("config", "", "config file (default $CERTGATE_CONFIG, then certgate.yaml)")
	atFlag := fs.String("at", "", "RFC 3339 time for validity checks (default now)")
	jsonOut := fs.Bool("json", false, "print the decision as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErr("check needs a certificate file: certgate check --config F CERT [CHAIN...]")
	}
	at := time.Now()
	if *atFlag != "" {
		if at, err = time.Parse(time.RFC3339, *atFlag); err != nil {
			return usageErr("--at %q: not an RFC 3339 time (like 2026-11-25T10:00:00Z)", *atFlag)
		}
	}
	var certs []*x509.Certificate
	var malformed error
	for _, p := range pos {
		cs, bad, err := readPresented(p)
		if err != nil {
			return usageErr("%v", err)
		}
		if bad != nil && malformed == nil {
			malformed = bad
		}
		certs = append(certs, cs...)
	}
	// Only what the decision reads: no serverTLS, listeners or routes.
	path, err := configPath(*cfgFlag)
	if err != nil {
		return err
	}
	cfg, err := config.LoadDecision(path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var d proxy.Decision
	if malformed != nil {
		// crypto/tls refuses such a chain in the handshake; the verdict is a
		// rejection like any other, not a usage error.
		d = proxy.Decision{Reason: string(trust.MalformedCertificate), Err: &trust.Error{Reason: trust.MalformedCertificate, Err: malformed}}
	} else if d, err = decideOffline(ctx, cfg, certs, at, stderr); err != nil {
		return err
	}
	res := checkResult{Decision: "rejected", Reason: d.Reason, At: at.UTC()}
	if len(certs) > 0 && malformed == nil {
		res.Subject, res.Serial = certfmt.Subject(certs[0]), strings.ToUpper(certs[0].SerialNumber.Text(16))
	}
	if d.Err != nil {
		res.Error = d.Err.Error()
		var pe *pathval.Error
		if errors.As(d.Err, &pe) {
			if pe.Cert != nil {
				res.Certificate = pathval.Describe(pe.Cert)
			}
			res.Rule, res.IssuerLookedFor, res.TriedCAs = pe.Rule, pe.Issuer, pe.Tried
		}
	}
	for _, c := range d.Chain {
		res.Chain = append(res.Chain, certfmt.Subject(c))
	}
	if d.OK() {
		res.Decision = "accepted"
		res.User = d.Identity.User.UserPrincipalName
		res.Binding = string(d.Identity.Binding.Field) + "->" + string(d.Identity.Binding.Attribute)
		res.Value = d.Identity.Value
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else if d.OK() {
		fmt.Fprintf(stdout, "accepted: %s (binding %s, value %s)\n", res.User, res.Binding, res.Value)
	} else {
		fmt.Fprintf(stdout, "rejected: %s: %s\n", res.Reason, strings.TrimPrefix(res.Error, res.Reason+": "))
	}
	if !d.OK() {
		return &exitError{code: 1, err: errSilent}
	}
	return nil
}

// readPresented reads the certificates of a file as a client would
// present them. A block that has a certificate's outer structure but that
// crypto/x509 cannot parse (a negative serial, an unparseable CRL
// distribution point) is returned as bad, the client's fault; a file that
// holds no certificate at all is err, the caller's.
func readPresented(path string) (certs []*x509.Certificate, bad, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var ders [][]byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			ders = append(ders, blk.Bytes)
		}
	}
	pemFile := len(ders) > 0
	if !pemFile {
		ders = [][]byte{b}
	}
	for i, der := range ders {
		c, perr := x509.ParseCertificate(der)
		switch {
		case perr == nil:
			certs = append(certs, c)
		case pemFile || looksLikeCertificate(der):
			if bad == nil {
				bad = fmt.Errorf("%s: certificate %d cannot be parsed: %w", path, i+1, perr)
			}
		default:
			return nil, nil, fmt.Errorf("%s: neither PEM certificates nor a DER certificate: %w", path, perr)
		}
	}
	return certs, bad, nil
}

// looksLikeCertificate: SEQUENCE { SEQUENCE tbs, SEQUENCE algorithm,
// BIT STRING } and nothing after it.
func looksLikeCertificate(der []byte) bool {
	in := cryptobyte.String(der)
	var cert, tbs, alg cryptobyte.String
	var sig asn1.BitString
	return in.ReadASN1(&cert, cbasn1.SEQUENCE) && in.Empty() &&
		cert.ReadASN1(&tbs, cbasn1.SEQUENCE) && cert.ReadASN1(&alg, cbasn1.SEQUENCE) &&
		cert.ReadASN1BitString(&sig) && cert.Empty()
}

// decideOffline runs serve's pipeline once: it fetches the configured CRLs
// itself (failures are reported and then judged by the same policy).
func decideOffline(ctx context.Context, cfg *config.Config, certs []*x509.Certificate, at time.Time, stderr io.Writer) (proxy.Decision, error) {
	log := newLogger(cfg, io.Discard)
	rev := newRevocation(cfg, log, func() time.Time { return at })
	b, err := build(cfg, rev, log)
	if err != nil {
		return proxy.Decision{}, &exitError{code: 2, err: err}
	}
	defer b.close()
	rev.SetSources(b.sources)
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := rev.RefreshNow(fctx); err != nil {
		fmt.Fprintf(stderr, "certgate: warning: fetching CRLs: %v\n", err)
	}
	return b.policy.Decide(ctx, certs, at, at), nil
}

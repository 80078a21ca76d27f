package revocation_test

import (
	"context"
	"crypto/x509"
	"errors"
	"log"
	"time"

	"github.com/certgate/certgate/revocation"
)

// The proxy's wiring: sources from the trusted CAs, a background refresh,
// and Check on every verified chain.
func Example() {
	var interCA *x509.Certificate // a configured intermediate (from the trust store)
	var chain []*x509.Certificate // a verified chain, leaf first
	if interCA == nil {
		return // this example only shows the calls
	}

	c := revocation.New(revocation.Options{
		OnUnavailable: revocation.Deny,
		CacheDir:      "/var/lib/certgate/crl",
	})
	c.SetSources([]revocation.Source{{
		Issuer:      interCA,
		CRLURL:      "http://pki.example.com/inter.crl",
		DeltaCRLURL: "http://pki.example.com/inter+.crl",
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)

	if err := c.Check(chain, time.Now()); err != nil {
		var re *revocation.Error
		if errors.As(err, &re) {
			log.Printf("refused: reason=%s issuer_ski=%s serial=%s", re.ReasonCode(), re.IssuerSKI, re.Serial)
		}
	}
}

package main

import (
	"time"

	"github.com/certgate/certgate/revocation"
	"github.com/prometheus/client_golang/prometheus"
)

// revocationCollector reads the CRL cache at scrape time, so the series
// always match what the handshake path sees and no code path has to
// remember to update them.
type revocationCollector struct {
	rev         *revocation.Checker
	entries     *prometheus.Desc
	thisUpdate  *prometheus.Desc
	nextUpdate  *prometheus.Desc
	lastSuccess *prometheus.Desc
	fetchErrors *prometheus.Desc
}

func newRevocationCollector(rev *revocation.Checker) *revocationCollector {
	ski := []string{"issuer_ski"}
	return &revocationCollector{
		rev:         rev,
		entries:     prometheus.NewDesc("certgate_crl_entries", "Revoked serials in the CRL in force (base plus delta) per issuing CA.", ski, nil),
		thisUpdate:  prometheus.NewDesc("certgate_crl_this_update_timestamp_seconds", "thisUpdate of the CRL in force per issuing CA.", ski, nil),
		nextUpdate:  prometheus.NewDesc("certgate_crl_next_update_timestamp_seconds", "nextUpdate of the CRL in force per issuing CA; past it the CRL is stale.", ski, nil),
		lastSuccess: prometheus.NewDesc("certgate_crl_last_success_timestamp_seconds", "Last successful CRL fetch per issuing CA.", ski, nil),
		fetchErrors: prometheus.NewDesc("certgate_crl_fetch_errors_total", "Failed CRL fetches per issuing CA and kind (http, timeout, size, parse, signature, rollback, expired, future, extension, io).", []string{"issuer_ski", "kind"}, nil),
	}
}

func (c *revocationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.thisUpdate
	ch <- c.nextUpdate
	ch <- c.lastSuccess
	ch <- c.fetchErrors
}

func (c *revocationCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.rev.Status() {
		if s.CRLURL == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries), s.IssuerSKI)
		ch <- prometheus.MustNewConstMetric(c.thisUpdate, prometheus.GaugeValue, unix(s.ThisUpdate), s.IssuerSKI)
		ch <- prometheus.MustNewConstMetric(c.nextUpdate, prometheus.GaugeValue, unix(s.NextUpdate), s.IssuerSKI)
		ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, unix(s.LastSuccess), s.IssuerSKI)
		for kind, n := range s.FetchErrors {
			ch <- prometheus.MustNewConstMetric(c.fetchErrors, prometheus.CounterValue, float64(n), s.IssuerSKI, kind)
		}
	}
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// statusDoc is /status.json.
type statusDoc struct {
	Version   string                    `json:"version"`
	Config    string                    `json:"config"`
	Ready     bool                      `json:"ready"`
	NotReady  string                    `json:"notReady,omitempty"`
	ServerTLS *certInfo                 `json:"serverCertificate,omitempty"`
	CAs       []caInfo                  `json:"trustedCertificateAuthorities"`
	CRLs      []revocation.SourceStatus `json:"crls"`
	Routes    []map[string]string       `json:"routes"`
	Time      time.Time                 `json:"time"`
	Extra     map[string]any            `json:"extra,omitempty"`
}

type certInfo struct {
	Subject  string    `json:"subject"`
	Names    []string  `json:"names,omitempty"`
	NotAfter time.Time `json:"notAfter"`
}

type caInfo struct {
	Type     string    `json:"type"`
	Subject  string    `json:"subject"`
	SKI      string    `json:"ski"`
	NotAfter time.Time `json:"notAfter"`
	CRL      string    `json:"crl,omitempty"`
	DeltaCRL string    `json:"deltaCrl,omitempty"`
	Exempt   bool      `json:"crlExempt,omitempty"`
}

func (inst *instance) status() any {
	inst.mu.Lock()
	b := inst.current
	inst.mu.Unlock()
	doc := statusDoc{Version: version, Config: inst.cfgPath, Time: time.Now().UTC(), CRLs: inst.rev.Status()}
	if err := inst.ready(); err != nil {
		doc.NotReady = err.Error()
	} else {
		doc.Ready = true
	}
	if leaf := inst.cert.Leaf(); leaf != nil {
		doc.ServerTLS = &certInfo{Subject: leaf.Subject.String(), Names: leaf.DNSNames, NotAfter: leaf.NotAfter}
	}
	for _, ca := range b.store.CAs() {
		doc.CAs = append(doc.CAs, caInfo{Type: string(ca.Type), Subject: ca.Cert.Subject.String(), SKI: hexUpper(ca.SKI()),
			NotAfter: ca.Cert.NotAfter, CRL: ca.CRLURL, DeltaCRL: ca.DeltaCRLURL, Exempt: ca.CRLExempt})
	}
	for _, r := range b.cfg.Routes {
		doc.Routes = append(doc.Routes, map[string]string{"name": r.Name, "kind": string(r.Kind), "host": r.Host, "pathPrefix": r.PathPrefix, "backend": r.Backend})
	}
	return doc
}

func hexUpper(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

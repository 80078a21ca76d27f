package main

import (
	"encoding/hex"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/certgate/certgate/internal/certfmt"
	"github.com/certgate/certgate/proxy"
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
		// Every kind is exposed, zeros included, so that rate() and
		// increase() see the first failure instead of a series appearing.
		for _, kind := range fetchErrorKinds {
			ch <- prometheus.MustNewConstMetric(c.fetchErrors, prometheus.CounterValue, float64(s.FetchErrors[kind]), s.IssuerSKI, kind)
		}
		for kind, n := range s.FetchErrors {
			if !slices.Contains(fetchErrorKinds, kind) {
				ch <- prometheus.MustNewConstMetric(c.fetchErrors, prometheus.CounterValue, float64(n), s.IssuerSKI, kind)
			}
		}
	}
}

var fetchErrorKinds = []string{revocation.KindHTTP, revocation.KindTimeout, revocation.KindSize, revocation.KindParse,
	revocation.KindSignature, revocation.KindRollback, revocation.KindExpired, revocation.KindFuture,
	revocation.KindExtension, revocation.KindIO}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// opsCollector exposes what an operator alerts on besides CRLs: the build,
// certificate expiry of the server and of every trusted CA, and OCSP query
// outcomes. Like revocationCollector it reads the live state at scrape time,
// so a reload needs no bookkeeping here.
type opsCollector struct {
	inst       *instance
	buildInfo  *prometheus.Desc
	serverCert *prometheus.Desc
	caCert     *prometheus.Desc
	caUsable   *prometheus.Desc
	ocsp       *prometheus.Desc
}

func newOpsCollector(inst *instance) *opsCollector {
	return &opsCollector{
		inst:       inst,
		buildInfo:  prometheus.NewDesc("certgate_build_info", "Always 1; the labels say which certgate is running.", []string{"version", "goversion", "commit"}, nil),
		serverCert: prometheus.NewDesc("certgate_server_cert_not_after_timestamp_seconds", "notAfter of the server certificate in service, by its first name.", []string{"name"}, nil),
		caUsable:   prometheus.NewDesc("certgate_ca_usable", "1 when chains can go through a trusted CA now, 0 when it is unusable (expired, not yet valid, badly signed, not a CA, weak key, unhandled critical extension, no path to a root); by SKI, 1 when any certificate with that key is usable. The status page says why.", []string{"issuer_ski"}, nil),
		caCert:     prometheus.NewDesc("certgate_ca_not_after_timestamp_seconds", "notAfter of each trusted CA certificate, by its SKI (hex, as issuer_ski of the CRL series) and type.", []string{"issuer_ski", "type"}, nil),
		ocsp:       prometheus.NewDesc("certgate_ocsp_checks_total", "OCSP responder queries for client certificates by result (good, revoked, unknown, error).", []string{"result"}, nil),
	}
}

func (c *opsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.buildInfo
	ch <- c.serverCert
	ch <- c.caCert
	ch <- c.caUsable
	ch <- c.ocsp
}

func (c *opsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, version, runtime.Version(), buildCommit())
	if c.inst.cert != nil {
		if leaf := c.inst.cert.Leaf(); leaf != nil {
			ch <- prometheus.MustNewConstMetric(c.serverCert, prometheus.GaugeValue, unix(leaf.NotAfter), firstName(leaf))
		}
	}
	if b := c.inst.built(); b != nil {
		usable := map[string]float64{}
		var order []string
		for _, st := range b.store.CAStatus(time.Now()) {
			ski := hex.EncodeToString(st.CA.SKI())
			if _, ok := usable[ski]; !ok {
				order = append(order, ski)
			}
			if st.Usable {
				usable[ski] = 1
			} else if _, ok := usable[ski]; !ok {
				usable[ski] = 0
			}
		}
		for _, ski := range order {
			ch <- prometheus.MustNewConstMetric(c.caUsable, prometheus.GaugeValue, usable[ski], ski)
		}
		seen := map[string]bool{}
		for _, ca := range b.store.CAs() {
			ski := certfmt.SKI(ca.SKI())
			if seen[ski] {
				continue // one series per key, even if a CA is listed twice
			}
			seen[ski] = true
			ch <- prometheus.MustNewConstMetric(c.caCert, prometheus.GaugeValue, unix(ca.Cert.NotAfter), ski, string(ca.Type))
		}
	}
	if c.inst.rev != nil {
		for result, n := range c.inst.rev.OCSPQueries() {
			ch <- prometheus.MustNewConstMetric(c.ocsp, prometheus.CounterValue, float64(n), result)
		}
	}
}

// statusDoc is /status.json and the data of the /status page.
type statusDoc struct {
	Version    string                    `json:"version"`
	GoVersion  string                    `json:"goVersion"`
	Commit     string                    `json:"commit"`
	Config     string                    `json:"config"`
	Ready      bool                      `json:"ready"`
	NotReady   string                    `json:"notReady,omitempty"`
	Draining   bool                      `json:"draining,omitempty"`
	LastReload *reloadEvent              `json:"lastReload,omitempty"`
	ServerTLS  *certInfo                 `json:"serverCertificate,omitempty"`
	CAs        []caInfo                  `json:"trustedCertificateAuthorities"`
	CRLs       []revocation.SourceStatus `json:"crls"`
	OCSP       map[string]uint64         `json:"ocspQueries"`
	Routes     []map[string]string       `json:"routes"`
	// AssertionKeys are the keys of the signed identity assertions, the
	// signing ones first.
	AssertionKeys []assertionKeyInfo `json:"assertionKeys,omitempty"`
	// Rejections are the last refused clients, newest first; ByReason
	// counts them per reason code, most frequent first.
	Rejections []proxy.Rejection `json:"recentRejections"`
	ByReason   []reasonCount     `json:"recentRejectionsByReason"`
	Time       time.Time         `json:"time"`
}

type certInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Names     []string  `json:"names,omitempty"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
}

type caInfo struct {
	Type      string    `json:"type"`
	Subject   string    `json:"subject"`
	SKI       string    `json:"ski"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	CRL       string    `json:"crl,omitempty"`
	DeltaCRL  string    `json:"deltaCrl,omitempty"`
	Exempt    bool      `json:"crlExempt,omitempty"`
	// Usable says whether chains can go through this CA now; Defect says
	// why not (the CA stays configured: see trust.Store.CAStatus).
	Usable bool   `json:"usable"`
	Defect string `json:"defect,omitempty"`
}

type reasonCount struct {
	Reason string    `json:"reason"`
	Count  int       `json:"count"`
	Last   time.Time `json:"last"`
}

// reloadEvent is the outcome of the last reload, shown on the status page
// so that an operator sees a broken file without reading the log.
type reloadEvent struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"`
	OK      bool      `json:"ok"`
	Error   string    `json:"error,omitempty"`
}

// built returns the state in force.
func (inst *instance) built() *built {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return inst.current
}

func (inst *instance) status() any { return inst.statusDoc() }

func (inst *instance) statusDoc() statusDoc {
	b := inst.built()
	now := time.Now()
	if inst.now != nil {
		now = inst.now()
	}
	doc := statusDoc{Version: version, GoVersion: runtime.Version(), Commit: buildCommit(), Config: inst.cfgPath,
		Time: now.UTC(), CRLs: inst.rev.Status(), OCSP: inst.rev.OCSPQueries(), LastReload: inst.lastReload.Load()}
	if err := inst.ready(); err != nil {
		doc.NotReady = err.Error()
	} else {
		doc.Ready = true
	}
	doc.Draining = inst.admin != nil && inst.admin.Draining()
	if leaf := inst.cert.Leaf(); leaf != nil {
		doc.ServerTLS = &certInfo{Subject: certfmt.Subject(leaf), Issuer: certfmt.Issuer(leaf), Names: leaf.DNSNames,
			Serial: hexUpper(leaf.SerialNumber.Bytes()), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	}
	for _, st := range b.store.CAStatus(doc.Time) {
		ca := st.CA
		doc.CAs = append(doc.CAs, caInfo{Type: string(ca.Type), Subject: certfmt.Subject(ca.Cert), SKI: certfmt.SKI(ca.SKI()),
			NotBefore: ca.Cert.NotBefore, NotAfter: ca.Cert.NotAfter, CRL: ca.CRLURL, DeltaCRL: ca.DeltaCRLURL, Exempt: ca.CRLExempt,
			Usable: st.Usable, Defect: st.Defect})
	}
	for _, r := range b.cfg.Routes {
		doc.Routes = append(doc.Routes, map[string]string{"name": r.Name, "kind": string(r.Kind), "host": r.Host, "pathPrefix": r.PathPrefix, "backend": r.Backend})
	}
	doc.AssertionKeys = assertionKeys(b, now)
	doc.Rejections = inst.srv.RecentRejections()
	doc.ByReason = countReasons(doc.Rejections)
	return doc
}

// countReasons groups refusals (newest first) by reason, most frequent
// first and then by name, so the page is stable between refreshes.
func countReasons(rs []proxy.Rejection) []reasonCount {
	idx := map[string]int{}
	var out []reasonCount
	for _, r := range rs {
		i, ok := idx[r.Reason]
		if !ok {
			i = len(out)
			idx[r.Reason] = i
			out = append(out, reasonCount{Reason: r.Reason, Last: r.Time})
		}
		out[i].Count++
	}
	slices.SortStableFunc(out, func(a, b reasonCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return out
}

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

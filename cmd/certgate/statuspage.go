package main

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"time"

	"github.com/certgate/certgate/revocation"
)

// statusPage renders /status: the data of /status.json laid out for a
// person, with the CRLs on one time line so that a CRL about to run out, or
// one whose fetches fail, stands out without reading timestamps. It is plain
// HTML and CSS, with no script, so it works in any browser and in a
// screenshot.
func (inst *instance) statusPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := inst.statusDoc()
		var buf bytes.Buffer
		if err := statusTemplate.Execute(&buf, newStatusView(doc)); err != nil {
			inst.log.Error("status page", "error", err)
			http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// The page holds subjects and user names: never framed elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Write(buf.Bytes())
	})
}

// statusView is statusDoc with what the template cannot compute: the time
// line positions and human durations.
type statusView struct {
	statusDoc
	Now       string
	Span      string       // the time line's extent, for its caption
	NowPos    template.CSS // where now is on the time line
	CRLRows   []crlRow
	CARows    []caRow
	MaxReason int
}

type caRow struct {
	caInfo
	Left  string
	Class string
}

type crlRow struct {
	revocation.SourceStatus
	Base     template.CSS // the base CRL's validity bar
	Delta    template.CSS // the delta's, when there is one
	Fetch    template.CSS // the last fetch marker
	HasBase  bool
	HasDelta bool
	HasFetch bool
	Class    string // fresh, stale or missing
	Left     string // time until nextUpdate, or since
}

func newStatusView(doc statusDoc) statusView {
	now := doc.Time
	v := statusView{statusDoc: doc, Now: now.Format(time.RFC3339)}
	for _, r := range doc.ByReason {
		v.MaxReason = max(v.MaxReason, r.Count)
	}
	for _, ca := range doc.CAs {
		row := caRow{caInfo: ca, Left: until(now, ca.NotAfter), Class: "ok"}
		switch d := ca.NotAfter.Sub(now); {
		case !ca.Usable, d <= 0:
			row.Class = "bad"
		case d < 30*24*time.Hour:
			row.Class = "warn"
		}
		v.CARows = append(v.CARows, row)
	}

	// One axis for every CRL, from an hour before the oldest instant shown
	// to an hour after the latest, so rows compare at a glance.
	lo, hi := now.Add(-time.Hour), now.Add(time.Hour)
	widen := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	for _, c := range doc.CRLs {
		widen(c.ThisUpdate)
		widen(c.NextUpdate)
		widen(c.DeltaThisUpdate)
		widen(c.DeltaNextUpdate)
		widen(c.LastFetch)
	}
	v.Span = lo.UTC().Format("2006-01-02 15:04") + " to " + hi.UTC().Format("2006-01-02 15:04") + " UTC"
	pos := func(t time.Time) float64 {
		return math.Round(1000*float64(t.Sub(lo))/float64(hi.Sub(lo))) / 10
	}
	bar := func(from, to time.Time) template.CSS {
		l, r := pos(from), pos(to)
		return template.CSS(fmt.Sprintf("left:%.1f%%;width:%.1f%%", l, max(r-l, 0.5)))
	}
	v.NowPos = template.CSS(fmt.Sprintf("left:%.1f%%", pos(now)))
	for _, c := range doc.CRLs {
		row := crlRow{SourceStatus: c, Class: "missing"}
		if !c.ThisUpdate.IsZero() {
			row.HasBase, row.Base = true, bar(c.ThisUpdate, c.NextUpdate)
			row.Class = "fresh"
			row.Left = until(now, c.NextUpdate)
		}
		if c.Stale {
			row.Class = "stale"
		}
		if c.CRLURL == "" {
			row.Class = "exempt"
		}
		if !c.DeltaThisUpdate.IsZero() {
			row.HasDelta, row.Delta = true, bar(c.DeltaThisUpdate, c.DeltaNextUpdate)
		}
		if !c.LastFetch.IsZero() {
			row.HasFetch, row.Fetch = true, template.CSS(fmt.Sprintf("left:%.1f%%", pos(c.LastFetch)))
		}
		v.CRLRows = append(v.CRLRows, row)
	}
	return v
}

// until says how long until t ("in 3d 4h") or since ("expired 2h ago").
func until(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := t.Sub(now)
	if d < 0 {
		return "expired " + human(-d) + " ago"
	}
	return "in " + human(d)
}

func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pct": func(n, of int) template.CSS {
		if of == 0 {
			return "width:0"
		}
		return template.CSS(fmt.Sprintf("width:%d%%", 100*n/of))
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>certgate status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d232b}
header{background:#1d2b3a;color:#fff;padding:14px 24px;display:flex;gap:18px;align-items:center;flex-wrap:wrap}
header h1{font-size:20px;margin:0}
main{padding:16px 24px;display:grid;gap:16px}
section{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:12px 16px}
h2{font-size:16px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{font-weight:600;color:#4a5563;font-size:12px;text-transform:uppercase}
code{font-size:12px;word-break:break-all}
.badge{padding:2px 10px;border-radius:10px;font-weight:600}
.ready{background:#1f9d55}.notready{background:#c53030}.draining{background:#b7791f}
.ok{color:#1f7a43}.warn{color:#b7791f}.bad,.stale,.missing{color:#c53030}.exempt{color:#6b7280}
.err{color:#c53030}
.track{position:relative;height:22px;background:#eef1f5;border-radius:3px;min-width:320px}
.bar{position:absolute;top:3px;height:8px;border-radius:2px;background:#38a169}
.stale .bar.base,.bar.stale{background:#e53e3e}
.bar.delta{top:13px;height:6px;background:#3182ce}
.now{position:absolute;top:0;bottom:0;width:2px;background:#1d232b}
.fetch{position:absolute;top:5px;width:10px;height:10px;margin-left:-5px;border-radius:50%;background:#2b6cb0;border:1px solid #fff}
.fetch.failed{background:#e53e3e}
.legend span{margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:14px;height:8px;margin-right:4px;vertical-align:middle}
.reasonbar{display:inline-block;height:10px;background:#e53e3e;border-radius:2px;vertical-align:middle}
footer{padding:0 24px 16px;color:#6b7280;font-size:12px}
</style>
</head>
<body>
<header>
<h1>certgate</h1>
{{if .Draining}}<span class="badge draining" id="state">draining</span>{{else if .Ready}}<span class="badge ready" id="state">ready</span>{{else}}<span class="badge notready" id="state">not ready</span>{{end}}
<span>version {{.Version}} · {{.GoVersion}} · commit <code>{{.Commit}}</code></span>
<span>at {{.Now}}</span>
</header>
<main>
{{if .NotReady}}<section id="notready"><h2>Not ready</h2><p class="err">{{.NotReady}}</p></section>{{end}}
{{with .LastReload}}<section id="reload"><h2>Last reload</h2>
<p>{{ts .Time}} ({{.Trigger}}): {{if .OK}}<span class="ok">applied</span>{{else}}<span class="err">failed, the previous configuration keeps serving: {{.Error}}</span>{{end}}</p></section>{{end}}

<section id="server-cert"><h2>Server certificate</h2>
{{with .ServerTLS}}<table><tr><th>Subject</th><th>Names</th><th>Issuer</th><th>Serial</th><th>Not after</th></tr>
<tr><td>{{.Subject}}</td><td>{{range $i, $n := .Names}}{{if $i}}, {{end}}{{$n}}{{end}}</td><td>{{.Issuer}}</td><td><code>{{.Serial}}</code></td><td>{{ts .NotAfter}}</td></tr></table>
{{else}}<p class="warn">no certificate loaded yet</p>{{end}}
</section>

<section id="cas"><h2>Trusted certificate authorities</h2>
<table><tr><th>Type</th><th>Subject</th><th>SKI</th><th>Not after</th><th>CRL</th></tr>
{{range .CARows}}<tr class="ca" data-ski="{{.SKI}}"><td>{{.Type}}</td><td>{{.Subject}}</td><td><code>{{.SKI}}</code></td>
<td class="{{.Class}}">{{ts .NotAfter}}<br>{{.Left}}{{if not .Usable}}<br><strong>unusable:</strong> {{.Defect}}{{end}}</td>
<td>{{if .CRL}}<code>{{.CRL}}</code>{{if .DeltaCRL}}<br>delta <code>{{.DeltaCRL}}</code>{{end}}{{else if .Exempt}}<span class="exempt">exempt from CRL checks</span>{{end}}</td></tr>
{{end}}</table>
</section>

<section id="crls"><h2>Certificate revocation lists</h2>
<p class="legend"><span><i style="background:#38a169"></i>base CRL thisUpdate→nextUpdate</span><span><i style="background:#e53e3e"></i>stale</span><span><i style="background:#3182ce"></i>delta CRL</span><span><i style="background:#2b6cb0;border-radius:50%;width:8px"></i>last fetch (red: failed)</span><span><i style="background:#1d232b;width:2px"></i>now</span> · {{.Span}}</p>
<table><tr><th>Issuer</th><th>Entries</th><th>thisUpdate</th><th>nextUpdate</th><th>Last fetch</th><th style="width:40%">Time line</th></tr>
{{range .CRLRows}}<tr class="crl {{.Class}}" data-ski="{{.IssuerSKI}}">
<td>{{.Subject}}<br><code>{{.IssuerSKI}}</code>{{if .CRLURL}}<br><code>{{.CRLURL}}</code>{{else}}<br><span class="exempt">no CRL URL</span>{{end}}</td>
<td>{{.Entries}}{{if .Number}}<br>#{{.Number}}{{end}}{{if .DeltaApplied}}<br>+{{.DeltaEntries}} delta{{end}}</td>
<td>{{ts .ThisUpdate}}</td>
<td>{{ts .NextUpdate}}<br><span class="{{.Class}}">{{if eq .Class "missing"}}no CRL{{else}}{{.Left}}{{end}}</span></td>
<td>{{ts .LastFetch}}{{if .FromCache}}<br>from cache{{end}}{{if .LastError}}<br><span class="err">{{.LastError}}</span>{{end}}</td>
<td><div class="track">{{if .HasBase}}<div class="bar base" style="{{.Base}}" title="base CRL"></div>{{end}}{{if .HasDelta}}<div class="bar delta" style="{{.Delta}}" title="delta CRL"></div>{{end}}{{if .HasFetch}}<div class="fetch{{if .LastError}} failed{{end}}" style="{{.Fetch}}" title="last fetch"></div>{{end}}<div class="now" style="{{$.NowPos}}"></div></div></td>
</tr>
{{else}}<tr><td colspan="6">no CA with a CRL</td></tr>{{end}}</table>
</section>

<section id="rejections"><h2>Recent rejections</h2>
{{if .ByReason}}<table id="by-reason"><tr><th>Reason</th><th>Count</th><th>Last</th><th style="width:50%"></th></tr>
{{range .ByReason}}<tr class="reason" data-reason="{{.Reason}}"><td><code>{{.Reason}}</code></td><td>{{.Count}}</td><td>{{ts .Last}}</td><td><span class="reasonbar" style="{{pct .Count $.MaxReason}}"></span></td></tr>
{{end}}</table>
<table id="recent"><tr><th>Time</th><th>Reason</th><th>Subject</th><th>User</th><th>Route</th><th>Remote</th></tr>
{{range .Rejections}}<tr class="rejection"><td>{{ts .Time}}</td><td><code>{{.Reason}}</code></td><td>{{.Subject}}</td><td>{{.User}}</td><td>{{.Route}}</td><td>{{.Remote}}</td></tr>
{{end}}</table>
{{else}}<p class="ok">no client refused since the start</p>{{end}}
</section>

<section id="routes"><h2>Routes</h2>
<table><tr><th>Name</th><th>Kind</th><th>Host</th><th>Path prefix</th><th>Backend</th></tr>
{{range .Routes}}<tr><td>{{.name}}</td><td>{{.kind}}</td><td>{{.host}}</td><td><code>{{.pathPrefix}}</code></td><td><code>{{.backend}}</code></td></tr>
{{end}}</table>
</section>
{{if .AssertionKeys}}
<section id="assertion-keys"><h2>Assertion keys</h2>
<table><tr><th>Key id (kid)</th><th>Role</th><th>Alg</th><th>Age</th><th>Routes</th><th>File</th></tr>
{{range .AssertionKeys}}<tr class="assertion-key {{.Role}}" data-kid="{{.KID}}"><td><code>{{.KID}}</code></td><td>{{.Role}}</td><td>{{.Alg}}</td><td>{{.Age}}<br>{{ts .Modified}}</td><td>{{range $i, $r := .Routes}}{{if $i}}, {{end}}{{$r}}{{end}}</td><td><code>{{.File}}</code></td></tr>
{{end}}</table>
<p>Published at <a href="/.well-known/jwks.json">/.well-known/jwks.json</a>.</p>
</section>{{end}}
</main>
<footer>config {{.Config}} · <a href="/status.json">status.json</a> · <a href="/metrics">metrics</a> · refreshes every 30 s</footer>
</body>
</html>
`))

#!/usr/bin/env bash
# What signed identity assertions cost: certgate alone (no nginx), the same
# PKI, backend and load as sidebyside.sh, with a route that signs no
# assertion, one that signs an ES256 or an Ed25519 assertion for every
# request (reuse: 0), and one that reuses a connection's assertion for 5 s
# (reuse: 5s, the default). Keep-alive HTTP/1.1 and full handshakes
# (one request per connection, where reuse cannot help).
#
# Prints per variant: requests/s, server CPU (cores) and server CPU µs per
# request, the figure that survives a shared machine best.
#
#   cmd/certgate-bench/assertions.sh                 # ~3 minutes
#   ROUNDS=1 DURATION=2s cmd/certgate-bench/assertions.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-16}
KA_WORKERS=${KA_WORKERS:-64}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=${WORK:-$(mktemp -d /tmp/certgate-assertions.XXXXXX)}
PORT_BASE=${PORT_BASE:-28540}
VARIANTS=${VARIANTS:-"none es256-each ed25519-each es256-reuse ed25519-reuse"}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS=$WORK/results.jsonl
PKI=$WORK/pki
PROXY_PORT=$PORT_BASE
ADMIN_PORT=$((PORT_BASE + 1))
BACKEND_PORT=$((PORT_BASE + 2))
URL=https://localhost:$PROXY_PORT/

for tool in go taskset curl; do
	command -v "$tool" >/dev/null || { echo "assertions: $tool is not installed" >&2; exit 2; }
done
mkdir -p "$WORK"
: >"$RESULTS"
STARTED=()
cleanup() {
	for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${STARTED[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

echo "== building into $WORK"
(cd "$REPO" && go build -o "$WORK/certgate" ./cmd/certgate && go build -o "$WORK/certgate-bench" ./cmd/certgate-bench)
BENCH=$WORK/certgate-bench
"$BENCH" pki --dir "$PKI" --entries 10 >/dev/null
taskset -c "$LOAD_CPU" "$BENCH" backend --listen 127.0.0.1:$BACKEND_PORT >"$WORK/backend.log" 2>&1 &
STARTED+=($!)

# config VARIANT: sidebyside.sh's certgate config (small CRL, no directory)
# with the variant's assertion.
config() {
	local assertion=""
	case $1 in
	none) ;;
	es256-each) assertion="    assertion: {keys: [pki/assertion-es256.pem], reuse: 0s}" ;;
	ed25519-each) assertion="    assertion: {keys: [pki/assertion-ed25519.pem], reuse: 0s}" ;;
	es256-reuse) assertion="    assertion: {keys: [pki/assertion-es256.pem], reuse: 5s}" ;;
	ed25519-reuse) assertion="    assertion: {keys: [pki/assertion-ed25519.pem], reuse: 5s}" ;;
	*) echo "assertions: unknown variant $1" >&2; exit 2 ;;
	esac
	cat >"$WORK/certgate-$1.yaml" <<YAML
listen: "127.0.0.1:$PROXY_PORT"
admin:
  listen: "127.0.0.1:$ADMIN_PORT"
serverTLS:
  certFile: pki/server.pem
  keyFile: pki/server-key.pem
clientAuth:
  rejectWith: handshake
trustedCertificateAuthorities:
  - authorityType: root
    trustedCertificate: pki/root.pem
    crlDistributionPoint: file:pki/crl-small.der
routes:
  - name: web
    kind: web
    pathPrefix: /
    backend: http://127.0.0.1:$BACKEND_PORT
$assertion
logging:
  format: json
  level: warn
YAML
}

SERVER_PID=
start() {
	taskset -c "$SERVER_CPU" "$WORK/certgate" serve --config "$WORK/certgate-$1.yaml" >>"$WORK/certgate.log" 2>&1 &
	SERVER_PID=$!
	STARTED+=("$SERVER_PID")
	for i in $(seq 1 120); do
		curl -sf -o /dev/null --max-time 2 --cacert "$PKI/root.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" "$URL" && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || { echo "assertions: certgate exited (see $WORK/certgate.log)" >&2; return 1; }
		sleep 0.5
	done
	return 1
}
stop() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }

load() {
	local label=$1 mode=$2
	shift 2
	taskset -c "$LOAD_CPU" "$BENCH" "$mode" --url "$URL" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" \
		--cacert "$PKI/root.pem" --expect alice@contoso.com --duration "$DURATION" --workers "$WORKERS" \
		--pid "$SERVER_PID" --label "$label" --tls13 --curves X25519 "$@" | tee -a "$RESULTS" | grep '^#' || true
}

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for v in $VARIANTS; do config "$v"; done
for r in $(seq 1 "$ROUNDS"); do
	for v in $VARIANTS; do
		echo "== round $r: $v"
		start "$v"
		load "$v/ka-h1/$r" keepalive --workers "$KA_WORKERS"
		# How many of those requests needed a signature (the rest reused one).
		curl -sf "http://127.0.0.1:$ADMIN_PORT/metrics" | sed -n "s/^certgate_assertions_\(signed\|reused\)_total{route=\"web\"} \([0-9.e+]*\)$/$v ka-h1 $r \1 \2/p" >>"$WORK/signatures.txt" || true
		case $v in none | *-each) load "$v/hs/$r" handshakes ;; esac
		stop
	done
done
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians per variant and scenario: req/s, server cores, server µs per request.
echo
echo "| variant | scenario | req/s | server CPU cores | server CPU µs/request |"
echo "|---|---|---:|---:|---:|"
sed -n 's/.*"label":"\([^"]*\)".*"rate_per_s":\([0-9.e+-]*\).*"server_cpu_cores":\([0-9.e+-]*\).*/\1 \2 \3/p' "$RESULTS" |
	awk '{ split($1, l, "/"); k = l[1] "|" l[2]; n[k]++; rate[k, n[k]] = $2; cpu[k, n[k]] = $3; us[k, n[k]] = ($2 > 0 ? $3 * 1e6 / $2 : 0) }
	function med(a, k, c,   i, j, t, v) { for (i = 1; i <= c; i++) v[i] = a[k, i]
		for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return v[int((c + 1) / 2)] }
	END { for (k in n) { split(k, p, "|"); printf "| %s | %s | %.0f | %.2f | %.1f |\n", p[1], p[2], med(rate, k, n[k]), med(cpu, k, n[k]), med(us, k, n[k]) } }' | sort -t'|' -k3,3 -k2,2
if [ -s "$WORK/signatures.txt" ]; then
	echo
	echo "| variant | keep-alive requests | signatures | signatures per 1000 requests |"
	echo "|---|---:|---:|---:|"
	awk '{ k = $1; if ($4 == "signed") s[k] += $5; else u[k] += $5 }
	END { for (k in s) printf "| %s | %d | %d | %.2f |\n", k, s[k] + u[k], s[k], (s[k] + u[k] > 0 ? 1000 * s[k] / (s[k] + u[k]) : 0) }' "$WORK/signatures.txt" | sort
fi

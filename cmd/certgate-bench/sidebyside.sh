#!/usr/bin/env bash
# Side-by-side: certgate and nginx on the same PKI, backend and load, in
# alternation, several rounds; prints medians and certgate/nginx ratios.
#
# The server under test runs on one core (taskset -c $SERVER_CPU), the
# load generator and the echo backend on the other ($LOAD_CPU). Every load
# is bounded by $DURATION. Installs nothing: needs go, nginx (Debian's
# package), taskset (util-linux), curl and openssl on PATH.
#
#   cmd/certgate-bench/sidebyside.sh            # full run, ~15 minutes
#   ROUNDS=1 DURATION=2s IDLE_CONNS=200 BIG_ENTRIES=10000 cmd/certgate-bench/sidebyside.sh
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-16}
# Keep-alive needs more requests in flight than handshakes to keep the
# server's core busy: each round trip crosses both cores twice.
KA_WORKERS=${KA_WORKERS:-64}
IDLE_CONNS=${IDLE_CONNS:-10000}
BIG_ENTRIES=${BIG_ENTRIES:-1000000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CURVE=${CURVE:-X25519}
WORK=${WORK:-$(mktemp -d /tmp/certgate-sidebyside.XXXXXX)}
SCENARIOS=${SCENARIOS:-"hs-small hs-big resumed ka-h1 ka-h2 idle hs-mlkem crl-refresh crl"}
PORT_BASE=${PORT_BASE:-28440}
# false: certgate serves HTTP/1.1 through net/http only (http1.fastPath: false).
FASTPATH=${FASTPATH:-true}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
RESULTS=$WORK/results.jsonl
PKI=$WORK/pki
PROXY_PORT=$PORT_BASE
ADMIN_PORT=$((PORT_BASE + 1))
BACKEND_PORT=$((PORT_BASE + 2))
CRLSERVE_PORT=$((PORT_BASE + 3))
URL=https://localhost:$PROXY_PORT/

for tool in go nginx taskset curl openssl; do
	command -v "$tool" >/dev/null || { echo "sidebyside: $tool is not installed (apt-get install nginx util-linux curl openssl)" >&2; exit 2; }
done
[ "$(nproc)" -ge 2 ] || { echo "sidebyside: needs 2 cores" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((IDLE_CONNS + 1000)) ] || { echo "sidebyside: ulimit -n $(ulimit -n) is too low for $IDLE_CONNS idle connections" >&2; exit 2; }

mkdir -p "$WORK"
: >"$RESULTS"
STARTED=()   # pids this script started, stopped on exit
cleanup() {
	for pid in "${STARTED[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${STARTED[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}
trap cleanup EXIT

echo "== building into $WORK"
(cd "$REPO" && go build -o "$WORK/certgate" ./cmd/certgate && go build -o "$WORK/certgate-bench" ./cmd/certgate-bench)
BENCH=$WORK/certgate-bench

echo "== PKI ($BIG_ENTRIES-entry big CRL)"
"$BENCH" pki --dir "$PKI" --entries "$BIG_ENTRIES"

taskset -c "$LOAD_CPU" "$BENCH" backend --listen 127.0.0.1:$BACKEND_PORT >"$WORK/backend.log" 2>&1 &
STARTED+=($!)

# certgate_config NAME CRL_URL: a config with no directory (the identity is
# the certificate's UPN), handshake rejection, one web route.
certgate_config() {
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
    crlDistributionPoint: $2
revocation:
  maxCRLSize: 256MiB
routes:
  - name: web
    kind: web
    pathPrefix: /
    backend: http://127.0.0.1:$BACKEND_PORT
limits:
  idleTimeout: 600s
  maxConnections: $((IDLE_CONNS + 1000))
logging:
  format: json
  level: info
# As nginx's access_log below: one combined line per request, to a file.
accessLog:
  format: combined
  file: $WORK/certgate-access-$1.log
http1:
  fastPath: $FASTPATH
YAML
}
certgate_config small "file:pki/crl-small.der"
certgate_config big "file:pki/crl-big.der"
certgate_config refresh "http://127.0.0.1:$CRLSERVE_PORT/crl.der"

# nginx_config NAME CRL_PEM: the same contract in nginx: client
# certificate required and checked against the CRL, the identity (the
# subject DN) passed in X-Remote-User, kept-alive connections upstream.
nginx_config() {
	cat >"$WORK/nginx-$1.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile $((IDLE_CONNS * 2 + 1000));
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections $((IDLE_CONNS * 2 + 500)); }
http {
  access_log $WORK/nginx-access.log;
  keepalive_timeout 600s;
  keepalive_requests 10000000;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$PROXY_PORT ssl http2;
    ssl_certificate $PKI/server.pem;
    ssl_certificate_key $PKI/server-key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ecdh_curve X25519:prime256v1;
    ssl_verify_client on;
    ssl_client_certificate $PKI/root.pem;
    ssl_verify_depth 2;
    ssl_crl $2;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Remote-User \$ssl_client_s_dn;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
CONF
}
mkdir -p "$WORK/nginx-tmp"
nginx_config small "$PKI/crl-small.pem"
nginx_config big "$PKI/crl-big.pem"

SERVER_PID=
MEASURE_PID=   # the process whose CPU and RSS are measured (nginx: its worker)

wait_ready() {
	local i
	for i in $(seq 1 240); do
		if curl -sf -o /dev/null --max-time 2 --cacert "$PKI/root.pem" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" "$URL"; then
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || { echo "sidebyside: server exited" >&2; return 1; }
		sleep 0.5
	done
	echo "sidebyside: server not ready after 120s" >&2
	return 1
}

# start SERVER CONF
start() {
	case $1 in
	certgate)
		taskset -c "$SERVER_CPU" "$WORK/certgate" serve --config "$WORK/certgate-$2.yaml" >>"$WORK/certgate.log" 2>&1 &
		SERVER_PID=$!
		MEASURE_PID=$SERVER_PID
		;;
	nginx)
		taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx-$2.conf" -g 'daemon off;' >>"$WORK/nginx.log" 2>&1 &
		SERVER_PID=$!
		;;
	esac
	STARTED+=("$SERVER_PID")
	wait_ready
	if [ "$1" = nginx ]; then
		MEASURE_PID=$(cat "/proc/$SERVER_PID/task/$SERVER_PID/children" | awk '{print $1}')
		[ -n "$MEASURE_PID" ] || { echo "sidebyside: no nginx worker" >&2; return 1; }
	fi
}

stop() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

# load SERVER SCENARIO ROUND MODE [ARGS...]
load() {
	local server=$1 scenario=$2 round=$3 mode=$4
	shift 4
	taskset -c "$LOAD_CPU" "$BENCH" "$mode" --url "$URL" --cert "$PKI/client.pem" --key "$PKI/client-key.pem" \
		--cacert "$PKI/root.pem" --expect alice@contoso.com --duration "$DURATION" --workers "$WORKERS" \
		--pid "$MEASURE_PID" --label "$server/$scenario/$round" "$@" | tee -a "$RESULTS" ||
		echo "sidebyside: $server $scenario round $round failed (see above)" >&2
}

has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

one_server() {
	local s=$1 r=$2
	if has hs-small || has resumed || has ka-h1 || has ka-h2 || has hs-mlkem; then
		start "$s" small
		has hs-small && load "$s" hs-small "$r" handshakes --tls13 --curves "$CURVE"
		has resumed && load "$s" resumed "$r" resumed --tls13 --curves "$CURVE"
		has ka-h1 && load "$s" ka-h1 "$r" keepalive --tls13 --curves "$CURVE" --workers "$KA_WORKERS"
		has ka-h2 && load "$s" ka-h2 "$r" keepalive --tls13 --curves "$CURVE" --h2 --workers "$KA_WORKERS"
		if has hs-mlkem; then
			if [ "$s" = certgate ]; then
				load "$s" hs-mlkem "$r" handshakes --tls13 --curves X25519MLKEM768
			elif openssl list -kem-algorithms 2>/dev/null | grep -qi mlkem; then
				load "$s" hs-mlkem "$r" handshakes --tls13 --curves X25519MLKEM768 || true
			fi
		fi
		stop
	fi
	if has idle; then
		# A fresh server, so that "before" is its resting size.
		start "$s" small
		load "$s" idle "$r" idle --tls13 --curves "$CURVE" --conns "$IDLE_CONNS" --workers 32 --duration 120s
		stop
	fi
	if has hs-big; then
		start "$s" big
		load "$s" hs-big "$r" handshakes --tls13 --curves "$CURVE"
		stop
	fi
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
echo "== nginx: $(nginx -v 2>&1 | sed 's/.*: //'), $(openssl version)"
echo "== go: $(go version | awk '{print $3}'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if ! openssl list -kem-algorithms 2>/dev/null | grep -qi mlkem; then
	echo "== X25519MLKEM768: not available in $(openssl version | awk '{print $1, $2}'): nginx measured with $CURVE only"
fi

for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then order="certgate nginx"; else order="nginx certgate"; fi
	for s in $order; do
		echo "== round $r: $s"
		one_server "$s" "$r"
	done
	if has crl-refresh; then
		echo "== round $r: certgate crl-refresh"
		taskset -c "$LOAD_CPU" "$BENCH" crl-serve --dir "$PKI" --entries "$BIG_ENTRIES" --listen 127.0.0.1:$CRLSERVE_PORT --count 32 >"$WORK/crl-serve.log" 2>&1 &
		crlserve=$!
		STARTED+=("$crlserve")
		for i in $(seq 1 240); do grep -q listening "$WORK/crl-serve.log" && break; sleep 0.5; done
		start certgate refresh
		load certgate crl-refresh "$r" crl-refresh --tls13 --curves "$CURVE" --admin "http://127.0.0.1:$ADMIN_PORT" --slice 2s --duration "$(( ${DURATION%s} * 2 ))s"
		stop
		kill "$crlserve" 2>/dev/null || true
		wait "$crlserve" 2>/dev/null || true
	fi
	if has crl; then
		echo "== round $r: certgate crl (in process)"
		taskset -c "$SERVER_CPU" "$BENCH" crl --crl "$PKI/crl-big.der" --ca "$PKI/root.pem" --label "certgate/crl/$r" | tee -a "$RESULTS"
	fi
done

echo
echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes on these cores skew every figure)"
echo "== results ($RESULTS)"
"$BENCH" summarize "$RESULTS" | tee "$WORK/summary.md"

#!/usr/bin/env bash
# Smoke test for a running certgate, with nothing but curl.
#
#   CERTGATE_URL=https://mail.example.com/ \
#   CERTGATE_CERT=alice.pem CERTGATE_KEY=alice-key.pem \
#   [CERTGATE_CACERT=root.pem] [CERTGATE_ADMIN=http://127.0.0.1:9090] \
#   [CERTGATE_EXPECT_USER=alice@contoso.com] \
#   examples/smoke.sh
#
# CERTGATE_CERT must be a certificate certgate admits. With CERTGATE_ADMIN
# the admin endpoints are checked too. CERTGATE_EXPECT_USER is for a backend
# that echoes the identity header (certgate demo's does): the body must name
# that user, and a spoofed identity header must not get through.
# Exit 0 when every check passes, 1 at the first failure.
set -euo pipefail

: "${CERTGATE_URL:?set CERTGATE_URL to the proxy URL, e.g. https://localhost:8443/}"
: "${CERTGATE_CERT:?set CERTGATE_CERT to a client certificate certgate admits}"
: "${CERTGATE_KEY:?set CERTGATE_KEY to the key of that certificate}"

tls=()
if [ -n "${CERTGATE_CACERT:-}" ]; then tls=(--cacert "$CERTGATE_CACERT"); fi
body=$(mktemp)
trap 'rm -f "$body"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# request URL [curl args...]: sets $code (000 when no HTTP answer) and $body.
request() {
  local url=$1; shift
  code=$(curl -sS --max-time 15 -o "$body" -w '%{http_code}' "$@" "$url" 2>/dev/null) || true
  code=${code:-000}
}

if [ -n "${CERTGATE_ADMIN:-}" ]; then
  admin=${CERTGATE_ADMIN%/}
  request "$admin/healthz"
  [ "$code" = 200 ] || fail "$admin/healthz answered $code"
  ok "healthz"
  request "$admin/readyz"
  [ "$code" = 200 ] || fail "$admin/readyz answered $code: $(head -c 300 "$body")"
  ok "readyz"
  request "$admin/metrics"
  [ "$code" = 200 ] || fail "$admin/metrics answered $code"
  for m in certgate_auth_decisions_total certgate_tls_handshakes_total certgate_config_reloads_total; do
    grep -q "^$m" "$body" || fail "/metrics lacks $m"
  done
  ok "metrics"
fi

request "$CERTGATE_URL" "${tls[@]}" --cert "$CERTGATE_CERT" --key "$CERTGATE_KEY"
case "$code" in
  [23][0-9][0-9]) ok "admitted with $CERTGATE_CERT (HTTP $code)" ;;
  000) fail "no HTTP answer with $CERTGATE_CERT (refused in the TLS handshake, or unreachable)" ;;
  *) fail "HTTP $code with $CERTGATE_CERT: $(head -c 300 "$body")" ;;
esac
if [ -n "${CERTGATE_EXPECT_USER:-}" ]; then
  grep -qF "$CERTGATE_EXPECT_USER" "$body" || fail "the backend did not see $CERTGATE_EXPECT_USER: $(head -c 300 "$body")"
  ok "backend saw $CERTGATE_EXPECT_USER"
  request "$CERTGATE_URL" "${tls[@]}" --cert "$CERTGATE_CERT" --key "$CERTGATE_KEY" \
    -H "X-Remote-User: spoofed@evil.example" -H "X_Remote_User: spoofed@evil.example"
  if grep -qF "spoofed@evil.example" "$body"; then fail "a spoofed identity header reached the backend"; fi
  ok "spoofed identity header removed"
fi

request "$CERTGATE_URL" "${tls[@]}"
case "$code" in
  000|403|496) ok "refused without a certificate (HTTP $code)" ;;
  *) fail "HTTP $code without a client certificate" ;;
esac

echo "smoke test passed"

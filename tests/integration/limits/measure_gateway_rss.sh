#!/usr/bin/env bash
# Peak RSS of the gateway under 16 concurrent pathological 1 MiB bodies
# ([0,0,0,...], not an object: 400 after validation), 5 rounds.
#   tests/integration/limits/measure_gateway_rss.sh [gateway binary]
# Needs no PostgreSQL, Kafka or EasyPost: the body is refused before any of them.
# As a test (it_gateway_body_rss): fails when the peak RSS is over SS_RSS_MAX_KB, or
# when validation accepts or refuses the wrong bodies.
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
BIN=${1:-build/bin/shipstream-gateway}
T=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$T"' EXIT
python3 -c 'import sys; n=(1048576-3)//2; sys.stdout.write("[" + "0,"*n + "0]")' >"$T/zeros.json"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LISTEN="127.0.0.1:$port" GATEWAY_AUTH=off EASYPOST_API_KEY=x EASYPOST_API_BASE=http://127.0.0.1:1/v2 \
  DATABASE_URL=postgresql://127.0.0.1:1/none KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 LOG_LEVEL=error \
  "$BIN" >"$T/gw.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }

# Validation still tells objects from the rest (an object goes on to EasyPost, which is
# unreachable here: 502).
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
  --data-binary "$1" "http://127.0.0.1:$port/v1/shipments"; }
deep=$(python3 -c 'print("{\"a\":" * 32 + "1" + "}" * 32)')
deeper=$(python3 -c 'print("{\"a\":" * 33 + "1" + "}" * 33)')
for case in '502 {"shipment":{"reference":"x"}}' '502  {"a":[1,2]} ' "502 $deep" "400 $deeper" \
  '400 [0,0]' '400 {"a":1} x' '400 {"a":01}' '400 {"a":1,}' '400 "x"' '400 {'; do
  want=${case%% *} body=${case#* }
  got=$(code "$body")
  [ "$got" = "$want" ] || fail "body ${body:0:40}: status $got, want $want"
done
echo "validation: objects pass (502: EasyPost unreachable), the rest is 400"
echo "body $(stat -c %s "$T/zeros.json") bytes; idle: VmRSS $(rss VmRSS) kB"
for round in 1 2 3 4 5; do
  codes=$(for i in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 60 -H 'Content-Type: application/json' \
      --data-binary "@$T/zeros.json" "http://127.0.0.1:$port/v1/shipments" &
  done; wait)
  echo "round $round: $(sort <<<"$codes" | uniq -c | tr -s ' \n' ' ')| VmHWM $(rss VmHWM) kB, VmRSS $(rss VmRSS) kB"
  [ "$(sort -u <<<"$codes")" = 400 ] || fail "round $round: want 16 x 400"
done
peak=$(rss VmHWM)
if [ -n "${SS_RSS_MAX_KB:-}" ]; then
  [ "$peak" -le "$SS_RSS_MAX_KB" ] || fail "peak RSS $peak kB is over $SS_RSS_MAX_KB kB"
  echo "PASS: peak RSS $peak kB <= $SS_RSS_MAX_KB kB"
fi

#!/usr/bin/env bash
# Webhook receiver throughput and latency against the real receiver producing
# to the real broker of the harness environment (every 200 is answered after
# the broker's ack, acks=all), with the real 3.5 KB tracker.updated body and a
# valid signature.  Baseline, same run, same load settings:
# ss-bench-webhook-bare, a bare civetweb handler that reads the body and
# answers 200.
#
# Results:
#   webhook_accepted_rps        closed loop: wrk (Debian's package),
#                               BENCH_WEBHOOK_CONNS connections, as fast as it goes
#   webhook_saturated_p99_ms    wrk's p99 in that run
#   webhook_paced_rps           open loop: ss-bench-paced (tools/paced) schedules
#   webhook_paced_p50_ms/_p99_ms  exactly BENCH_WEBHOOK_RATE req/s (request i at
#                               t0 + i/rate) on BENCH_WEBHOOK_PACED_CONNS
#                               keep-alive connections; a request that finds them
#                               all busy waits, and its latency counts from its
#                               scheduled time to the last byte of the answer
#                               (coordinated-omission corrected, like wrk2).
#                               webhook_paced_rps is what was answered 2xx per second.
#
# Needs SS_TEST_KAFKA_BOOTSTRAP, SS_BIN_DIR (bench/run.sh sets them), wrk, openssl.
set -euo pipefail
: "${SS_TEST_KAFKA_BOOTSTRAP:?run inside tests/integration/harness.sh (bench/run.sh does)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BIN_DIR="${SS_BIN_DIR:-$ROOT/build/bin}"
RECV="$BIN_DIR/shipstream-webhook-receiver"
BARE="$BIN_DIR/ss-bench-webhook-bare"
PACED="$BIN_DIR/ss-bench-paced"
# shellcheck source=../../tests/integration/lib.sh
SS_LIB_TOOLS_ONLY=1 source "$ROOT/tests/integration/lib.sh"   # ss_free_port, ss_field, ss_find_kafkactl
KAFKACTL=$(SS_BIN_DIR="$BIN_DIR" ss_find_kafkactl) || KAFKACTL="$BIN_DIR/ss-kafkactl"
FIX="${SS_FIXTURES_DIR:-$ROOT/tests/fixtures/easypost}"
BODY="$FIX/event-tracker-updated.json"
DURATION="${BENCH_WEBHOOK_SECONDS:-10}"
WARMUP="${BENCH_WEBHOOK_WARMUP_SECONDS:-5}"
# 128 concurrent deliveries: every answer waits for the broker's ack, at least
# the producer's linger.ms (3 ms), so 64 connections alone would cap the closed
# loop near 64 / 4 ms = 16,000/s whatever the CPU; 128 measures capacity.
CONNS="${BENCH_WEBHOOK_CONNS:-128}"
WRK_THREADS="${BENCH_WEBHOOK_WRK_THREADS:-2}"
RATE="${BENCH_WEBHOOK_RATE:-2000}"
PACED_CONNS="${BENCH_WEBHOOK_PACED_CONNS:-64}"
PACED_WARMUP="${BENCH_WEBHOOK_PACED_WARMUP_SECONDS:-1}"
SERVER_THREADS=$((CONNS * 2))
for f in "$RECV" "$BARE" "$PACED" "$KAFKACTL"; do [ -x "$f" ] || { echo "bench/webhook: $f not built" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "bench/webhook: wrk not installed (apt-get install wrk)" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_http() { # wait_http <url> <seconds>
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt "$deadline" ] || { echo "bench/webhook: $1 never answered" >&2; return 1; }
    sleep 0.1
  done
}
# run_wrk <port> <conns>: closed loop, prints the WRK line.
run_wrk() {
  BENCH_BODY="$BODY" BENCH_SIG="$SIG" \
    wrk -t"$WRK_THREADS" -c"$2" -d"${DURATION}s" --timeout 10s -s "$HERE/post.lua" \
    "http://127.0.0.1:$1/webhooks/easypost" >"$TMP/wrk.out" 2>&1 || { cat "$TMP/wrk.out" >&2; return 1; }
  grep '^WRK ' "$TMP/wrk.out"
}
# run_paced <port>: open loop at exactly $RATE req/s after a short warm-up at
# the same rate, prints the WRK line (same fields, plus target_rps and achieved_rps);
# its per-second answers and highest latency go to stderr (the bench log).
run_paced() {
  "$PACED" --url "http://127.0.0.1:$1/webhooks/easypost" --rate "$RATE" --duration "$DURATION" \
    --warmup "$PACED_WARMUP" --connections "$PACED_CONNS" --timeout-ms 10000 --timeline --body "$BODY" \
    --header 'Content-Type: application/json' --header "X-Hmac-Signature: $SIG" \
    >"$TMP/paced.out" 2>"$TMP/paced.err" || { cat "$TMP/paced.out" "$TMP/paced.err" >&2; return 1; }
  sed 's/^/  /' "$TMP/paced.err" >&2
  grep '^WRK ' "$TMP/paced.out"
}
rps() { # rps <WRK line>: successful (2xx) requests per second
  local req non2xx dur
  req=$(ss_field requests "$1"); non2xx=$(ss_field non2xx "$1"); dur=$(ss_field duration_us "$1")
  awk -v r="$req" -v n="$non2xx" -v d="$dur" 'BEGIN { printf "%.0f", (r - n) / (d / 1e6) }'
}
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

SECRET="bench-$(openssl rand -hex 16)"
SIG="hmac-sha256-hex=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$BODY" | cut -d' ' -f1)"
PREFIX="bench.webhook.$$.$(openssl rand -hex 3)."
"$KAFKACTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" create-topics --prefix "$PREFIX" --partitions 12 --timeout 60 >/dev/null 2>&1
# offsets of the trackers topic (retried: fresh partitions may not have a leader yet)
offsets() {
  local n
  for _ in $(seq 1 100); do
    n=$("$KAFKACTL" -b "$SS_TEST_KAFKA_BOOTSTRAP" offsets -t "${PREFIX}trackers" --sum 2>/dev/null) && { echo "$n"; return 0; }
    sleep 0.2
  done
  echo "bench/webhook: cannot read offsets of ${PREFIX}trackers" >&2
  return 1
}

# ---- the receiver
RPORT=$(ss_free_port)
LISTEN="127.0.0.1:$RPORT" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  EASYPOST_WEBHOOK_SECRET="$SECRET" WEBHOOK_THREADS="$SERVER_THREADS" LOG_LEVEL=warn \
  "$RECV" >"$TMP/receiver.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$RPORT/ready" 60
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Hmac-Signature: $SIG" --data-binary "@$BODY" \
  "http://127.0.0.1:$RPORT/webhooks/easypost")
[ "$code" = 200 ] || { echo "bench/webhook: warm-up request answered $code" >&2; cat "$TMP/receiver.log" >&2; exit 1; }

# ---- the baseline
BPORT=$(ss_free_port)
"$BARE" "$BPORT" "$SERVER_THREADS" >"$TMP/bare.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$BPORT/health" 20

# Warm-up, not reported: the broker is a fresh JVM, and its first seconds
# under load run interpreted code (JIT); the first 10 s run measured up to
# 2x slower than the next in the same harness.
DURATION=$WARMUP run_wrk "$RPORT" "$CONNS" >/dev/null

before=$(offsets)
r_sat=$(run_wrk "$RPORT" "$CONNS")
after=$(offsets)
b_sat=$(run_wrk "$BPORT" "$CONNS")
echo "receiver, $CONNS connections: $r_sat" >&2
echo "bare,     $CONNS connections: $b_sat" >&2
ok=$(( $(ss_field requests "$r_sat") - $(ss_field non2xx "$r_sat") ))
# Every 200 is on Kafka (there may be more messages than 200s: a request cut
# off by wrk's end after its produce).
if [ $((after - before)) -lt "$ok" ]; then
  echo "bench/webhook: $ok answered 200 but only $((after - before)) messages on Kafka" >&2
  exit 1
fi
[ "$(ss_field non2xx "$r_sat")" = 0 ] || echo "bench/webhook: $(ss_field non2xx "$r_sat") non-2xx answers from the receiver" >&2

# Paced: open loop at exactly $RATE req/s (ss-bench-paced).
r_paced=$(run_paced "$RPORT")
b_paced=$(run_paced "$BPORT")
echo "receiver, paced ($RATE req/s, $PACED_CONNS conns): $r_paced" >&2
echo "bare,     paced ($RATE req/s, $PACED_CONNS conns): $b_paced" >&2
[ "$(ss_field socket_errors "$r_paced")" = 0 ] || echo "bench/webhook: $(ss_field socket_errors "$r_paced") socket errors in the paced run of the receiver" >&2

echo "RESULT webhook_accepted_rps $(rps "$r_sat") req/s $(rps "$b_sat")"
echo "RESULT webhook_saturated_p99_ms $(ms "$(ss_field p99_us "$r_sat")") ms $(ms "$(ss_field p99_us "$b_sat")")"
echo "RESULT webhook_paced_rps $(rps "$r_paced") req/s $(rps "$b_paced")"
echo "RESULT webhook_paced_p50_ms $(ms "$(ss_field p50_us "$r_paced")") ms $(ms "$(ss_field p50_us "$b_paced")")"
echo "RESULT webhook_paced_p99_ms $(ms "$(ss_field p99_us "$r_paced")") ms $(ms "$(ss_field p99_us "$b_paced")")"

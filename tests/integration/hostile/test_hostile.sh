#!/usr/bin/env bash
# The webhook receiver under idle and slow clients (issue 18): while 300 idle
# connections and 32 connections trickling a body byte by byte are held open
# against it (re-opened as soon as it closes them), signed webhooks still all
# succeed, probes on the admin listener all answer, and every hostile
# connection is closed within its bound (head deadline, body deadline).
# Latency goals are measured by bench/hostile (make bench), not asserted here.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

RECV="$SS_BIN_DIR/shipstream-webhook-receiver"
HOSTILE="$SS_BIN_DIR/ss-bench-hostile"
PACED="$SS_BIN_DIR/ss-bench-paced"
for b in "$RECV" "$HOSTILE" "$PACED"; do [ -x "$b" ] || ss_fail "$b not built"; done
FIX="${SS_FIXTURES_DIR:-$SS_SOURCE_ROOT/tests/fixtures/easypost}"
BODY="$FIX/event-tracker-updated.json"
SECRET="hostile-$(openssl rand -hex 8)"
SIG=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$BODY" | cut -d' ' -f1)
TIMEOUT_MS=3000

PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
port=$(ss_free_port); admin=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/recv.log" env LISTEN=127.0.0.1:$port ADMIN_LISTEN=127.0.0.1:$admin \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  EASYPOST_WEBHOOK_SECRET="$SECRET" WEBHOOK_REQUEST_TIMEOUT_MS=$TIMEOUT_MS "$RECV" >/dev/null
RPID=$SS_BG_PID
ss_wait_for 30 curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null || ss_fail "receiver not ready"
rss0=$(awk '/VmRSS/{print $2}' "/proc/$RPID/status")

"$HOSTILE" --url "http://127.0.0.1:$port/webhooks/easypost" --idle 300 --trickle 32 --interval-ms 500 \
  --content-length 4000 --header "X-Hmac-Signature: hmac-sha256-hex=$SIG" --duration 16 \
  >"$SS_TEST_TMP/hostile.out" 2>"$SS_TEST_TMP/hostile.err" &
HPID=$!
ss_on_exit "kill $HPID 2>/dev/null"
sleep 2   # the hostile connections are being held (not a wait for a condition: the load ramps)
"$PACED" --url "http://127.0.0.1:$port/webhooks/easypost" --rate 20 --duration 8 --connections 4 \
  --body "$BODY" --header "X-Hmac-Signature: hmac-sha256-hex=$SIG" --header 'Content-Type: application/json' \
  --timeout-ms 5000 >"$SS_TEST_TMP/legit.out" 2>"$SS_TEST_TMP/legit.err" &
LPID=$!
"$PACED" --url "http://127.0.0.1:$admin/health" --rate 10 --duration 8 --connections 2 --timeout-ms 2000 \
  >"$SS_TEST_TMP/probe.out" 2>"$SS_TEST_TMP/probe.err" || ss_fail "probes: $(cat "$SS_TEST_TMP/probe.err")"
wait $LPID || ss_fail "legitimate webhooks: $(cat "$SS_TEST_TMP/legit.err")"
rss1=$(awk '/VmRSS/{print $2}' "/proc/$RPID/status")
wait $HPID
cat "$SS_TEST_TMP/legit.out" "$SS_TEST_TMP/probe.out" "$SS_TEST_TMP/hostile.out"

field() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1"; }
[ "$(field "$SS_TEST_TMP/legit.out" requests)" -ge 150 ] || ss_fail "too few legitimate webhooks answered"
[ "$(field "$SS_TEST_TMP/legit.out" non2xx)" = 0 ] || ss_fail "legitimate webhooks refused under hostile load: $(tail -n 5 "$SS_TEST_TMP/legit.err")"
[ "$(field "$SS_TEST_TMP/legit.out" socket_errors)" = 0 ] || ss_fail "legitimate webhooks failed (socket errors) under hostile load: $(tail -n 5 "$SS_TEST_TMP/legit.err")"
ss_pass "160 signed webhooks at 20/s all answered 2xx while 332 hostile connections were held"
[ "$(field "$SS_TEST_TMP/probe.out" non2xx)" = 0 ] && [ "$(field "$SS_TEST_TMP/probe.out" socket_errors)" = 0 ] ||
  ss_fail "probes on the admin listener failed: $(tail -n 5 "$SS_TEST_TMP/probe.err")"
ss_pass "every probe on the admin listener answered (p99 $(field "$SS_TEST_TMP/probe.out" p99_us) us)"
h="$SS_TEST_TMP/hostile.out"
[ "$(field "$h" trickle_closed)" -gt 0 ] || ss_fail "no trickling connection was ever cut off"
[ "$(field "$h" idle_closed)" -gt 0 ] || ss_fail "no idle connection was ever closed"
# Bounds: the head deadline for idle ones, the body deadline for trickling ones
# (started after the head), plus the watchdog's 50 ms and scheduling slack.
bound=$((2 * TIMEOUT_MS + 2000))
[ "$(field "$h" idle_max_ms)" -le $((TIMEOUT_MS + 2000)) ] || ss_fail "an idle connection lived $(field "$h" idle_max_ms) ms"
[ "$(field "$h" trickle_max_ms)" -le $bound ] || ss_fail "a trickling connection lived $(field "$h" trickle_max_ms) ms (bound $bound)"
[ "$(field "$h" trickle_answered)" -gt 0 ] || ss_fail "trickling connections were closed without an answer (want 408)"
ss_pass "hostile connections closed within their bounds (idle ≤ $((TIMEOUT_MS + 2000)) ms, trickle ≤ $bound ms)"
grep -q '"body_too_slow"\|body too slow' "$SS_TEST_TMP/recv.log" || ss_fail "no 408 logged"
ss_pass "receiver RSS ${rss0} KiB idle, ${rss1} KiB under hostile load (default WEBHOOK_THREADS)"

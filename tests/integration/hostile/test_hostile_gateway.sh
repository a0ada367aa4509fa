#!/usr/bin/env bash
# The gateway under idle and slow clients (issue 18): with 300 idle connections
# and 32 connections trickling a body held open against it, authorised /db
# reads at 20/s all succeed, probes on the admin listener all answer, every
# hostile connection is closed within its bound, and however many HTTP threads
# the gateway runs, it holds no more PostgreSQL connections than its pool.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
HOSTILE="$SS_BIN_DIR/ss-bench-hostile"
PACED="$SS_BIN_DIR/ss-bench-paced"
TIMEOUT_MS=3000
POOL=4

ss_test_migrated_db gw_hostile
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
gw_start_sim
admin=$(ss_free_port)
gw_start GATEWAY_DB_POOL=$POOL GATEWAY_REQUEST_TIMEOUT_MS=$TIMEOUT_MS ADMIN_LISTEN=127.0.0.1:$admin
ss_wait_for 30 curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null || ss_fail "gateway not ready on the admin listener"

"$HOSTILE" --url "$GW/v1/shipments" --idle 300 --trickle 32 --interval-ms 500 --content-length 4000 \
  --header "Authorization: Bearer $API_KEY" --duration 16 >"$SS_TEST_TMP/hostile.out" 2>"$SS_TEST_TMP/hostile.err" &
HPID=$!
ss_on_exit "kill $HPID 2>/dev/null"
sleep 2   # the hostile connections are being held (the load ramps; not a wait for a condition)
"$PACED" --url "$GW/db/shipments?limit=5" --rate 20 --duration 8 --connections 8 \
  --header "Authorization: Bearer $API_KEY" --timeout-ms 5000 >"$SS_TEST_TMP/legit.out" 2>"$SS_TEST_TMP/legit.err" &
LPID=$!
"$PACED" --url "http://127.0.0.1:$admin/ready" --rate 10 --duration 8 --connections 2 --timeout-ms 2000 \
  >"$SS_TEST_TMP/probe.out" 2>"$SS_TEST_TMP/probe.err" || ss_fail "probes: $(cat "$SS_TEST_TMP/probe.err")"
wait $LPID || ss_fail "/db reads: $(cat "$SS_TEST_TMP/legit.err")"
conns=$(ss_psql "$DB_URL" -Atc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shipstream-gateway'")
wait $HPID
cat "$SS_TEST_TMP/legit.out" "$SS_TEST_TMP/probe.out" "$SS_TEST_TMP/hostile.out"

field() { sed -n "s/.*\b$2=\([0-9.]*\).*/\1/p" "$1"; }
[ "$(field "$SS_TEST_TMP/legit.out" requests)" -ge 150 ] || ss_fail "too few /db reads answered"
[ "$(field "$SS_TEST_TMP/legit.out" non2xx)" = 0 ] && [ "$(field "$SS_TEST_TMP/legit.out" socket_errors)" = 0 ] ||
  ss_fail "/db reads failed under hostile load: $(tail -n 5 "$SS_TEST_TMP/legit.err")"
ss_pass "160 authorised /db reads at 20/s all 2xx while 332 hostile connections were held"
[ "$(field "$SS_TEST_TMP/probe.out" non2xx)" = 0 ] && [ "$(field "$SS_TEST_TMP/probe.out" socket_errors)" = 0 ] ||
  ss_fail "/ready on the admin listener failed: $(tail -n 5 "$SS_TEST_TMP/probe.err")"
ss_pass "every /ready on the admin listener answered 200 (p99 $(field "$SS_TEST_TMP/probe.out" p99_us) us)"
h="$SS_TEST_TMP/hostile.out"
[ "$(field "$h" trickle_closed)" -gt 0 ] && [ "$(field "$h" idle_closed)" -gt 0 ] || ss_fail "hostile connections never closed"
[ "$(field "$h" idle_max_ms)" -le $((TIMEOUT_MS + 2000)) ] || ss_fail "an idle connection lived $(field "$h" idle_max_ms) ms"
[ "$(field "$h" trickle_max_ms)" -le $((2 * TIMEOUT_MS + 2000)) ] || ss_fail "a trickling connection lived $(field "$h" trickle_max_ms) ms"
ss_pass "hostile connections closed within their bounds"
[ "$conns" -ge 1 ] && [ "$conns" -le $POOL ] || ss_fail "the gateway held $conns PostgreSQL connections (pool $POOL)"
ss_pass "default GATEWAY_THREADS (1536), $conns PostgreSQL connection(s): the pool ($POOL) bounds them"

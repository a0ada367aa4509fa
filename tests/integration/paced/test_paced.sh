#!/usr/bin/env bash
# ss-bench-paced keeps its rate against a real HTTP server (ss-bench-webhook-bare,
# the baseline of bench/webhook) and fails clearly when it cannot connect.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

PACED="$SS_BIN_DIR/ss-bench-paced"
BARE="$SS_BIN_DIR/ss-bench-webhook-bare"
BODY="${SS_FIXTURES_DIR:-$SS_SOURCE_ROOT/tests/fixtures/easypost}/event-tracker-updated.json"
[ -x "$PACED" ] || ss_fail "$PACED not built"
[ -x "$BARE" ] || ss_fail "$BARE not built"

"$PACED" --help | grep -q -- '--rate' || ss_fail "--help does not describe --rate"
"$PACED" --url http://127.0.0.1:1/ --rate 0 --duration 1 --connections 1 2>"$SS_TEST_TMP/bad.err"
rc=$?
[ "$rc" = 2 ] || ss_fail "--rate 0 exited $rc, want 2"
grep -q -- '--rate' "$SS_TEST_TMP/bad.err" || ss_fail "--rate 0: no message naming --rate: $(cat "$SS_TEST_TMP/bad.err")"
ss_pass "bad arguments are refused (exit 2)"

# ---- a real server: 1,000 req/s for 3 s after a 0.5 s warm-up
port=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/bare.log" "$BARE" "$port" 16
ss_wait_for 10 curl -fsS "http://127.0.0.1:$port/health" || ss_fail "bare server did not start"
RATE=1000 SECS=3
line=$("$PACED" --url "http://127.0.0.1:$port/webhooks/easypost" --rate "$RATE" --duration "$SECS" --warmup 0.5 \
  --connections 8 --body "$BODY" --header 'Content-Type: application/json' 2>"$SS_TEST_TMP/run.err")
rc=$?
cat "$SS_TEST_TMP/run.err" >&2
echo "$line"
[ "$rc" = 0 ] || ss_fail "ss-bench-paced exited $rc"
[ "$(grep -c '^WRK ' <<<"$line")" = 1 ] || ss_fail "expected one WRK line on stdout, got: $line"
req=$(ss_field requests "$line"); ach=$(ss_field achieved_rps "$line"); want=$((RATE * SECS))
for f in requests duration_us socket_errors non2xx p50_us p90_us p99_us p999_us max_us target_rps achieved_rps; do
  [ -n "$(ss_field "$f" "$line")" ] || ss_fail "field $f missing in: $line"
done
# every scheduled request answered (none lost, none extra), at the asked rate
[ "$req" -ge $((want * 97 / 100)) ] && [ "$req" -le "$want" ] || ss_fail "requests=$req, want $want (-3 %)"
[ "$ach" -ge $((RATE * 97 / 100)) ] && [ "$ach" -le $((RATE * 103 / 100)) ] || ss_fail "achieved_rps=$ach, want $RATE +-3 %"
[ "$(ss_field target_rps "$line")" = "$RATE" ] || ss_fail "target_rps is not $RATE"
[ "$(ss_field non2xx "$line")" = 0 ] || ss_fail "non2xx=$(ss_field non2xx "$line")"
[ "$(ss_field socket_errors "$line")" = 0 ] || ss_fail "socket_errors=$(ss_field socket_errors "$line")"
dur=$(ss_field duration_us "$line")
[ "$dur" -ge $((SECS * 1000000)) ] && [ "$dur" -lt $((SECS * 1000000 + 1000000)) ] || ss_fail "duration_us=$dur"
p50=$(ss_field p50_us "$line") p99=$(ss_field p99_us "$line") max=$(ss_field max_us "$line")
[ "$p50" -gt 0 ] && [ "$p50" -le "$p99" ] && [ "$p99" -le "$max" ] || ss_fail "percentiles out of order: $line"
ss_pass "$req requests at $ach req/s (target $RATE), p50 ${p50} us, p99 ${p99} us, no errors"

# ---- a 404 is counted as non-2xx, not as an error
line=$("$PACED" --url "http://127.0.0.1:$port/nothing-here" --rate 200 --duration 0.5 --connections 2 2>/dev/null) ||
  ss_fail "run against a 404 path failed"
[ "$(ss_field requests "$line")" = 100 ] && [ "$(ss_field non2xx "$line")" = 100 ] && [ "$(ss_field socket_errors "$line")" = 0 ] ||
  ss_fail "404s: want requests=100 non2xx=100 socket_errors=0, got: $line"
ss_pass "404 answers counted in non2xx"

# ---- nothing listens: a clear error, non-zero exit, no result line
dead=$(ss_free_port)
out=$("$PACED" --url "http://127.0.0.1:$dead/webhooks/easypost" --rate 100 --duration 1 --connections 4 \
  --timeout-ms 2000 2>"$SS_TEST_TMP/dead.err")
rc=$?
cat "$SS_TEST_TMP/dead.err" >&2
[ "$rc" != 0 ] || ss_fail "exit status 0 against a port where nothing listens"
[ -z "$out" ] || ss_fail "printed a result line without a server: $out"
grep -q "cannot connect to 127.0.0.1:$dead" "$SS_TEST_TMP/dead.err" || ss_fail "no clear error message"
grep -qi "refused" "$SS_TEST_TMP/dead.err" || ss_fail "the error does not give the reason"
ss_pass "no server: exit $rc with '$(tail -n 1 "$SS_TEST_TMP/dead.err")'"

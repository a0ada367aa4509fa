#!/usr/bin/env bash
# Kafka refusing acknowledgements in the middle of a backfill and of a `once` pass (issue 14,
# "a complete copy"): nothing that Kafka did not acknowledge may be recorded as done.
#
# The sim holds N shipments with trackers (RC_TEST_SHIPMENTS, 1,000), answering each list call
# 250 ms late so that the backfill (one thread, pages of 25: 20 s for its 2N objects) is still
# walking when, after its first acknowledged pages, the max.message.bytes of the shipments
# and trackers topics is set below one envelope (kafka-configs' ConfigCommand, from the
# harness's own Kafka jars).  The broker then refuses every object with MESSAGE_TOO_LARGE: a
# real refusal, and one that waiting does not fix (an outage, or a delivery timeout, is
# waited out by design: services/reconcile/README.md).
#   - the backfill exits 1 within a deadline, saying that Kafka refused the objects;
#   - its state file claims exactly the objects that reached Kafka: the ids before each
#     slice's cursor number the slice's `produced`, and every one of them reaches PostgreSQL
#     through the sync worker, while the objects refused are still missing there;
#   - a `once` pass then fails the same way, counting nothing as repaired (errors > 0);
# and once the topics take envelopes again, the next pass repairs its window (errors 0), the
# backfill resumes and completes (exit 0), and PostgreSQL equals the sim.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/reconcile/common.sh"
N=${RC_TEST_SHIPMENTS:-1000}
DEADLINE=60 # seconds a refused run may take to give up; the backoff is capped at 2 s
T0=$(_ss_now_ms)
elapsed() { echo $(( ($(_ss_now_ms) - T0) / 1000 )); }

# topic_config <topic> <name=value>: ConfigCommand (kafka-configs.sh) from the jars
# deploy/local/kafka.sh runs the harness's broker with (its cache, its version).
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$SS_SOURCE_ROOT/deploy/local/kafka/pom.xml")
KAFKA_JARS="${SS_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shipstream/kafka-$KAFKA_VERSION}/libs"
[ -f "$KAFKA_JARS/kafka_2.13-$KAFKA_VERSION.jar" ] || ss_fail "no Kafka jars in $KAFKA_JARS"
topic_config() { # <topic> <name=value> [log]
  local log=${3:-$SS_TEST_TMP/configs.log}
  java -Xms32m -Xmx128m -XX:TieredStopAtLevel=1 -cp "$KAFKA_JARS/*" kafka.admin.ConfigCommand \
    --bootstrap-server "$SS_TEST_KAFKA_BOOTSTRAP" --entity-type topics --entity-name "$1" \
    --alter --add-config "$2" >"$log" 2>&1 ||
    ss_fail "kafka-configs $1 $2: $(tail -3 "$log")"
}

rc_setup rc_acks
rc_start_sim SIM_PRELOAD_SHIPMENTS="$N" SIM_PRELOAD_DAYS=120 SIM_FAULT_LATENCY_MS=250
rc_start_worker
# refuse <max.message.bytes>: both topics the reconciler produces to, at once (the topics are
# this test's own: nothing to restore for the others).
refuse() {
  topic_config "${PREFIX}shipments" "max.message.bytes=$1" & local a=$!
  topic_config "${PREFIX}trackers" "max.message.bytes=$1" "$SS_TEST_TMP/configs2.log" || ss_fail "trackers topic"
  wait $a || ss_fail "shipments topic"
}

SINCE=$(date -u -d '200 days ago' +%Y-%m-%dT%H:%M:%SZ)
STATE="$SS_TEST_TMP/backfill-state.json"
BF_ENV="RECONCILE_BACKFILL_PARALLEL=1 RECONCILE_PAGE_SIZE=25"
produced() { jq '[.slices[].produced] | add' "$STATE" 2>/dev/null || echo 0; }
started() { [ "$(produced)" -ge 100 ]; }
# RC_ENV's words come between rc_run's variables and the binary: `timeout` puts a deadline on
# the run (exit 124: it did not give up by itself).
deadline_env() { echo "$1 timeout -k 5 $DEADLINE"; }

# ---- 1. a backfill, refused in its middle
env EASYPOST_API_KEY=EZTK_rc EASYPOST_API_BASE="$SIM_URL/v2" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" \
  KAFKA_TOPIC_PREFIX="$PREFIX" RECONCILE_STATE_DIR="$SS_TEST_TMP" RECONCILE_BACKOFF_MAX_MS=2000 LOG_FORMAT=text \
  $BF_ENV "$RC_BIN" backfill --since "$SINCE" >"$SS_TEST_TMP/run1.out" 2>"$SS_TEST_TMP/run1.err" &
pid=$!
ss_wait_for 60 started || { kill $pid; ss_fail "the backfill did not produce 100 objects: $(produced)"; }
refuse 1024
p0=$(produced)
echo "# after $(elapsed)s: the topics refuse envelopes (max.message.bytes=1024); $p0 objects acknowledged before" >&2
gone() { ! kill -0 $pid 2>/dev/null; }
ss_wait_for "$DEADLINE" gone || { kill $pid; ss_fail "the backfill still runs ${DEADLINE}s after Kafka refused its objects: $(tail -3 "$SS_TEST_TMP/run1.err")"; }
wait $pid; rc1=$?
[ "$rc1" = 1 ] || ss_fail "refused backfill: exit $rc1 (expected 1): $(tail -3 "$SS_TEST_TMP/run1.err")"
grep -q "^backfill FAILED" "$SS_TEST_TMP/run1.out" || ss_fail "no FAILED summary: $(cat "$SS_TEST_TMP/run1.out")"
tail -2 "$SS_TEST_TMP/run1.err" | grep -q "Kafka refused.*too large" ||
  ss_fail "the failure does not name Kafka's refusal: $(tail -2 "$SS_TEST_TMP/run1.err")"
ss_pass "after $(elapsed)s: refused mid-backfill: exit 1, '$(tail -2 "$SS_TEST_TMP/run1.err" | head -1 | cut -c1-160)'"

# The ids the walker took in a slice up to its cursor: the same list calls it made.
slice_ids() { # <list> <start> <end> <before_id>
  local before="" page
  [ -n "$4" ] || return 0
  while :; do
    page=$(curl -fsS -u EZTK_rc: "$SIM_URL/v2/$1?page_size=100&start_datetime=$2&end_datetime=$3${before:+&before_id=$before}") ||
      { echo "slice_ids: GET failed" >&2; return 1; }
    jq -r ".${1}[].id" <<<"$page" >"$SS_TEST_TMP/page.ids"
    if grep -qx -- "$4" "$SS_TEST_TMP/page.ids"; then sed "/^$4\$/q" "$SS_TEST_TMP/page.ids"; return 0; fi
    cat "$SS_TEST_TMP/page.ids"
    [ "$(jq -r .has_more <<<"$page")" = true ] || { echo "slice_ids: cursor $4 not in $1" >&2; return 1; }
    before=$(tail -1 "$SS_TEST_TMP/page.ids")
  done
}
: >"$SS_TEST_TMP/claimed.ids"
while IFS='|' read -r list start end cursor n; do
  slice_ids "$list" "$start" "$end" "$cursor" >"$SS_TEST_TMP/slice.ids" || ss_fail "listing a slice"
  [ "$(wc -l <"$SS_TEST_TMP/slice.ids")" = "$n" ] ||
    ss_fail "$list slice $start..$end: $(wc -l <"$SS_TEST_TMP/slice.ids") objects up to its cursor, the state says $n produced"
  cat "$SS_TEST_TMP/slice.ids" >>"$SS_TEST_TMP/claimed.ids"
done < <(jq -r '.slices[] | [.list, .start, .end, .before_id, .produced] | join("|")' "$STATE")
sort -o "$SS_TEST_TMP/claimed.ids" "$SS_TEST_TMP/claimed.ids"
claimed=$(wc -l <"$SS_TEST_TMP/claimed.ids")
[ "$claimed" = "$(produced)" ] && [ "$claimed" -ge "$p0" ] || ss_fail "claimed $claimed, produced $(produced), $p0 before the refusal"
# What the state claims is on Kafka: the worker applies every one of those objects.
unapplied() {
  q "SELECT id FROM shipments WHERE updated_at IS NOT NULL UNION SELECT id FROM trackers" | sort >"$SS_TEST_TMP/pg.ids"
  comm -23 "$SS_TEST_TMP/claimed.ids" "$SS_TEST_TMP/pg.ids" >"$SS_TEST_TMP/unapplied.ids"
  [ ! -s "$SS_TEST_TMP/unapplied.ids" ]
}
ss_wait_for 30 unapplied ||
  ss_fail "$(wc -l <"$SS_TEST_TMP/unapplied.ids") of the $claimed objects the state claims never reached PostgreSQL (e.g. $(head -1 "$SS_TEST_TMP/unapplied.ids")): progress recorded for refused deliveries"
in_pg=$(wc -l <"$SS_TEST_TMP/pg.ids")
[ "$in_pg" -lt $((2 * N)) ] || ss_fail "every object reached PostgreSQL: nothing was refused"
ss_pass "the state claims $claimed objects ($(jq -c '[.slices[] | {list, produced}]' "$STATE")): every one is in PostgreSQL; $((2 * N - in_pg)) objects refused and missing"

# ---- 2. a `once` pass, refused
# The backfill walks newest first: the pass's window is all in PostgreSQL.  Drift: its
# shipments (with their trackers and events) deleted, as if they had never arrived.
WINDOW=240h
drift=$(q "WITH d AS (DELETE FROM shipments WHERE created_at > now() - interval '$WINDOW' RETURNING 1)
           SELECT count(*) FROM d")
[ "$drift" -gt 0 ] || ss_fail "no shipment in the last $WINDOW to delete"
RC_ENV=$(deadline_env "RECONCILE_PAGE_SIZE=100")
rc_run once --window "$WINDOW"
[ "$RC_RC" = 1 ] || ss_fail "refused pass: exit $RC_RC (expected 1; 124: hung): $(tail -3 "$RC_ERR")"
echo "$RC_OUT"
line=$(grep "^reconcile failed" <<<"$RC_OUT") || ss_fail "no failed summary: $RC_OUT"
grep -q "Kafka refused.*too large" <<<"$line" || ss_fail "the summary does not name Kafka's refusal: $line"
grep -q "repaired 0," <<<"$line" || ss_fail "refused copies counted as repaired: $line"
grep -qE "errors [1-9]" <<<"$line" || ss_fail "no errors counted: $line"
ss_pass "after $(elapsed)s: refused pass ($drift shipments of its window deleted from PostgreSQL): exit 1, repaired 0, errors > 0"

# ---- 3. Kafka takes envelopes again: the next pass repairs, the backfill completes
refuse 8388608 # takes envelopes again
rc_run once --window "$WINDOW"
[ "$RC_RC" = 0 ] || ss_fail "pass after the repair: exit $RC_RC: $(tail -3 "$RC_ERR")"
echo "$RC_OUT"
repaired=$(sed -n 's/^reconcile done: .*repaired \([0-9]*\), errors 0 .*/\1/p' <<<"$RC_OUT")
[ -n "$repaired" ] && [ "$repaired" -ge "$drift" ] || ss_fail "the pass repaired fewer than $drift, or had errors: $RC_OUT"
ss_pass "after $(elapsed)s: the next pass repairs its window: $repaired copies acknowledged"

RC_ENV=$(deadline_env "RECONCILE_BACKFILL_PARALLEL=2") # one thread per slice of the state
rc_run backfill --since "$SINCE"
[ "$RC_RC" = 0 ] || ss_fail "second backfill: exit $RC_RC: $(tail -5 "$RC_ERR")"
echo "$RC_OUT"
grep -q "resumes" "$RC_ERR" || ss_fail "the second backfill did not resume"
grep -q "^backfill complete: $((2 * N)) objects" <<<"$RC_OUT" || ss_fail "summary: $RC_OUT"
ss_wait_for 120 rc_compare || { rc_compare; ss_fail "PostgreSQL differs from the sim"; }
ss_pass "after $(elapsed)s: the backfill resumed and completed; PostgreSQL equals the sim ($N shipments, $N trackers, $(q "SELECT count(*) FROM tracking_events") tracking events)"

#!/usr/bin/env bash
# Bad list pages: an entry of an unknown object type is skipped and counted; a page that is
# not JSON ends the backfill with a clear message after three tries; a page that repeats ids
# (has_more lies) ends it at once instead of looping; with the sim mended, the same command
# resumes and completes.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/reconcile/common.sh"
N=300

rc_setup rc_bad_input
rc_start_sim SIM_PRELOAD_SHIPMENTS=$N SIM_PRELOAD_DAYS=30
rc_start_worker
SINCE=$(date -u -d '60 days ago' +%Y-%m-%dT%H:%M:%SZ)
fault() { curl -fsS -X POST "$SIM_URL/sim/faults" -d "$1" >/dev/null || ss_fail "POST /sim/faults $1"; }
calls() { echo $(( $(rc_sim_metric 'sim_list_calls_total{object="shipments"}') + $(rc_sim_metric 'sim_list_calls_total{object="trackers"}') )); }
export RC_ENV="RECONCILE_PAGE_SIZE=50 RECONCILE_BACKFILL_PARALLEL=1"  # one walk: exact call counts

# 1. unknown object type in a page: skipped, counted, everything else produced
fault '{"list":"unknown_type","list_count":1}'
rc_run backfill --since "$SINCE" --state "$SS_TEST_TMP/a.json"
[ "$RC_RC" = 0 ] || ss_fail "unknown type: exit $RC_RC: $(tail -3 "$RC_ERR")"
grep -q "skipped 1 of unknown type" <<<"$RC_OUT" || ss_fail "unknown type not counted: $RC_OUT"
grep -q "Gizmo" "$RC_ERR" || ss_fail "the skipped entry is not named in the log"
ss_pass "unknown object type: skipped and counted ($RC_OUT)"

# 2. a page that is not JSON, on every call: a clear error, bounded
fault '{"list":"malformed","list_count":-1}'
c0=$(calls); s0=$(date +%s)
rc_run backfill --since "$SINCE" --state "$SS_TEST_TMP/b.json"
[ "$RC_RC" = 1 ] || ss_fail "malformed: exit $RC_RC (expected 1)"
grep -q "not a list page" "$RC_ERR" || ss_fail "malformed: unclear message: $(tail -3 "$RC_ERR")"
n=$(( $(calls) - c0 ))
[ "$n" -le 3 ] && [ $(( $(date +%s) - s0 )) -lt 60 ] || ss_fail "malformed: $n list calls"
ss_pass "malformed page: exit 1 after $n calls: $(grep 'not a list page' "$RC_ERR" | tail -1 | cut -c1-160)"

# 3. has_more lies (the same page again whatever before_id says): stops, does not loop
fault '{"list":"repeat","list_count":-1}'
c0=$(calls)
rc_run backfill --since "$SINCE" --state "$SS_TEST_TMP/c.json"
[ "$RC_RC" = 1 ] || ss_fail "repeat: exit $RC_RC (expected 1)"
grep -q "repeated" "$RC_ERR" || ss_fail "repeat: unclear message: $(tail -3 "$RC_ERR")"
n=$(( $(calls) - c0 ))
[ "$n" -le 2 ] || ss_fail "repeat: $n list calls"
ss_pass "repeating page: exit 1 after $n calls: $(grep repeated "$RC_ERR" | tail -1 | cut -c1-160)"

# 4. mended: the same command resumes from its cursor and completes
fault '{"list":"none"}'
rc_run backfill --since "$SINCE" --state "$SS_TEST_TMP/c.json"
[ "$RC_RC" = 0 ] || ss_fail "after mending: exit $RC_RC: $(tail -3 "$RC_ERR")"
rc_wait_pg_count shipments $N 120
rc_wait_pg_count trackers $N 120
ss_wait_for 60 rc_compare || { rc_compare; ss_fail "PostgreSQL differs from the sim"; }
ss_pass "mended sim: resumed and complete; PostgreSQL equals the sim"

# 5. another backfill's state file is not silently reused
rc_run backfill --since 2020-01-01 --state "$SS_TEST_TMP/b.json"
[ "$RC_RC" = 1 ] && grep -q -- "--restart" "$RC_ERR" || ss_fail "foreign state: exit $RC_RC: $(cat "$RC_ERR")"
ss_pass "a state file of other arguments is refused, naming --restart"

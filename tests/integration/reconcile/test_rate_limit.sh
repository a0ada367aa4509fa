#!/usr/bin/env bash
# 429 storm: half of EasyPost's answers are 429 with Retry-After: 1.  The backfill waits as
# asked (slower), never gives up, and PostgreSQL still ends up equal to the sim.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/reconcile/common.sh"
N=1000

rc_setup rc_rate_limit
rc_start_sim SIM_PRELOAD_SHIPMENTS=$N SIM_PRELOAD_DAYS=60
rc_start_worker
curl -fsS -X POST "$SIM_URL/sim/faults" -d '{"rate_429":50,"retry_after":1}' >/dev/null || ss_fail "faults"
SINCE=$(date -u -d '90 days ago' +%Y-%m-%dT%H:%M:%SZ)
s0=$(date +%s)
export RC_ENV="RECONCILE_BACKFILL_PARALLEL=4"
rc_run backfill --since "$SINCE"
el=$(( $(date +%s) - s0 ))
[ "$RC_RC" = 0 ] || ss_fail "exit $RC_RC: $(tail -3 "$RC_ERR")"
echo "$RC_OUT"
n429=$(rc_sim_metric 'sim_faults_total{kind="429"}')
[ "$n429" -ge 5 ] || ss_fail "only $n429 429s injected"
# Each 429 asked for 1 s, and 4 walks wait side by side: the run took at least most of
# n429 / 4 seconds.
[ "$el" -ge $(( n429 * 8 / 40 )) ] || ss_fail "$n429 429s (Retry-After 1 s) but the run took only ${el}s"
grep -q "^backfill complete: $((2 * N)) objects" <<<"$RC_OUT" || ss_fail "summary: $RC_OUT"
ss_pass "$n429 answers were 429: the backfill took ${el}s and completed"
curl -fsS -X POST "$SIM_URL/sim/faults" -d '{"rate_429":0}' >/dev/null
rc_wait_pg_count shipments $N 120
rc_wait_pg_count trackers $N 120
ss_wait_for 60 rc_compare || { rc_compare; ss_fail "PostgreSQL differs from the sim"; }
ss_pass "PostgreSQL equals the sim after the storm"

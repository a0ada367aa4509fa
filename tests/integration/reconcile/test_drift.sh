#!/usr/bin/env bash
# Drift: the sim drops 10 % of its webhooks (as when EasyPost gives up), and nothing produced
# the shipments themselves (as when the gateway's hand-off was lost).  One `once` pass later
# PostgreSQL equals the sim; a second pass finds nothing to repair.  A pass skips while another
# session holds the advisory lock.  `serve` runs passes, answers /health /ready /metrics and
# stops on SIGTERM.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/reconcile/common.sh"
N=200

rc_setup rc_drift
rc_start_receiver
rc_start_sim SIM_WEBHOOK_URL="$RECEIVER_URL/webhooks/easypost" EASYPOST_WEBHOOK_SECRET="$SECRET" \
  SIM_FAULT_WEBHOOK_DROP=10 SIM_TIME_SCALE=0.2 SIM_WEBHOOK_BACKOFF_MS=100
rc_start_worker

ADDR='{"from_address":{"name":"A","street1":"388 Townsend St","city":"San Francisco","state":"CA","zip":"94107","country":"US"},"to_address":{"name":"B","street1":"179 N Harbor Dr","city":"Redondo Beach","state":"CA","zip":"90277","country":"US"},"parcel":{"length":10,"width":8,"height":4,"weight":15.4}}'
for i in $(seq 1 $N); do
  shp=$(curl -fsS -u EZTK_rc: "$SIM_URL/v2/shipments" -H 'Content-Type: application/json' \
        -d "{\"shipment\":$ADDR}") || ss_fail "create shipment $i"
  id=$(jq -r .id <<<"$shp"); rate=$(jq -r '.rates[0].id' <<<"$shp")
  curl -fsS -u EZTK_rc: "$SIM_URL/v2/shipments/$id/buy" -H 'Content-Type: application/json' \
    -d "{\"rate\":{\"id\":\"$rate\"}}" >/dev/null || ss_fail "buy $id"
done
final() {
  [ "$(rc_sim_metric sim_webhook_queue)" = 0 ] &&
    [ "$(rc_sim_list trackers '.status' | grep -cvE '^(delivered|failure|return_to_sender)$')" = 0 ]
}
ss_wait_for 180 final || ss_fail "trackers did not reach a final state"
dropped=$(rc_sim_metric 'sim_webhooks_total{outcome="dropped_fault"}')
delivered=$(rc_sim_metric 'sim_webhooks_total{outcome="delivered"}')
[ "$dropped" -gt 0 ] || ss_fail "no webhook was dropped"
# What did arrive is applied (the worker is done when its count stops moving).
LAST=-1
settled() {
  local n; n=$(q "SELECT count(*) FROM processed_events")
  [ "$n" -gt 0 ] && [ "$n" = "$LAST" ] && return 0
  LAST=$n; sleep 2; return 1
}
ss_wait_for 120 settled || ss_fail "worker did not settle"
echo "worker applied $LAST of $delivered delivered webhooks" >&2
rc_compare 2>/dev/null && ss_fail "no drift to repair (PostgreSQL already equals the sim)"
ss_pass "drift: $dropped of $((dropped + delivered)) webhooks dropped, no shipment produced"

# Another session holds the lock: the pass is skipped.
ss_psql "$DB_URL" -c "SELECT pg_advisory_lock(7378726300000001); SELECT pg_sleep(60)" >/dev/null 2>&1 &
holder=$!
# This database's reconcile lock only: other tests run beside this one and hold
# advisory locks of their own (the refresh scheduler's leader lock).
LOCK_WHERE="locktype = 'advisory' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid::bigint = (7378726300000001 >> 32) AND objid::bigint = (7378726300000001 & 4294967295)"
held() { [ "$(q "SELECT count(*) FROM pg_locks WHERE $LOCK_WHERE")" -ge 1 ]; }
ss_wait_for 10 held || ss_fail "lock holder did not start"
rc_run once --window 1h
q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE $LOCK_WHERE" >/dev/null
wait $holder 2>/dev/null
not_held() { ! held; }
ss_wait_for 10 not_held || ss_fail "lock holder did not end"
[ "$RC_RC" = 0 ] && grep -q "^reconcile skipped" <<<"$RC_OUT" || ss_fail "lock held: exit $RC_RC, $RC_OUT"
ss_pass "lock held elsewhere: pass skipped ($RC_OUT)"

rc_run once --window 1h
[ "$RC_RC" = 0 ] || ss_fail "once: exit $RC_RC: $(tail -3 "$RC_ERR")"
echo "$RC_OUT"
missing=$(sed -n 's/.*missing \([0-9]*\).*/\1/p' <<<"$RC_OUT")
repaired=$(sed -n 's/.*repaired \([0-9]*\).*/\1/p' <<<"$RC_OUT")
[ "$missing" -ge $N ] && [ "$repaired" -ge $N ] || ss_fail "pass: $RC_OUT"
grep -q "reconcile pass.*checked" "$RC_ERR" || ss_fail "no summary log line"
ss_wait_for 60 rc_compare || { rc_compare; ss_fail "PostgreSQL differs from the sim after one pass"; }
ss_pass "one pass: PostgreSQL equals the sim ($N shipments, $N trackers, $(q "SELECT count(*) FROM tracking_events") tracking events)"

rc_run once --window 1h
grep -q "checked $((2 * N)), missing 0, stale 0, repaired 0, errors 0" <<<"$RC_OUT" ||
  ss_fail "second pass: $RC_OUT"
ss_pass "second pass: $RC_OUT"

# serve: passes on an interval, HTTP endpoints, clean stop.
port=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/serve.log" env EASYPOST_API_KEY=EZTK_rc EASYPOST_API_BASE="$SIM_URL/v2" \
  DATABASE_URL="$DB_URL" KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  RECONCILE_INTERVAL_SECONDS=1 RECONCILE_WINDOW_HOURS=1 LISTEN="127.0.0.1:$port" LOG_FORMAT=text \
  "$RC_BIN" serve >/dev/null
spid=$SS_BG_PID
two_passes() {
  curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "reconcile_passes_total{outcome=\"done\"}" && $2 >= 2 { f = 1 } END { exit !f }'
}
ss_wait_for 60 two_passes || ss_fail "serve: no two passes"
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || ss_fail "serve: /health"
ss_wait_for 10 curl -fsS "http://127.0.0.1:$port/ready" || ss_fail "serve: /ready"
m=$(curl -fsS "http://127.0.0.1:$port/metrics")
for name in reconcile_checked_total reconcile_last_pass_seconds reconcile_lock_held; do
  grep -q "^$name" <<<"$m" || ss_fail "serve: metric $name missing"
done
ss_stop_bg "$spid" 20; rc=$?
[ $rc = 0 ] || ss_fail "serve: exit $rc after SIGTERM"
ss_pass "serve: passes every second, /health /ready /metrics, exit 0 on SIGTERM"

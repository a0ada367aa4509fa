#!/usr/bin/env bash
# Housekeeping deletes old rows in batches (separate short statements) and
# keeps recent ones: processed_events past 7 days, idempotency_keys past their
# expiry / 24 h, analytics_refresh_log past 30 days.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_housekeeping
ss_psql "$DB_URL" >/dev/null <<'SQL' || ss_fail "seeding"
INSERT INTO processed_events (event_id, processed_at)
  SELECT 'evt_old_' || g, now() - interval '8 days' - g * interval '1 second' FROM generate_series(1, 1050) g;
INSERT INTO processed_events (event_id, processed_at)
  SELECT 'evt_new_' || g, now() - interval '6 days' FROM generate_series(1, 20) g;
INSERT INTO idempotency_keys (key, request_hash, created_at, expires_at)
  SELECT 'old_' || g, 'h', now() - interval '25 hours', now() - interval '1 hour' FROM generate_series(1, 130) g;
INSERT INTO idempotency_keys (key, request_hash, created_at, expires_at)
  SELECT 'ancient_' || g, 'h', now() - interval '3 days', now() + interval '1 hour' FROM generate_series(1, 5) g;
INSERT INTO idempotency_keys (key, request_hash) SELECT 'new_' || g, 'h' FROM generate_series(1, 7) g;
INSERT INTO analytics_refresh_log (view_name, started_at, finished_at, outcome)
  SELECT 'mv_top_routes', now() - interval '31 days', now() - interval '31 days', 'success' FROM generate_series(1, 240);
INSERT INTO analytics_refresh_log (view_name, started_at, finished_at, outcome)
  SELECT 'mv_top_routes', now() - interval '29 days', now() - interval '29 days', 'success' FROM generate_series(1, 3);
SQL

rs_start a HOUSEKEEPING_INTERVAL_SECONDS=1 HOUSEKEEPING_BATCH_SIZE=100
ss_wait_for 10 rs_is a leader || ss_fail "not leader"
gone() {
  [ "$(q "SELECT count(*) FROM processed_events WHERE event_id LIKE 'evt_old_%'")" = 0 ] &&
  [ "$(q "SELECT count(*) FROM idempotency_keys WHERE key NOT LIKE 'new_%'")" = 0 ] &&
  [ "$(q "SELECT count(*) FROM analytics_refresh_log WHERE started_at < now() - interval '30 days'")" = 0 ]
}
ss_wait_for 20 gone || ss_fail "old rows not deleted: $(q "SELECT (SELECT count(*) FROM processed_events), (SELECT count(*) FROM idempotency_keys), (SELECT count(*) FROM analytics_refresh_log)")"
[ "$(q "SELECT count(*) FROM processed_events")" = 20 ] || ss_fail "recent processed_events deleted"
[ "$(q "SELECT count(*) FROM idempotency_keys")" = 7 ] || ss_fail "live idempotency_keys deleted"
[ "$(q "SELECT count(*) FROM analytics_refresh_log WHERE started_at < now() - interval '1 day'")" = 3 ] ||
  ss_fail "refresh log rows younger than 30 days deleted"
ss_pass "old rows deleted, recent rows kept"

[ "$(rs_metric a 'housekeeping_rows_deleted_total{table="processed_events"}')" = 1050 ] || ss_fail "metric processed_events"
[ "$(rs_metric a 'housekeeping_rows_deleted_total{table="idempotency_keys"}')" = 135 ] || ss_fail "metric idempotency_keys"
[ "$(rs_metric a 'housekeeping_rows_deleted_total{table="analytics_refresh_log"}')" = 240 ] || ss_fail "metric analytics_refresh_log"
batches=$(grep -c 'housekeeping batch: 100 rows deleted from processed_events' "${RS_LOG[a]}")
[ "$batches" -eq 10 ] || ss_fail "expected 10 full batches of 100 for processed_events, saw $batches"
big=$(grep -o 'housekeeping batch: [0-9]* rows' "${RS_LOG[a]}" | awk '$3 > 100' | wc -l)
[ "$big" = 0 ] || ss_fail "a housekeeping statement deleted more than the batch size"
ss_pass "deleted in batches of at most 100 (processed_events: 10 full batches + rest), metrics match"

# Housekeeping does not delay refreshes: the views are still refreshed.
rs_log_at_least 3 "outcome = 'success' AND started_at > now() - interval '1 hour'" || ss_fail "no refresh"
ss_pass "refreshes ran alongside housekeeping"

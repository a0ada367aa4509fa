#!/usr/bin/env bash
# Monthly partitions (migration 0007) maintained by the scheduler: this month and the next
# PARTITIONS_MONTHS_AHEAD exist (a missing month is created, and its rows already in the
# default partition move into it); months wholly past RETENTION_*_MONTHS are detached and
# dropped (or only detached, RETENTION_*_MODE=detach); inside a partition straddling the
# cutoff and in the default one, rows past it are deleted in batches; nothing within
# retention is touched; rows of any month, a NULL key or the far future are accepted.
set -uo pipefail
source "$(dirname "$0")/common.sh"

ss_test_migrated_db rs_partitions
# m <k>: the partition suffix YYYYMM of the month k months from this one (UTC)
m() { q "SELECT to_char(partition_month($1) AT TIME ZONE 'UTC', 'YYYYMM')"; }
# at <k> <days>: a time <days> days into the month k months from this one
at() { echo "partition_month($1) + interval '$2 days'"; }

# The fresh database has only the (empty) legacy partitions: replace them by months of the
# past, a partition straddling the retention cutoff (12 months: cutoff = month -12), and
# leave this month uncovered; month +2 is dropped and its rows go to the default partition.
ss_psql "$DB_URL" >/dev/null <<SQL || ss_fail "setup"
DROP TABLE tracking_events_legacy, easypost_events_legacy;
DROP TABLE tracking_events_p$(m 2);
CREATE TABLE tracking_events_p$(m -14) PARTITION OF tracking_events
  FOR VALUES FROM ($(at -14 0)) TO ($(at -13 0));
CREATE TABLE tracking_events_straddle PARTITION OF tracking_events
  FOR VALUES FROM ($(at -13 0)) TO ($(at -11 0));
CREATE TABLE tracking_events_p$(m -2) PARTITION OF tracking_events
  FOR VALUES FROM ($(at -2 0)) TO ($(at -1 0));
CREATE TABLE easypost_events_p$(m -14) PARTITION OF easypost_events
  FOR VALUES FROM ($(at -14 0)) TO ($(at -13 0));
CREATE TABLE easypost_events_p$(m -2) PARTITION OF easypost_events
  FOR VALUES FROM ($(at -2 0)) TO ($(at -1 0));
INSERT INTO trackers (id) SELECT 'trk_' || g FROM generate_series(1, 10) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at -14 1) + g * interval '1 minute', 'old14', 'm' || g FROM generate_series(1, 100) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at -13 1) + g * interval '1 minute', 'old13', 'm' || g FROM generate_series(1, 100) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at -12 1) + g * interval '1 minute', 'kept12', 'm' || g FROM generate_series(1, 30) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at -2 1) + g * interval '1 minute', 'recent', 'm' || g FROM generate_series(1, 50) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at -20 1) + g * interval '1 minute', 'ancient', 'm' || g FROM generate_series(1, 5) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status, message)
  SELECT 'trk_' || (g % 10 + 1), $(at 2 3) + g * interval '1 minute', 'plus2', 'm' || g FROM generate_series(1, 7) g;
INSERT INTO tracking_events (tracker_id, occurred_at, status) VALUES
  ('trk_1', NULL, 'no datetime'), ('trk_2', '2031-05-05T10:00:00Z', 'far future');
INSERT INTO easypost_events (id, created_at, payload)
  SELECT 'evt_old_' || g, $(at -14 2), '{}' FROM generate_series(1, 20) g;
INSERT INTO easypost_events (id, created_at, payload)
  SELECT 'evt_recent_' || g, $(at -2 2), '{}' FROM generate_series(1, 20) g;
SQL
# Before the scheduler: this month's rows have nowhere but the default partition.
[ "$(q "INSERT INTO tracking_events (tracker_id, occurred_at, status) VALUES ('trk_3', $(at 0 0), 'now')
        RETURNING tableoid::regclass")" = tracking_events_default ] || ss_fail "row of this month not in the default partition"
in_default() { q "SELECT count(*) FROM tracking_events_default WHERE $1"; }
[ "$(in_default "status IN ('plus2', 'now')")" = 8 ] || ss_fail "setup: month +2 and this month not in the default partition"
ss_pass "setup: months -14, -13..-11 (straddling), -2 partitioned; this month and +2 only in the default partition"

rs_start a HOUSEKEEPING_INTERVAL_SECONDS=1 HOUSEKEEPING_BATCH_SIZE=40 PARTITIONS_MONTHS_AHEAD=3 \
  RETENTION_TRACKING_EVENTS_MONTHS=12 RETENTION_EASYPOST_EVENTS_MONTHS=12 RETENTION_EASYPOST_EVENTS_MODE=detach
ss_wait_for 10 rs_is a leader || ss_fail "not leader"
attached() { q "SELECT string_agg(partition::text, ' ' ORDER BY lower_bound NULLS LAST) FROM partition_bounds('$1')"; }
done_() {
  [ "$(attached tracking_events)" = "tracking_events_straddle tracking_events_p$(m -2) tracking_events_p$(m 0) tracking_events_p$(m 1) tracking_events_p$(m 2) tracking_events_p$(m 3) tracking_events_default" ] &&
    [ "$(attached easypost_events)" = "easypost_events_p$(m -2) easypost_events_p$(m 0) easypost_events_p$(m 1) easypost_events_p$(m 2) easypost_events_p$(m 3) easypost_events_default" ] &&
    [ "$(q "SELECT count(*) FROM tracking_events WHERE occurred_at < partition_month(-12)")" = 0 ]
}
ss_wait_for 20 done_ || ss_fail "partitions not maintained: tracking_events: $(attached tracking_events); easypost_events: $(attached easypost_events); $(q "SELECT count(*) FROM tracking_events WHERE occurred_at < partition_month(-12)") rows before the cutoff
$(grep -E 'partition|retention' "${RS_LOG[a]}" | tail -20)"
ss_pass "this month and 3 ahead exist; month -14 detached; rows before month -12 gone"

# Created ahead: this month and +2 (the others existed); +2's rows moved out of the default.
[ "$(q "SELECT count(*) FROM tracking_events_p$(m 2) WHERE status = 'plus2'")" = 7 ] || ss_fail "month +2 rows not moved"
[ "$(q "SELECT count(*) FROM tracking_events_p$(m 0) WHERE status = 'now'")" = 1 ] || ss_fail "this month's row not moved"
[ "$(in_default "status IN ('plus2', 'now')")" = 0 ] || ss_fail "rows left in the default partition"
grep -q "done=\"moved 7 tracking_events_p$(m 2)\"" "${RS_LOG[a]}" || grep -q "moved 7 tracking_events_p$(m 2)" "${RS_LOG[a]}" ||
  ss_fail "move not logged: $(grep partition "${RS_LOG[a]}" | head)"
ss_pass "missing months created; their rows moved out of the default partition"

# Retention: drop mode for tracking_events, detach mode for easypost_events.
[ "$(q "SELECT to_regclass('tracking_events_p$(m -14)') IS NULL")" = t ] || ss_fail "tracking_events_p$(m -14) not dropped"
[ "$(q "SELECT count(*) FROM easypost_events_p$(m -14)")" = 20 ] || ss_fail "detached easypost_events_p$(m -14) lost its rows"
[ "$(q "SELECT relispartition FROM pg_class WHERE oid = 'easypost_events_p$(m -14)'::regclass")" = f ] || ss_fail "not detached"
[ "$(q "SELECT count(*) FROM easypost_events")" = 20 ] || ss_fail "easypost_events within retention: $(q "SELECT count(*) FROM easypost_events")"
# Kept: everything from month -12 on, the NULL datetime, the far future.
expect() { [ "$(q "SELECT count(*) FROM tracking_events WHERE $1")" = "$2" ] || ss_fail "$1: $(q "SELECT count(*) FROM tracking_events WHERE $1"), want $2"; }
expect "status = 'kept12'" 30
expect "status = 'recent'" 50
expect "status = 'old13' OR status = 'old14' OR status = 'ancient'" 0
expect "occurred_at IS NULL" 1
expect "status = 'far future' AND tableoid = 'tracking_events_default'::regclass" 1
expect "true" $((30 + 50 + 7 + 1 + 1 + 1))
ss_pass "retention removed only what is past 12 months (dropped, detached+kept, and 105 rows pruned from the straddling and default partitions)"

[ "$(rs_metric a 'partitions_created_total{table="tracking_events"}')" = 2 ] || ss_fail "partitions_created_total tracking_events"
[ "$(rs_metric a 'partitions_created_total{table="easypost_events"}')" = 1 ] || ss_fail "partitions_created_total easypost_events"
[ "$(rs_metric a 'partitions_retired_total{table="tracking_events"}')" = 1 ] || ss_fail "partitions_retired_total tracking_events"
[ "$(rs_metric a 'partitions_retired_total{table="easypost_events"}')" = 1 ] || ss_fail "partitions_retired_total easypost_events"
[ "$(rs_metric a 'housekeeping_rows_deleted_total{table="tracking_events"}')" = 105 ] || ss_fail "rows pruned metric: $(rs_metric a 'housekeeping_rows_deleted_total{table="tracking_events"}')"
[ "$(rs_metric a 'partition_maintenance_failures_total{table="tracking_events"}')" = 0 ] || ss_fail "failures"
ss_pass "metrics: created, retired, pruned rows"

# Idempotent: more passes change nothing.
before=$(attached tracking_events)
n=$(grep -c 'partition maintenance' "${RS_LOG[a]}")
sleep 3
[ "$(attached tracking_events)" = "$before" ] || ss_fail "a later pass changed the partitions"
[ "$(grep -c 'partition maintenance' "${RS_LOG[a]}")" = "$n" ] || ss_fail "a later pass did something: $(grep 'partition maintenance' "${RS_LOG[a]}" | tail -3)"

# Rows of any month land, and the detail key still finds a redelivered detail in its partition.
ins() { q "INSERT INTO tracking_events (tracker_id, occurred_at, status) VALUES ('trk_4', $1, 'x')
           ON CONFLICT ON CONSTRAINT tracking_events_detail_key DO NOTHING RETURNING tableoid::regclass"; }
[ "$(ins "$(at -30 0)")" = tracking_events_default ] || ss_fail "a month before every partition"
[ "$(ins "$(at -1 4)")" = tracking_events_default ] || ss_fail "month -1 (no partition)"
[ "$(ins "$(at 3 4)")" = "tracking_events_p$(m 3)" ] || ss_fail "month +3"
[ "$(ins "'9999-01-01'")" = tracking_events_default ] || ss_fail "far future"
[ -z "$(ins "$(at 3 4)")" ] && [ -z "$(ins "'9999-01-01'")" ] || ss_fail "a redelivered detail was inserted twice"
ss_pass "rows of past, current, future and far-future months accepted; duplicates found in their partition"

# Bad mode refused at start.
DATABASE_URL="$DB_URL" GATEWAY_API_KEYS=k RETENTION_TRACKING_EVENTS_MODE=archive "$RS_BIN" >/dev/null 2>&1
[ $? -eq 2 ] || ss_fail "RETENTION_TRACKING_EVENTS_MODE=archive must exit 2"
ss_pass "bad retention mode refused"

#!/usr/bin/env bash
# Two shipstream-migrate runners at once: one applies everything, the other waits for the
# advisory lock and then has nothing to do.  The first runner is held inside its last
# migration by a lock this test owns, so the overlap is certain, not a matter of timing.
source "$(dirname "$0")/common.sh"

DB_URL=$(ss_test_createdb schema_concurrent) || ss_fail "createdb"
export DATABASE_URL="$DB_URL"
copy="$SS_TEST_TMP/migrations"
cp -r "$MIGRATIONS_DIR" "$copy"
printf -- '-- test only: waits for the gate lock\nSELECT pg_advisory_xact_lock(424242);\nCREATE TABLE zz_gate_passed (a int);\n' \
  >"$copy/9000_gate.up.sql"
printf 'DROP TABLE zz_gate_passed;\n' >"$copy/9000_gate.down.sql"
export MIGRATIONS_DIR="$copy"
nmig=$(ls "$copy"/*.up.sql | wc -l)

# The gate: a session holding advisory lock 424242 until we terminate it.
ss_start_bg "$SS_TEST_TMP/gate.log" env PGAPPNAME=schema_gate psql -X -q -d "$DB_URL" \
  -c "SELECT pg_advisory_lock(424242)" -c "SELECT pg_sleep(600)" >/dev/null
gate_held() { [ "$(q -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
  WHERE l.locktype = 'advisory' AND l.objid = 424242 AND l.granted AND a.application_name = 'schema_gate'")" = 1 ]; }
ss_wait_for 30 gate_held || ss_fail "gate lock not taken"

ss_start_bg "$SS_TEST_TMP/a.log" "$MIGRATE" up >/dev/null
pid_a=$SS_BG_PID
a_blocked() { [ "$(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242 AND NOT granted")" = 1 ]; }
ss_wait_for 60 a_blocked || ss_fail "runner A never reached the gate"

ss_start_bg "$SS_TEST_TMP/b.log" "$MIGRATE" up >/dev/null
pid_b=$SS_BG_PID
ss_wait_for 60 grep -q "waiting for another shipstream-migrate" "$SS_TEST_TMP/b.log" ||
  ss_fail "runner B did not wait for the migration lock"
# B really is blocked on the migration lock, and A has not finished.
kill -0 "$pid_a" 2>/dev/null || ss_fail "runner A ended while gated"
[ "$(q -c "SELECT to_regclass('zz_gate_passed') IS NULL")" = t ] || ss_fail "gate migration ran early"
ss_pass "runner A holds the migration lock inside its last migration; runner B waits"

# Open the gate.
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'schema_gate'" >/dev/null
wait_exit() { ! kill -0 "$1" 2>/dev/null; }
ss_wait_for 60 wait_exit "$pid_a" || ss_fail "runner A did not finish"
ss_wait_for 60 wait_exit "$pid_b" || ss_fail "runner B did not finish"
wait "$pid_a"; rc_a=$?
wait "$pid_b"; rc_b=$?
[ "$rc_a" = 0 ] || ss_fail "runner A exit $rc_a"
[ "$rc_b" = 0 ] || ss_fail "runner B exit $rc_b"
grep -q "^applied 9000_gate" "$SS_TEST_TMP/a.log" || ss_fail "A did not apply: $(cat "$SS_TEST_TMP/a.log")"
grep -q "^applied" "$SS_TEST_TMP/b.log" && ss_fail "B applied something: $(cat "$SS_TEST_TMP/b.log")"
grep -q "nothing to do" "$SS_TEST_TMP/b.log" || ss_fail "B: $(cat "$SS_TEST_TMP/b.log")"
# A applied each file exactly once (its log), and schema_migrations holds exactly the files.
[ "$(grep -c '^applied ' "$SS_TEST_TMP/a.log")" = "$nmig" ] || ss_fail "A's applied lines: $(cat "$SS_TEST_TMP/a.log")"
want=$(for f in "$copy"/*.up.sql; do b=${f##*/}; echo $((10#${b%%_*})); done | sort -n | paste -sd' ')
got=$(q -c "SELECT string_agg(version::text, ' ' ORDER BY version) FROM schema_migrations")
[ "$got" = "$want" ] || ss_fail "schema_migrations versions: '$got', want the files' '$want'"
ss_pass "one runner applied $nmig migrations once; the other waited, then had nothing to do"

# A runner that cannot get the lock within MIGRATE_LOCK_TIMEOUT_SECONDS fails cleanly (exit 1).
ss_start_bg "$SS_TEST_TMP/hold.log" env PGAPPNAME=schema_hold psql -X -q -d "$DB_URL" \
  -c "SELECT pg_advisory_lock(8316012643633885805)" -c "SELECT pg_sleep(600)" >/dev/null
hold_held() { [ "$(q -c "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
  WHERE a.application_name = 'schema_hold' AND l.locktype = 'advisory' AND l.granted")" = 1 ]; }
ss_wait_for 30 hold_held || ss_fail "hold lock not taken"
MIGRATE_LOCK_TIMEOUT_SECONDS=1 "$MIGRATE" up >"$SS_TEST_TMP/c.log" 2>&1; rc=$?
[ $rc -eq 1 ] || ss_fail "lock timeout: exit $rc, want 1: $(cat "$SS_TEST_TMP/c.log")"
grep -q "MIGRATE_LOCK_TIMEOUT_SECONDS" "$SS_TEST_TMP/c.log" || ss_fail "lock timeout message: $(cat "$SS_TEST_TMP/c.log")"
ss_pass "lock wait bounded by MIGRATE_LOCK_TIMEOUT_SECONDS"

#!/usr/bin/env bash
# A migration that loses a deadlock to live traffic (a sync worker writing the tables it
# alters during a rolling upgrade) rolled back whole, and shipstream-migrate runs it again
# instead of failing the deploy.  The deadlock is built from advisory locks, so it is certain,
# not a matter of timing: the migration takes lock 1 and waits for lock 2, which a "traffic"
# session holds; the session then asks for lock 1.  The migration's deadlock check (3 s, set
# in the migration) finds the cycle first (the session's is 60 s), so the migration is the
# one PostgreSQL aborts with 40P01.
source "$(dirname "$0")/common.sh"

DB_URL=$(ss_test_createdb schema_race) || ss_fail "createdb"
export DATABASE_URL="$DB_URL"
"$MIGRATE" up >/dev/null 2>&1 || ss_fail "migrate up"
copy="$SS_TEST_TMP/migrations"
cp -r "$MIGRATIONS_DIR" "$copy"
printf -- "-- test only: lock 1, then lock 2\nSET LOCAL deadlock_timeout = '3s';\nSELECT pg_advisory_xact_lock(515151);\nSELECT pg_advisory_xact_lock(515152);\nCREATE TABLE zz_race (a int);\n" \
  >"$copy/9001_race.up.sql"
printf 'DROP TABLE zz_race;\n' >"$copy/9001_race.down.sql"
export MIGRATIONS_DIR="$copy"

# The traffic: one session fed line by line through a FIFO.
fifo="$SS_TEST_TMP/traffic.fifo"
mkfifo "$fifo"
exec 3<>"$fifo" # held open read-write: the reader's open does not block, EOF comes when we close it
ss_start_bg "$SS_TEST_TMP/traffic.log" bash -c 'exec psql -X -q -d "$1" <"$2" 3>&-' _ "$DB_URL" "$fifo" >/dev/null
echo "SET deadlock_timeout = '60s'; SELECT pg_advisory_lock(515152);" >&3
locks() { # locks <objid> <granted: true|false>: how many
  q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted = $2"
}
traffic_holds_2() { [ "$(locks 515152 true)" = 1 ]; }
ss_wait_for 30 traffic_holds_2 || ss_fail "the traffic session did not take lock 2"

ss_start_bg "$SS_TEST_TMP/mig.log" bash -c 'exec "$0" up 3>&-' "$MIGRATE" >/dev/null
pid=$SS_BG_PID
migration_waits() { [ "$(locks 515152 false)" = 1 ]; }
ss_wait_for 30 migration_waits || ss_fail "the migration never waited for lock 2: $(cat "$SS_TEST_TMP/mig.log")"
echo "SELECT pg_advisory_lock(515151);" >&3 # the cycle
ss_wait_for 30 grep -q "running it again" "$SS_TEST_TMP/mig.log" ||
  ss_fail "no second run after the deadlock: $(cat "$SS_TEST_TMP/mig.log")"
grep -q "40P01" "$SS_TEST_TMP/mig.log" || ss_fail "the first run did not fail with 40P01: $(cat "$SS_TEST_TMP/mig.log")"
[ "$(q -c "SELECT to_regclass('zz_race') IS NULL")" = t ] || ss_fail "zz_race exists after the lost run"
ss_pass "the migration lost the deadlock (40P01), rolled back whole, and is run again"

# The traffic ends (psql reads EOF and exits, its session locks go): the second run applies.
exec 3>&-
exited() { ! kill -0 "$1" 2>/dev/null; }
ss_wait_for 60 exited "$pid" || ss_fail "the migration did not finish: $(cat "$SS_TEST_TMP/mig.log")"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || ss_fail "migrate up exit $rc: $(cat "$SS_TEST_TMP/mig.log")"
[ "$(grep -c '^applied 9001_race' "$SS_TEST_TMP/mig.log")" = 1 ] || ss_fail "applied lines: $(cat "$SS_TEST_TMP/mig.log")"
[ "$(q -c "SELECT count(*) FROM schema_migrations WHERE version = 9001")" = 1 ] || ss_fail "9001 not recorded once"
[ "$(q -c "SELECT to_regclass('zz_race') IS NOT NULL")" = t ] || ss_fail "zz_race missing"
ss_pass "once the traffic let go, the same run applied the migration once (exit 0)"

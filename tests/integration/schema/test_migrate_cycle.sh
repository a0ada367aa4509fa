#!/usr/bin/env bash
# shipstream-migrate on an empty database: status, up, down, up again; usage errors; a
# changed applied file and a down without its file are refused.
source "$(dirname "$0")/common.sh"

out="$SS_TEST_TMP/out"
DB_URL=$(ss_test_createdb schema_cycle) || ss_fail "createdb"
export DATABASE_URL="$DB_URL"
nmig=$(ls "$MIGRATIONS_DIR"/*.up.sql | wc -l)
[ "$nmig" -ge 2 ] || ss_fail "expected at least 2 migrations, found $nmig"

# --help / --version / bad usage.
"$MIGRATE" --help >"$out" 2>&1 || ss_fail "--help exit $?"
grep -q "MIGRATIONS_DIR" "$out" && grep -q "up \[N\]" "$out" || ss_fail "--help text: $(cat "$out")"
"$MIGRATE" --version | grep -q "^shipstream-migrate " || ss_fail "--version"
"$MIGRATE" sideways >/dev/null 2>&1; [ $? -eq 2 ] || ss_fail "unknown command must exit 2"
"$MIGRATE" >/dev/null 2>&1; [ $? -eq 2 ] || ss_fail "no command must exit 2"
"$MIGRATE" up zero >/dev/null 2>&1; [ $? -eq 2 ] || ss_fail "up zero must exit 2"
DATABASE_URL=mysql://x/y "$MIGRATE" status >/dev/null 2>&1; [ $? -eq 2 ] || ss_fail "bad DATABASE_URL must exit 2"
MIGRATIONS_DIR=/nonexistent "$MIGRATE" status >/dev/null 2>&1; [ $? -eq 2 ] || ss_fail "bad MIGRATIONS_DIR must exit 2"
port=$(ss_free_port)
DATABASE_URL="postgresql://postgres@127.0.0.1:$port/x" "$MIGRATE" status >/dev/null 2>&1
[ $? -eq 1 ] || ss_fail "unreachable database must exit 1"
ss_pass "usage and configuration errors"

# Status on an empty database: everything pending, nothing created.
"$MIGRATE" status >"$out" 2>&1 || ss_fail "status on empty db: $(cat "$out")"
grep -q "^0 applied, $nmig pending, 0 changed, 0 missing" "$out" || ss_fail "status before: $(cat "$out")"
[ "$(q -c "SELECT to_regclass('schema_migrations') IS NULL")" = t ] || ss_fail "status must not create tables"

# The postgresql+asyncpg:// form is accepted.
DATABASE_URL="${DB_URL/postgresql:/postgresql+asyncpg:}" "$MIGRATE" up >"$out" 2>&1 || ss_fail "up: $(cat "$out")"
grep -q "^applied 0001_core" "$out" || ss_fail "up output: $(cat "$out")"
"$MIGRATE" status >"$out" 2>&1
grep -q "^$nmig applied, 0 pending, 0 changed, 0 missing" "$out" || ss_fail "status after up: $(cat "$out")"
for t in addresses parcels shipments rates trackers tracking_events batches easypost_events \
         processed_events kafka_offsets idempotency_keys analytics_refresh_log schema_migrations \
         mv_daily_shipment_analytics mv_carrier_performance mv_top_routes; do
  [ "$(q -c "SELECT to_regclass('$t') IS NOT NULL")" = t ] || ss_fail "table $t missing after up"
done
# Recorded checksums are the SHA-256 of the files (OpenSSL's, compared with sha256sum).
want=$(sha256sum "$MIGRATIONS_DIR/0001_core.up.sql" | cut -d' ' -f1)
[ "$(q -c "SELECT checksum FROM schema_migrations WHERE version = 1")" = "$want" ] || ss_fail "checksum of 0001"
"$MIGRATE" up >"$out" 2>&1 || ss_fail "second up"
grep -q "nothing to do" "$out" || ss_fail "second up should do nothing: $(cat "$out")"
ss_pass "status before/after, up, idempotent up"

# down 1, then down all: every table gone but schema_migrations (empty).
"$MIGRATE" down >"$out" 2>&1 || ss_fail "down: $(cat "$out")"
[ "$(q -c "SELECT count(*) FROM schema_migrations")" = $((nmig - 1)) ] || ss_fail "down 1 count"
"$MIGRATE" down all >"$out" 2>&1 || ss_fail "down all: $(cat "$out")"
left=$(q -c "SELECT string_agg(relname, ',') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r','m','v','S') AND relname <> 'schema_migrations'")
[ -z "$left" ] || ss_fail "objects left after down all: $left"
[ "$(q -c "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'")" = 0 ] ||
  ss_fail "functions left after down all"
"$MIGRATE" status >"$out" 2>&1
grep -q "^0 applied, $nmig pending" "$out" || ss_fail "status after down all: $(cat "$out")"
"$MIGRATE" up 1 >"$out" 2>&1 || ss_fail "up 1"
[ "$(q -c "SELECT string_agg(version::text, ',') FROM schema_migrations")" = 1 ] || ss_fail "up 1 applied more than one"
"$MIGRATE" up >"$out" 2>&1 || ss_fail "up again: $(cat "$out")"
[ "$(q -c "SELECT count(*) FROM schema_migrations")" = "$nmig" ] || ss_fail "up→down→up count"
ss_pass "up → down → up"

# A copied folder: change an applied file → refused by up and down, shown by status.
copy="$SS_TEST_TMP/migrations"
cp -r "$MIGRATIONS_DIR" "$copy"
printf '\n-- edited after it was applied\n' >>"$copy/0001_core.up.sql"
MIGRATIONS_DIR="$copy" "$MIGRATE" status >"$out" 2>&1 || ss_fail "status with a changed file must still list"
grep -q "^0001 .*CHANGED" "$out" || ss_fail "status must show CHANGED: $(cat "$out")"
MIGRATIONS_DIR="$copy" "$MIGRATE" up >"$out" 2>&1; rc=$?
[ $rc -eq 1 ] || ss_fail "up with a changed applied file: exit $rc, want 1"
grep -q "file has changed since.* migration=0001_core applied_at=" "$out" || ss_fail "unclear message: $(cat "$out")"
MIGRATIONS_DIR="$copy" "$MIGRATE" down >"$out" 2>&1; rc=$?
[ $rc -eq 1 ] || ss_fail "down with a changed applied file: exit $rc, want 1"
[ "$(q -c "SELECT count(*) FROM schema_migrations")" = "$nmig" ] || ss_fail "refused run changed something"
ss_pass "changed applied file refused"

# A down without its file is refused and changes nothing; a failing migration rolls back.
cp "$MIGRATIONS_DIR/0001_core.up.sql" "$copy/0001_core.up.sql"
last=$(ls "$copy"/*.down.sql | sort | tail -1)
rm "$last"
MIGRATIONS_DIR="$copy" "$MIGRATE" down >"$out" 2>&1; rc=$?
[ $rc -eq 1 ] || ss_fail "down without its file: exit $rc, want 1"
grep -q "cannot roll back" "$out" || ss_fail "down without file message: $(cat "$out")"
[ "$(q -c "SELECT count(*) FROM schema_migrations")" = "$nmig" ] || ss_fail "refused down changed something"
printf 'CREATE TABLE zz_half_done (a int);\nSELECT 1/0;\n' >"$copy/9999_broken.up.sql"
MIGRATIONS_DIR="$copy" "$MIGRATE" up >"$out" 2>&1; rc=$?
[ $rc -eq 1 ] || ss_fail "failing migration: exit $rc, want 1"
grep -q "migration failed, rolled back direction=up migration=9999_broken .* error=22012" "$out" || ss_fail "failure message: $(cat "$out")"
[ "$(q -c "SELECT to_regclass('zz_half_done') IS NULL")" = t ] || ss_fail "failed migration not rolled back"
[ "$(q -c "SELECT count(*) FROM schema_migrations WHERE version = 9999")" = 0 ] || ss_fail "failed migration recorded"
ss_pass "down without file refused; failed migration rolled back"

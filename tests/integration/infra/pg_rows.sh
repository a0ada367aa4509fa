#!/usr/bin/env bash
# Writes and reads rows in the harness's real PostgreSQL; the rows survive a
# server restart; constraint violations come back with their SQLSTATE.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

DB_URL=$(ss_test_createdb infra_pg_rows) || ss_fail "createdb"

q -c "CREATE TABLE parcel (id text PRIMARY KEY, weight_oz numeric(10,2) NOT NULL, note text)"
q -c "INSERT INTO parcel SELECT 'prcl_' || g, g / 4.0, 'n°' || g FROM generate_series(1, 1000) g"
# Values through psql variables (quoted by psql, not pasted into SQL).
q -v id="prcl_x'; DROP TABLE parcel; --" -v note="Zürich → 東京" \
  <<<"INSERT INTO parcel VALUES (:'id', 1.50, :'note')"

[ "$(q -c 'SELECT count(*) FROM parcel')" = 1001 ] || ss_fail "expected 1001 rows"
[ "$(q -c 'SELECT sum(weight_oz) FROM parcel')" = "125126.50" ] || ss_fail "numeric sum: $(q -c 'SELECT sum(weight_oz) FROM parcel')"
[ "$(q -c "SELECT note FROM parcel WHERE weight_oz = 1.50 AND id LIKE 'prcl_x%'")" = "Zürich → 東京" ] ||
  ss_fail "UTF-8 text did not round-trip"
ss_pass "1001 rows written and read back, numeric exact, UTF-8 intact"

# A duplicate key is SQLSTATE 23505 (what callers classify on).
state=$(q -v VERBOSITY=verbose <<<"INSERT INTO parcel VALUES ('prcl_1', 1, NULL)" 2>&1 | grep -o '23505' | head -1 || true)
[ "$state" = 23505 ] || ss_fail "duplicate key did not report SQLSTATE 23505"
ss_pass "duplicate key reports SQLSTATE 23505"

ss_pg_stop
if q -c 'SELECT 1' >/dev/null 2>&1; then ss_fail "query succeeded while PostgreSQL was stopped"; fi
ss_pg_start
ss_wait_for 30 q -c 'SELECT 1' || ss_fail "PostgreSQL did not come back"
[ "$(q -c 'SELECT count(*) FROM parcel')" = 1001 ] || ss_fail "rows lost across restart"
ss_pass "rows survive a PostgreSQL stop/start on the same port"

#!/usr/bin/env bash
# Bench item (not part of `make test`): the dashboard's page load in headless
# Chromium with BENCH_DASH_SHIPMENTS (default 1,000,000) shipments loaded by
# bench/schema/load.sql, views refreshed.  Prints
#   RESULT dashboard_page_load_ms median … over N reloads
# (navigation start -> every tile, chart and table drawn, the key already in
# sessionStorage; Chart.js and the page from the gateway over loopback).
# Run: SS_BIN_DIR=$PWD/build/bin tests/integration/harness.sh -- tests/integration/dashboard/page_load_bench.sh
set -uo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export SS_SOURCE_ROOT="${SS_SOURCE_ROOT:-$(cd "$HERE/../../.." && pwd)}"
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
N=${BENCH_DASH_SHIPMENTS:-1000000}
RELOADS=${BENCH_DASH_RELOADS:-7}
"$SS_SOURCE_ROOT/deploy/local/deps.sh" --browser >/dev/null || { echo "SKIP: no browser (deps.sh --browser failed)"; exit 77; }

ss_test_migrated_db dash_bench
echo "page_load_bench: loading $N shipments (bench/schema/load.sql)" >&2
t0=$(_ss_now_ms)
ss_psql "$DB_URL" -v n="$N" -f "$SS_SOURCE_ROOT/bench/schema/load.sql" >"$SS_TEST_TMP/load.log" 2>&1 ||
  { cat "$SS_TEST_TMP/load.log"; ss_fail "load"; }
ss_psql "$DB_URL" -At -c "SELECT view_name, outcome FROM refresh_analytics_views(false)" >/dev/null || ss_fail "refresh"
ss_psql "$DB_URL" -c "VACUUM ANALYZE" >/dev/null 2>&1
echo "page_load_bench: loaded and refreshed in $(( ($(_ss_now_ms) - t0) / 1000 )) s" >&2
PREFIX=$(ss_test_prefix)
ss_test_create_topics "$PREFIX" || ss_fail "create topics"
SIM_URL="http://127.0.0.1:1/v2"
gw_start
call GET /db/shipments?limit=1; expect 200 "shipments"
/usr/bin/python3 "$HERE/browser_test.py" --gateway "$GW" --key "$API_KEY" --artifacts "$SS_TEST_TMP" \
  --tmp "$SS_TEST_TMP" --measure "$RELOADS" || ss_fail "browser"

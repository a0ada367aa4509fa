#!/usr/bin/env bash
# POST /mcp tools/call over 1,000,000 shipments (bench/schema/load.sql), next to the same
# /db request in the same run, each at exactly BENCH_MCP_RATE (200) req/s for
# BENCH_MCP_SECONDS (20) with ss-bench-paced (open loop, latency from the scheduled time):
#   mcp_search_shipments_p99_ms    tools/call search_shipments {"limit":10}
#                                  (baseline: GET /db/shipments?limit=10)
#   mcp_shipping_analytics_p99_ms  tools/call shipping_analytics {"days":30}
#                                  (baseline: GET /db/analytics/dashboard?days=30)
#   mcp_search_shipments_p50_ms, mcp_shipping_analytics_p50_ms  the same at p50
# The RESULT lines are round 2 (mcp first, then /db; round 1 ran /db first).  Goal (issue
# 20): p99 under 10 ms at 200 calls/s.  Not part of make test.
set -uo pipefail
: "${SS_TEST_DATABASE_URL:?run inside tests/integration/harness.sh (bench/run.sh does)}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
export SS_SOURCE_ROOT="${SS_SOURCE_ROOT:-$ROOT}"
export SS_BIN_DIR="${SS_BIN_DIR:-$ROOT/build/bin}"
source "$ROOT/tests/integration/lib.sh"

N="${BENCH_MCP_SHIPMENTS:-1000000}"
RATE="${BENCH_MCP_RATE:-200}"
SECS="${BENCH_MCP_SECONDS:-20}"
CONNS="${BENCH_MCP_CONNS:-8}"
API_KEY="mcpbench_$(openssl rand -hex 12)"
die() { echo "bench/mcp: $*" >&2; exit 1; }
say() { echo "bench/mcp: $*" >&2; }
for b in shipstream-gateway shipstream-migrate ss-bench-paced; do
  [ -x "$SS_BIN_DIR/$b" ] || die "$SS_BIN_DIR/$b not built"
done
T=$SS_TEST_TMP
ms() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; }

DB_URL=$(ss_test_createdb bench_mcp) || die "createdb"
DATABASE_URL=$DB_URL MIGRATIONS_DIR="$ROOT/migrations" "$SS_BIN_DIR/shipstream-migrate" up >"$T/migrate.log" 2>&1 ||
  { cat "$T/migrate.log" >&2; die "migrate up"; }
say "loading $N shipments (bench/schema/load.sql)"
ss_psql "$DB_URL" -v n="$N" -f "$ROOT/bench/schema/load.sql" >"$T/load.log" 2>&1 || { cat "$T/load.log" >&2; die "load"; }
ss_psql "$DB_URL" -At -c "SELECT count(*) FROM refresh_analytics_views(false)" >/dev/null || die "refresh"

PREFIX="bench.mcp.$$.$(openssl rand -hex 3)."
ss_test_create_topics "$PREFIX" || die "create topics"
GW_PORT=$(ss_free_port)
ss_start_bg "$T/gw.log" env LISTEN=127.0.0.1:$GW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  GATEWAY_API_KEYS="$API_KEY" "$SS_BIN_DIR/shipstream-gateway" >/dev/null
GW="http://127.0.0.1:$GW_PORT"
ss_wait_for 30 curl -fsS "$GW/ready" || { tail "$T/gw.log" >&2; die "gateway not ready"; }

curl -sS -D "$T/init.h" -o "$T/init.json" -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \
  --data-binary '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
  "$GW/mcp" || die "initialize"
SID=$(sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *\([0-9a-f]*\).*/\1/p' "$T/init.h")
[ -n "$SID" ] || die "no session: $(cat "$T/init.json")"

# paced <url> [body-file]: the WRK line; fails on any non-2xx or socket error.
paced() {
  local args=(--url "$1" --rate "$RATE" --duration "$SECS" --warmup 2 --connections "$CONNS"
              --header "Authorization: Bearer $API_KEY")
  [ -n "${2:-}" ] && args+=(--body "$2" --header 'Content-Type: application/json'
                            --header "Mcp-Session-Id: $SID" --header 'MCP-Protocol-Version: 2025-11-25')
  local line
  line=$("$SS_BIN_DIR/ss-bench-paced" "${args[@]}" 2>"$T/paced.err" | grep '^WRK ') ||
    { cat "$T/paced.err" >&2; die "ss-bench-paced failed on $1"; }
  [ "$(ss_field non2xx "$line")" = 0 ] && [ "$(ss_field socket_errors "$line")" = 0 ] || die "errors on $1: $line"
  echo "$line"
}
call_body() { printf '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"%s","arguments":%s}}' "$1" "$2"; }
call_body search_shipments '{"limit":10}' >"$T/search.json"
call_body shipping_analytics '{"days":30}' >"$T/analytics.json"
for f in search analytics; do # the answers are real, not errors
  curl -fsS -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' -H "Mcp-Session-Id: $SID" \
    --data-binary "@$T/$f.json" "$GW/mcp" | jq -e '.result.isError == false and .result.structuredContent' >/dev/null ||
    die "tools/call $f is not a result"
done

# one request at a time first (20 each, alternating): the latency without load
one() { curl -sS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $API_KEY" "$@"; }
for pair in "search_shipments|/db/shipments?limit=10|search" "shipping_analytics|/db/analytics/dashboard?days=30|analytics"; do
  IFS='|' read -r tool path f <<<"$pair"
  : >"$T/one.mcp"; : >"$T/one.db"
  for i in $(seq 1 20); do
    one -H 'Content-Type: application/json' -H "Mcp-Session-Id: $SID" --data-binary "@$T/$f.json" "$GW/mcp" >>"$T/one.mcp"
    one "$GW$path" >>"$T/one.db"
  done
  say "$tool one at a time, median of 20: mcp $(ss_percentile 50 "$T/one.mcp") s, /db $(ss_percentile 50 "$T/one.db") s"
done
# then paced, /db and mcp alternating in two rounds (the shared machine's load drifts)
for pair in "search_shipments|/db/shipments?limit=10|search" "shipping_analytics|/db/analytics/dashboard?days=30|analytics"; do
  IFS='|' read -r tool path f <<<"$pair"
  d1=$(paced "$GW$path")
  m1=$(paced "$GW/mcp" "$T/$f.json")
  m=$(paced "$GW/mcp" "$T/$f.json")
  d=$(paced "$GW$path")
  say "$tool round 1: mcp $m1"
  say "$tool round 1: /db $d1"
  say "$tool round 2: mcp $m"
  say "$tool round 2: /db $d"
  echo "RESULT mcp_${tool}_p50_ms $(ms "$(ss_field p50_us "$m")") ms $(ms "$(ss_field p50_us "$d")")"
  echo "RESULT mcp_${tool}_p99_ms $(ms "$(ss_field p99_us "$m")") ms $(ms "$(ss_field p99_us "$d")")"
done

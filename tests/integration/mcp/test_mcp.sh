#!/usr/bin/env bash
# POST /mcp: the official MCP Python SDK as the client against the real gateway, easypost-sim,
# Kafka, the sync worker and PostgreSQL (every tool, structuredContent against each
# outputSchema, purchase tools absent by default), then the transport's bad input over raw
# HTTP (JSON-RPC codes, sessions, keys, Origin, batches, sizes).
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$("$SS_SOURCE_ROOT/tests/python/venv.sh") || ss_fail "the tests' Python venv (tests/python/venv.sh)"

ss_test_migrated_db it_mcp
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
SW_PORT=$(ss_free_port)
ss_start_bg "$SS_TEST_TMP/sw.log" env LISTEN=127.0.0.1:$SW_PORT DATABASE_URL="$DB_URL" \
  KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
  KAFKA_GROUP_ID="mcp-$RANDOM" "$SS_BIN_DIR/shipstream-sync-worker" >/dev/null
gw_start_sim SIM_FUNDS=1000.00 SIM_TIME_SCALE=86400   # no refund completes (and credits funds) during the test
gw_start
ss_wait_for 90 curl -fsS "http://127.0.0.1:$SW_PORT/ready" || ss_fail "sync worker not ready"

"$PY" "$HERE/mcp_client.py" "$GW/mcp" "$API_KEY" tools || ss_fail "the SDK client (tools phase)"

# ---- raw HTTP: rpc <body> [curl args...] -> CODE, BODY, HDRS
SID=""
rpc() {
  local body=$1; shift
  local args=(-sS -o "$SS_TEST_TMP/body" -D "$SS_TEST_TMP/hdrs" -w '%{http_code}' --max-time 30
              -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
  [ -n "$SID" ] && args+=(-H "Mcp-Session-Id: $SID")
  CODE=$(curl "${args[@]}" "$@" --data-binary "$body" "$GW/mcp") || CODE=000
  BODY=$(cat "$SS_TEST_TMP/body"); HDRS=$(cat "$SS_TEST_TMP/hdrs")
}
AUTH=(-H "Authorization: Bearer $API_KEY")
want() { # <http code> <jq test> <what>
  [ "$CODE" = "$1" ] || ss_fail "$3: HTTP $CODE, expected $1: ${BODY:0:300}"
  jq -e "$2" <<<"$BODY" >/dev/null 2>&1 || ss_fail "$3: body ${BODY:0:300} fails: $2"
  ss_pass "$3 -> $1"
}
INIT='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

for v in 2025-11-25 2025-06-18 2025-03-26; do
  rpc "$(printf "$INIT" $v)" "${AUTH[@]}"
  want 200 ".result.protocolVersion == \"$v\"" "initialize asking $v"
done
rpc "$(printf "$INIT" 2024-11-05)" "${AUTH[@]}"
want 200 '.result.protocolVersion == "2025-11-25" and .result.capabilities.tools and .result.serverInfo.name == "shipstream-gateway" and (.result.instructions | length > 0)' "initialize asking an older version gets our newest"
SID=$(sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: *\([0-9a-f]*\).*/\1/p' <<<"$HDRS")
[ ${#SID} -ge 32 ] || ss_fail "no Mcp-Session-Id on initialize: $HDRS"
grep -qi '^content-type: application/json' <<<"$HDRS" || ss_fail "initialize answer is not application/json"

rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${AUTH[@]}"
[ "$CODE" = 202 ] && [ -z "$BODY" ] || ss_fail "notification: $CODE $BODY"; ss_pass "notifications/initialized -> 202, no body"
rpc '{"jsonrpc":"2.0","id":"p","method":"ping"}' "${AUTH[@]}" -H 'MCP-Protocol-Version: 2025-11-25'
want 200 '.id == "p" and .result == {}' "ping"
rpc '{"jsonrpc":"2.0","id":2,"method":"resources/list"}' "${AUTH[@]}"
want 200 '.id == 2 and .error.code == -32601' "unknown method"
rpc '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{}}}' "${AUTH[@]}"
want 200 '.error.code == -32602' "tools/call without a name"
rpc '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"track","arguments":[1]}}' "${AUTH[@]}"
want 200 '.error.code == -32602' "tools/call with arguments not an object"
rpc '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"launch_rocket","arguments":{}}}' "${AUTH[@]}"
want 200 '.error.code == -32602 and (.error.message | test("launch_rocket"))' "unknown tool"
rpc '{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{"cursor":"abc"}}' "${AUTH[@]}"
want 200 '.error.code == -32602' "tools/list with a cursor it never issued"
rpc '{"jsonrpc":"2.0","id":7,"method":"tools/list"}' "${AUTH[@]}"
want 200 '(.result.tools | length) == 6 and (.result | has("nextCursor") | not)' "tools/list, one page"
rpc '{"jsonrpc":"2.0","id":8,"method":"ping"' "${AUTH[@]}"
want 400 '.error.code == -32700 and .id == null' "malformed JSON"
rpc '{"jsonrpc":"2.0","id":8,"method":"ping"} x' "${AUTH[@]}"
want 400 '.error.code == -32700' "text after the JSON value"
rpc '[{"jsonrpc":"2.0","id":9,"method":"ping"},{"jsonrpc":"2.0","id":10,"method":"ping"}]' "${AUTH[@]}"
want 400 '.error.code == -32600 and (.error.message | test("batch"))' "batch array refused clearly"
rpc '{"jsonrpc":"1.0","id":11,"method":"ping"}' "${AUTH[@]}"
want 400 '.error.code == -32600' "not JSON-RPC 2.0"
rpc '{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}' "${AUTH[@]}"
want 400 '.error.code == -32600' "id that is neither string nor integer"
rpc '{"jsonrpc":"2.0","id":12,"method":"ping"}' "${AUTH[@]}" -H 'MCP-Protocol-Version: 2025-06-18'
want 400 '.error.code == -32600' "MCP-Protocol-Version other than the session's"
SAVED=$SID
SID=""
rpc '{"jsonrpc":"2.0","id":13,"method":"tools/list"}' "${AUTH[@]}"
want 400 '.id == 13 and (.error.message | test("Mcp-Session-Id"))' "missing session id"
SID="${SAVED:0:${#SAVED}-1}$([ "${SAVED: -1}" = 0 ] && echo 1 || echo 0)"
rpc '{"jsonrpc":"2.0","id":14,"method":"tools/list"}' "${AUTH[@]}"
want 404 '.error.code == -32001' "unknown (forged) session id"
SID=nonsense
rpc '{"jsonrpc":"2.0","id":15,"method":"tools/list"}' "${AUTH[@]}"
want 404 '.error' "malformed session id"
SID=$SAVED
rpc '{"jsonrpc":"2.0","id":16,"method":"tools/list"}' -H 'Authorization: Bearer wrong'
want 401 '.error.code == "unauthorized"' "wrong key"
grep -qi '^WWW-Authenticate: Bearer' <<<"$HDRS" || ss_fail "401 without WWW-Authenticate"
rpc '{"jsonrpc":"2.0","id":17,"method":"tools/list"}'
want 401 '.error' "no key"
rpc '{"jsonrpc":"2.0","id":18,"method":"tools/list"}' "${AUTH[@]}" -H 'Origin: http://evil.example.com'
want 403 '.error.code == "forbidden_origin"' "foreign Origin"
rpc '{"jsonrpc":"2.0","id":19,"method":"tools/list"}' "${AUTH[@]}" -H 'Origin: http://localhost:6274'
want 200 '.result.tools' "loopback Origin (MCP Inspector on localhost)"
rpc '{"jsonrpc":"2.0","id":20,"method":"tools/list"}' "${AUTH[@]}" -H 'Origin: http://localhost.evil.com'
want 403 '.error' "Origin that only starts like localhost"
head -c $((2 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$SS_TEST_TMP/big.json"
CODE=$(curl -sS -o "$SS_TEST_TMP/body" -w '%{http_code}' "${AUTH[@]}" -H 'Content-Type: application/json' \
  -H "Mcp-Session-Id: $SID" --data-binary "@$SS_TEST_TMP/big.json" "$GW/mcp") || CODE=000
[ "$CODE" = 413 ] || ss_fail "2 MiB request: $CODE"; ss_pass "2 MiB request -> 413"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H 'Accept: text/event-stream' "$GW/mcp")
[ "$CODE" = 405 ] || ss_fail "GET /mcp: $CODE"; ss_pass "GET /mcp -> 405 (no SSE stream)"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H "Mcp-Session-Id: $SID" -H 'Content-Type: text/plain' \
  --data-binary '{"jsonrpc":"2.0","id":21,"method":"ping"}' "$GW/mcp")
[ "$CODE" = 415 ] || ss_fail "text/plain body: $CODE"; ss_pass "Content-Type text/plain -> 415"
n=$(ss_metric "$GW" 'gateway_mcp_tool_calls_total{tool="quote_shipment",outcome="ok"}') || ss_fail "metrics"
[ "$n" -ge 1 ] || ss_fail "gateway_mcp_tool_calls_total not counted"
ss_pass "gateway_mcp_tool_calls_total counts tool calls"

# ---- money: opt-in (GATEWAY_MCP_ALLOW_PURCHASE=1); the same buy twice is one purchase at the
# sim (its funds drop by the prices of the two shipments bought, no more); refund asks once
gw_start GATEWAY_MCP_ALLOW_PURCHASE=1
funds() { curl -fsS "http://127.0.0.1:$SIM_PORT/sim/funds" | jq -r .balance; }
before=$(funds) || ss_fail "GET /sim/funds"
out=$("$PY" "$HERE/mcp_client.py" "$GW/mcp" "$API_KEY" purchase) || { echo "$out"; ss_fail "the SDK client (purchase phase)"; }
grep -v '^SHIPMENT ' <<<"$out"
spent=0
for shp in $(sed -n 's/^SHIPMENT //p' <<<"$out"); do
  p=$(curl -fsS -u "$EP_KEY:" "$SIM_URL/shipments/$shp" | jq -r .selected_rate.rate) || ss_fail "retrieve $shp at the sim"
  spent=$(awk -v a="$spent" -v b="$p" 'BEGIN { printf "%.5f", a + b }')
done
after=$(funds)
awk -v b="$before" -v a="$after" -v s="$spent" 'BEGIN { d = b - a - s; exit !(d > -0.00001 && d < 0.00001) }' ||
  ss_fail "the sim's funds went from $before to $after; purchases of $spent expected (a second purchase?)"
ss_pass "the sim's funds dropped by exactly the two purchases ($before -> $after): the repeated buy bought nothing"
n=$(ss_metric "$GW" 'gateway_easypost_calls_total{op="shipment_refund",outcome="ok"}') || ss_fail "metrics"
[ "$n" = 1 ] || ss_fail "refund calls to EasyPost: $n, expected 1"
ss_pass "two refund_shipment calls, one refund asked of EasyPost"

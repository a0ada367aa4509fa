# Shared set-up of the gateway tests: easypost-sim and the gateway on free ports
# (the database: ss_test_migrated_db of lib.sh).  Source after lib.sh.
FIX="${SS_FIXTURES_DIR:-$SS_SOURCE_ROOT/tests/fixtures/easypost}"
API_KEY="gwkey_$RANDOM$RANDOM"
EP_KEY="EZTK_test_$RANDOM"

gw_start_sim() { # [env assignments...]
  SIM_PORT=$(ss_free_port)
  ss_start_bg "$SS_TEST_TMP/sim.$SIM_PORT.log" env LISTEN=127.0.0.1:$SIM_PORT EASYPOST_API_KEY=$EP_KEY "$@" \
    "$SS_BIN_DIR/easypost-sim" >/dev/null
  ss_wait_for 15 curl -fsS "http://127.0.0.1:$SIM_PORT/health" || ss_fail "easypost-sim did not start"
  SIM_URL="http://127.0.0.1:$SIM_PORT/v2"
}

gw_start() { # [env assignments...]
  GW_PORT=$(ss_free_port)
  ss_start_bg "$SS_TEST_TMP/gw.$GW_PORT.log" env LISTEN=127.0.0.1:$GW_PORT DATABASE_URL="$DB_URL" \
    KAFKA_BOOTSTRAP_SERVERS="$SS_TEST_KAFKA_BOOTSTRAP" KAFKA_TOPIC_PREFIX="$PREFIX" \
    EASYPOST_API_KEY=$EP_KEY EASYPOST_API_BASE="$SIM_URL" GATEWAY_API_KEYS="other,$API_KEY" \
    "$@" "$SS_BIN_DIR/shipstream-gateway" >/dev/null
  GW_PID=$SS_BG_PID
  GW="http://127.0.0.1:$GW_PORT"
  ss_wait_for 20 curl -fsS "$GW/health" || ss_fail "gateway did not start"
}

# call <method> <path> [body-file] -> sets CODE, BODY (and HDRS)
call() {
  local m=$1 p=$2 f=${3:-}
  local args=(-sS -o "$SS_TEST_TMP/body" -D "$SS_TEST_TMP/hdrs" -w '%{http_code}' -X "$m"
              -H "Authorization: Bearer $API_KEY" --max-time 30)
  [ -n "$f" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$f")
  CODE=$(curl "${args[@]}" "${EXTRA_CURL[@]}" "$GW$p") || CODE=000
  BODY=$(cat "$SS_TEST_TMP/body" 2>/dev/null)
  HDRS=$(cat "$SS_TEST_TMP/hdrs" 2>/dev/null)
}
EXTRA_CURL=()

expect() { # <code> <what>
  [ "$CODE" = "$1" ] || ss_fail "$2: expected HTTP $1, got $CODE: ${BODY:0:300}"
  ss_pass "$2 -> $1"
}

#!/usr/bin/env bash
# Bad input to the read API is the client's mistake: 400 with a clear message,
# never 500 (issue 18): forged cursors, invalid UTF-8, huge or negative limits.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$(dirname "$0")/common.sh"

ss_test_migrated_db gw_bad_input
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
gw_start_sim
gw_start

hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
get400() { # <path?query> <parameter named in the message>
  call GET "$1"
  [ "$CODE" = 400 ] || ss_fail "GET $1: expected 400, got $CODE: ${BODY:0:200}"
  jq -e --arg p "$2" '.error.code == "invalid_parameter" and (.error.message | contains($p))' <<<"$BODY" >/dev/null ||
    ss_fail "GET $1: error does not name '$2': $BODY"
  ss_pass "GET $1 -> 400 naming $2"
}

get400 "/db/shipments?cursor=$(hex 1234567890123456789012345678901:shp_1)" cursor   # 31 digits (was 500)
get400 "/db/shipments?cursor=$(hex 999999999999999999:shp_1)" cursor                # past year 9999
get400 "/db/shipments?cursor=$(hex "12:shp_'x")" cursor
get400 "/db/addresses?cursor=$(hex "0:adr_$(printf '\xff')")" cursor
get400 "/db/shipments?cursor=zz" cursor
get400 "/db/addresses?q=%FF" q                                                      # invalid UTF-8 (was 500)
get400 "/db/shipments?status=%FF" status
get400 "/db/shipments?carrier=%C3" carrier
get400 "/db/shipments?tracking_code=a%00b" tracking_code
get400 "/db/shipments?q=%" q                  # unknown parameter is named as well
get400 "/db/shipments?limit=-1" limit
get400 "/db/shipments?limit=0" limit
get400 "/db/shipments?limit=201" limit
get400 "/db/shipments?limit=99999999999999999999999999" limit
get400 "/db/analytics/dashboard?days=-5" days
get400 "/db/analytics/dashboard?mode=%FF" mode
get400 "/db/shipments?mode=Production" mode
get400 "/db/analytics/dashboard?days=99999999999999999999999" days
get400 "/db/shipments?created_from=%FF" created_from
get400 "/db/shipments?created_from=not-a-date" created_from

# Well-formed input still works, and a cursor the API handed out pages on.
call GET "/db/shipments?status=in+transit&q_unused=" ; [ "$CODE" = 400 ] || ss_fail "unknown parameter accepted: $CODE"
call GET "/db/addresses?q=caf%C3%A9"; expect 200 "UTF-8 search text"
call GET "/db/shipments?cursor=$(hex 1732900000123456:shp_abc)&limit=5"; expect 200 "a well-formed cursor"
grep -q '"error"' "$SS_TEST_TMP/gw.$GW_PORT.log" && grep '"level":"error"' "$SS_TEST_TMP/gw.$GW_PORT.log" | grep -q "read query failed" &&
  ss_fail "a bad input reached PostgreSQL and failed there: $(grep 'read query failed' "$SS_TEST_TMP/gw.$GW_PORT.log" | head -2)"
ss_pass "no bad input reached PostgreSQL as a failing query"

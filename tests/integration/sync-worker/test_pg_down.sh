#!/usr/bin/env bash
# PostgreSQL stopped for 20 s in the middle of a stream: /ready 503 meanwhile,
# exact final state afterwards.
set -uo pipefail
source "$(dirname "$0")/common.sh"
sw_setup sync_pg_down --shipments 2200 --dup 10 --ooo 5 --seed 4
sw_start a SYNC_BATCH_SIZE=200
sw_produce shipments
_some() { [ "$(sw_processed)" -ge 1000 ]; }
ss_wait_for 60 _some || ss_fail "nothing applied"
ss_pg_stop || ss_fail "pg stop"
t0=$SECONDS
sw_produce trackers
sw_produce addresses
_not_ready() { [ "$(sw_ready_code a)" = 503 ]; }
ss_wait_for 15 _not_ready || ss_fail "/ready did not answer 503 while PostgreSQL was down"
ss_pass "/ready 503 while PostgreSQL is down"
while [ $((SECONDS - t0)) -lt 20 ]; do
  kill -0 "${SW_PID[a]}" 2>/dev/null || ss_fail "worker died while PostgreSQL was down"
  sleep 1
done
ss_pg_start || ss_fail "pg start"
sw_wait_applied 120
_ready() { [ "$(sw_ready_code a)" = 200 ]; }
ss_wait_for 15 _ready || ss_fail "/ready not 200 after PostgreSQL came back"
sw_check_state
ss_pass "PostgreSQL down 20 s: nothing lost, nothing applied twice"

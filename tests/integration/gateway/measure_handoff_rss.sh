#!/usr/bin/env bash
# Measures the gateway's memory with its Kafka queue full (not a ctest: run it
# by hand under the harness when the queue bounds or the envelope change):
#   SS_BIN_DIR=$PWD/build/bin tests/integration/harness.sh -- \
#     bash tests/integration/gateway/measure_handoff_rss.sh [QUEUE_MAX_KBYTES]
#   (SS_FIXTURES_DIR defaults to tests/fixtures/easypost.)
# Kafka is stopped, shipstream-trafficgen creates and buys shipments through
# easypost-sim until the queue refuses objects (queue_full), then it prints
# VmRSS / VmHWM of the gateway next to the bytes waiting.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/common.sh"
KB=${1:-131072}
gw_setup_db gw_rss
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" 1 || ss_fail "topics"
gw_start_sim
gw_start GATEWAY_KAFKA_QUEUE_MAX_KBYTES="$KB" LOG_LEVEL=error
ss_wait_for 30 curl -fsS "$GW/ready" || ss_fail "gateway not ready"
metric() { curl -fsS "$GW/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
rss() { awk '/^VmRSS|^VmHWM/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$GW_PID/status"; }
echo "idle, Kafka up:       $(rss)"
ss_kafka_stop
GATEWAY_URL=$GW GATEWAY_API_KEY=$API_KEY TRAFFIC_RATE=2000 TRAFFIC_CONCURRENCY=16 TRAFFIC_DURATION=600 \
  "$SS_BIN_DIR/shipstream-trafficgen" >"$SS_TEST_TMP/traffic.log" 2>&1 &
tg=$!
full() { [ "$(metric 'gateway_handoff_dropped_total{reason="queue_full"}')" != 0 ]; }
ss_wait_for 600 full || ss_fail "queue never filled"
kill "$tg"; wait "$tg" 2>/dev/null
sleep 1.1 # a measurement, not a test: the gauges refresh every second
w=$(metric gateway_handoff_waiting); b=$(metric gateway_handoff_waiting_bytes)
echo "queue full (${KB} KiB bound): waiting $w objects, $(awk -v b="$b" 'BEGIN { printf "%.1f MiB", b / 1048576 }') of keys+values, avg $(awk -v b="$b" -v w="$w" 'BEGIN { printf "%.0f B", b / w }')/object"
echo "queue full:           $(rss)"
# Kafka back: the queue drains through produce requests (librdkafka copies
# small payloads into them): the high-water mark shows the peak of both.
ss_kafka_start || ss_fail "Kafka did not start"
drained() { [ "$(metric gateway_handoff_waiting)" = 0 ]; }
ss_wait_for 300 drained || ss_fail "queue did not drain: $(metric gateway_handoff_waiting) waiting"
echo "drained ($(metric gateway_handoff_total) handed off): $(rss)"

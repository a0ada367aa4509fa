#!/usr/bin/env bash
# Kafka round trip against the real broker of the harness environment:
#   kafka_produce_wait_p50/p99 (ms): one message produced and its broker
#     acknowledgement waited for, through libs/kafka; baseline: a metadata
#     request round trip on the same connection;
#   kafka_consume_throughput (msg/s, 200-byte values): libs/kafka consumer
#     from a pre-filled 12-partition topic; baseline: raw librdkafka loop.
# Needs SS_TEST_KAFKA_BOOTSTRAP and SS_BIN_DIR (set by bench/run.sh).
# BENCH_KAFKA_SAMPLES (2000) and BENCH_KAFKA_MESSAGES (200000) size the run.
set -euo pipefail
: "${SS_TEST_KAFKA_BOOTSTRAP:?run inside tests/integration/harness.sh (bench/run.sh does)}"
BIN="${SS_BIN_DIR:-build/bin}/ss-bench-kafka"
[ -x "$BIN" ] || { echo "bench/kafka: $BIN not built" >&2; exit 1; }
exec "$BIN" "$SS_TEST_KAFKA_BOOTSTRAP" "${BENCH_KAFKA_SAMPLES:-2000}" "${BENCH_KAFKA_MESSAGES:-200000}"

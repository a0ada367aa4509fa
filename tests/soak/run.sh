#!/usr/bin/env bash
# `make soak`: tests/soak/soak.sh inside the integration harness (its own PostgreSQL and
# Kafka on free ports, removed at the end).  Not part of `make test`.
#   SOAK_SECONDS=90 tests/soak/run.sh      a short run (default 600 s); other SOAK_* in soak.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
export SS_BIN_DIR=${SS_BIN_DIR:-$PWD/build/bin}
export SS_SOURCE_ROOT=$PWD
# A failing run keeps the harness's folder (Kafka's and PostgreSQL's data) for a look.
export SS_TEST_KEEP_ON_FAILURE=${SS_TEST_KEEP_ON_FAILURE:-1}
exec tests/integration/harness.sh -- tests/soak/soak.sh

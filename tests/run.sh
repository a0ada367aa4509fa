#!/usr/bin/env bash
# The whole test suite (`make test`):
#   0. format check (tools/format/format.sh --check)
#   1. build build/ (normal) and build-asan/ (ASan+UBSan)
#   2. unit tests in both (ctest -L unit, -j2)
#   3. integration tests in build/ against a real PostgreSQL and Kafka,
#      started once for the run by tests/integration/harness.sh
#   4. fuzz drivers (build-fuzz/, clang, ctest -L fuzz), each for a bounded time
#   5. containers: the images, the compose stack and `podman kube play` under
#      podman (tests/integration/containers/test_containers.sh, as root only)
# Ends with one line "shipstream tests: N passed, M failed" and exits non-zero
# on any failure (a build failure counts as one failed test).
# Environment: SS_TEST_SKIP="asan fuzz integration containers" skips phases (for quick local
# runs), CTEST_ARGS adds arguments to every ctest, JOBS (default 2), SS_IT_JOBS (default 2),
# SS_FIXTURES_DIR overrides where the EasyPost fixtures are.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
# Integration tests at a time (SS_IT_JOBS, default 2): each has its own database
# and topic prefix; the ones that stop shared parts or time things run alone
# (SS_SERIAL_TESTS in tests/CMakeLists.txt).
IT_JOBS=${SS_IT_JOBS:-2}
START=$SECONDS

PASSED=0
FAILED=0
PHASES=()

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
phase() { echo; bold "==== $* ===="; }
skipped() { [[ " ${SS_TEST_SKIP:-} " == *" $1 "* ]]; }
record() { PHASES+=("$(printf '%-28s %s' "$1" "$2")"); }

# Runs ctest with the given arguments; adds its passed/failed counts.
run_ctest() {
  local name=$1; shift
  local out rc total failed
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if grep -q "No tests were found" "$out"; then
    total=0 failed=0
  else
    total=$(sed -n 's/.*tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$out" | tail -1)
    failed=$(sed -n 's/.*, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p' "$out" | tail -1)
  fi
  if [ -z "$total" ]; then
    # ctest (or the harness around it) died before its summary.
    echo "run.sh: $name ended without a ctest summary (exit $rc)" >&2
    total=1 failed=1
  elif [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "run.sh: $name exited $rc with no failed test: counted as one failure" >&2
    failed=1 total=$((total + 1))
  fi
  PASSED=$((PASSED + total - failed))
  FAILED=$((FAILED + failed))
  record "$name" "$((total - failed)) passed, $failed failed"
  rm -f "$out"
}

# configure + build one tree; a failure counts as one failed test.
build_tree() {
  local dir=$1; shift
  local t0=$SECONDS
  if ! cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    echo "run.sh: configure of $dir failed"
    FAILED=$((FAILED + 1)); record "build $dir" "configure FAILED"
    return 1
  fi
  rm -f "$dir.configure.log"
  # Keep going past a broken target so that the rest can still be tested.
  cmake --build "$dir" -j "$JOBS" -- -k --no-print-directory 2>&1 | grep -v -E '^\[ *[0-9]+%\] (Building|Linking|Built)'
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "run.sh: build of $dir FAILED (see the errors above)"
    FAILED=$((FAILED + 1)); record "build $dir" "FAILED"
    return 1
  fi
  record "build $dir" "ok ($((SECONDS - t0)) s)"
}

# Fixtures outside the default place: SS_FIXTURES_DIR=/path make test
FIXTURES_ARG=()
[ -n "${SS_FIXTURES_DIR:-}" ] && FIXTURES_ARG=("-DSS_FIXTURES_DIR=$SS_FIXTURES_DIR")

# What the tests drive the product with (promtool, …), installed once.
deploy/local/deps.sh --test || { echo "run.sh: deploy/local/deps.sh --test failed"; FAILED=$((FAILED + 1)); record "deps --test" "FAILED"; }

phase "format: every .c/.h follows .clang-format (make format fixes)"
if tools/format/format.sh --check; then
  PASSED=$((PASSED + 1)); record "format" "ok"
else
  FAILED=$((FAILED + 1)); record "format" "FAILED"
fi

mkdir -p build build-asan
phase "build: build/ (RelWithDebInfo)"
build_tree build "${FIXTURES_ARG[@]}"
if ! skipped asan; then
  phase "build: build-asan/ (ASan + UBSan)"
  build_tree build-asan -DSS_SANITIZE=ON "${FIXTURES_ARG[@]}"
fi

phase "unit tests: build/"
run_ctest "unit (build)" ctest --test-dir build -L unit -j "$JOBS" --output-on-failure ${CTEST_ARGS:-}
if ! skipped asan; then
  phase "unit tests: build-asan/ (ASan + UBSan)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    run_ctest "unit (build-asan)" ctest --test-dir build-asan -L unit -j "$JOBS" --output-on-failure ${CTEST_ARGS:-}
fi

if ! skipped integration; then
  phase "integration tests: build/ against real PostgreSQL + Kafka"
  SS_BIN_DIR=$ROOT/build/bin run_ctest "integration (build)" \
    tests/integration/harness.sh -- ctest --test-dir build -L integration -j "$IT_JOBS" \
    --output-on-failure ${CTEST_ARGS:-}
fi

if [ -f tests/fuzz/CMakeLists.txt ] && ! skipped fuzz; then
  phase "fuzz: build-fuzz/ (clang, libFuzzer, ASan + UBSan)"
  if ! command -v clang >/dev/null; then
    echo "run.sh: clang is missing (make deps installs it)"
    FAILED=$((FAILED + 1)); record "fuzz" "clang missing"
  else
    mkdir -p build-fuzz
    if CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_FUZZ=ON -DSS_SANITIZE=ON "${FIXTURES_ARG[@]}" \
         >build-fuzz.configure.log 2>&1; then
      rm -f build-fuzz.configure.log
      # Build only the fuzz drivers (and what they link), not the whole tree again.
      mapfile -t drivers < <(ctest --test-dir build-fuzz -L fuzz -N 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: *//p')
      if [ ${#drivers[@]} -eq 0 ]; then
        echo "no fuzz drivers registered"
        record "fuzz" "no drivers"
      else
        echo "drivers: ${drivers[*]}"
        t0=$SECONDS
        cmake --build build-fuzz -j "$JOBS" --target "${drivers[@]}" -- -k --no-print-directory 2>&1 |
          grep -v -E '^\[ *[0-9]+%\] (Building|Linking|Built)'
        if [ "${PIPESTATUS[0]}" -eq 0 ]; then
          record "build build-fuzz" "ok ($((SECONDS - t0)) s)"
        else
          echo "run.sh: build of the fuzz drivers FAILED"
          FAILED=$((FAILED + 1)); record "build build-fuzz" "FAILED"
        fi
        run_ctest "fuzz (build-fuzz)" ctest --test-dir build-fuzz -L fuzz --output-on-failure ${CTEST_ARGS:-}
      fi
    else
      cat build-fuzz.configure.log
      FAILED=$((FAILED + 1)); record "build build-fuzz" "configure FAILED"
    fi
  fi
fi

if ! skipped containers; then
  phase "containers: images, compose stack and kube play under podman"
  t0=$SECONDS
  if [ "$(id -u)" -ne 0 ]; then
    # Rootful podman (debootstrap, bridge networks): not a failure for a
    # developer without root, said so in the summary.
    echo "run.sh: the containers phase needs root; skipped (SS_TEST_SKIP=containers hides this)"
    record "containers" "skipped (not root)"
  elif ! deploy/local/deps.sh containers; then
    FAILED=$((FAILED + 1)); record "containers" "deps.sh containers FAILED"
  else
    out=$(mktemp)
    # A deadline of its own: a hung engine must not eat CI's time.
    timeout -k 180 "${SS_CONTAINERS_TIMEOUT:-1500}" tests/integration/containers/test_containers.sh 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^containers: [0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
    p=$(sed -E 's/^containers: ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$line")
    if [ -z "$line" ]; then
      echo "run.sh: the containers test ended without its summary (exit $rc)"
      p=0 f=1
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
      f=1
    fi
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    record "containers" "$p passed, $f failed ($((SECONDS - t0)) s)"
    rm -f "$out"
  fi
fi

phase "summary ($((SECONDS - START)) s)"
for p in "${PHASES[@]}"; do echo "  $p"; done
echo "shipstream tests: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

#!/usr/bin/env bash
# Every benchmark of the project (`make bench`): starts the harness
# environment (real PostgreSQL + Kafka on free ports), runs each
# bench/<area>/bench.sh inside it, collects its result lines
#   RESULT <name> <value> <unit> <baseline_value>
# (baseline measured in the same run), prints a table and writes
# bench/results/latest.json. Exit status non-zero if any benchmark failed.
#
#   bench/run.sh [area...]        only these areas (folder names under bench/)
# Environment: SS_BIN_DIR (default build/bin), BENCH_TIMEOUT per bench (900 s; a bench
# that needs longer says how long in bench/<area>/timeout, seconds, used when BENCH_TIMEOUT is unset).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SS_BIN_DIR=${SS_BIN_DIR:-$ROOT/build/bin}

if [ "${1:-}" = "--inner" ]; then
  # Inside the harness: run the benches, append to $BENCH_OUT.
  shift
  for script in "$@"; do
    area=$(basename "$(dirname "$script")")
    echo "== bench $area ($script)" >&2
    log="$BENCH_DIR/$area.log"
    t0=$SECONDS
    limit=${BENCH_TIMEOUT:-$(cat "$(dirname "$script")/timeout" 2>/dev/null || echo 900)}
    timeout --kill-after=10 "$limit" "$script" 2>&1 | tee "$log" | grep -v '^RESULT ' >&2
    rc=${PIPESTATUS[0]}
    n=0
    while read -r tag name value unit baseline _; do
      [ "$tag" = RESULT ] || continue
      printf '%s\t%s\t%s\t%s\t%s\n' "$area" "$name" "$value" "$unit" "${baseline:-}" >>"$BENCH_OUT"
      n=$((n + 1))
    done <"$log"
    if [ "$rc" -ne 0 ]; then
      echo "== bench $area FAILED (exit $rc, $n results, $((SECONDS - t0)) s)" >&2
      echo "$area" >>"$BENCH_FAILED"
    else
      echo "== bench $area: $n results in $((SECONDS - t0)) s" >&2
    fi
  done
  exit 0
fi

scripts=()
if [ $# -gt 0 ]; then
  for a in "$@"; do
    [ -x "bench/$a/bench.sh" ] || { echo "bench/run.sh: no bench/$a/bench.sh" >&2; exit 2; }
    scripts+=("$ROOT/bench/$a/bench.sh")
  done
else
  for s in bench/*/bench.sh; do [ -f "$s" ] && scripts+=("$ROOT/$s"); done
fi
if [ ${#scripts[@]} -eq 0 ]; then echo "bench/run.sh: no bench/*/bench.sh found" >&2; exit 1; fi

mkdir -p bench/results
BENCH_DIR=$(mktemp -d)
trap 'rm -rf "$BENCH_DIR"' EXIT
export BENCH_DIR BENCH_OUT="$BENCH_DIR/results.tsv" BENCH_FAILED="$BENCH_DIR/failed"
: >"$BENCH_OUT"; : >"$BENCH_FAILED"
for s in "${scripts[@]}"; do chmod +x "$s" 2>/dev/null || true; done

tests/integration/harness.sh -- "$0" --inner "${scripts[@]}"
hrc=$?
[ $hrc -ne 0 ] && echo "harness" >>"$BENCH_FAILED"

# ---------------------------------------------------------------- table + JSON
echo
awk -F'\t' '
  { row[NR] = $0; if (length($2) > w) w = length($2) }
  END {
    if (w < 4) w = 4
    fmt = "%-" w "s %14s %-10s %14s %8s\n"
    printf fmt, "name", "value", "unit", "baseline", "ratio"
    for (i = 1; i <= NR; i++) {
      split(row[i], f, "\t")
      ratio = (f[5] != "" && f[5] + 0 != 0) ? sprintf("%.2f", f[3] / f[5]) : "-"
      printf fmt, f[2], f[3], f[4], (f[5] == "" ? "-" : f[5]), ratio
    }
  }' "$BENCH_OUT"

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
jq -n --arg commit "$commit" --arg host "$(uname -n)" --arg cpus "$(nproc)" \
      --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      --rawfile rows "$BENCH_OUT" --rawfile failed "$BENCH_FAILED" '
  def num: (tonumber? // .);
  {
    generated_at: $at, commit: $commit, host: $host, cpus: ($cpus | tonumber),
    results: [ $rows | split("\n")[] | select(length > 0) | split("\t") |
      { bench: .[0], name: .[1], value: (.[2] | num), unit: .[3],
        baseline: (if .[4] == "" then null else (.[4] | num) end) } |
      .ratio = (if (.baseline | type) == "number" and .baseline != 0 and (.value | type) == "number"
                then ((.value / .baseline) * 1000 | round / 1000) else null end) ],
    failed: [ $failed | split("\n")[] | select(length > 0) ]
  }' >bench/results/latest.json
echo
echo "written bench/results/latest.json"
if [ -s "$BENCH_FAILED" ]; then
  echo "failed: $(tr '\n' ' ' <"$BENCH_FAILED")"
  exit 1
fi

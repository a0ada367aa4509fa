#!/usr/bin/env bash
# The tree's one C format (.clang-format at the root, clang-format from Debian).
#   tools/format/format.sh          rewrite every tracked .c/.h in place (`make format`)
#   tools/format/format.sh --check  list the files that differ; exit 1 if any (`make test`)
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "format: clang-format is missing (make deps installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.c' '*.h')
[ ${#files[@]} -eq 0 ] && exit 0
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    [ -f "$f" ] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if [ ${#bad[@]} -gt 0 ]; then
    printf 'format: not formatted (run `make format`): %s\n' "${bad[@]}"
    exit 1
  fi
  echo "format: ${#files[@]} files follow .clang-format"
  exit 0
fi
existing=()
for f in "${files[@]}"; do [ -f "$f" ] && existing+=("$f"); done
clang-format -i "${existing[@]}"

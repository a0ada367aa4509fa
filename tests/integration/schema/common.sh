# shellcheck shell=bash
# Shared by the schema tests: source after setting nothing; gives MIGRATE and lib.sh
# (q: psql -At on $DB_URL; ss_test_migrated_db <name>: fresh, fully migrated database).
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

MIGRATE="$SS_BIN_DIR/shipstream-migrate"
[ -x "$MIGRATE" ] || ss_fail "shipstream-migrate not built at $MIGRATE"
export MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations"
export LOG_FORMAT=text

# expect_eq <what> <expected> <actual>
expect_eq() {
  if [ "$2" != "$3" ]; then
    printf 'expected:\n%s\nactual:\n%s\n' "$2" "$3" >&2
    ss_fail "$1"
  fi
}

# shellcheck shell=bash
# Shared by the schema tests: source after setting nothing; gives MIGRATE, q (psql -At on
# $DB), and schema_fresh_db <name> (fresh database migrated to the latest version).
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

MIGRATE="$SS_BIN_DIR/shipstream-migrate"
[ -x "$MIGRATE" ] || ss_fail "shipstream-migrate not built at $MIGRATE"
export MIGRATIONS_DIR="$SS_SOURCE_ROOT/migrations"
export LOG_FORMAT=text

# q <sql...>: run SQL on $DB, unaligned, tuples only, '|' separated.
q() { PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -At -F'|' -d "$DB" "$@"; }

# schema_fresh_db <name>: sets DB to a fresh, fully migrated database.
schema_fresh_db() {
  DB=$(ss_test_createdb "$1") || ss_fail "createdb $1"
  DATABASE_URL="$DB" "$MIGRATE" up >"$SS_TEST_TMP/up.out" 2>&1 ||
    { cat "$SS_TEST_TMP/up.out" >&2; ss_fail "migrate up on $1"; }
}

# expect_eq <what> <expected> <actual>
expect_eq() {
  if [ "$2" != "$3" ]; then
    printf 'expected:\n%s\nactual:\n%s\n' "$2" "$3" >&2
    ss_fail "$1"
  fi
}

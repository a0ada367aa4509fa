#!/usr/bin/env bash
# Run as root from a clone inside a private folder (root's home, any mktemp -d:
# mode 700), the postgres user cannot reach .run/pg. deploy/local/pg.sh keeps
# the cluster in $SS_PG_HOME/<hash>/data instead, with .run/pg a link to it:
# init, start, createdb, queries work; the link's target is the server's data
# directory; a cluster whose link is gone is collected by the next init;
# destroy removes it; a base folder owned by someone else is refused.
# Skipped (77) unless root with a postgres user (the only case that relocates).
set -uo pipefail
# shellcheck source=../lib.sh
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"

if [ "$(id -u)" -ne 0 ] || ! id postgres >/dev/null 2>&1; then
  echo "SKIP: needs root and the postgres user (pg.sh relocates only then)"; exit 77
fi
PG="$SS_SOURCE_ROOT/deploy/local/pg.sh"
# The base folder for the clusters: in our test folder when postgres can reach
# it, else (TMPDIR itself private) a fresh one in /var/tmp.
if runuser -u postgres -- test -x "$SS_TEST_TMP" 2>/dev/null; then
  export SS_PG_HOME="$SS_TEST_TMP/pghome"
else
  export SS_PG_HOME; SS_PG_HOME=$(mktemp -u /var/tmp/ss-pghome-test.XXXXXX)
fi
PRIV="$SS_TEST_TMP/private"
mkdir -m 700 "$PRIV"
mkdir -p "$PRIV/a/.run" "$PRIV/b/.run"
runuser -u postgres -- test -x "$PRIV/a/.run" 2>/dev/null && ss_fail "precondition: postgres can reach $PRIV"
ss_on_exit "'$PG' stop --dir '$PRIV/a/.run/pg' -q 2>/dev/null; rm -rf '$SS_PG_HOME'"

"$PG" init --dir "$PRIV/a/.run/pg" --fast 2>"$SS_TEST_TMP/init.err" || { cat "$SS_TEST_TMP/init.err"; ss_fail "init in a private folder"; }
[ -L "$PRIV/a/.run/pg" ] || ss_fail ".run/pg is not a link"
target=$(readlink "$PRIV/a/.run/pg")
[[ "$target" == "$SS_PG_HOME"/*/data ]] || ss_fail ".run/pg links to $target, not into $SS_PG_HOME"
[ "$(stat -c %U "$target")" = postgres ] || ss_fail "$target is not owned by postgres"
grep -q "postgres cannot reach $PRIV/a/.run" "$SS_TEST_TMP/init.err" || ss_fail "init did not say where the cluster went"
ss_pass "init: .run/pg -> $target"

port=$(ss_free_port) || ss_fail "no free port"
"$PG" start --dir "$PRIV/a/.run/pg" --port "$port" -q || ss_fail "start"
url=$("$PG" createdb --dir "$PRIV/a/.run/pg" shipstream --owner shipstream) || ss_fail "createdb"
dd=$(ss_psql "postgresql://postgres@127.0.0.1:$port/postgres" -At -c 'SHOW data_directory') || ss_fail "query"
[ "$dd" = "$target" ] || ss_fail "server's data_directory $dd, expected $target"
[ "$(ss_psql "$url" -At -c 'SELECT current_user')" = shipstream ] || ss_fail "$url does not answer as shipstream"
"$PG" status --dir "$PRIV/a/.run/pg" >/dev/null || ss_fail "status says stopped"
"$PG" stop --dir "$PRIV/a/.run/pg" -q || ss_fail "stop"
"$PG" start --dir "$PRIV/a/.run/pg" -q || ss_fail "start again (saved port)"
"$PG" stop --dir "$PRIV/a/.run/pg" -q || ss_fail "stop again"
ss_pass "start, createdb, query ($url), status, stop, restart through the link"

# `make clean` removes .run: the next init collects the orphaned cluster.
rm -rf "$PRIV/a/.run"
"$PG" init --dir "$PRIV/b/.run/pg" --fast -q || ss_fail "init b"
[ -e "$target" ] && ss_fail "orphaned cluster $target still there after the next init"
n=$(find "$SS_PG_HOME" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$n" = 1 ] || ss_fail "$n clusters in $SS_PG_HOME, expected 1"
ss_pass "orphaned cluster collected by the next init"
"$PG" destroy --dir "$PRIV/b/.run/pg" -q || ss_fail "destroy"
[ -e "$PRIV/b/.run/pg" ] || [ -L "$PRIV/b/.run/pg" ] && ss_fail "destroy left .run/pg"
n=$(find "$SS_PG_HOME" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$n" = 0 ] || ss_fail "destroy left $n clusters in $SS_PG_HOME"
ss_pass "destroy removes the link and the cluster"

# A base folder someone else owns (it lives in world-writable /var/tmp) is refused.
rm -rf "$SS_PG_HOME"; mkdir -m 711 "$SS_PG_HOME"; chown nobody "$SS_PG_HOME"
"$PG" init --dir "$PRIV/b/.run/pg" --fast -q 2>"$SS_TEST_TMP/refuse.err" && ss_fail "init accepted a base owned by nobody"
grep -q "belongs to uid" "$SS_TEST_TMP/refuse.err" || ss_fail "refusal does not say why: $(cat "$SS_TEST_TMP/refuse.err")"
ss_pass "a base folder not owned by root is refused"

#!/usr/bin/env bash
# The official MCP conformance suite (npm @modelcontextprotocol/conformance 0.1.13, the last
# version that runs on Node 20) against /mcp.  The suite sends no API key, so the gateway
# under test runs with GATEWAY_AUTH=off (the existing local-experiments switch; never in
# production).  Installed once into <build>/mcp-conformance from the npm registry.
#
# Scenarios that apply to a tools-only server: server-initialize, ping, tools-list,
# dns-rebinding-protection (must pass), and json-schema-2020-12, which looks for a fixture
# tool named json_schema_2020_12_tool: ours has none, so only that check may fail (the
# properties it then checks - $schema 2020-12, $defs, additionalProperties false - are
# checked on every real tool by it_mcp).  The rest need prompts, resources, logging,
# sampling, elicitation, SSE or fixture tools (test_simple_text, ...) this server does not
# have: they do not apply.
set -uo pipefail
source "$SS_SOURCE_ROOT/tests/integration/lib.sh"
source "$SS_SOURCE_ROOT/tests/integration/gateway/common.sh"
VERSION=0.1.13
DIR="$SS_BIN_DIR/../mcp-conformance"
command -v npm >/dev/null || { echo "SKIP: npm is not installed (Node 20)"; exit 77; }
mkdir -p "$DIR"
(
  flock 9
  if [ "$(cat "$DIR/.version" 2>/dev/null)" != "$VERSION" ]; then
    cd "$DIR" && rm -rf node_modules package.json package-lock.json &&
      echo '{"private":true}' >package.json &&
      npm install --no-audit --no-fund --loglevel=error "@modelcontextprotocol/conformance@$VERSION" >&2 &&
      echo "$VERSION" >.version
  fi
) 9>"$DIR.lock" || ss_fail "npm install @modelcontextprotocol/conformance@$VERSION (registry reachable?)"
CONF="$DIR/node_modules/.bin/conformance"

ss_test_migrated_db it_mcp_conformance
PREFIX=$(ss_test_prefix); ss_test_create_topics "$PREFIX" || ss_fail "topics"
gw_start_sim
gw_start GATEWAY_AUTH=off

run() { # <scenario> -> OUT (the suite's report), RC
  OUT=$(cd "$SS_TEST_TMP" && timeout 120 "$CONF" server --url "$GW/mcp" --scenario "$1" 2>&1); RC=$?
}
for s in server-initialize ping tools-list dns-rebinding-protection; do
  run "$s"
  echo "$OUT" | tail -n 15
  [ "$RC" = 0 ] && ! grep -q 'FAILURE\|✗' <<<"$OUT" || ss_fail "conformance scenario $s"
  ss_pass "conformance $s"
done
run json-schema-2020-12
echo "$OUT" | tail -n 15
grep -q "json_schema_2020_12_tool' not found" <<<"$OUT" || ss_fail "json-schema-2020-12: expected only the fixture tool to be missing"
ss_pass "conformance json-schema-2020-12: does not apply (wants the fixture tool json_schema_2020_12_tool)"

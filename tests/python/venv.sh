#!/usr/bin/env bash
# Creates (once) the tests' Python virtual environment under the build tree and
# prints the path of its python.  Usage in a test:
#   PY=$("$ROOT/tests/python/venv.sh") || exit 1
#   "$PY" my_test.py
# SS_VENV_DIR overrides the place (default <repo>/build/venv).  Recreated when
# requirements.txt changes; concurrent callers wait on one lock.
# Needs python3-venv (deploy/local/deps.sh --test installs it) and PyPI.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${SS_VENV_DIR:-$ROOT/build/venv}
REQ=$HERE/requirements.txt
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements" 2>/dev/null || true)" != "$want" ]; then
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" >&2; then
    echo "venv.sh: python3 -m venv failed: install python3-venv (deploy/local/deps.sh --test)" >&2
    exit 1
  fi
  if ! "$VENV/bin/pip" install --disable-pip-version-check -q -r "$REQ" >&2; then
    echo "venv.sh: pip could not install $REQ (PyPI reachable?)" >&2
    rm -rf "$VENV"
    exit 1
  fi
  echo "$want" >"$VENV/.requirements"
fi
echo "$VENV/bin/python"

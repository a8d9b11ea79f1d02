#!/usr/bin/env bash
# Set up (Debian packages, .venv), lint (ruff, mypy), start services, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
bash scripts/start-services.sh
export DOCKER_BUILDKIT=0
# pytest deletes old temp dirs by renaming them garbage-* first; one it could not finish
# (a tree deeper than its recursive rmtree) would fail every later session at its end
rm -rf "${TMPDIR:-/tmp}/pytest-of-$(id -un)"/garbage-* 2>/dev/null || true
exec .venv/bin/pytest -q -ra "$@"

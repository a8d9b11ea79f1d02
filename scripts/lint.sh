#!/usr/bin/env bash
# Static checks, configured in pyproject.toml: ruff (pyflakes, pycodestyle, import order,
# bugbear) over the whole tree, mypy over builder/, registry/ and runner/.
# Run by scripts/test.sh (so by .ci/run) before the tests; `ruff check --fix .` fixes the
# import order and unused imports it reports.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy

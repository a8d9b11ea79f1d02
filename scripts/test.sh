#!/usr/bin/env bash
# Set up (Debian packages, .venv), lint (ruff, mypy), start services, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh
bash scripts/start-services.sh
export DOCKER_BUILDKIT=0
exec .venv/bin/pytest -q -ra "$@"

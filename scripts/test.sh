#!/usr/bin/env bash
# Install what the tests need into .venv (created if missing) and run them, against SQLite and a
# throwaway PostgreSQL server (TEST_DATABASE_URL, or one started here: scripts/postgres.sh).
# Usage: bash scripts/test.sh [pytest options]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
source scripts/postgres.sh
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Install what the tests need into .venv (made with a Python of 3.11 or newer: scripts/python.sh) and
# run them, in four processes (pyproject.toml), against SQLite and a throwaway PostgreSQL server
# (TEST_DATABASE_URL, or one started here: scripts/postgres.sh).
# Usage: bash scripts/test.sh [pytest options]   (-n 0: in one process)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
source scripts/postgres.sh
.venv/bin/python -m pytest "$@"

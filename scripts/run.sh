#!/usr/bin/env bash
# Install the bot into .venv (created if missing) and run it: Socket Mode by default.
# Usage: bash scripts/run.sh [socket|http|classify IMAGE...|eval DIR]   (settings: .env, see .env.example)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m bot "$@"

#!/usr/bin/env bash
# Install the bot into .venv (made with a Python of 3.11 or newer: scripts/python.sh) and run it:
# Socket Mode by default.
# Usage: bash scripts/run.sh [socket|http|classify IMAGE...|eval DIR]   (settings: .env, see .env.example)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m bot "$@"

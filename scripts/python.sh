#!/usr/bin/env bash
# Sourced by scripts/run.sh and scripts/test.sh (from the project folder): finds a Python of 3.11 or
# newer (python3.13, python3.12, python3.11, then python3; the first that runs and can make a venv),
# exports it as PYTHON, and makes sure .venv was built by that Python: a .venv made by another or an
# older Python (or one that no longer runs) is rebuilt. When none fits, it stops with one line that
# says what it found and how to get a suitable one.

python_version() {  # "3.11.7" for the Python named $1, nothing if it does not run
  "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null
}

INSTALL_PYTHON="install one (Debian/Ubuntu: apt-get install python3.11 python3.11-venv;"
INSTALL_PYTHON+=" macOS: brew install python@3.12; or https://www.python.org/downloads/)"

find_python() {
  local candidate version problem=""
  for candidate in python3.13 python3.12 python3.11 python3; do
    version=$(python_version "$candidate") || continue
    [ -n "$version" ] || continue
    if ! "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      problem="${problem:-$candidate ($(command -v "$candidate")) is Python $version: $INSTALL_PYTHON}"
    elif ! "$candidate" -c 'import ensurepip, venv' 2>/dev/null; then
      problem="${problem:-$candidate (Python $version) cannot make a venv: apt-get install $candidate-venv}"
    else
      PYTHON=$("$candidate" -c 'import sys; print(sys.executable)')
      export PYTHON
      return 0
    fi
  done
  echo "Find the Crystals needs Python 3.11 or newer with venv," \
    "and ${problem:-no python3 was found: $INSTALL_PYTHON}; then run this again." >&2
  exit 1
}

# Which Python a venv is made from: its version and base installation. `import pip` fails in a
# half-made venv, so that one is rebuilt too.
IDENTITY='import sys; print("Python %d.%d.%d (%s)" % (*sys.version_info[:3], sys.base_prefix))'

ensure_venv() {
  local wanted current
  wanted=$("$PYTHON" -c "$IDENTITY")
  if [ -e .venv ]; then
    current=$(.venv/bin/python -c "import pip; $IDENTITY" 2>/dev/null) || current=""
    [ "$current" = "$wanted" ] && return 0
    echo "rebuilding .venv with $wanted: it was made by ${current:-a Python that no longer runs, or lacks pip}" >&2
  fi
  "$PYTHON" -m venv --clear .venv
}

find_python
ensure_venv

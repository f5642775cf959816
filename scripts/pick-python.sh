#!/usr/bin/env bash
# Prints the Python to build a venv with: `pick-python.sh GLOB` gives the newest pyenv
# interpreter whose version matches GLOB (e.g. '3.11*'), else /usr/bin/python3. The callers let
# an environment variable (VENV_PYTHON, BUGSINK_PYTHON) choose first.
set -euo pipefail
glob=${1:?usage: pick-python.sh VERSION-GLOB}
pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
# The glob is expanded here, on purpose: it names version folders.
# shellcheck disable=SC2086
for candidate in $(ls -d "$pyenv_root"/versions/$glob/bin/python3 2>/dev/null | sort -V -r); do
  if [[ -x $candidate ]]; then
    echo "$candidate"
    exit 0
  fi
done
echo /usr/bin/python3

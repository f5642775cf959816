#!/usr/bin/env bash
# Create the test venv: scripts/make-venv.sh DIR
#
# The interpreter is $VENV_PYTHON when set, else pyenv's newest 3.11 when pyenv is there, else
# /usr/bin/python3. Packages come from scripts/venv-requirements.txt. DIR/.stamp is written
# last, so a venv whose creation was interrupted is made again from scratch next time; the
# Makefile rebuilds only when the stamp is missing or older than the requirements.
set -euo pipefail

dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")" && pwd)
requirements=$here/venv-requirements.txt

python=${VENV_PYTHON:-$("$here/pick-python.sh" '3.11*')}

echo "make-venv: creating $dir with $python ($("$python" --version 2>&1))"
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
"$dir/bin/python" -m pytest --version
"$dir/bin/python" -c 'import xdist' # pytest-xdist is importable
touch "$dir/.stamp"

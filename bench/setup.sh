#!/usr/bin/env bash
# Install everything `make bench` needs under one folder: bench/setup.sh DIR (target/bench)
#
#   DIR/venv            CPython 3.11.7 venv with bench/requirements.txt (pinned, from PyPI)
#   DIR/networkx-VER    the networkx sdist (pinned, from PyPI), whose test suite item 1 runs
#   DIR/bin             mintrace and workload, compiled from bench/*.c
#   DIR/libgen          generated libraries of 10,000, 100,000 and 1,000,000 functions, with and
#                       without DWARF (bench/genlib.py; the largest takes a few minutes to build)
#
# Each part is redone only when missing or older than what it is made from; a part whose
# making was interrupted is made again (stamps are written last).
set -euo pipefail

dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")" && pwd)
python=${BENCH_PYTHON:-/root/.pyenv/versions/3.11.7/bin/python3}
networkx_version=3.6.1

mkdir -p "$dir/bin"

# C programs.
for prog in mintrace workload; do
    if [[ ! -x $dir/bin/$prog || $here/$prog.c -nt $dir/bin/$prog ]]; then
        gcc -O2 -g -Wall -Wextra -pthread -o "$dir/bin/$prog" "$here/$prog.c"
        echo "bench setup: CC $dir/bin/$prog"
    fi
done

# The stall meter of the pause benchmark (bench/pause.py), a shared library.
if [[ ! -e $dir/bin/libstallmeter.so || $here/stallmeter.c -nt $dir/bin/libstallmeter.so ]]; then
    gcc -O2 -Wall -Wextra -shared -fPIC -pthread -o "$dir/bin/libstallmeter.so" "$here/stallmeter.c"
    echo "bench setup: CC $dir/bin/libstallmeter.so"
fi

# The venv.
venv=$dir/venv
if [[ ! -e $venv/.stamp || $here/requirements.txt -nt $venv/.stamp ]]; then
    [[ -x $python ]] || { echo "bench setup: $python not found (set BENCH_PYTHON)" >&2; exit 1; }
    echo "bench setup: creating $venv with $python"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    touch "$venv/.stamp"
fi

# The networkx sdist, unpacked; its tests run from the unpacked tree.
nx=$dir/networkx-$networkx_version
if [[ ! -e $nx/.stamp ]]; then
    echo "bench setup: fetching networkx==$networkx_version (sdist)"
    rm -rf "$nx" "$dir/sdist"
    "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: "networkx==$networkx_version" -d "$dir/sdist"
    tar -xzf "$dir/sdist/networkx-$networkx_version.tar.gz" -C "$dir"
    touch "$nx/.stamp"
fi
# Generated libraries (issue 14: cost against library size); each is made only when missing.
python3 "$here/genlib.py" "$dir/libgen" 10000 100000 1000000
echo "bench setup: ready in $dir"

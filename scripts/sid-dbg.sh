#!/usr/bin/env bash
# The separate debug files of Debian sid's python3.X (python3.X-dbg: the interpreter and its
# extension modules) and of sid's glibc (libc6-dbg), from the same package index as the
# interpreters unpacked by sid-python.sh (so their build-ids match), into DEST laid out like
# /usr/lib/debug: crashcatch --debug-dir DEST/usr/lib/debug. Only usr/lib/debug/.build-id of each
# package is unpacked (the debug interpreters they also hold are not needed).
# Usage: scripts/sid-dbg.sh DEST DEBS_DIR 3.X...
set -euo pipefail
dest=${1:?usage: sid-dbg.sh DEST DEBS_DIR 3.X...}
debs=${2:?usage: sid-dbg.sh DEST DEBS_DIR 3.X...}
shift 2
pkgs=(libc6-dbg)
for v in "$@"; do pkgs+=("python$v-dbg"); done
# One package at a time: one that is missing from sid only costs the tests that need it (they
# find no debug file for their build-id and say so).
status=0
for p in "${pkgs[@]}"; do
  DEBIAN_DEBS_DIR=$debs DEBIAN_UNPACK_ONLY=./usr/lib/debug/.build-id \
    "$(dirname "$0")/debian-unpack.sh" "$dest" sid "$p" || { echo "sid-dbg: $p not unpacked" >&2; status=1; }
done
touch "$dest/.stamp"
exit $status

#!/usr/bin/env bash
# Unpacks Debian bookworm's python3.11 together with its python3.11-dbg (same version, so the
# debug files match the executable's build-id) into DEST: the stripped, non-PIE interpreter
# "with python3.11-dbg installed", next to the machine's own /usr/bin/python3.11 without it.
# Run it as DEST/run-python3.11; crashcatch finds the debug files with
# --debug-dir DEST/usr/lib/debug. Usage: scripts/py311-dbg.sh DEST
set -euo pipefail
dest=${1:?usage: py311-dbg.sh DEST}
"$(dirname "$0")/debian-unpack.sh" "$dest" bookworm python3.11-minimal python3.11-dbg
cat > "$dest/run-python3.11" <<EOS
#!/bin/sh
# Debian's python3.11 (unpacked), with the machine's standard library.
here=\$(cd "\$(dirname "\$0")" && pwd)
export PYTHONHOME=/usr
exec "\$here/usr/bin/python3.11" "\$@"
EOS
chmod +x "$dest/run-python3.11"
"$dest/run-python3.11" -c 'import sys, ctypes; print(sys.version)'

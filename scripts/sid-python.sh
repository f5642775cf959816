#!/usr/bin/env bash
# Unpacks Debian sid's CPython 3.X (and the glibc it needs, and its headers for the test
# extension) into DEST, for the tests of the newest interpreters; run it through sid's own loader
# with `DEST/run-python3.X`. Several versions share one DEST.
# Usage: scripts/sid-python.sh DEST 3.X
set -euo pipefail
dest=${1:?usage: sid-python.sh DEST 3.X}
v=${2:?usage: sid-python.sh DEST 3.X}
"$(dirname "$0")/debian-unpack.sh" "$dest" sid libc6 libgcc-s1 "python$v-minimal" "libpython$v-minimal" \
  "libpython$v-stdlib" "libpython$v-dev" libexpat1 zlib1g libffi8 libzstd1 liblzma5 libbz2-1.0
cat > "$dest/run-python$v.tmp" <<EOS
#!/bin/sh
# CPython $v from Debian sid, run through sid's own dynamic loader.
here=\$(cd "\$(dirname "\$0")" && pwd)
export PYTHONHOME="\$here/usr"
exec "\$here/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$here/usr/lib/x86_64-linux-gnu" "\$here/usr/bin/python$v" "\$@"
EOS
chmod +x "$dest/run-python$v.tmp"
"$dest/run-python$v.tmp" -c 'import sys, ctypes; print(sys.version)'
mv "$dest/run-python$v.tmp" "$dest/run-python$v"

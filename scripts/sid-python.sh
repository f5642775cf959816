#!/usr/bin/env bash
# Unpacks Debian sid's CPython 3.14 (and the glibc it needs) into DEST, for the tests of the
# newest interpreter; run it through sid's own loader with `DEST/run-python3.14`.
# Usage: scripts/sid-python.sh DEST
set -euo pipefail
dest=${1:?usage: sid-python.sh DEST}
"$(dirname "$0")/debian-unpack.sh" "$dest" sid libc6 libgcc-s1 python3.14-minimal libpython3.14-minimal \
  libpython3.14-stdlib libexpat1 zlib1g libffi8 libzstd1 liblzma5 libbz2-1.0
cat > "$dest/run-python3.14" <<EOS
#!/bin/sh
# CPython 3.14 from Debian sid, run through sid's own dynamic loader.
here=\$(cd "\$(dirname "\$0")" && pwd)
export PYTHONHOME="\$here/usr"
exec "\$here/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$here/usr/lib/x86_64-linux-gnu" "\$here/usr/bin/python3.14" "\$@"
EOS
chmod +x "$dest/run-python3.14"
"$dest/run-python3.14" -c 'import sys; print(sys.version)'

#!/usr/bin/env bash
# Unpacks Debian sid's CPython 3.14 (and the glibc it needs) into DEST, for the tests of the
# newest interpreter: no chroot, no root; run it through sid's own loader with `DEST/run-python3.14`.
# Packages come from Debian's package registry. Usage: scripts/sid-python.sh DEST
set -euo pipefail
dest=${1:?usage: sid-python.sh DEST}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
pkgs=(libc6 libgcc-s1 python3.14-minimal libpython3.14-minimal libpython3.14-stdlib libexpat1 zlib1g libffi8 libzstd1 liblzma5 libbz2-1.0)
mkdir -p "$dest/.debs"
index="$dest/.debs/Packages"
if [[ ! -s $index ]]; then
  curl -sSfL --retry 3 "$mirror/dists/sid/main/binary-amd64/Packages.xz" | xz -dc > "$index.tmp"
  mv "$index.tmp" "$index"
fi
for p in "${pkgs[@]}"; do
  file=$(awk -v p="$p" '$1=="Package:"{cur=$2} $1=="Filename:" && cur==p {print $2; exit}' "$index")
  [[ -n $file ]] || { echo "sid-python: $p not in the sid index" >&2; exit 1; }
  deb="$dest/.debs/$(basename "$file")"
  [[ -s $deb ]] || curl -sSfL --retry 3 -o "$deb.tmp" "$mirror/$file" && { [[ -s $deb ]] || mv "$deb.tmp" "$deb"; }
  dpkg-deb -x "$deb" "$dest"
done
cat > "$dest/run-python3.14" <<EOS
#!/bin/sh
# CPython 3.14 from Debian sid, run through sid's own dynamic loader.
here=\$(cd "\$(dirname "\$0")" && pwd)
export PYTHONHOME="\$here/usr"
exec "\$here/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$here/usr/lib/x86_64-linux-gnu" "\$here/usr/bin/python3.14" "\$@"
EOS
chmod +x "$dest/run-python3.14"
"$dest/run-python3.14" -c 'import sys; print(sys.version)'

#!/usr/bin/env bash
# Unpacks Debian packages of one suite into DEST (no root, no chroot): for the tests of
# interpreters that are not on this machine. Packages come from Debian's package registry; the
# index and the .deb files are kept in DEST/.debs (or $DEBIAN_DEBS_DIR, so that two folders share
# one index and their packages match) so a second run needs no network.
# With DEBIAN_UNPACK_ONLY=PATH (a path inside the package, like ./usr/lib/debug/.build-id) only
# that part of each package is unpacked.
# DEBIAN_ARCH=arm64 (or another Debian architecture) takes that architecture's packages
# instead of amd64.
# Usage: scripts/debian-unpack.sh DEST SUITE PACKAGE...   (SUITE: sid, bookworm, ...)
set -euo pipefail
dest=${1:?usage: debian-unpack.sh DEST SUITE PACKAGE...}
suite=${2:?usage: debian-unpack.sh DEST SUITE PACKAGE...}
shift 2
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debs=${DEBIAN_DEBS_DIR:-$dest/.debs}
mkdir -p "$debs"
arch=${DEBIAN_ARCH:-amd64}
index="$debs/Packages-$suite"
[[ $arch == amd64 ]] || index="$index-$arch"
# Temporary names carry the pid: two runs sharing the cache never write the same file.
if [[ ! -s $index ]]; then
  curl -sSfL --retry 3 "$mirror/dists/$suite/main/binary-$arch/Packages.xz" | xz -dc > "$index.tmp.$$"
  mv "$index.tmp.$$" "$index"
fi
for p in "$@"; do
  file=$(awk -v p="$p" '$1=="Package:"{cur=$2} $1=="Filename:" && cur==p {print $2; exit}' "$index")
  [[ -n $file ]] || { echo "debian-unpack: $p is not in $suite" >&2; exit 1; }
  deb="$debs/$(basename "$file")"
  if [[ ! -s $deb ]]; then
    curl -sSfL --retry 3 -o "$deb.tmp.$$" "$mirror/$file"
    mv "$deb.tmp.$$" "$deb"
  fi
  if [[ -n ${DEBIAN_UNPACK_ONLY:-} ]]; then
    mkdir -p "$dest"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest" "$DEBIAN_UNPACK_ONLY"
  else
    dpkg-deb -x "$deb" "$dest"
  fi
done

#!/usr/bin/env bash
# Unpacks Debian packages of one suite into DEST (no root, no chroot): for the tests of
# interpreters that are not on this machine. Packages come from Debian's package registry; the
# index and the .deb files are kept in DEST/.debs so a second run needs no network.
# Usage: scripts/debian-unpack.sh DEST SUITE PACKAGE...   (SUITE: sid, bookworm, ...)
set -euo pipefail
dest=${1:?usage: debian-unpack.sh DEST SUITE PACKAGE...}
suite=${2:?usage: debian-unpack.sh DEST SUITE PACKAGE...}
shift 2
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$dest/.debs"
index="$dest/.debs/Packages-$suite"
if [[ ! -s $index ]]; then
  curl -sSfL --retry 3 "$mirror/dists/$suite/main/binary-amd64/Packages.xz" | xz -dc > "$index.tmp"
  mv "$index.tmp" "$index"
fi
for p in "$@"; do
  file=$(awk -v p="$p" '$1=="Package:"{cur=$2} $1=="Filename:" && cur==p {print $2; exit}' "$index")
  [[ -n $file ]] || { echo "debian-unpack: $p is not in $suite" >&2; exit 1; }
  deb="$dest/.debs/$(basename "$file")"
  if [[ ! -s $deb ]]; then
    curl -sSfL --retry 3 -o "$deb.tmp" "$mirror/$file"
    mv "$deb.tmp" "$deb"
  fi
  dpkg-deb -x "$deb" "$dest"
done

#!/usr/bin/env bash
# Build one test fixture (a program or libccfix.so) in one build variant.
#
#   scripts/build-fixture.sh VARIANT OUT SRC [--lib NAME]...
#
# VARIANT is one of
#   fp          -g -O1 -fno-omit-frame-pointer
#   nofp        -g -O2 -fomit-frame-pointer
#   stripped    -O2, then `strip`: .symtab and debug info gone, exported .dynsym names stay
#   splitdebug  -g -O2, debug info moved to OUT.debug next to OUT, found through .gnu_debuglink
# An OUT ending in .so is built as a shared library. `--lib NAME` links against libNAME.so in
# OUT's folder, found at run time through an rpath of $ORIGIN.
# Only gcc (or $CC) and binutils are needed. The result is written under a temporary name and
# renamed into place, so an interrupted build never leaves a half-made OUT behind.
set -euo pipefail

if (($# < 3)); then
    echo "usage: $0 VARIANT OUT SRC [--lib NAME]..." >&2
    exit 2
fi
variant=$1 out=$2 src=$3
shift 3

CC=${CC:-cc}
STRIP=${STRIP:-strip}
OBJCOPY=${OBJCOPY:-objcopy}

case $variant in
fp) cflags=(-g -O1 -fno-omit-frame-pointer) ;;
nofp) cflags=(-g -O2 -fomit-frame-pointer) ;;
stripped) cflags=(-O2) ;;
splitdebug) cflags=(-g -O2) ;;
*)
    echo "$0: unknown variant '$variant' (fp, nofp, stripped, splitdebug)" >&2
    exit 2
    ;;
esac

outdir=$(dirname "$out")
name=$(basename "$out")
mkdir -p "$outdir"

args=(-std=gnu11 -Wall -Wextra -I"$(dirname "$src")" -pthread "${cflags[@]}")
case $name in
*.so) args+=(-shared -fPIC) ;;
esac

libs=()
while (($#)); do
    case $1 in
    --lib)
        libs+=(-L"$outdir" -l"$2")
        shift 2
        ;;
    *)
        echo "$0: unknown argument '$1'" >&2
        exit 2
        ;;
    esac
done
if ((${#libs[@]})); then
    libs+=('-Wl,-rpath,$ORIGIN')
fi

tmp="$outdir/.$name.tmp.$$"
trap 'rm -f "$tmp" "$tmp.debug"' EXIT

"$CC" "${args[@]}" -o "$tmp" "$src" "${libs[@]}"

case $variant in
stripped)
    "$STRIP" --strip-all "$tmp"
    ;;
splitdebug)
    # The link names the debug file by its final name; objcopy records only the base name and a
    # CRC of its contents, so the debug file must be written under that name before linking.
    "$OBJCOPY" --only-keep-debug "$tmp" "$tmp.debug"
    mv -f "$tmp.debug" "$out.debug"
    "$OBJCOPY" --strip-debug --add-gnu-debuglink="$out.debug" "$tmp"
    ;;
esac

mv -f "$tmp" "$out"

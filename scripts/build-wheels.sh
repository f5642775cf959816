#!/usr/bin/env bash
# Builds the release wheels into target/wheels/ (make wheels): for x86_64 and aarch64, a
# manylinux2014 (manylinux_2_17) wheel linked by zig against glibc 2.17's symbols, and a
# musllinux_1_2 wheel whose binary is static (Rust's *-unknown-linux-musl targets link musl in).
# Each wheel is checked: auditwheel must agree with its tag, and a musl binary must have no
# program interpreter and no shared library.
# The tools (maturin, ziglang, auditwheel) come from PyPI into target/wheel-tools; the Rust
# targets from rustup. Usage: scripts/build-wheels.sh [RUST_TARGET...] (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/wheel-tools
out=target/wheels
if [[ ! -f $tools/.stamp || scripts/wheel-tools-requirements.txt -nt $tools/.stamp ]]; then
  rm -rf "$tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check -r scripts/wheel-tools-requirements.txt
  touch "$tools/.stamp"
fi
export PATH=$PWD/$tools/bin:$PATH
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(x86_64-unknown-linux-gnu x86_64-unknown-linux-musl
  aarch64-unknown-linux-gnu aarch64-unknown-linux-musl)
if command -v rustup > /dev/null; then
  rustup target add "${targets[@]}" > /dev/null
fi
mkdir -p "$out"
for t in "${targets[@]}"; do
  arch=${t%%-*}
  case $t in
    *-gnu) compat=manylinux2014 tag=manylinux_2_17_$arch ;;
    *-musl) compat=musllinux_1_2 tag=musllinux_1_2_$arch ;;
    *) echo "build-wheels: unknown target $t" >&2; exit 2 ;;
  esac
  echo "== $t ($tag)"
  log=target/wheels/build-$t.log
  # A fresh name each time: an old wheel of the same tag must not pass the checks below.
  rm -f "$out"/crashcatch-*"$tag"*.whl "$out"/crashcatch-*-"${compat}"_"$arch"*.whl
  if ! maturin build --release --target "$t" --zig --compatibility "$compat" --out "$out" > "$log" 2>&1; then
    tail -30 "$log" >&2
    echo "build-wheels: maturin failed for $t (log: $log)" >&2
    exit 1
  fi
  wheel=$(grep -o '[^ ]*\.whl' "$log" | tail -1)
  [[ -f $wheel ]] || { echo "build-wheels: no wheel for $t in $log" >&2; exit 1; }
  case $wheel in
    *"$tag"*) ;;
    *) echo "build-wheels: $wheel is not tagged $tag" >&2; exit 1 ;;
  esac
  show=$(auditwheel show "$wheel" 2>&1)
  # auditwheel wraps its lines where it likes: compare with the whitespace folded.
  if ! tr -s ' \n' ' ' <<< "$show" | grep -q "is consistent with the following platform tag: \"$tag\""; then
    echo "$show" >&2
    echo "build-wheels: auditwheel does not agree that $wheel is $tag" >&2
    exit 1
  fi
  if [[ $t == *-musl ]]; then
    bin=$(mktemp -d)
    python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [x for x in z.namelist() if x.endswith("/scripts/crashcatch")][0]; open(sys.argv[2], "wb").write(z.read(n))' "$wheel" "$bin/crashcatch"
    if readelf -lW "$bin/crashcatch" | grep -q 'INTERP' || readelf -dW "$bin/crashcatch" | grep -q NEEDED; then
      echo "build-wheels: the musl binary in $wheel is not static" >&2
      exit 1
    fi
    rm -rf "$bin"
  fi
  echo "   $wheel: auditwheel agrees ($tag)"
done

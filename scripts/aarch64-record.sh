#!/usr/bin/env bash
# Records the aarch64 stacks of src/unwind/tests/aarch64.rs: fixtures/aarch64/stack.c built with
# Debian's gcc-aarch64-linux-gnu in three variants and run under qemu-aarch64 (user mode, cpu
# max, so pointer authentication is on); each binary and what it wrote (registers, then its
# stack) go to tests/data/aarch64/VARIANT/{stack,stack.rec}. They are committed: make test does
# not need the cross compiler or qemu; run this again only when stack.c changes.
#   cfi  -O1, no frame pointer: DWARF CFI only
#   fp   -O1 with frame pointers, no unwind tables and no -g (which would bring .debug_frame):
#        frame records only (x29/x30)
#   pac  -O1, no frame pointer, -mbranch-protection=pac-ret: signed return addresses
# Usage: scripts/aarch64-record.sh   (apt-get install gcc-aarch64-linux-gnu qemu-user-static)
set -euo pipefail
cd "$(dirname "$0")/.."
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64) || { echo "aarch64-record: qemu-aarch64 is missing (apt-get install qemu-user-static)" >&2; exit 1; }
common=(-static -nostdlib -ffreestanding -fno-pie -no-pie -fno-stack-protector -Wl,--eh-frame-hdr -Wl,--build-id=none)
declare -A flags=(
  [cfi]="-g -O1 -fomit-frame-pointer -fasynchronous-unwind-tables"
  [fp]="-g0 -O1 -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-asynchronous-unwind-tables -fno-unwind-tables"
  [pac]="-g -O1 -fomit-frame-pointer -fasynchronous-unwind-tables -mbranch-protection=pac-ret"
)
for v in cfi fp pac; do
  out=tests/data/aarch64/$v
  mkdir -p "$out"
  # shellcheck disable=SC2086
  "$cc" "${common[@]}" ${flags[$v]} -o "$out/stack" fixtures/aarch64/stack.c
  "$qemu" -cpu max "$out/stack" > "$out/stack.rec"
  echo "aarch64-record: $out ($(stat -c %s "$out/stack") bytes of ELF, $(stat -c %s "$out/stack.rec") recorded)"
done

#!/usr/bin/env bash
# make test-aarch64: crashcatch's live tests in an arm64 virtual machine (QEMU, emulated: there is
# no KVM here). Everything comes from Debian's package registry (bookworm, arm64): the kernel
# (linux-image-arm64's image), busybox-static for /init, python3.11 and the libraries it needs;
# they are unpacked once under target/aarch64-vm/ and reused. crashcatch (release, Rust's
# aarch64-unknown-linux-gnu target) and the C fixtures are cross-built with Debian's
# gcc-aarch64-linux-gnu; ccext against arm64's Python headers. All of it goes into an
# initramfs whose /init runs scripts/aarch64-vm/tests.sh and powers off. Prints the console and
# fails unless it ends with `aarch64: N passed, 0 failed`.
# The aarch64 wheels (scripts/build-wheels.sh, as make test-aarch64 runs it first) must be there.
#   AARCH64_VM_TIMEOUT  seconds the VM may run (default 1800)
set -euo pipefail
cd "$(dirname "$0")/.."
vm=target/aarch64-vm
here=scripts/aarch64-vm
timeout_s=${AARCH64_VM_TIMEOUT:-1800}
t0=$(date +%s)
say() { echo "aarch64-vm: [$(($(date +%s) - t0))s] $*"; }
# set -e ends the script at the first failing step: name it, never stop silently.
trap 'echo "aarch64-vm: failed (status $?) at scripts/aarch64-vm.sh line $LINENO: $BASH_COMMAND" >&2' ERR

# Host tools (Debian packages; apt-get as root, as make debuginfod does).
missing=()
command -v qemu-system-aarch64 > /dev/null || missing+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc > /dev/null || missing+=(gcc-aarch64-linux-gnu)
command -v cpio > /dev/null || missing+=(cpio)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
command -v rustup > /dev/null && rustup target add aarch64-unknown-linux-gnu > /dev/null

# The root file system and the kernel, once.
export DEBIAN_ARCH=arm64 DEBIAN_DEBS_DIR=$vm/debs
if [[ ! -f $vm/root/.stamp ]]; then
  say "unpacking Debian bookworm arm64 packages into $vm/root"
  rm -rf "$vm/root"
  scripts/debian-unpack.sh "$vm/root" bookworm busybox-static libc6 libgcc-s1 python3.11-minimal \
    libpython3.11-minimal libpython3.11-stdlib libexpat1 zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 \
    libcrypt1 libuuid1 media-types
  # .pyc files made here (same CPython 3.11 bytecode), so the emulated Python does not compile
  # the standard library at every boot.
  python3.11 -m compileall -q -j 0 --invalidation-mode unchecked-hash "$vm/root/usr/lib/python3.11" > /dev/null || true
  touch "$vm/root/.stamp"
fi
if [[ ! -f $vm/dev/.stamp ]]; then
  rm -rf "$vm/dev"
  scripts/debian-unpack.sh "$vm/dev" bookworm libpython3.11-dev
  touch "$vm/dev/.stamp"
fi
if [[ ! -f $vm/kernel/.stamp ]]; then
  kpkg=$(awk '$1=="Package:"{p=$2} p=="linux-image-arm64" && $1=="Depends:"{print $2; exit}' "$vm/debs/Packages-bookworm-arm64")
  say "unpacking the kernel ($kpkg)"
  rm -rf "$vm/kernel"
  DEBIAN_UNPACK_ONLY=./boot scripts/debian-unpack.sh "$vm/kernel" bookworm "$kpkg"
  touch "$vm/kernel/.stamp"
fi
kernel=$(ls "$vm"/kernel/boot/vmlinuz-* | head -1)

# crashcatch and the fixtures for aarch64.
say "building crashcatch for aarch64-unknown-linux-gnu"
CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
  nice cargo build --quiet --release --target aarch64-unknown-linux-gnu
stage=$vm/initramfs
rm -rf "$stage"
cp -al "$vm/root" "$stage"
rm -rf "$stage"/usr/share/doc "$stage"/usr/share/man "$stage"/usr/lib/python3.11/test "$stage"/.stamp
mkdir -p "$stage"/{proc,sys,dev,tmp,cc/fixtures,cc/pyext,cc/site}
cp target/aarch64-unknown-linux-gnu/release/crashcatch "$stage/cc/crashcatch"
export CC=aarch64-linux-gnu-gcc STRIP=aarch64-linux-gnu-strip OBJCOPY=aarch64-linux-gnu-objcopy
for v in fp nofp; do
  d=$vm/fixtures/$v
  scripts/build-fixture.sh "$v" "$d/libccfix.so" fixtures/ccfix.c
  scripts/build-fixture.sh "$v" "$d/null_deref" fixtures/null_deref.c --lib ccfix
  for p in abort_assert thread_crash recursion; do
    scripts/build-fixture.sh "$v" "$d/$p" "fixtures/$p.c"
  done
  cp -r "$d" "$stage/cc/fixtures/$v"
done
# The aarch64 wheels' binaries: run on one crash each too.
for tag in manylinux_2_17_aarch64 musllinux_1_2_aarch64; do
  wheel=$(ls target/wheels/crashcatch-*"$tag".whl 2> /dev/null | head -1) || true
  if [[ -z $wheel ]]; then
    echo "aarch64-vm: no target/wheels/crashcatch-*$tag.whl: build it with scripts/build-wheels.sh" \
      "aarch64-unknown-linux-gnu aarch64-unknown-linux-musl (make test-aarch64 does)" >&2
    exit 1
  fi
  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [x for x in z.namelist() if x.endswith("/scripts/crashcatch")][0]; open(sys.argv[2], "wb").write(z.read(n))' "$wheel" "$stage/cc/crashcatch-$tag"
  chmod +x "$stage/cc/crashcatch-$tag"
done
# A fault inside a signal handler: unwound through the vDSO's __kernel_rt_sigreturn.
aarch64-linux-gnu-gcc -O1 -g -pthread -o "$stage/cc/faults" stress/src/faults.c
inc=$vm/dev/usr/include
aarch64-linux-gnu-gcc -shared -fPIC -g -O1 -I"$inc/python3.11" -I"$inc" fixtures/pyext/ccext.c \
  -o "$stage/cc/pyext/ccext.cpython-311-aarch64-linux-gnu.so" -lpthread
# pytest and its pure-Python dependencies, from the test venv (make venv).
site=$(ls -d target/venv/lib/python3*/site-packages)
for p in pytest _pytest pluggy iniconfig packaging pygments py.py; do
  [[ -e $site/$p ]] && cp -r "$site/$p" "$stage/cc/site/"
done
cp "$here"/tests.sh "$stage/cc/tests.sh"
cp -r "$here"/py "$stage/cc/py"
cp "$here"/init "$stage/init"
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet) > "$vm/initrd.cpio"
say "initramfs $(($(stat -c %s "$vm/initrd.cpio") >> 20)) MB; booting $(basename "$kernel") under qemu-system-aarch64 (TCG)"

log=$vm/console.log
set +e
timeout "$timeout_s" qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on -smp 2 -m 2048 -nographic -no-reboot \
  -kernel "$kernel" -initrd "$vm/initrd.cpio" -append "console=ttyAMA0 rdinit=/init quiet panic=-1" < /dev/null \
  | tr -d '\r' | tee "$log"
set -e
say "VM ended"
summary=$(grep -a '^aarch64: [0-9]* passed, [0-9]* failed' "$log" | tail -1)
if [[ -z $summary ]]; then
  echo "aarch64-vm: the VM did not finish the tests (timeout ${timeout_s}s?); console in $log" >&2
  exit 1
fi
echo "$summary (in $(($(date +%s) - t0)) s)"
[[ $summary == *" 0 failed" ]]

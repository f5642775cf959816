#!/usr/bin/env bash
# Installs what tests/debuginfod.rs runs: elfutils' debuginfod server (and debuginfod-find)
# from Debian's package, and the openssl command for its https test. Does nothing when both
# are there. Needs root and apt-get (CI is both); otherwise says so and fails, and make test
# then skips those tests visibly.
set -euo pipefail
need=()
command -v debuginfod >/dev/null || need+=(debuginfod)
command -v openssl >/dev/null || need+=(openssl)
((${#need[@]})) || exit 0
if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "install-debuginfod: ${need[*]} missing; install with apt-get as root (Debian: apt-get install ${need[*]})" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
echo "install-debuginfod: installed ${need[*]}"

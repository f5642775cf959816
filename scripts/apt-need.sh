#!/usr/bin/env bash
# Installs the Debian packages behind commands that are missing: `apt-need.sh WHO CMD:PKG...`
# installs PKG for each CMD not on PATH (each package once) and says so as WHO. Does nothing when
# every command is there. Needs root and apt-get; otherwise says what is missing and fails, and
# the caller then skips its tests visibly. The packages come from apt's own sources.
set -euo pipefail
who=${1:?usage: apt-need.sh WHO CMD:PKG...}
shift
need=()
for pair in "$@"; do
  command -v "${pair%%:*}" > /dev/null || need+=("${pair#*:}")
done
((${#need[@]})) || exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [[ $(id -u) != 0 ]] || ! command -v apt-get > /dev/null; then
  echo "$who: ${need[*]} missing; install with apt-get as root (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null; }
echo "$who: installed ${need[*]}"

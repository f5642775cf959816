#!/usr/bin/env bash
# Installs what make test-docker needs from Debian's packages: a Docker engine (docker.io:
# dockerd, containerd, runc and the docker client) and debootstrap (the base image is made from
# Debian's archive, since no registry image can be pulled here). Does nothing when they are
# there. Needs root and apt-get; otherwise says so and fails, and test-docker then skips
# visibly.
set -euo pipefail
need=()
command -v dockerd > /dev/null || need+=(docker.io)
command -v docker > /dev/null || need+=(docker.io)
command -v debootstrap > /dev/null || need+=(debootstrap)
((${#need[@]})) || exit 0
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [[ $(id -u) != 0 ]] || ! command -v apt-get > /dev/null; then
  echo "install-docker: ${need[*]} missing; install with apt-get as root (Debian: apt-get install ${need[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# The package's own service is not started here (a container or CI image may have no init):
# scripts/test-docker.sh starts a dockerd of its own when none answers.
apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null; }
echo "install-docker: installed ${need[*]}"

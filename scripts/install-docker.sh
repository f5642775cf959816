#!/usr/bin/env bash
# Installs what make test-docker needs from Debian's packages: a Docker engine (docker.io:
# dockerd, containerd, runc and the docker client) and debootstrap (the base image is made from
# Debian's archive, since no registry image can be pulled here). Does nothing when they are
# there. Needs root and apt-get; otherwise says so and fails, and test-docker then skips
# visibly.
# The package's own service is not started here (a container or CI image may have no init):
# scripts/test-docker.sh starts a dockerd of its own when none answers.
exec "$(dirname "$0")/apt-need.sh" install-docker dockerd:docker.io docker:docker.io debootstrap:debootstrap

#!/usr/bin/env bash
# Installs what tests/debuginfod.rs runs: elfutils' debuginfod server (and debuginfod-find)
# from Debian's package, and the openssl command for its https test. Does nothing when both
# are there. Needs root and apt-get (CI is both); otherwise says so and fails, and make test
# then skips those tests visibly.
exec "$(dirname "$0")/apt-need.sh" install-debuginfod debuginfod:debuginfod openssl:openssl

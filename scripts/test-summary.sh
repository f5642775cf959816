#!/usr/bin/env bash
# The end of `make test`: the skipped tests (and parts of tests) with their reasons, counted,
# from the log that tests/common::skip appends to.
log=${1:?usage: test-summary.sh SKIP_LOG}
if [[ -s $log ]]; then
  n=$(sort -u "$log" | wc -l)
  echo "== make test: $n skipped (what is missing on this machine, and how to get it):"
  sort -u "$log" | sed 's/^/   /'
else
  echo "== make test: 0 skipped"
fi

#!/usr/bin/env python3
"""What `--test-timeout` costs a test run that never times out: the same pytest command under
`crashcatch --` and under `crashcatch --test-timeout 600 --`, alternated (ABBA...) for N rounds;
prints each round's ratio and the median. The full suite figure is `make bench` (bench/run.py,
networkx); this one needs only target/venv.

    python3 bench/test_timeout_overhead.py [ROUNDS] [PYTEST ARGS...]
    (default: 10 rounds of `pytest -q -p no:cacheprovider -n 2 bench/xdist_suite`)
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.path.join(ROOT, "target", "release", "crashcatch")
PY = os.path.join(ROOT, "target", "venv", "bin", "python")


def timed(argv):
    t0 = time.monotonic()
    r = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit status {r.returncode}")
    return time.monotonic() - t0


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    args = sys.argv[2:] or ["-n", "2", os.path.join("bench", "xdist_suite")]
    pytest = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider"] + args
    a = [CC, "--"] + pytest
    b = [CC, "--test-timeout", "600", "--"] + pytest
    timed(a)  # warm-up
    ratios = []
    for i in range(rounds):
        pair = (a, b) if i % 2 == 0 else (b, a)
        t = {id(x): timed(x) for x in pair}
        ratios.append(t[id(b)] / t[id(a)])
        print(f"round {i + 1}: crashcatch {t[id(a)]:.2f} s, --test-timeout {t[id(b)]:.2f} s, ratio {ratios[-1]:.3f}")
    print(f"median ratio (--test-timeout / plain) {statistics.median(ratios):.3f}, "
          f"spread {min(ratios):.3f}-{max(ratios):.3f}, {rounds} rounds")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fault-to-report time (the report's total_ms) of two or more crashcatch builds on the numpy and
pyarrow crashes of `make bench`, the builds alternating run by run (A B C, C B A, ...) so that
machine noise falls on all of them alike. For deciding between two ways of doing something;
the figures of record are `make bench`'s.

    scripts/bench-ab.py BINARY_A,BINARY_B[,...] [RUNS]      (default 16 runs each)

Needs the bench venv (bench/setup.sh target/bench) for numpy and pyarrow.
"""
import glob, json, shutil, statistics, subprocess, sys, tempfile

VPY = "target/bench/venv/bin/python"
CASES = {
    "numpy bad strides": [VPY, "-c", "import numpy as np; a = np.lib.stride_tricks.as_strided("
                          "np.zeros(1), shape=(2,), strides=(1 << 44,)); a.sum()"],
    "pyarrow compute": [VPY, "-c", "import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset, "
                        "pyarrow.parquet; pc.sum(pa.Array.from_buffers(pa.int64(), 1000, "
                        "[None, pa.foreign_buffer(1 << 44, 8000)]))"],
}


def total_ms(binary, cmd):
    d = tempfile.mkdtemp(prefix="cc-ab-")
    try:
        subprocess.run([binary, "--output-dir", d, "-q", "--"] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(glob.glob(d + "/*.json")[0]) as f:
            return json.load(f)["timings"]["total_ms"]
    finally:
        shutil.rmtree(d)


def main():
    bins = sys.argv[1].split(",")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    for name, cmd in CASES.items():
        res = {b: [] for b in bins}
        for i in range(runs):
            for b in bins if i % 2 == 0 else bins[::-1]:
                res[b].append(total_ms(b, cmd))
        for b, v in res.items():
            q = statistics.quantiles(v, n=4)
            print(f"{name}: {b}: total_ms median {statistics.median(v):.1f} (p25 {q[0]:.1f}, p75 {q[2]:.1f}; {runs} runs)")


if __name__ == "__main__":
    main()

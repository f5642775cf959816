#!/usr/bin/env python3
"""Peak RSS and symbolize time of crashcatch on real crashes, medians of 5 runs.

    scripts/bench-symbolize.py [BINARY]      (default target/release/crashcatch)

The ctypes NULL crash (python3 -c "import ctypes; ctypes.string_at(0)"), and, when the bench
venv (target/bench/venv, `make bench` or bench/setup.sh) has them, make bench's numpy crash (a
sum over bad strides) and a crash inside pyarrow's libarrow_compute with
pyarrow.compute/dataset/parquet imported (issue 14). Reads crashcatch's
own peak RSS (VmHWM, polled from /proc every 0.5 ms: wait4's ru_maxrss would also count the
crashed Python it reaps) and the report's timings.
"""
import glob, json, os, statistics, subprocess, sys, tempfile, time


def hwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/crashcatch"
PYARROW = ("import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset, pyarrow.parquet; "
           "pc.sum(pa.Array.from_buffers(pa.int64(), 1000, [None, pa.foreign_buffer(1 << 44, 8000)]))")
cases = [("ctypes NULL", ["python3", "-c", "import ctypes; ctypes.string_at(0)"])]
venv_python = "target/bench/venv/bin/python"
NUMPY = ("import numpy as np; a = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(2,), "
         "strides=(1 << 44,)); a.sum()")
for label, module, code in (("numpy", "numpy", NUMPY), ("pyarrow", "pyarrow", PYARROW)):
    if os.path.exists(venv_python) and subprocess.run([venv_python, "-c", "import " + module],
                                                      stderr=subprocess.DEVNULL).returncode == 0:
        cases.append((label, [venv_python, "-c", code]))
    else:
        print(f"{label} case skipped: target/bench/venv has no {module} (run bench/setup.sh target/bench)")
for label, cmd in cases:
    rss, sym, total = [], [], []
    for _ in range(5):
        out = tempfile.mkdtemp(prefix="cc-bench-")
        p = subprocess.Popen([binary, "--output-dir", out, "-q", "--"] + cmd,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0.0
        while os.wait4(p.pid, os.WNOHANG)[0] == 0:
            peak = max(peak, hwm_mb(p.pid) or 0.0)
            time.sleep(0.0005)
        report = json.load(open(glob.glob(os.path.join(out, "*.json"))[0]))
        rss.append(peak)
        sym.append(report["timings"]["symbolize_ms"])
        total.append(report["timings"]["total_ms"])
    print(f"{label}: crashcatch's peak RSS {statistics.median(rss):.1f} MB, symbolize {statistics.median(sym):.1f} ms, "
          f"total {statistics.median(total):.1f} ms (medians of 5)")

#!/usr/bin/env python3
"""Peak RSS and symbolize time of crashcatch on one real crash, medians of 5 runs.

    scripts/bench-symbolize.py [BINARY]      (default target/release/crashcatch)

Runs `BINARY --output-dir D -q -- python3 -c "import ctypes; ctypes.string_at(0)"`, reads
os.wait4's ru_maxrss and the report's timings.symbolize_ms / total_ms.
"""
import glob, json, os, statistics, subprocess, sys, tempfile

binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/crashcatch"
rss, sym, total = [], [], []
for _ in range(5):
    out = tempfile.mkdtemp(prefix="cc-bench-")
    p = subprocess.Popen([binary, "--output-dir", out, "-q", "--", "python3", "-c", "import ctypes; ctypes.string_at(0)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(p.pid, 0)
    report = json.load(open(glob.glob(os.path.join(out, "*.json"))[0]))
    rss.append(usage.ru_maxrss / 1024)
    sym.append(report["timings"]["symbolize_ms"])
    total.append(report["timings"]["total_ms"])
print(f"peak RSS {statistics.median(rss):.1f} MB, symbolize {statistics.median(sym):.1f} ms, "
      f"total {statistics.median(total):.1f} ms (medians of 5)")

#!/usr/bin/env python3
"""How long each tool stops the process it dumps: `make bench` runs this (part `pause`).

    python bench/pause.py [--out DIR/pause.json] [--md BENCHMARKS.md]

With --md, the section between `<!-- pause -->` and `<!-- /pause -->` of that file is replaced
by the figures (appended when the file has none).

The target (bench/pause_target.py) is a CPython 3.11 process of 21 threads, with a thread of
bench/stallmeter.c that measures, from inside, the longest stretch the process did not run.
In every round each tool dumps the same process once, in an order reversed every other round:
`crashcatch dump`, `py-spy dump --native`, `pystack remote --native`, `py-spy dump` (Python
frames only), and "idle" (nothing runs: the meter's own noise). A figure is the median over
the rounds of the largest stall one dump caused; the goal (issue 22) is crashcatch at most
0.3x py-spy --native, measured side by side here.

Needs bench/setup.sh's DIR (target/bench): its venv has py-spy and pystack, its bin/ the
compiled stallmeter. Needs only the standard library otherwise.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.abspath(os.environ.get("BENCH_DIR", os.path.join(ROOT, "target", "bench")))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
CRASHCATCH = os.path.join(ROOT, "target", "release", "crashcatch")
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3"
PYSPY = os.path.join(BENCH, "venv", "bin", "py-spy")
PYSTACK = os.path.join(BENCH, "venv", "bin", "pystack")
METER = os.path.join(BENCH, "bin", "libstallmeter.so")


def tools(pid):
    p = str(pid)
    return {
        "crashcatch dump": [CRASHCATCH, "dump", p],
        "py-spy dump --native": [PYSPY, "dump", "--native", "--pid", p],
        "pystack remote --native": [PYSTACK, "remote", "--native", p],
        "py-spy dump": [PYSPY, "dump", "--pid", p],
        "idle": None,
    }


def read_ns(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8), "little")


def reset(path):
    with open(path, "r+b") as f:
        f.write(b"\0" * 8)


def one(argv, shm):
    reset(shm)
    time.sleep(0.05)
    if argv is None:
        time.sleep(0.3)
    else:
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        if r.returncode != 0:
            raise SystemExit(f"{argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")
    time.sleep(0.05)
    return read_ns(shm) / 1e6


def main():
    out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else os.path.join(BENCH, "pause.json")
    for need in (CRASHCATCH, PYSPY, PYSTACK, METER, PY311):
        if not os.path.exists(need):
            raise SystemExit(f"pause: {need} is missing (make build; bench/setup.sh)")
    shm = tempfile.NamedTemporaryFile(prefix="stallmeter-", dir="/dev/shm", delete=False).name
    target = subprocess.Popen(
        [PY311, os.path.join(ROOT, "bench", "pause_target.py"), METER, shm],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        line = target.stdout.readline().decode()
        assert line.startswith("READY"), line
        names = list(tools(target.pid))
        stalls = {n: [] for n in names}
        for i in range(RUNS):
            order = names if i % 2 == 0 else names[::-1]
            for n in order:
                stalls[n].append(one(tools(target.pid)[n], shm))
        result = {
            "threads": len(os.listdir(f"/proc/{target.pid}/task")),
            "runs": RUNS,
            "stall_ms": stalls,
            "median_ms": {n: statistics.median(v) for n, v in stalls.items()},
        }
        cc, spy = result["median_ms"]["crashcatch dump"], result["median_ms"]["py-spy dump --native"]
        result["ratio_to_pyspy_native"] = cc / spy if spy else None
    finally:
        target.stdin.close()
        target.wait()
        os.unlink(shm)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"pause: {result['threads']} threads, median largest stall per dump over {RUNS} rounds:")
    for n, v in result["median_ms"].items():
        print(f"  {n:26} {v:7.2f} ms   (min {min(stalls[n]):.2f}, max {max(stalls[n]):.2f})")
    print(f"  crashcatch / py-spy --native: {result['ratio_to_pyspy_native']:.2f}x (goal: at most 0.3x)")
    if "--md" in sys.argv:
        write_markdown(sys.argv[sys.argv.index("--md") + 1], result)


def write_markdown(path, r):
    rows = "\n".join(
        f"| {n} | {r['median_ms'][n]:.2f} | {min(v):.2f} - {max(v):.2f} |" for n, v in r["stall_ms"].items()
    )
    section = f"""<!-- pause -->
## Pause: how long a dump stops the process

`make bench-pause` (bench/pause.py), {time.strftime('%Y-%m-%d')}: a CPython 3.11.7 process of {r['threads']}
threads (bench/pause_target.py) with a thread that measures from inside how long the process did
not run (bench/stallmeter.c). Each tool dumped it once per round, {r['runs']} rounds, the order
reversed every other round; the figure is the median of the largest stall per dump.

| tool | largest stall, median (ms) | min - max (ms) |
|---|---|---|
{rows}

crashcatch dump stops the process for **{r['ratio_to_pyspy_native']:.2f}x** what `py-spy dump --native` does
(goal: at most 0.3x). crashcatch reads the registers, stacks and Python frames with the process
stopped, lets it run, then symbolizes and merges from the copy it took.
<!-- /pause -->"""
    try:
        text = open(path).read()
    except FileNotFoundError:
        text = ""
    if "<!-- pause -->" in text and "<!-- /pause -->" in text:
        head, rest = text.split("<!-- pause -->", 1)
        text = head + section + rest.split("<!-- /pause -->", 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

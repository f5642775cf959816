#!/usr/bin/env python3
"""Post-mortem speed: `crashcatch core` against `pystack core --native` and gdb on the same cores.

    python3 bench/core.py [ROUNDS]        (make bench-core; needs target/bench/venv from bench/setup.sh)

Three kernel cores are made once (core_pattern 'core', RLIMIT_CORE raised): a ctypes crash in
pyenv's 3.11.7, a crash inside numpy (the bench venv's), and a ctypes crash with 200 waiting
threads. Then each reader reads each core ROUNDS times, the readers alternated within a round;
wall time and peak RSS (wait4's ru_maxrss) per read, medians printed as a Markdown table.
gdb runs `thread apply all bt` (native stacks only; no Python frames without its py-bt, whose
helper script pyenv's build leaves out of the safe path).
"""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRASHCATCH = os.path.join(ROOT, "target", "release", "crashcatch")
VENV = os.path.join(ROOT, "target", "bench", "venv")
PYSTACK = os.path.join(VENV, "bin", "pystack")
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3"

CRASHES = {
    "ctypes, 3.11": [PY311, "-c", "import ctypes; ctypes.string_at(0)"],
    "numpy": [os.path.join(VENV, "bin", "python"), "-c",
              "import numpy as np; a = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(2,), "
              "strides=(1 << 44,)); a.sum()"],
    "200 threads": [PY311, "-c",
                    "import ctypes, threading; e = threading.Event(); "
                    "ts = [threading.Thread(target=e.wait, daemon=True) for _ in range(200)]; "
                    "[t.start() for t in ts]; ctypes.string_at(0)"],
}


def raise_core_limit():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def make_core(cmd, folder):
    subprocess.run(cmd, cwd=folder, preexec_fn=raise_core_limit, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    path = os.path.join(folder, "core")
    if not os.path.exists(path):
        sys.exit(f"no core from {cmd[0]} in {folder}: is core_pattern 'core'?")
    return path


def run_with_rss(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    while True:
        b = p.stdout.read(65536)
        if not b:
            break
        chunks.append(b)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, b"".join(chunks), p.returncode


def readers(core, exe):
    return {
        "crashcatch core": [CRASHCATCH, "core", "--format", "json", core],
        "pystack core --native": [PYSTACK, "core", core, exe, "--native"],
        "gdb bt": ["gdb", "-batch", "-nx", "-ex", "thread apply all bt", exe, core],
    }


def check(name, out):
    text = out.decode(errors="replace")
    if name == "crashcatch core":
        return '"kind": "python"' in text
    if name.startswith("pystack"):
        return "Traceback" in text or "(Python)" in text
    return "#0" in text


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for tool in (CRASHCATCH, PYSTACK, shutil.which("gdb")):
        if not tool or not os.path.exists(tool):
            sys.exit(f"missing {tool}: make build, bench/setup.sh target/bench, apt-get install gdb")
    os.environ.pop("DEBUGINFOD_URLS", None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="crashcatch-bench-core-") as tmp:
        for label, cmd in CRASHES.items():
            folder = os.path.join(tmp, label.replace(" ", "_").replace(",", ""))
            os.mkdir(folder)
            core = make_core(cmd, folder)
            exe = os.path.realpath(cmd[0])
            size = os.path.getsize(core) / 1e6
            res = {name: ([], []) for name in readers(core, exe)}
            ok = {name: True for name in res}
            for _ in range(rounds):
                for name, rcmd in readers(core, exe).items():
                    wall, rss, out, _ = run_with_rss(rcmd)
                    res[name][0].append(wall)
                    res[name][1].append(rss)
                    ok[name] = ok[name] and check(name, out)
            rows.append((label, size, {n: (statistics.median(w), max(r), ok[n]) for n, (w, r) in res.items()}))
    names = list(rows[0][2])
    print(f"rounds: {rounds}; medians of wall time, largest peak RSS\n")
    print("| core | size | " + " | ".join(f"{n}: time, RSS" for n in names) + " | pystack / crashcatch |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for label, size, r in rows:
        cells = []
        for n in names:
            wall, rss, good = r[n]
            cells.append(f"{wall:.3f} s, {rss:.0f} MB" + ("" if good else " (no stack found)"))
        ratio = r["pystack core --native"][0] / r["crashcatch core"][0]
        print(f"| {label} | {size:.1f} MB | " + " | ".join(cells) + f" | {ratio:.1f}× |")


if __name__ == "__main__":
    main()

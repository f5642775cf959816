#!/usr/bin/env python3
"""crashcatch's benchmarks against its peers: `make bench` runs this, which writes BENCHMARKS.md.

    python bench/run.py [--out BENCHMARKS.md]
    python bench/run.py --render [--out BENCHMARKS.md]   # again from DIR/results.json, no runs

Environment:
    BENCH_RUNS=N         rounds of the test suite (default 5), twice that for the short process
                         and crash cases; BENCH_RUNS=2 for a quick look
    BENCH_ONLY=a,b       only these parts: suite, process, crash, libsize (default all)
    BENCH_CRASH=a,b      in part crash, only the crashes whose names contain one of these
    BENCH_DIR=DIR        where bench/setup.sh installed everything (default target/bench)

Every figure is a ratio of two commands measured in the same round. In every round each
command of a case runs once, the order reversed every other round (ABC CBA ABC ...), so slow
drifts of a shared machine's load fall on every command alike. A figure is the median of the
per-round ratios, with their min-max spread. Raw timings go to DIR/results.json.

Needs only the standard library; run it with any Python 3.8+.
"""

import ctypes
import json
import os
import platform
import re
import resource
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.abspath(os.environ.get("BENCH_DIR", os.path.join(ROOT, "target", "bench")))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
PARTS = {"suite", "process", "crash", "libsize"}
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", ",".join(sorted(PARTS))).split(",")))
CRASH_FILTER = [c for c in os.environ.get("BENCH_CRASH", "").split(",") if c]

CRASHCATCH = os.path.join(ROOT, "target", "release", "crashcatch")
MINTRACE = os.path.join(BENCH, "bin", "mintrace")
WORKLOAD = os.path.join(BENCH, "bin", "workload")
VPY = os.path.join(BENCH, "venv", "bin", "python")
PYSTACK = os.path.join(BENCH, "venv", "bin", "pystack")
PY311 = "/root/.pyenv/versions/3.11.7/bin/python3"
GDB = "/usr/bin/gdb"
STRACE = shutil.which("strace") or "/usr/bin/strace"
NETWORKX = os.path.join(BENCH, "networkx-3.6.1")
XDIST_SUITE = os.path.join(ROOT, "bench", "xdist_suite")
LIBGEN = os.path.join(BENCH, "libgen")
# The generated libraries (bench/genlib.py, built by bench/setup.sh): functions per library.
LIBSIZES = [10_000, 100_000, 1_000_000]
PLOT = os.path.join(ROOT, "bench", "libsize.png")

# gdb only loads CPython's py-bt commands (python3.11-gdb.py beside the interpreter) from a
# folder on its auto-load safe path.
GDB_PY = ["-iex", "add-auto-load-safe-path /root/.pyenv"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Running one command


class Run:
    """One timed run: wall seconds, exit status, and wait4's rusage."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def to_json(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


def _hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run(argv, cwd=None, core=False, poll_rss=False, env=None):
    """Runs argv with stdout and stderr to files in a fresh folder; returns a Run.

    core: allow a core dump (RLIMIT_CORE unlimited; core_pattern decides where it goes).
    poll_rss: read the process's own VmHWM from /proc every 0.5 ms while it runs (wait4's
    ru_maxrss also counts the children it waited for, so a tracer's would be its tracee's).
    """
    work = tempfile.mkdtemp(prefix="run-", dir=os.path.join(BENCH, "tmp"))
    out = open(os.path.join(work, "stdout"), "wb")
    err = open(os.path.join(work, "stderr"), "wb")
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY if core else 0, hard))
    try:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, cwd=cwd or work, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        hwm = None
        if poll_rss:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                h = _hwm_kb(p.pid)
                if h is not None:
                    hwm = max(hwm or 0, h)
                time.sleep(0.0005)
        else:
            _, status, ru = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
        p.returncode = os.waitstatus_to_exitcode(status)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
        out.close()
        err.close()
    return Run(
        wall=t1 - t0,
        status=p.returncode,
        user=ru.ru_utime,
        sys=ru.ru_stime,
        maxrss_kb=ru.ru_maxrss,
        hwm_kb=hwm,
        _dir=work,
    )


def read(r, name):
    with open(os.path.join(r._dir, name), "rb") as f:
        return f.read().decode("utf-8", "replace")


def cleanup(r):
    shutil.rmtree(r._dir, ignore_errors=True)


class ReportWatch:
    """Notes the moment a report's .json appears in a folder (inotify: IN_MOVED_TO, since
    crashcatch writes it under a temporary name and renames it)."""

    IN_CLOSE_WRITE = 0x8
    IN_MOVED_TO = 0x80

    def __init__(self, folder):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(folder), self.IN_MOVED_TO | self.IN_CLOSE_WRITE)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.seen_ns = None
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop and self.seen_ns is None:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            now = time.time_ns()
            buf = os.read(self.fd, 65536)
            i = 0
            while i + 16 <= len(buf):
                _wd, mask, _cookie, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16 : i + 16 + n].rstrip(b"\0")
                i += 16 + n
                if mask & self.IN_MOVED_TO and name.endswith(b".json"):
                    self.seen_ns = now

    def close(self):
        self.stop = True
        self.thread.join(2)
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# Statistics


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs):
    return (min(xs), max(xs)) if xs else (float("nan"), float("nan"))


def fmt_ratio(xs):
    if not xs:
        return "n/a"
    lo, hi = spread(xs)
    return f"**{med(xs):.2f}×** ({lo:.2f}–{hi:.2f})"


def fmt_secs(xs):
    if not xs:
        return "n/a"
    lo, hi = spread(xs)
    m = med(xs)
    if m < 1:
        return f"{m * 1000:.0f} ms ({lo * 1000:.0f}–{hi * 1000:.0f})"
    return f"{m:.2f} s ({lo:.2f}–{hi:.2f})"


def fmt_ms(xs):
    if not xs:
        return "n/a"
    lo, hi = spread(xs)
    return f"{med(xs):.1f} ms ({lo:.1f}–{hi:.1f})"


def shell(argv):
    out = []
    for a in argv:
        if re.fullmatch(r"[A-Za-z0-9_./=:,+-]+", a):
            out.append(a)
        else:
            out.append("'" + a.replace("'", "'\\''") + "'")
    return " ".join(out)


def short(argv):
    """The command as shown in BENCHMARKS.md: paths relative to the repository."""
    s = shell(argv)
    return s.replace(ROOT + "/", "")


# ---------------------------------------------------------------------------------------------
# Rounds


def rounds(case, variants, check, n=RUNS, load=None, refs_until=None):
    """Runs every variant once per round, alternating the order; returns {label: [Run or None]}.

    variants: [(label, argv, kwargs)]. check(label, run) returns None if the run did what it
    should, else why not (the run is then kept out of the figures and the problem reported).
    refs_until: the variants after the first three (slow references) run only in the rounds
    before this one; their entries are None after it.
    """
    res = {label: [] for label, _, _ in variants}
    failures = []
    for r in range(n):
        active = variants if refs_until is None or r < refs_until else variants[:3]
        order = active if r % 2 == 0 else active[::-1]
        if load is not None:
            load.append(os.getloadavg()[0])
        for label, argv, kw in order:
            x = run(argv, **kw)
            why = check(label, x)
            if why:
                failures.append(f"{case} / {label}, round {r + 1}: {why}")
                log(f"  {label}: FAILED: {why} (output kept in {x._dir})")
                x.failed = why
            else:
                cleanup(x)
            res[label].append(x)
            log(f"  {case} round {r + 1}/{n}: {label:<13} {x.wall:8.3f} s")
        for label in res:
            if len(res[label]) < r + 1:
                res[label].append(None)
    return res, failures


def ok(x):
    return x is not None and not getattr(x, "failed", None)


def paired(res, a, b, field="wall"):
    """Per-round ratio a/b over the rounds where both ran well."""
    return [getattr(x, field) / getattr(y, field) for x, y in zip(res[a], res[b]) if ok(x) and ok(y)]


def walls(res, label):
    return [x.wall for x in res[label] if ok(x)]


def raw(res):
    return {k: [x.to_json() if x is not None else None for x in v] for k, v in res.items()}


# ---------------------------------------------------------------------------------------------
# 1. A real test suite


def part_suite(R):
    pytest = [VPY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "networkx/classes", "networkx/generators"]
    kw = {"cwd": NETWORKX}
    variants = [
        ("bare", pytest, kw),
        ("faulthandler", [VPY, "-X", "faulthandler"] + pytest[1:], kw),
        ("crashcatch", [CRASHCATCH, "--"] + pytest, kw),
        # --test-timeout reads every process's PYTEST_CURRENT_TEST once a second (never fires here).
        ("crashcatch --test-timeout", [CRASHCATCH, "--test-timeout", "600", "--"] + pytest, kw),
        ("mintrace", [MINTRACE] + pytest, kw),
        ("gdb", [GDB, "-batch", "-ex", "run", "--args"] + pytest, kw),
    ]

    def check(label, x):
        out = read(x, "stdout")
        m = re.search(r"^=* ?(\d+ passed.*?) in [\d.]+s", out, re.M)
        if m:
            summary.append(m.group(1))
        if not m or " failed" in out:
            return "pytest did not pass: " + (out.strip().splitlines() or ["(no output)"])[-1]
        if label == "gdb":
            return None if "exited normally" in out else "the program did not exit normally under gdb"
        return None if x.status == 0 else f"exit status {x.status}"

    summary = []
    log("1. networkx test suite: warm-up (bare, untimed)")
    cleanup(run(pytest, **kw))
    res, fails = rounds("suite", variants, check, load=R["load"])
    R["suite"] = {
        "commands": {label: short(argv) for label, argv, _ in variants},
        "cwd": short([NETWORKX]),
        "summary": sorted(set(summary)),
        "walls": {k: walls(res, k) for k in res},
        "ratios": {k: paired(res, k, "bare") for k in res if k != "bare"},
        "crashcatch_vs_mintrace": paired(res, "crashcatch", "mintrace"),
        "failures": fails,
        "raw": raw(res),
    }


# ---------------------------------------------------------------------------------------------
# 2. Process-heavy work

WORKLOADS = [
    ("1,000 spawns", [WORKLOAD, "spawn", "1000"], {}),
    ("10,000 threads", [WORKLOAD, "threads", "10000"], {}),
    ("100,000 signals", [WORKLOAD, "signals", "100000"], {}),
    ("pytest -n 2", [VPY, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider", XDIST_SUITE], {}),
    ("mixed", [WORKLOAD, "mixed", "150", "2000", "20000"], {}),
]


def part_process(R):
    R["process"] = {}
    for name, cmd, kw in WORKLOADS:
        variants = [
            ("bare", cmd, kw),
            ("mintrace", [MINTRACE] + cmd, kw),
            ("crashcatch", [CRASHCATCH, "--"] + cmd, kw),
            # gdb would stop at every SIGUSR1; made to pass it on like the others.
            ("gdb", [GDB, "-batch", "-ex", "handle SIGUSR1 nostop noprint pass", "-ex", "run", "--args"] + cmd, kw),
            ("strace", [STRACE, "-f", "-o", "/dev/null"] + cmd, kw),
        ]

        def check(label, x):
            if label == "gdb":
                return None if "exited normally" in read(x, "stdout") else "did not exit normally under gdb"
            return None if x.status == 0 else f"exit status {x.status}: {read(x, 'stderr')[-300:]}"

        log(f"2. {name}: warm-up (bare, untimed)")
        cleanup(run(cmd, **kw))
        res, fails = rounds(name, variants, check, n=2 * RUNS, load=R["load"], refs_until=RUNS)
        R["process"][name] = {
            "commands": {label: short(argv) for label, argv, _ in variants},
            "walls": {k: walls(res, k) for k in res},
            "ratios": {k: paired(res, k, "bare") for k in res if k != "bare"},
            "crashcatch_vs_mintrace": paired(res, "crashcatch", "mintrace"),
            "failures": fails,
            "raw": raw(res),
        }


# ---------------------------------------------------------------------------------------------
# 3 and 4. Time to report; memory

STAMP = 'os.write(1, b"%d\\n" % time.time_ns())'  # the moment just before the fault

CRASHES = [
    (
        "ctypes NULL",
        PY311,
        "import ctypes, os, time; " + STAMP + "; ctypes.string_at(0)",
    ),
    (
        "numpy bad strides",
        VPY,
        "import numpy as np, os, time; "
        "a = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(2,), strides=(1 << 44,)); " + STAMP + "; a.sum()",
    ),
    (
        # pyarrow.compute's sum over a buffer at an unmapped address: the crash is deep in
        # libarrow_compute (C++, LTO, 94,000 symbols); dataset and parquet loaded as a real
        # program would have them; Arrow's and OpenBLAS's thread pools are running.
        "pyarrow compute",
        VPY,
        "import pyarrow as pa, pyarrow.compute as pc, pyarrow.dataset, pyarrow.parquet, os, time; "
        "b = pa.Array.from_buffers(pa.int64(), 1000, [None, pa.foreign_buffer(1 << 44, 8000)]); " + STAMP + "; pc.sum(b)",
    ),
    (
        "200 threads",
        PY311,
        "import ctypes, os, threading, time; e = threading.Event(); "
        "ts = [threading.Thread(target=e.wait, daemon=True) for _ in range(200)]; "
        "[t.start() for t in ts]; " + STAMP + "; ctypes.string_at(0)",
    ),
]


def fault_ns(x):
    for line in read(x, "stdout").splitlines():
        if line.strip().isdigit():
            return int(line.strip())
    return None


def part_crash(R):
    R["crash"] = {}
    for name, py, code in CRASHES:
        if CRASH_FILTER and not any(c in name for c in CRASH_FILTER):
            continue
        R["crash"][name] = crash_case(R, "3. " + name, [py, "-c", code])


def crash_case(R, name, cmd, refs_until=None, mem_runs=3):
    """One crash, side by side: bare, crashcatch, gdb, core + pystack, 2 * RUNS rounds (gdb and
    pystack only in the rounds before refs_until, when given); then crashcatch's peak RSS."""
    reports = os.path.join(BENCH, "tmp", "reports")
    exe = os.path.realpath(cmd[0])
    gdb = [GDB, "-batch"] + GDB_PY + ["-ex", "run", "-ex", "thread apply all bt", "-ex", "thread apply all py-bt", "--args"] + cmd
    cc = [CRASHCATCH, "--output-dir", reports, "--"] + cmd
    pystack = [PYSTACK, "core", "core", exe, "--native"]
    res = {k: [] for k in ("bare", "crashcatch", "gdb", "pystack")}
    extra = {"total_ms": [], "capture_ms": [], "unwind_ms": [], "symbolize_ms": [], "python_ms": [],
             "fault_to_disk_ms": [], "pystack_crash_s": [], "pystack_read_s": []}
    fails = []
    log(f"{name}: warm-up (bare, untimed)")
    cleanup(run(cmd))

    def one(label):
        if label == "bare":
            x = run(cmd)
            return x, (None if x.status == -11 else f"exit status {x.status}, not SIGSEGV")
        if label == "crashcatch":
            shutil.rmtree(reports, ignore_errors=True)
            os.makedirs(reports, mode=0o700)
            w = ReportWatch(reports)
            x = run(cc)
            w.close()
            if x.status != -11:
                return x, f"exit status {x.status}, not SIGSEGV"
            js = [f for f in os.listdir(reports) if f.endswith(".json")]
            if len(js) != 1:
                return x, f"{len(js)} JSON reports"
            with open(os.path.join(reports, js[0])) as f:
                rep = json.load(f)
            t = rep.get("timings", {})
            for k in ("total_ms", "capture_ms", "unwind_ms", "symbolize_ms", "python_ms"):
                extra[k].append(t.get(k))
            f0 = fault_ns(x)
            if f0 and w.seen_ns:
                extra["fault_to_disk_ms"].append((w.seen_ns - f0) / 1e6)
            x.timings = t
            return x, None
        if label == "gdb":
            x = run(gdb)
            out = read(x, "stdout")
            if "SIGSEGV" not in out or "<module>" not in out:
                return x, "gdb's output has no SIGSEGV or no Python frame (py-bt)"
            return x, None
        # pystack: the same crash dumping core (core_pattern 'core': into the run's folder),
        # then pystack reading that core.
        x = run(cmd, core=True)
        corefile = os.path.join(x._dir, "core")
        if x.status != -11 or not os.path.exists(corefile):
            return x, f"no core file (exit status {x.status}; core_pattern {R['machine']['core_pattern']!r})"
        y = run(pystack, cwd=x._dir)
        extra["pystack_crash_s"].append(x.wall)
        extra["pystack_read_s"].append(y.wall)
        out = read(y, "stdout")
        cleanup(y)
        if "(Python)" not in out:
            return x, "pystack found no Python frame"
        x.wall += y.wall
        return x, None

    for r in range(2 * RUNS):
        R["load"].append(os.getloadavg()[0])
        labels = list(res) if refs_until is None or r < refs_until else ["bare", "crashcatch"]
        for label in labels if r % 2 == 0 else labels[::-1]:
            x, why = one(label)
            if why:
                x.failed = why
                fails.append(f"{name} / {label}, round {r + 1}: {why}")
                log(f"  {label}: FAILED: {why} (output kept in {x._dir})")
            else:
                cleanup(x)
            res[label].append(x)
            log(f"  {name} round {r + 1}/{2 * RUNS}: {label:<11} {x.wall:8.3f} s")
        for label in res:
            if len(res[label]) < r + 1:
                res[label].append(None)

    # 4. Memory: crashcatch's own peak RSS, in runs of their own (polling /proc every 0.5 ms
    # would slow the timed runs).
    mem = []
    for _ in range(mem_runs):
        shutil.rmtree(reports, ignore_errors=True)
        x = run(cc, poll_rss=True)
        mem.append({"hwm_kb": x.hwm_kb, "wait4_maxrss_kb": x.maxrss_kb})
        cleanup(x)
    bare_rss = [x.maxrss_kb for x in res["bare"] if not getattr(x, "failed", None)]
    return {
        "commands": {
            "bare": short(cmd),
            "crashcatch": short(cc),
            "gdb": short(gdb),
            "pystack": short(cmd) + "   # with ulimit -c unlimited, then: " + short(pystack),
        },
        "walls": {k: walls(res, k) for k in res},
        "crashcatch_vs_bare": paired(res, "crashcatch", "bare"),
        "gdb_vs_crashcatch": paired(res, "gdb", "crashcatch"),
        "pystack_vs_crashcatch": paired(res, "pystack", "crashcatch"),
        "extra": extra,
        "memory": mem,
        "bare_python_maxrss_kb": bare_rss,
        "failures": fails,
        "raw": raw(res),
    }


# ---------------------------------------------------------------------------------------------
# 5. Cost against library size


def libgen_path(n, dwarf):
    return os.path.join(LIBGEN, f"libgen-{n}{'' if dwarf else '-nodwarf'}.so")


def part_libsize(R):
    """The same ctypes call into function n/2 of a generated library of n functions (bench/genlib.py),
    for each size, with and without DWARF: crashcatch's symbolize time and peak RSS, and gdb and
    core + pystack on the same crash in the first RUNS rounds."""
    R["libsize"] = {}
    for dwarf in (True, False):
        for n in LIBSIZES:
            lib = libgen_path(n, dwarf)
            code = (f"import ctypes, os, time; f = ctypes.CDLL({lib!r}).gen_f{n // 2}; " + STAMP + "; f(None)")
            name = f"{n:,} functions, {'DWARF' if dwarf else 'no DWARF'}"
            R["libsize"][name] = crash_case(R, "5. " + name, [PY311, "-c", code], refs_until=RUNS, mem_runs=5)
            R["libsize"][name].update({"functions": n, "dwarf": dwarf, "file_mb": os.path.getsize(lib) / 1e6})


def libsize_ratio(L, dwarf, field):
    """Median at the largest size over median at the smallest, for `field`: symbolize_ms, or
    hwm (crashcatch's own peak RSS)."""
    rows = sorted((c for c in L.values() if c["dwarf"] == dwarf), key=lambda c: c["functions"])
    if len(rows) < 2:
        return float("nan")
    return libsize_value(rows[-1], field) / libsize_value(rows[0], field)


def libsize_value(c, field):
    if field == "hwm":
        return med([x["hwm_kb"] / 1024 for x in c["memory"] if x["hwm_kb"]])
    return med([v for v in c["extra"][field] if v is not None])


def plot_libsize(L, path):
    """Symbolize time and peak RSS against the number of functions, log scale, a PNG. Needs
    matplotlib (in the bench venv, bench/requirements.txt); says so and skips without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(f"matplotlib not found: {path} not written (run bench/run.py with target/bench/venv/bin/python)")
        return False
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for dwarf, style, color in ((True, "o-", "tab:blue"), (False, "s--", "tab:orange")):
        rows = sorted((c for c in L.values() if c["dwarf"] == dwarf), key=lambda c: c["functions"])
        if not rows:
            continue
        xs = [c["functions"] for c in rows]
        label = "with DWARF" if dwarf else "symbols only"
        for ax, field in ((a, "symbolize_ms"), (b, "hwm")):
            ys = [libsize_value(c, field) for c in rows]
            ax.plot(xs, ys, style, color=color, label=f"crashcatch, {label}")
        gdb = [med(c["walls"]["gdb"]) * 1000 for c in rows]
        if not all(v != v for v in gdb):
            a.plot(xs, gdb, style, color=color, alpha=0.35, label=f"gdb whole run, {label}")
    a.set(xscale="log", yscale="log", xlabel="functions in the library", ylabel="ms",
          title="crashcatch's symbolize time; gdb's whole run (medians)")
    b.set(xscale="log", xlabel="functions in the library", ylabel="MB", title="crashcatch's peak RSS (VmHWM)")
    b.set_ylim(bottom=0)
    for ax in (a, b):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Cost against library size (bench/genlib.py libraries, make bench)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    log(f"wrote {path}")
    return True


# ---------------------------------------------------------------------------------------------
# The machine, and BENCHMARKS.md


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read().strip()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"], capture_output=True, text=True).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "core_pattern": core_pattern,
        "commit": commit + (" (src/ modified)" if dirty else ""),
        "crashcatch": first([CRASHCATCH, "--version"]),
        "gdb": first([GDB, "--version"]),
        "strace": first([STRACE, "-V"]),
        "pystack": first([PYSTACK, "--version"]),
        "python": first([PY311, "--version"]),
        "gcc": first(["gcc", "--version"]),
    }


GOALS_TEXT = os.path.join(ROOT, "bench", "findings.md")


def crash_bounds(name):
    """(fault → on disk ms, peak RSS MB) a crash must stay within: issue 14 tightened them for the
    large-library crashes (numpy, pyarrow); every other case keeps 100 ms and 50 MB."""
    if "numpy" in name or "pyarrow" in name:
        return 30.0, 30.0
    return 100.0, 50.0


def previous_parts(path):
    """The sections and goal rows of the BENCHMARKS.md being replaced, by part number ("1",
    "2", ...), for a partial run with no results.json to take the other parts from."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}, {}
    sections, goals = {}, {}
    for chunk in text.split("\n## ")[1:]:
        head = chunk.split(".", 1)[0]
        if head.isdigit():
            sections.setdefault(head, "## " + chunk.rstrip())
        if chunk.startswith("Goals"):
            for line in chunk.splitlines():
                if line.startswith("| ") and line[2:3].isdigit():
                    goals.setdefault(line[2:3], []).append(line)
    return sections, goals


def write_markdown(R, path):
    m = R["machine"]
    kept_sections, kept_goals = previous_parts(path)
    L = []
    add = L.append

    def keep(part, number):
        # A part this run (and results.json) does not have: its text from the file replaced.
        if part not in R and number in kept_sections:
            add("\n".join(l for l in kept_sections[number].splitlines() if not l.startswith("*(Part ")).rstrip())
            add("")
            add(f"*(Part {number} is kept from the previous BENCHMARKS.md: this run did not include it.)*")
            add("")
    add("# Benchmarks")
    add("")
    add("crashcatch against its peers, every figure a ratio of two commands measured in the same")
    add("round, the commands alternating (ABC, CBA, ABC, ...). A figure is the **median** of the")
    add("per-round ratios, then (min–max) over the rounds. Made by `make bench`")
    add("(bench/run.py; `BENCH_RUNS=2 make bench` for a quick look); the raw timings are in")
    add("target/bench/results.json after a run. Do not edit by hand: bench/findings.md is")
    add("copied in at the end.")
    add("")
    add("## Machine and run")
    add("")
    add("| | |")
    add("|---|---|")
    add(f"| CPU | {m['cpu']}, nproc {m['nproc']}, {m['memory_gib']} GiB |")
    add(f"| kernel | Linux {m['kernel']} (core_pattern `{m['core_pattern']}`) |")
    add(f"| crashcatch | {m['crashcatch']}, commit {m['commit']}, `target/release/crashcatch` |")
    add(f"| peers | {m['gdb']}; {m['strace']}; pystack {m['pystack']}; mintrace (bench/mintrace.c) |")
    add(f"| Python | {m['python']} (pyenv; libpython with full DWARF), venv target/bench/venv |")
    add(f"| rounds | {R['runs']} for the test suite, {2 * R['runs']} for the process-heavy and crash cases |")
    lo, hi = spread(R["load"])
    add(f"| load average (1 min) | {R['load_start']:.2f} at start, {R['load_end']:.2f} at end; "
        f"{lo:.2f}–{hi:.2f} (median {med(R['load']):.2f}) at the start of rounds |")
    add(f"| date, duration | {R['date']}, {R['duration_s'] / 60:.1f} min |")
    for p in R.get("partial", []):
        add(f"| partial run | {p} (the other parts are from the full run before it) |")
    add("")
    if med(R["load"]) > 1.0:
        add(f"The machine was shared and busy during this run (median load {med(R['load']):.2f} on "
            f"{m['nproc']} cores): absolute times are noisy, the paired ratios less so.")
        add("")

    goals = []

    keep("suite", "1")
    if "suite" in R:
        s = R["suite"]
        add("## 1. Overhead on a real test suite")
        add("")
        add("The tests of networkx 3.6.1's graph classes and graph generators (`networkx/classes`,")
        add("`networkx/generators`; pytest's summary: " + "; ".join(s["summary"]) + "), from the pinned")
        add("sdist from PyPI, run from the unpacked tree. Why networkx: a well-known, pure-Python project")
        add("whose tests are thousands of small calls into the interpreter, with no native code of its own")
        add("to dominate, as most suites crashcatch would wrap are; these two folders run 10–15 s bare")
        add("here, long enough to measure and short enough to repeat (the whole suite takes 2+ minutes).")
        add("")
        add(f"Commands, run in `{s['cwd']}`:")
        add("")
        add("```")
        for k, c in s["commands"].items():
            add(f"{k + ':':<14}{c}")
        add("```")
        add("")
        add("| command | wall time | ratio to bare |")
        add("|---|---|---|")
        add(f"| bare | {fmt_secs(s['walls']['bare'])} | 1 |")
        for k in ("faulthandler", "crashcatch", "crashcatch --test-timeout", "mintrace", "gdb"):
            add(f"| {k} | {fmt_secs(s['walls'][k])} | {fmt_ratio(s['ratios'][k])} |")
        add(f"| crashcatch / mintrace | | {fmt_ratio(s['crashcatch_vs_mintrace'])} |")
        add("")
        add("pytest enables faulthandler itself, so `-X faulthandler` only turns it on a moment earlier.")
        add("")
        goals.append(("1. crashcatch ≤ 1.02× bare on the networkx suite", med(s["ratios"]["crashcatch"]), 1.02, "≤"))
        goals.append((
            "1. crashcatch --test-timeout ≤ 1.02× bare on the networkx suite",
            med(s["ratios"]["crashcatch --test-timeout"]),
            1.02,
            "≤",
        ))
        for f in s["failures"]:
            add(f"- failed run (left out): {f}")

    keep("process", "2")
    if "process" in R:
        P = R["process"]
        add("## 2. Process-heavy work")
        add("")
        add("bench/workload.c does one kind of traced event over and over; `pytest -n 2` runs")
        add("bench/xdist_suite (728 small tests: computation, threads, subprocesses, signal handlers).")
        add("mintrace (bench/mintrace.c) is the smallest supervisor that does what crashcatch's event")
        add("loop must do (seize with the same options, resume every event, pass every signal on,")
        add("PTRACE_LISTEN on group-stops): the floor for any ptrace-based catcher. These runs are")
        add(f"short and the machine noisy, so bare, mintrace and crashcatch run {2 * R['runs']} rounds; gdb and")
        add(f"strace, references, only the first {R['runs']}.")
        add("")
        add("Commands (`X` is the workload's command):")
        add("")
        add("```")
        first_cmds = next(iter(P.values()))["commands"]
        add("bare:            X")
        add("mintrace:        " + first_cmds["mintrace"].split(" target/bench/bin/workload")[0] + " X")
        add("crashcatch:      target/release/crashcatch -- X")
        add("gdb:             /usr/bin/gdb -batch -ex 'handle SIGUSR1 nostop noprint pass' -ex run --args X")
        add(f"strace:          {STRACE} -f -o /dev/null X")
        for name, p in P.items():
            add(f"{name + ':':<17}X = {p['commands']['bare']}")
        add("```")
        add("")
        add("| workload | bare | mintrace / bare | crashcatch / bare | gdb / bare | strace / bare | **crashcatch / mintrace** |")
        add("|---|---|---|---|---|---|---|")
        for name, p in P.items():
            r = p["ratios"]
            add(f"| {name} | {fmt_secs(p['walls']['bare'])} | {fmt_ratio(r['mintrace'])} | {fmt_ratio(r['crashcatch'])} | "
                f"{fmt_ratio(r['gdb'])} | {fmt_ratio(r['strace'])} | {fmt_ratio(p['crashcatch_vs_mintrace'])} |")
            goals.append((f"2. crashcatch ≤ 1.10× mintrace: {name}", med(p["crashcatch_vs_mintrace"]), 1.10, "≤"))
        add("")
        add("Wall times of the traced runs:")
        add("")
        add("| workload | mintrace | crashcatch | gdb | strace |")
        add("|---|---|---|---|---|")
        for name, p in P.items():
            w = p["walls"]
            add(f"| {name} | {fmt_secs(w['mintrace'])} | {fmt_secs(w['crashcatch'])} | {fmt_secs(w['gdb'])} | {fmt_secs(w['strace'])} |")
        add("")
        for p in P.values():
            for f in p["failures"]:
                add(f"- failed run (left out): {f}")

    if "crash" in R:
        C = R["crash"]
        add("## 3. Time to report")
        add("")
        add(f"{2 * R['runs']} rounds. The same crash, whole process, side by side: bare (no core); crashcatch writing its")
        add("report files; gdb running it and printing every thread's native and Python stacks; the")
        add("crash dumping core (core_pattern `" + m["core_pattern"] + "`: into the run's folder) and then")
        add("`pystack core --native` reading the core (the two times added). Each crash program writes")
        add("`time.time_ns()` to stdout just before it faults; *fault → on disk* is from that to the")
        add("moment inotify reports the report's .json renamed into place.")
        add("")
        add("```")
        for name, c in C.items():
            add(f"# {name}")
            for k, v in c["commands"].items():
                add(f"{k + ':':<12}{v}")
        add("```")
        add("")
        add("| crash | bare | crashcatch | gdb | core + pystack | crashcatch / bare | **gdb / crashcatch** | core+pystack / crashcatch |")
        add("|---|---|---|---|---|---|---|---|")
        for name, c in C.items():
            w = c["walls"]
            add(f"| {name} | {fmt_secs(w['bare'])} | {fmt_secs(w['crashcatch'])} | {fmt_secs(w['gdb'])} | "
                f"{fmt_secs(w['pystack'])} | {fmt_ratio(c['crashcatch_vs_bare'])} | {fmt_ratio(c['gdb_vs_crashcatch'])} | "
                f"{fmt_ratio(c['pystack_vs_crashcatch'])} |")
            goals.append((f"3. whole crashcatch run ≥ 4× faster than gdb's: {name}", med(c["gdb_vs_crashcatch"]), 4.0, "≥"))
        add("")
        add("crashcatch's own figures (the report's `timings`, from the fatal stop to the report")
        add("built; and fault → report on disk):")
        add("")
        add("| crash | **fault → on disk** | total_ms | capture | unwind | symbolize | python | core dump / pystack read |")
        add("|---|---|---|---|---|---|---|---|")
        for name, c in C.items():
            e = c["extra"]
            add(f"| {name} | {fmt_ms(e['fault_to_disk_ms'])} | {fmt_ms(e['total_ms'])} | {fmt_ms(e['capture_ms'])} | "
                f"{fmt_ms(e['unwind_ms'])} | {fmt_ms(e['symbolize_ms'])} | {fmt_ms(e['python_ms'])} | "
                f"{fmt_secs(e['pystack_crash_s'])} / {fmt_secs(e['pystack_read_s'])} |")
            t, _ = crash_bounds(name)
            goals.append((f"3. report on disk ≤ {t:.0f} ms after the fault: {name}", med(e["fault_to_disk_ms"]), t, "≤"))
        add("")
        add("## 4. Memory")
        add("")
        add("Peak RSS of the crashcatch process per report, in three extra runs per crash. wait4's")
        add("`ru_maxrss` of crashcatch also counts the children it waited for, the crashed Python")
        add("among them (a tracer reaps its tracee), so it is at least the Python's own peak; crashcatch's")
        add("own peak is its `VmHWM`, read from /proc every 0.5 ms while it runs (the last read is")
        add("within 0.5 ms of its exit).")
        add("")
        add("| crash | crashcatch's own peak (VmHWM) | wait4 ru_maxrss of crashcatch | the bare Python's ru_maxrss |")
        add("|---|---|---|---|")
        for name, c in C.items():
            hwm = [x["hwm_kb"] / 1024 for x in c["memory"] if x["hwm_kb"]]
            w4 = [x["wait4_maxrss_kb"] / 1024 for x in c["memory"]]
            b = [x / 1024 for x in c["bare_python_maxrss_kb"]]
            f = lambda xs: f"{med(xs):.1f} MB ({min(xs):.1f}–{max(xs):.1f})" if xs else "n/a"
            add(f"| {name} | **{f(hwm)}** | {f(w4)} | {f(b)} |")
            _, mb = crash_bounds(name)
            goals.append((f"4. crashcatch's peak RSS ≤ {mb:.0f} MB: {name}", med(hwm) if hwm else float("nan"), mb, "≤"))
        add("")
        for c in C.values():
            for f in c["failures"]:
                add(f"- failed run (left out): {f}")

    if "libsize" in R:
        LS = R["libsize"]
        add("## 5. Cost against library size")
        add("")
        add("Generated shared libraries (bench/genlib.py, built by bench/setup.sh: function i is")
        add("`movl (%rdi), %eax; addl $i, %eax; ret`, one compilation unit per 10,000 functions) of")
        add(", ".join(f"{n:,}" for n in LIBSIZES) + " functions, with DWARF (`as -g`) and without (`objcopy --strip-debug`:")
        add("symbols and CFI only). The crash: ctypes calls function n/2 with NULL, so the faulting frame is")
        add(f"in the middle of the library. {2 * R['runs']} rounds of bare and crashcatch, gdb and core + pystack in the")
        add(f"first {R['runs']}; crashcatch's peak RSS in 5 more runs each. The command, for n = 1,000,000:")
        add("")
        add("```")
        big = max(LS.values(), key=lambda c: (c["dwarf"], c["functions"]))
        for k, v in big["commands"].items():
            add(f"{k + ':':<12}{v}")
        add("```")
        add("")
        add("| library | file | **symbolize** | total_ms | fault → on disk | **crashcatch's peak RSS** | gdb | core + pystack |")
        add("|---|---|---|---|---|---|---|---|")
        for name, c in LS.items():
            e = c["extra"]
            hwm = [x["hwm_kb"] / 1024 for x in c["memory"] if x["hwm_kb"]]
            f = (lambda xs: f"{med(xs):.1f} MB ({min(xs):.1f}–{max(xs):.1f})" if xs else "n/a")
            add(f"| {name} | {c['file_mb']:.1f} MB | {fmt_ms(e['symbolize_ms'])} | {fmt_ms(e['total_ms'])} | "
                f"{fmt_ms(e['fault_to_disk_ms'])} | {f(hwm)} | {fmt_secs(c['walls']['gdb'])} | {fmt_secs(c['walls']['pystack'])} |")
        add("")
        if os.path.exists(PLOT):
            add(f"![symbolize time and peak RSS against library size]({os.path.relpath(PLOT, os.path.dirname(os.path.abspath(path)))})")
            add("")
        lo, hi = f"{LIBSIZES[0]:,}", f"{LIBSIZES[-1]:,}"
        for dwarf in (True, False):
            what = "with DWARF" if dwarf else "without DWARF"
            goals.append((f"5. symbolize time at {hi} functions ≤ 2× at {lo}, {what}", libsize_ratio(LS, dwarf, "symbolize_ms"), 2.0, "≤"))
            goals.append((f"5. peak RSS at {hi} functions ≤ 2× at {lo}, {what}", libsize_ratio(LS, dwarf, "hwm"), 2.0, "≤"))
        for c in LS.values():
            for fl in c["failures"]:
                add(f"- failed run (left out): {fl}")

    add("## Goals")
    add("")
    add("| goal | measured (median) | |")
    add("|---|---|---|")
    for part, number in (("suite", "1"), ("process", "2")):
        if part not in R:
            L.extend(kept_goals.get(number, []))
    for text, value, bound, op in goals:
        ok = value <= bound if op == "≤" else value >= bound
        unit = " ms" if "ms" in text else (" MB" if "MB" in text else "×")
        add(f"| {text} | {value:.2f}{unit} | {'met' if ok else '**missed**'} |")
    add("")
    if os.path.exists(GOALS_TEXT):
        with open(GOALS_TEXT) as f:
            add(f.read().rstrip())
        add("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main():
    args = sys.argv[1:]
    out = os.path.join(ROOT, "BENCHMARKS.md")
    if "--out" in args:
        out = os.path.abspath(args[args.index("--out") + 1])
    if "--render" in args:
        with open(os.path.join(BENCH, "results.json")) as f:
            R = json.load(f)
        if "libsize" in R:
            plot_libsize(R["libsize"], PLOT)
        write_markdown(R, out)
        log(f"wrote {out} from {BENCH}/results.json")
        return
    needed = [CRASHCATCH, MINTRACE, WORKLOAD, VPY, PYSTACK, PY311, GDB, STRACE]
    if "libsize" in ONLY:
        needed += [libgen_path(n, d) for n in LIBSIZES for d in (True, False)]
    for p in needed:
        if not os.path.exists(p):
            sys.exit(f"bench: {p} is missing (make build; bench/setup.sh {BENCH})")
    os.makedirs(os.path.join(BENCH, "tmp"), exist_ok=True)
    start = time.time()
    R = {"machine": machine(), "runs": RUNS, "load": [], "load_start": os.getloadavg()[0],
         "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    log(f"{RUNS} rounds; parts: {', '.join(sorted(ONLY))}; load {R['load_start']:.2f}")
    if "suite" in ONLY:
        part_suite(R)
    if "process" in ONLY:
        part_process(R)
    if "crash" in ONLY:
        part_crash(R)
    if "libsize" in ONLY:
        part_libsize(R)
    R["load_end"] = os.getloadavg()[0]
    R["duration_s"] = time.time() - start
    prev_path = os.path.join(BENCH, "results.json")
    if (ONLY != PARTS or CRASH_FILTER) and os.path.exists(prev_path):
        # A partial run replaces only its own parts (or crashes) of the last full run's results.
        with open(prev_path) as f:
            prev = json.load(f)
        what = ",".join(sorted(ONLY)) + (f" ({','.join(CRASH_FILTER)})" if CRASH_FILTER else "")
        R["partial"] = prev.get("partial", []) + [f"{what} re-run {R['date']}"]
        if CRASH_FILTER and "crash" in R and "crash" in prev:
            prev["crash"].update(R.pop("crash"))
        prev.update(R)
        R = prev
    with open(os.path.join(BENCH, "results.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    if "libsize" in R:
        plot_libsize(R["libsize"], PLOT)
    write_markdown(R, out)
    log(f"wrote {out} ({R['duration_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()

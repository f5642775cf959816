#!/usr/bin/env python3
"""How long `crashcatch dump --subprocesses` stops each process of a tree, against `dump` of
that process alone (the ratio should be about 1: each process is stopped only for its own dump).

    CRASHCATCH=target/release/crashcatch BENCH_RUNS=9 python3 bench/subprocesses_pause.py

The tree (CPython 3.11.7, multiprocessing with fork): a parent, two children and a grandchild,
each with a meter thread that sleeps 0.5 ms in a loop and logs every gap longer than 2 ms with
its end time (CLOCK_MONOTONIC, shared by every process). A round runs one crashcatch command and
takes, for each process, the longest gap that ended during it. Figures are medians over the
rounds. Standard library only.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRASHCATCH = os.environ.get("CRASHCATCH", os.path.join(ROOT, "target", "release", "crashcatch"))
PYTHON = os.environ.get("BENCH_PYTHON", "/root/.pyenv/versions/3.11.7/bin/python3")
RUNS = int(os.environ.get("BENCH_RUNS", "9"))

TREE = r"""
import multiprocessing, os, sys, threading, time
D = sys.argv[1]
CTX = multiprocessing.get_context('fork')

def meter():
    log = open(os.path.join(D, 'gaps-%d' % os.getpid()), 'a', buffering=1)
    last = time.monotonic()
    while True:
        time.sleep(0.0005)
        now = time.monotonic()
        if now - last > 0.002:
            log.write('%.6f %.6f\n' % (now, now - last))
        last = now

def waits(role, spawn=()):
    for target in spawn:
        CTX.Process(target=target).start()
    threading.Thread(target=meter, daemon=True).start()
    open(os.path.join(D, 'ready-%s' % role), 'w').write(str(os.getpid()))
    time.sleep(1000)

def grandchild():
    waits('grandchild')

def child_one():
    waits('child_one')

def child_two():
    waits('child_two', [grandchild])

if __name__ == '__main__':
    waits('parent', [child_one, child_two])
"""

ROLES = ["parent", "child_one", "child_two", "grandchild"]


def start(d):
    script = os.path.join(d, "tree.py")
    with open(script, "w") as f:
        f.write(TREE)
    p = subprocess.Popen([PYTHON, script, d], start_new_session=True)
    deadline = time.time() + 60
    while not all(os.path.exists(os.path.join(d, "ready-" + r)) for r in ROLES):
        if time.time() > deadline:
            raise SystemExit("the tree did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return p, {r: int(open(os.path.join(d, "ready-" + r)).read()) for r in ROLES}


def longest_gap(d, pid, t0, t1):
    """The longest gap (ms) of pid's meter that ended between t0 and t1."""
    best = 0.0
    try:
        with open(os.path.join(d, "gaps-%d" % pid)) as f:
            for line in f:
                end, gap = (float(x) for x in line.split())
                if t0 <= end <= t1 + 0.05:
                    best = max(best, gap * 1000)
    except FileNotFoundError:
        pass
    return best


def round_of(d, pids, cmds):
    t0 = time.monotonic()
    for c in cmds:
        subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    t1 = time.monotonic()
    time.sleep(0.1)  # the meters log the gap once they run again
    return (t1 - t0) * 1000, {r: longest_gap(d, p, t0, t1) for r, p in pids.items()}


def main():
    with tempfile.TemporaryDirectory() as d:
        p, pids = start(d)
        try:
            tree, alone, idle, walls = [], [], [], []
            for i in range(RUNS):
                rounds = [
                    ("tree", [[CRASHCATCH, "dump", "--subprocesses", str(pids["parent"])]]),
                    ("alone", [[CRASHCATCH, "dump", str(pid)] for pid in pids.values()]),
                    ("idle", [["sleep", "0.2"]]),
                ]
                if i % 2:
                    rounds.reverse()
                for name, cmds in rounds:
                    wall, gaps = round_of(d, pids, cmds)
                    {"tree": tree, "alone": alone, "idle": idle}[name].append(gaps)
                    if name == "tree":
                        walls.append(wall)
            med = lambda runs, r: statistics.median(g[r] for g in runs)  # noqa: E731
            print("| process | dump --subprocesses | dump alone | ratio | idle |")
            print("|---|---|---|---|---|")
            for r in ROLES:
                a, b = med(tree, r), med(alone, r)
                ratio = a / b if b else float("nan")
                print("| %s | %.1f ms | %.1f ms | %.2fx | %.1f ms |" % (r, a, b, ratio, med(idle, r)))
            print("\n`dump --subprocesses` of the 4 processes: %.0f ms wall (median of %d)" % (statistics.median(walls), RUNS))
        finally:
            os.killpg(p.pid, 9)
            p.wait()


if __name__ == "__main__":
    sys.exit(main())

"""Hostile targets for crashcatch (tests/hostile.rs, stress/run.py).

    python attack.py MODE DIR [ARGS...]

The process forks: the child mounts the attack (files under DIR, frames whose code objects
name them) and crashes with SIGSEGV; the parent waits for it, then stays alive until DIR/done
exists, so that crashcatch (still tracing the parent) can be measured after its report.

Modes:
  disclose SECRET PUBLIC  the child drops to nobody, then crashes in frames whose files are
                          SECRET (unreadable by nobody) at line 1 and PUBLIC at line 2
  bigsrc THREADS          an 8 MiB source file, named under a different spelling by every
                          frame of THREADS threads (6 frames each, lines all over the file)
  manyfiles THREADS       THREADS threads of 5 frames, each frame its own 256 KiB file
  longnames THREADS DEPTH THREADS threads DEPTH frames deep, every file name 4000 characters
"""
import ctypes
import os
import sys
import threading
import time
from itertools import islice

MODE, DIR = sys.argv[1], sys.argv[2]
ARGS = sys.argv[3:]


def defn(filename, line, body):
    """A function `g` whose code says it is at `line` of `filename`."""
    ns = {"time": time, "ready": ready, "crash": crash}
    exec(compile("\n" * (line - 1) + body, filename, "exec"), ns)
    return ns["g"]


ready = threading.Semaphore(0)


def crash(_rest=None):
    ctypes.string_at(0)


def chain(spots, last_body):
    """Nested calls, innermost last: every frame's code names one (file, line) of `spots`."""
    # One-line functions: the call is on line `l` itself.
    fns = [defn(f, l, "def g(nxt): return nxt[0](nxt[1:])\n") for f, l in spots[:-1]]
    f, l = spots[-1]
    fns.append(defn(f, l, "def g(nxt): " + last_body + "\n"))
    return lambda: fns[0](fns[1:])


def park(spots):
    """A thread blocked in a C call (time.sleep) under frames naming `spots`."""
    t = threading.Thread(target=chain(spots, "ready.release(); time.sleep(100000)"), daemon=True)
    t.start()


def write_lines(path, size, width=79):
    line = ("x = 1  # " + "y" * width)[:width] + "\n"
    with open(path, "w") as f:
        f.write(line * (size // len(line)))
    return size // len(line)


def park_then_crash(threads, make_spots):
    """`threads` threads parked in frames at make_spots()'s places, then a crash in this thread
    under frames at the next ones, once every parked thread is in place."""
    for _ in range(threads):
        park(make_spots())
    spots = make_spots()
    for _ in range(threads):
        ready.acquire()
    chain(spots, "crash()")()


def attack():
    threads = 0
    if MODE == "disclose":
        secret, public = ARGS
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        chain([(secret, 1), (public, 2), (secret, 1)], "crash()")()
    elif MODE == "bigsrc":
        threads = int(ARGS[0])
        big = os.path.join(DIR, "big.py")
        n = write_lines(big, 8 << 20)
        k = iter(range(1, 1 << 30))

        def spots():
            return [(os.path.join(DIR, *(["."] * i), "big.py"), 1 + (i * 7919) % n) for i in islice(k, 6)]

        park_then_crash(threads, spots)
    elif MODE == "manyfiles":
        threads = int(ARGS[0])
        k = iter(range(1, 1 << 30))

        def spots():
            out = []
            for level, i in enumerate(islice(k, 5)):
                p = os.path.join(DIR, "m%05d.py" % i)
                out.append((p, write_lines(p, 256 << 10) - level))
            return out

        park_then_crash(threads, spots)
    elif MODE == "longnames":
        threads, depth = int(ARGS[0]), int(ARGS[1])
        sys.setrecursionlimit(depth * 4 + 1000)
        threading.stack_size(256 << 20)
        name = os.path.join(DIR, "n" * 4000 + ".py")
        rec = defn(name, 1, "def g(n, last): return g(n - 1, last) if n else last()\n")
        for t in range(threads):
            threading.Thread(target=rec, args=(depth, lambda: (ready.release(), time.sleep(100000))), daemon=True).start()
        for _ in range(threads):
            ready.acquire()
        rec(depth, crash)
    else:
        sys.exit("unknown mode " + MODE)


pid = os.fork()
if pid == 0:
    attack()
    os._exit(0)
os.waitpid(pid, 0)
done = os.path.join(DIR, "done")
deadline = time.time() + 120
while not os.path.exists(done) and time.time() < deadline:
    time.sleep(0.01)

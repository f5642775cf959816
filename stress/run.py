#!/usr/bin/env python3
"""crashcatch's reliability suite: transparency, churn, faults in the middle, job control.

Runs the C programs of stress/src (built by `make stress` into target/stress/bin) bare and
under target/release/crashcatch, checks every run, and writes the results table into
RELIABILITY.md between the `<!-- stress-results -->` markers. Exit status 1 if any run failed.

After every run under crashcatch, every process of its process group is looked at in
/proc/PID/stat: none may be left behind, and none stopped ('t' or 'T').

  python3 stress/run.py [--only SUBSTRING] [--no-write] [--extra NAME=RUNS/PASSED/COMMAND ...]

--extra adds rows measured elsewhere (the cargo property tests) to the table.
"""

import argparse
import glob
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CC = os.environ.get("CRASHCATCH_BIN") or os.path.join(ROOT, "target", "release", "crashcatch")
BIN = os.path.join(ROOT, "target", "stress", "bin")
MD = os.path.join(ROOT, "RELIABILITY.md")

# crashcatch's crash signals (src/report/signals.rs FATAL_SIGNALS): a report is expected for
# these, and only these.
FATAL = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT, signal.SIGSYS}
STOPS = {signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}


def prog(name, *args):
    return [os.path.join(BIN, name)] + [str(a) for a in args]


def short(cmd):
    """A command for the table: paths shortened to what a reader recognises."""
    out = []
    for a in cmd:
        a = str(a)
        if a.startswith(BIN + "/"):
            a = "stress/" + a[len(BIN) + 1:]
        elif a == CC:
            a = "crashcatch"
        elif a.startswith(tempfile.gettempdir() + "/"):
            a = "$TMP"
        out.append(a)
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# /proc


def stat(pid):
    """(state, ppid, pgrp, session) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2]), int(rest[3])


def thread_states(pid):
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                s = f.read()
            out[int(t)] = s[s.rindex(")") + 2:].split()[0]
        except OSError:
            pass
    return out


def tracer_pid(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def group_members(pgrp):
    """Every live (non-zombie) process in process group `pgrp`: {pid: state}."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = stat(int(d))
        if st and st[2] == pgrp and st[0] != "Z":
            out[int(d)] = st[0]
    return out


def leftovers(pgrp, grace=3.0):
    """Waits up to `grace` s for the process group to be empty. Returns a problem or None; kills
    what is left (SIGCONT first, so a stopped process dies too)."""
    deadline = time.time() + grace
    members = group_members(pgrp)
    while members and time.time() < deadline:
        time.sleep(0.02)
        members = group_members(pgrp)
    if not members:
        return None
    stopped = {p: s for p, s in members.items() if s in "tT"}
    for p in members:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(p, sig)
            except OSError:
                pass
    what = ", ".join(f"{p}:{s}" for p, s in sorted(members.items()))
    if stopped:
        return f"left STOPPED in the process group: {what}"
    return f"left running in the process group: {what}"


def wait_stopped(pid, stable=0.08, limit=5.0):
    """True once `pid` has stayed stopped (t/T) for `stable` s; False if it exited or never stopped."""
    deadline = time.time() + limit
    since = None
    while time.time() < deadline:
        st = stat(pid)
        if st is None or st[0] in "ZX":
            return False
        if st[0] in "tT":
            since = since or time.time()
            if time.time() - since >= stable:
                return True
        else:
            since = None
        time.sleep(0.005)
    return False


# ---------------------------------------------------------------------------------------------
# Running things


class Run:
    def __init__(self, cmd, stdin=True, env=None):
        self.cmd = cmd
        self.p = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=os.setpgrp,
            env=env,
            bufsize=0,  # unbuffered: line() must not swallow what communicate() reads later
        )
        self.pgrp = self.p.pid
        self.lines = []

    def line(self, timeout=10.0):
        """The next line of stdout (without the newline), or None at EOF or timeout."""
        fd = self.p.stdout.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return None
        raw = self.p.stdout.readline()
        if not raw:
            return None
        s = raw.decode(errors="replace").rstrip("\n")
        self.lines.append(s)
        return s

    def line_matching(self, pattern, timeout=10.0):
        """The next line that matches `pattern` (others are skipped), or None."""
        deadline = time.time() + timeout
        while True:
            s = self.line(max(0.0, deadline - time.time()))
            if s is None:
                return None
            m = re.match(pattern, s)
            if m:
                return m

    def pid_line(self, timeout=10.0):
        m = self.line_matching(r"pid (\d+)$", timeout)
        return int(m.group(1)) if m else None

    def send(self, text):
        try:
            self.p.stdin.write(text.encode())
            self.p.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def close_stdin(self):
        try:
            if self.p.stdin:
                self.p.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.p.stdin = None

    def finish(self, timeout=60.0):
        """(returncode, stdout, stderr); a run still going after `timeout` is killed: rc None."""
        try:
            out, err = self.p.communicate(timeout=timeout)
            rc = self.p.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.pgrp, signal.SIGKILL)
            except OSError:
                pass
            out, err = self.p.communicate()
            rc = None
        self.stdout = "\n".join(self.lines) + ("\n" if self.lines else "") + out.decode(errors="replace")
        self.stderr = err.decode(errors="replace")
        return rc


def caught(cmd, outdir, extra=()):
    return [CC, "--output-dir", outdir, "--format", "json", "-q", *extra, "--", *cmd]


def reports(outdir):
    if not os.path.isdir(outdir):
        return []
    out = []
    for n in sorted(os.listdir(outdir)):
        if n.endswith(".json") and n.startswith("crash-"):
            with open(os.path.join(outdir, n)) as f:
                out.append(json.load(f))
    return out


def norm(text):
    return re.sub(r"\d+", "#", text)


def rc_text(rc):
    if rc is None:
        return "timeout"
    return f"signal {-rc}" if rc < 0 else f"exit {rc}"


# ---------------------------------------------------------------------------------------------
# Results


class Results:
    def __init__(self):
        self.rows = []  # [group, case, runs, passed, command, note]
        self.failures = []

    def add(self, group, case, command, ok, problem=None, note=None):
        row = next((r for r in self.rows if r[0] == group and r[1] == case), None)
        if row is None:
            row = [group, case, 0, 0, command, note or ""]
            self.rows.append(row)
        row[2] += 1
        if ok:
            row[3] += 1
        else:
            self.failures.append(f"{group} / {case}: {problem}")
            print(f"  FAIL {case}: {problem}", flush=True)
        if note:
            row[5] = note

    def set_note(self, group, case, note):
        for r in self.rows:
            if r[0] == group and r[1] == case:
                r[5] = note


R = Results()


class Check:
    """Collects the problems of one run."""

    def __init__(self):
        self.problems = []

    def expect(self, cond, problem):
        if not cond:
            self.problems.append(problem)
        return cond

    @property
    def ok(self):
        return not self.problems

    def text(self):
        return "; ".join(self.problems)


def bare_and_caught(drive, cmd, timeout=30.0):
    """Runs `cmd` bare, then under crashcatch, each driven by drive(run) (which returns a note
    dict); returns (bare, caught, reports, leftover problem)."""
    bare = Run(cmd)
    drive(bare)
    bare.rc = bare.finish(timeout)
    leftovers(bare.pgrp)
    out = tempfile.mkdtemp(prefix="cc-stress-")
    try:
        cc = Run(caught(cmd, out))
        drive(cc)
        cc.rc = cc.finish(timeout)
        left = leftovers(cc.pgrp)
        reps = reports(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return bare, cc, reps, left


def transparency_checks(c, bare, cc, reps, left, sig=None):
    c.expect(cc.rc is not None, "crashcatch run timed out")
    c.expect(bare.rc == cc.rc, f"bare {rc_text(bare.rc)} but crashcatch {rc_text(cc.rc)}")
    c.expect(norm(bare.stdout) == norm(cc.stdout), f"stdout differs: {bare.stdout!r} vs {cc.stdout!r}")
    want = 1 if (cc.rc is not None and cc.rc < 0 and -cc.rc in FATAL) else 0
    c.expect(len(reps) == want, f"{len(reps)} report(s), expected {want}")
    if want and reps:
        c.expect(reps[0]["signal"].get("number") == -cc.rc, f"report names {reps[0]['signal'].get('name')}")
    c.expect(left is None, left or "")


# ---------------------------------------------------------------------------------------------
# Transparency


def t_exit_codes():
    g, case = "Transparency", "exit code N for N in 0..255"
    for n in range(256):
        cmd = prog("sigprog", "exit", n)
        out = tempfile.mkdtemp(prefix="cc-stress-")
        b = subprocess.run(cmd).returncode
        r = Run(caught(cmd, out), stdin=False)
        rc = r.finish(20)
        left = leftovers(r.pgrp)
        reps = reports(out)
        shutil.rmtree(out, ignore_errors=True)
        c = Check()
        c.expect(b == n and rc == n, f"exit {n}: bare {rc_text(b)}, crashcatch {rc_text(rc)}")
        c.expect(not reps, "a report for a clean exit")
        c.expect(left is None, left or "")
        R.add(g, case, short(caught(prog("sigprog", "exit", "N"), "$TMP")), c.ok, c.text())


STOPPED = {"stopped": 0, "tries": 0}


def continue_if_stopped(run, pid, note):
    """A stop signal stopped the program: SIGCONT it from outside."""
    STOPPED["tries"] += 1
    if wait_stopped(pid, limit=0.6):
        STOPPED["stopped"] += 1
        os.kill(pid, signal.SIGCONT)


def t_raise(reps_per_signal):
    g = "Transparency"
    case = "raise(N) for N in 1..31 (stop signals continued by SIGCONT from outside)"
    for _ in range(reps_per_signal):
        for sig in range(1, 32):
            cmd = prog("sigprog", "raise", sig)

            def drive(run):
                pid = run.pid_line()
                if pid and sig in STOPS:
                    continue_if_stopped(run, pid, {})

            bare, cc, reps, left = bare_and_caught(drive, cmd)
            c = Check()
            transparency_checks(c, bare, cc, reps, left)
            R.add(g, case, short(caught(prog("sigprog", "raise", "N"), "$TMP")), c.ok, f"signal {sig}: {c.text()}")
    R.set_note(g, case, f"stop signals stopped the program (then continued) in {STOPPED['stopped']} of {STOPPED['tries']} runs")
    STOPPED.update(stopped=0, tries=0)


def t_sent(reps_per_signal):
    g = "Transparency"
    case = "signal N sent by kill() to the running program, N in 1..31 (stops continued by SIGCONT)"
    for _ in range(reps_per_signal):
        for sig in range(1, 32):
            cmd = prog("sigprog", "wait")

            def drive(run):
                pid = run.pid_line()
                if not pid:
                    return
                os.kill(pid, sig)
                if sig in STOPS:
                    continue_if_stopped(run, pid, {})
                time.sleep(0.02)
                run.send("after\n")
                run.close_stdin()

            bare, cc, reps, left = bare_and_caught(drive, cmd)
            c = Check()
            transparency_checks(c, bare, cc, reps, left)
            R.add(g, case, short(caught(cmd, "$TMP")), c.ok, f"signal {sig}: {c.text()}")
    R.set_note(g, case, f"stop signals stopped the program (then continued) in {STOPPED['stopped']} of {STOPPED['tries']} runs")
    STOPPED.update(stopped=0, tries=0)


def t_block_ignore(reps):
    g = "Transparency"
    for mode in ("block", "ignore"):
        case = f"program that {'blocks' if mode == 'block' else 'ignores'} signals 1..31: all sent to it"
        for _ in range(reps):
            cmd = prog("sigprog", mode)

            def drive(run):
                pid = run.pid_line()
                if not pid:
                    return
                for sig in range(1, 32):
                    if sig not in (signal.SIGKILL, signal.SIGSTOP):
                        os.kill(pid, sig)
                time.sleep(0.05)
                run.send("still here\n")
                run.close_stdin()

            bare, cc, reps_, left = bare_and_caught(drive, cmd)
            c = Check()
            transparency_checks(c, bare, cc, reps_, left)
            c.expect(bare.rc == 0, f"bare run {rc_text(bare.rc)}")
            R.add(g, case, short(caught(cmd, "$TMP")), c.ok, c.text())


class Pty:
    """An interactive bash with job control on a pseudo-terminal."""

    def __init__(self):
        pid, fd = pty.fork()
        if pid == 0:
            env = dict(os.environ, PS1="PROMPT$ ", TERM="dumb", HISTFILE="/dev/null")
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.pid, self.fd, self.buf = pid, fd, ""
        self.expect("PROMPT\\$ ")

    def write(self, s):
        os.write(self.fd, s.encode())

    def expect(self, pattern, timeout=10.0):
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError(f"waiting for {pattern!r}; screen: {self.buf[-500:]!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise TimeoutError(f"terminal closed waiting for {pattern!r}")
                self.buf += data.decode(errors="replace").replace("\r", "")

    def close(self):
        try:
            os.write(self.fd, b"exit\n")
        except OSError:
            pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)


def t_job_control(reps):
    g = "Job control (pty)"
    for _ in range(reps):
        for mode in ("bare", "crashcatch"):
            out = tempfile.mkdtemp(prefix="cc-stress-")
            cmd = prog("sigprog", "wait")
            if mode == "crashcatch":
                cmd = caught(cmd, out)
            case = f"{mode}: Ctrl-Z, jobs, bg (SIGTTIN stop), fg, kill -STOP/-CONT, Ctrl-D"
            c = Check()
            t = None
            try:
                t = Pty()
                t.write(" ".join(cmd) + "\n")
                pid = int(t.expect(r"pid (\d+)").group(1))
                t.write("one\n")
                t.expect("got one")
                t.write("\x1a")  # Ctrl-Z
                t.expect(r"Stopped")
                c.expect(wait_stopped(pid), "Ctrl-Z did not stop the program")
                t.expect("PROMPT\\$ ")
                t.write("jobs\n")
                t.expect(r"\[1\]\+\s+Stopped")
                t.expect("PROMPT\\$ ")
                # bg: it runs in the background, reads the terminal, SIGTTIN stops it again.
                t.write("bg\n")
                t.expect("PROMPT\\$ ")
                c.expect(wait_stopped(pid), "a background read did not stop the program (SIGTTIN)")
                t.write("jobs\n")
                t.expect(r"\[1\]\+\s+Stopped")
                t.expect("PROMPT\\$ ")
                t.write("fg\n")
                time.sleep(0.2)
                t.write("two\n")
                t.expect("got two")
                # SIGSTOP and SIGCONT from outside while it is in the foreground.
                os.kill(pid, signal.SIGSTOP)
                c.expect(wait_stopped(pid), "SIGSTOP did not stop the program")
                os.kill(pid, signal.SIGCONT)
                if mode == "bare":
                    # The shell saw its job stop and took the terminal back: resume it with fg.
                    t.expect(r"Stopped")
                    t.expect("PROMPT\\$ ")
                    t.write("fg\n")
                    time.sleep(0.2)
                t.write("three\n")
                t.expect("got three")
                t.write("\x04")  # Ctrl-D: EOF
                t.expect("eof")
                t.expect("PROMPT\\$ ")
                t.write("echo status=$?\n")
                m = t.expect(r"status=(\d+)")
                c.expect(m.group(1) == "0", f"exit status {m.group(1)}")
                st = stat(pid)
                c.expect(st is None or st[0] in "ZX", f"program still there: {st}")
            except TimeoutError as e:
                c.expect(False, str(e))
            finally:
                if t:
                    t.close()
            c.expect(not reports(out), "a report without a crash")
            shutil.rmtree(out, ignore_errors=True)
            R.add(g, case, short(cmd) + "  (typed into bash -i on a pty)", c.ok, c.text())


# ---------------------------------------------------------------------------------------------
# Churn


def t_churn(reps):
    g = "Churn"
    cases = [
        ("10,000 threads created and joined", prog("churn", "threads", 10000), None),
        ("1,000 forks, each exit status checked", prog("churn", "forks", 1000), None),
        ("200 vforks (half exec /bin/true)", prog("churn", "vfork", 200), None),
        ("exec from a non-leader thread, 20 times in a chain", prog("churn", "exec_thread", 20), 42),
        ("fork tree depth 6 width 3 (1,093 processes)", prog("churn", "forkbomb", 6, 3), None),
    ]
    for _ in range(reps):
        for name, cmd, want in cases:
            out = tempfile.mkdtemp(prefix="cc-stress-")
            t0 = time.time()
            r = Run(caught(cmd, out), stdin=False)
            rc = r.finish(120)
            took = time.time() - t0
            left = leftovers(r.pgrp)
            reps_ = reports(out)
            shutil.rmtree(out, ignore_errors=True)
            c = Check()
            c.expect(rc == (want or 0), f"{rc_text(rc)}; stdout {r.stdout[-300:]!r} stderr {r.stderr[-300:]!r}")
            c.expect(not reps_, "a report without a crash")
            c.expect("left running untraced" not in r.stderr, f"stray note: {r.stderr[:300]!r}")
            c.expect(left is None, left or "")
            if want == 42:
                pids = set(re.findall(r"pid (\d+)", r.stdout))
                c.expect(len(pids) == 1 and r.stdout.count("exec_thread") == 21, f"exec chain output {r.stdout!r}")
            R.add(g, name, short(caught(cmd, "$TMP")), c.ok, c.text(), note=f"last run {took:.1f} s")


def t_signal_flood(reps, n=100_000):
    g = "Churn"
    name = f"{n:,} queued signals (SIGRTMIN, each counted) + {n // 10:,} SIGUSR1 sent to the program"
    for _ in range(reps):
        out = tempfile.mkdtemp(prefix="cc-stress-")
        cmd = prog("churn", "sigcount", n)
        t0 = time.time()
        r = Run(caught(cmd, out), stdin=False)
        pid = r.pid_line()
        c = Check()
        if c.expect(pid is not None, "no pid line"):
            s = subprocess.run(prog("sigflood", pid, n), capture_output=True, timeout=120)
            c.expect(s.returncode == 0, f"sigflood: {s.stderr!r}")
        rc = r.finish(120)
        took = time.time() - t0
        left = leftovers(r.pgrp)
        c.expect(rc == 0, f"{rc_text(rc)}: {r.stdout!r}")
        c.expect(not reports(out), "a report without a crash")
        c.expect(left is None, left or "")
        shutil.rmtree(out, ignore_errors=True)
        R.add(g, name, short(caught(cmd, "$TMP")) + " & stress/sigflood PID " + str(n), c.ok, c.text(),
              note=f"last run {took:.1f} s")


# ---------------------------------------------------------------------------------------------
# Faults in the middle


def crash_run(cmd, timeout=60):
    out = tempfile.mkdtemp(prefix="cc-stress-")
    t0 = time.time()
    r = Run(caught(cmd, out), stdin=False)
    rc = r.finish(timeout)
    r.took = time.time() - t0
    left = leftovers(r.pgrp)
    reps = reports(out)
    shutil.rmtree(out, ignore_errors=True)
    return r, rc, reps, left


def t_two_faults(reps):
    g, name = "Faults", "two threads fault at the same moment: one report"
    cmd = prog("faults", "two")
    named = 0
    for _ in range(reps):
        r, rc, reps_, left = crash_run(cmd)
        c = Check()
        c.expect(rc == -signal.SIGSEGV, rc_text(rc))
        c.expect(len(reps_) == 1, f"{len(reps_)} reports")
        c.expect(left is None, left or "")
        tids = {int(t) for t in re.findall(r"tid (\d+)", r.stdout)}
        if reps_:
            rep = reps_[0]
            c.expect(rep["crashed_tid"] in tids, f"crashed tid {rep['crashed_tid']} not one of {tids}")
            also = [a["tid"] for a in rep.get("also_faulting", [])]
            c.expect(all(a in tids and a != rep["crashed_tid"] for a in also), f"also_faulting {also}")
            named += bool(also)
        R.add(g, name, short(caught(cmd, "$TMP")), c.ok, c.text())
    R.set_note(g, name, f"also_faulting named the second thread in {named} of {reps} runs (see below)")


def t_blocked(reps):
    g, name = "Faults", "crash while other threads block in read(pipe), nanosleep, futex, cond_wait"
    cmd = prog("faults", "blocked")
    for _ in range(reps):
        r, rc, reps_, left = crash_run(cmd)
        c = Check()
        c.expect(rc == -signal.SIGSEGV, rc_text(rc))
        c.expect(len(reps_) == 1, f"{len(reps_)} reports")
        c.expect(left is None, left or "")
        want = {int(t) for t in re.findall(r"(?:reader|napper|futex|cond|main) (\d+)", r.stdout)}
        if reps_ and c.expect(len(want) == 5, f"stdout {r.stdout!r}"):
            got = {t["tid"]: t for t in reps_[0]["threads"]}
            c.expect(want <= set(got), f"threads {sorted(got)} lack some of {sorted(want)}")
            c.expect(all(got[t].get("frames") for t in want if t in got), "a thread without frames")
            c.expect(not reps_[0].get("notes"), f"notes: {reps_[0].get('notes')}")
        c.expect(r.took < 10, f"took {r.took:.1f} s")
        R.add(g, name, short(caught(cmd, "$TMP")), c.ok, c.text())


def t_fork_crash(reps):
    g, name = "Faults", "crash while two threads fork in a loop (crash after 1..100 ms)"
    for i in range(reps):
        ms = 1 + (i * 37) % 100
        cmd = prog("faults", "fork_crash", ms)
        r, rc, reps_, left = crash_run(cmd)
        c = Check()
        c.expect(rc == -signal.SIGSEGV, rc_text(rc))
        c.expect(len(reps_) == 1, f"{len(reps_)} reports")
        c.expect(left is None, left or "")
        main = re.search(r"main (\d+)", r.stdout)
        if reps_ and main:
            c.expect(reps_[0]["crashed_tid"] == int(main.group(1)), "the report is not the main thread's")
        R.add(g, name, short(caught(prog("faults", "fork_crash", "MS"), "$TMP")), c.ok, c.text())


def t_handler(reps):
    g = "Faults"
    for mode, name in (("handler", "crash inside a SIGUSR1 handler"),
                       ("altstack", "second fault inside a SIGSEGV handler on sigaltstack")):
        cmd = prog("faults", mode)
        for _ in range(reps):
            r, rc, reps_, left = crash_run(cmd)
            b = subprocess.run(cmd, capture_output=True).returncode
            c = Check()
            c.expect(rc == b == -signal.SIGSEGV, f"bare {rc_text(b)}, crashcatch {rc_text(rc)}")
            c.expect(len(reps_) == 1, f"{len(reps_)} reports")
            c.expect(left is None, left or "")
            R.add(g, name, short(caught(cmd, "$TMP")), c.ok, c.text())


def all_gone(pids, limit=3.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        live = [p for p in pids if (stat(p) or ("Z",))[0] not in "ZX"]
        if not live:
            return []
        time.sleep(0.02)
    return live


def t_kill_run_mode(reps):
    g, name = "Faults", "crashcatch killed with SIGKILL in run mode: the traced tree dies with it"
    for i in range(reps):
        out = tempfile.mkdtemp(prefix="cc-stress-")
        flood = i % 2 == 1
        cmd = prog("churn", "sigcount", 10**9) if flood else prog("faults", "sleeper")
        r = Run(caught(cmd, out), stdin=False)
        pids = [r.pid_line()]
        if not flood:
            pids.append(r.pid_line())
        c = Check()
        sender = None
        if c.expect(all(pids), "no pid lines"):
            if flood:
                # Killed while the tracee is busy stopping at every signal.
                sender = subprocess.Popen(prog("sigflood", pids[0], 10**6), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                time.sleep(0.3)
            else:
                time.sleep(0.05)
            os.kill(r.p.pid, signal.SIGKILL)
            r.finish(10)
            live = all_gone(pids)
            c.expect(not live, f"still alive after crashcatch died: {[(p, stat(p)) for p in live]}")
        if sender:
            sender.kill()
            sender.wait()
        left = leftovers(r.pgrp, grace=1.0)
        c.expect(left is None, left or "")
        shutil.rmtree(out, ignore_errors=True)
        R.add(g, name, short(caught(prog("faults", "sleeper"), "$TMP")) + "  (and churn sigcount under a signal flood); kill -9 crashcatch",
              c.ok, c.text())


def t_attach(reps):
    g = "Faults"
    for how, name in ((signal.SIGKILL, "attach mode, crashcatch killed with SIGKILL: target lives on, not stopped"),
                      (signal.SIGTERM, "attach mode, crashcatch gets SIGTERM: detaches, target lives on"),
                      (signal.SIGINT, "attach mode, crashcatch gets SIGINT: detaches, target lives on")):
        for i in range(reps):
            target = Run(prog("faults", "busy"))
            pid = target.pid_line()
            c = Check()
            a = None
            if c.expect(pid is not None, "no pid"):
                a = subprocess.Popen([CC, "attach", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=os.setpgrp)
                ready = select.select([a.stderr], [], [], 10)[0]
                c.expect(bool(ready) and b"attached" in a.stderr.readline(), "attach did not say it attached")
                if i % 2:
                    # Some traffic while attached: signals that stop and wake the tracee.
                    for _ in range(200):
                        os.kill(pid, signal.SIGWINCH)
                    target.send("while attached\n")
                    c.expect(target.line_matching("got while attached$", 5) is not None, "target not answering while attached")
                os.kill(a.pid, how)
                try:
                    a.wait(10)
                except subprocess.TimeoutExpired:
                    a.kill()
                    a.wait()
                    c.expect(False, "crashcatch attach did not end")
                if how != signal.SIGKILL:
                    c.expect(a.returncode == 0, f"crashcatch attach {rc_text(a.returncode)}")
                time.sleep(0.1)
                states = thread_states(pid)
                c.expect(len(states) == 4, f"target threads {states}")
                c.expect(not any(s in "tT" for s in states.values()), f"target left stopped: {states}")
                c.expect(tracer_pid(pid) == 0, f"still traced by {tracer_pid(pid)}")
                target.send("after\n")
                c.expect(target.line_matching("got after$", 5) is not None, "target does not answer after crashcatch ended")
            target.close_stdin()
            rc = target.finish(10)
            c.expect(rc == 0, f"target {rc_text(rc)}")
            leftovers(target.pgrp, grace=1.0)
            R.add(g, name, f"crashcatch attach PID  (PID: stress/faults busy); kill -{signal.Signals(how).name[3:]}",
                  c.ok, c.text())


# ---------------------------------------------------------------------------------------------
# The property tests and the report-file tests (cargo, debug profile: the one `make test` builds)


# ---------------------------------------------------------------------------------------------
# Hostile targets (issue 11): tests/data/hostile/attack.py under crashcatch; crashcatch's own
# peak RSS (VmHWM, read from /proc after its report, while the command still runs).

ATTACK = os.path.join(ROOT, "tests", "data", "hostile", "attack.py")
MAX_RSS_KB = 100 * 1024
MAX_REPORT_MS = 2000.0


def vm_hwm_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def hostile_run(mode, args, secret_marker=None):
    """One attack; returns (problem or None, peak RSS kB, report ms)."""
    work = tempfile.mkdtemp(prefix="cc-hostile-")
    os.chmod(work, 0o755)
    out = tempfile.mkdtemp(prefix="cc-stress-")
    err = open(os.path.join(out, ".stderr"), "wb+")
    cmd = [CC, "--output-dir", out, "--format", "json", "-q", "--", "/usr/bin/python3", ATTACK, mode, work, *args]
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    peak, problem, ms = 0, None, None
    deadline = time.time() + 120
    while not glob.glob(os.path.join(out, "crash-*.txt")):
        if p.poll() is not None or time.time() > deadline:
            problem = f"no report ({rc_text(p.poll())})"
            break
        peak = max(peak, vm_hwm_kb(p.pid) or 0)
        time.sleep(0.01)
    peak = max(peak, vm_hwm_kb(p.pid) or 0)
    open(os.path.join(work, "done"), "w").close()
    try:
        rc = p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        problem = problem or "crashcatch did not end after its report"
    if problem is None:
        rep = json.load(open(glob.glob(os.path.join(out, "crash-*.json"))[0]))
        ms = rep["timings"]["total_ms"]
        everything = open(glob.glob(os.path.join(out, "crash-*.txt"))[0]).read() + json.dumps(rep)
        err.seek(0)
        everything += err.read().decode(errors="replace")
        if rc != 0:
            problem = f"the command ended with {rc_text(rc)}, not exit 0"
        elif peak > MAX_RSS_KB:
            problem = f"peak RSS {peak} kB"
        elif ms > MAX_REPORT_MS:
            problem = f"report took {ms} ms"
        elif secret_marker and secret_marker in everything:
            problem = "a root-only line leaked into the report"
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return problem, peak, ms


def t_hostile(reps):
    g = "Hostile"
    if not os.path.exists("/usr/bin/python3"):
        R.add(g, "attacks", "", False, "no /usr/bin/python3")
        return
    secrets = tempfile.mkdtemp(prefix="cc-secret-")
    os.chmod(secrets, 0o755)
    secret, public = os.path.join(secrets, "shadow"), os.path.join(secrets, "public.py")
    with open(secret, "w") as f:
        f.write("SECRET-LINE-d41d8cd98f00b204\n")
    os.chmod(secret, 0o600)
    with open(public, "w") as f:
        f.write("# first\nPUBLIC = 1\n")
    os.chmod(public, 0o644)
    attacks = [
        ("target as nobody names a root-only file (line 1) as its source: nothing of it shown",
         "disclose", [secret, public], "SECRET-LINE"),
        ("an 8 MiB source named under 126 spellings by 21 threads", "bigsrc", ["20"], None),
        ("305 source files of 256 KiB, one per frame of 61 threads", "manyfiles", ["60"], None),
        ("40 threads 2,000 frames deep, file names of 4,000 characters", "longnames", ["40", "2000"], None),
    ]
    for case, mode, args, marker in attacks:
        if mode == "disclose" and os.geteuid() != 0:
            continue
        peaks, times = [], []
        for _ in range(reps):
            problem, peak, ms = hostile_run(mode, args, marker)
            peaks.append(peak)
            if ms is not None:
                times.append(ms)
            R.add(g, case, short([CC, "--output-dir", "$TMP", "--", "python3", "tests/data/hostile/attack.py", mode, "DIR", *(
                ["SECRET", "PUBLIC"] if mode == "disclose" else args)]), problem is None, problem)
        R.set_note(g, case, f"lost: nothing; peak RSS max {max(peaks) / 1024:.1f} MB; report max {max(times or [0]):.0f} ms")
    shutil.rmtree(secrets, ignore_errors=True)
    # SIGTERM in the first 0-5 ms: the command must end by it, every time.
    case = "SIGTERM sent 0-5 ms after start: the command ends by it (143)"
    for i in range(100 * reps):
        p = subprocess.Popen([CC, "-q", "--", "sleep", "5"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep((i * 7919 % 5000) / 1e6)
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            rc = "timeout"
        R.add(g, case, "crashcatch -q -- sleep 5; kill -TERM after 0-5 ms", rc == -signal.SIGTERM, f"ended with {rc}",
              "lost: nothing")


def cargo_test(args, env=None):
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(["cargo", "test", "-q", *args], cwd=ROOT, capture_output=True, text=True, env=e, timeout=900)
    out = p.stdout + p.stderr
    m = re.findall(r"test result: (\w+)\. (\d+) passed; (\d+) failed", out)
    return p.returncode == 0, out, m


def t_cargo(k):
    g = "Bad memory"
    cases = 1024 * k
    ok, out, _ = cargo_test(["--test", "fuzz_elf", "--", "--nocapture"], {"CRASHCATCH_FUZZ_CASES": str(cases)})
    counts = dict(re.findall(r"fuzz_elf: ([^:]+): (\d+) cases", out))
    cmd = f"CRASHCATCH_FUZZ_CASES={cases} cargo test --test fuzz_elf"
    for what, name in (("mutated libccfix.so", "mutated copies of a real .so (symbols, DWARF, CFI): ElfInfo, ModuleSet, Symbolizer, unwinder"),
                       ("truncated/damaged libc.so.6", "truncated/damaged copies of libc.so.6: same path")):
        n = int(counts.get(what, 0))
        row_add(g, name, cmd, n, n if ok else 0, "" if ok else out[-2000:])
    ok, out, _ = cargo_test(["--test", "python_fuzz"])
    row_add(g, "Python walker over mutated, mis-typed and random images (3 properties x 512 cases)",
            "cargo test --test python_fuzz", 1536, 1536 if ok else 0, "" if ok else out[-2000:])
    ok, out, _ = cargo_test(["--lib", "unwind::tests::fuzz"])
    row_add(g, "unwinder over random registers and stacks (256 synthetic + 96 on this process's modules)",
            "cargo test --lib unwind::tests::fuzz", 352, 352 if ok else 0, "" if ok else out[-2000:])
    ok, out, res = cargo_test(["--test", "report_files"])
    passed = sum(int(r[1]) for r in res)
    failed = sum(int(r[2]) for r in res)
    row_add("Report files", "0700/0600, planted symlinks, full tmpfs, unwritable folder, env allow-list / --show-env (7 tests)",
            "cargo test --test report_files", passed + failed, passed, "" if ok else out[-2000:])


def row_add(group, case, cmd, runs, passed, problem):
    R.rows.append([group, case, runs, passed, cmd, ""])
    if runs == 0 or passed < runs:
        R.failures.append(f"{group} / {case}: {problem or 'no cases ran'}")
        print(f"  FAIL {case}: {problem[-500:] or 'no cases ran'}", flush=True)


# ---------------------------------------------------------------------------------------------
# RELIABILITY.md


BEGIN, END = "<!-- stress-results -->", "<!-- /stress-results -->"


def table(extra):
    lines = [BEGIN, "",
             f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `make stress` on {os.cpu_count()} cores.",
             "", "| group | case | runs | passed | command | notes |", "| --- | --- | ---: | ---: | --- | --- |"]
    for gname, case, runs, passed, cmd, note in R.rows + extra:
        note = note.replace("|", "\\|")
        cmd = cmd.replace("|", "\\|")
        lines.append(f"| {gname} | {case} | {runs} | {passed} | `{cmd}` | {note} |")
    lines += ["", END]
    return "\n".join(lines)


def write_md(extra):
    text = open(MD).read() if os.path.exists(MD) else f"# Reliability\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    a = text.index(BEGIN)
    b = text.index(END) + len(END)
    text = text[:a] + table(extra) + text[b:]
    with open(MD, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--extra", action="append", default=[], help="GROUP|CASE|RUNS|PASSED|COMMAND|NOTE")
    ap.add_argument("--scale", type=int, default=1, help="repeat counts multiplier")
    args = ap.parse_args()
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not os.access(CC, os.X_OK):
        sys.exit(f"{CC} is missing: make build")
    k = args.scale
    steps = [
        ("exit", t_exit_codes), ("raise", lambda: t_raise(2 * k)), ("sent", lambda: t_sent(2 * k)),
        ("blockignore", lambda: t_block_ignore(5 * k)), ("jobcontrol", lambda: t_job_control(3 * k)),
        ("churn", lambda: t_churn(2 * k)), ("flood", lambda: t_signal_flood(2 * k)),
        ("two", lambda: t_two_faults(40 * k)), ("blocked", lambda: t_blocked(10 * k)),
        ("forkcrash", lambda: t_fork_crash(30 * k)), ("handler", lambda: t_handler(10 * k)),
        ("killrun", lambda: t_kill_run_mode(10 * k)), ("attach", lambda: t_attach(6 * k)),
        ("cargo", lambda: t_cargo(k)), ("hostile", lambda: t_hostile(3 * k)),
    ]
    t0 = time.time()
    for name, fn in steps:
        if args.only and args.only not in name:
            continue
        s = time.time()
        print(f"stress: {name} ...", flush=True)
        fn()
        print(f"stress: {name} done in {time.time() - s:.1f} s", flush=True)
    extra = []
    for e in args.extra:
        parts = e.split("|")
        extra.append([parts[0], parts[1], int(parts[2]), int(parts[3]), parts[4], parts[5] if len(parts) > 5 else ""])
    runs = sum(r[2] for r in R.rows)
    passed = sum(r[3] for r in R.rows)
    for r in R.rows:
        print(f"  {r[3]:>5}/{r[2]:<5} {r[0]}: {r[1]}" + (f" [{r[5]}]" if r[5] else ""))
    print(f"stress: {runs} runs, {passed} passed in {time.time() - t0:.0f} s")
    if not args.no_write:
        write_md(extra)
        print(f"stress: results written to {os.path.relpath(MD, ROOT)}")
    if R.failures:
        print("stress: FAILURES:\n  " + "\n  ".join(R.failures[:50]))
        print(f"stress: {passed} passed, {runs - passed} failed")
        sys.exit(1)
    print(f"stress: {passed} passed, 0 failed")


if __name__ == "__main__":
    main()

"""pytest --crashcatch, end to end: every run is a real pytest in a subprocess
(pytester.runpytest_subprocess) whose tests really crash (ctypes.string_at(0)), compared with
the same run without the plugin."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from crashcatch import find_binary
from crashcatch.pytest_plugin import GUARD_ENV, command_line

CRASHING = """
import ctypes

def test_ok():
    assert True

def helper():
    return ctypes.string_at(0)

def test_crash():
    helper()

def test_after():
    assert 1 + 1 == 2
"""

PASSING = """
def test_one():
    assert True

def test_two():
    assert 2 * 2 == 4
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CRASHCATCH") and name != "CRASHCATCH_BINARY":
            monkeypatch.delenv(name)
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(name, raising=False)


def binary() -> str:
    found = find_binary()
    assert found, "the crashcatch binary (CRASHCATCH_BINARY, next to python or on PATH)"
    return found


def reports(folder: Path) -> List[Dict[str, Any]]:
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def summary_line(lines: List[str]) -> str:
    """pytest's last line without its duration: `=== 2 passed in 0.12s ===` → `2 passed`."""
    last = [ln for ln in lines if ln.startswith("=") and " in " in ln]
    return re.sub(r" in [0-9.]+s.*", "", last[-1]).strip("= ") if last else ""


def without_noise(lines: List[str]) -> List[str]:
    """pytest's output with what changes from run to run (durations, the temporary folder,
    the worker's random ids) taken out."""
    out = []
    for ln in lines:
        ln = re.sub(r"in [0-9.]+s", "in Ns", ln)
        ln = re.sub(r"\[gw\d+\]", "[gw]", ln)
        if ln.startswith(("rootdir:", "platform ", "cachedir:", "plugins:", "created:")):
            continue
        out.append(ln)
    return out


def test_a_crash_is_reported_and_pytest_dies_as_it_would(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytester.makepyfile(test_native=CRASHING)
    bare = pytester.runpytest_subprocess(*plugin_args, "-p", "no:cacheprovider")
    assert bare.ret == -signal.SIGSEGV, bare.stderr.str()
    caught = pytester.runpytest_subprocess(
        *plugin_args, "-p", "no:cacheprovider", "--crashcatch", "--crashcatch-output-dir", "reports"
    )
    assert caught.ret == bare.ret, caught.stderr.str()
    # pytest's own output is the same (faulthandler's dump included).
    assert without_noise(caught.outlines) == without_noise(bare.outlines)
    (report,) = reports(pytester.path / "reports")
    assert report["signal"]["name"] == "SIGSEGV"
    assert report["process"]["test"] == "test_native.py::test_crash (call)"
    assert re.fullmatch(r"[0-9a-f]{12}", report["fingerprint"]), report.get("fingerprint")
    assert report["python_user_frame"]["function"] == "helper"
    assert f"fingerprint  {report['fingerprint']}" in caught.stderr.str()


HANGING = """
import ctypes

def test_ok():
    assert True

def test_hangs_in_libc():
    ctypes.CDLL(None).sleep(1000)

def test_after():
    assert True
"""


def test_a_hung_test_is_reported_and_the_run_goes_on(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_hang=HANGING)
    caught = pytester.runpytest_subprocess(
        *plugin_args, "-n", "2", "--crashcatch-test-timeout", "2", "--crashcatch-output-dir", "reports", timeout=120
    )
    assert caught.ret == pytest.ExitCode.TESTS_FAILED, caught.stderr.str()
    caught.assert_outcomes(passed=2, failed=1)
    (report,) = reports(pytester.path / "reports")
    assert report["kind"] == "hang"
    assert report["test_timeout"]["test"] == "test_hang.py::test_hangs_in_libc (call)"
    assert report["test_timeout"]["action"] == "kill"
    main = next(t for t in report["threads"] if t["main"])
    assert any(f["kind"] == "python" and f["function"] == "test_hangs_in_libc" for f in main["frames"])


def test_xdist_workers_are_watched_and_results_unchanged(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_native=CRASHING)
    bare = pytester.runpytest_subprocess(*plugin_args, "-n", "2")
    caught = pytester.runpytest_subprocess(
        *plugin_args, "-n", "2", "--crashcatch", "--crashcatch-output-dir", "reports"
    )
    assert bare.ret == caught.ret == 1, caught.stdout.str()
    assert summary_line(caught.outlines) == summary_line(bare.outlines)
    assert "worker 'gw" in caught.stdout.str() and "crashed while running" in caught.stdout.str()
    (report,) = reports(pytester.path / "reports")
    # crashcatch's last word comes before pytest's parent sees it exit (it holds the session's
    # main thread at its exit while it writes).
    assert f"crashcatch: 1 crash: pid {report['process']['pid']} SIGSEGV" in caught.stderr.str(), caught.stderr.str()
    assert report["process"]["test"] == "test_native.py::test_crash (call)"
    # The same crash serially: the same fingerprint.
    serial = pytester.runpytest_subprocess(
        *plugin_args, "-p", "no:cacheprovider", "--crashcatch", "--crashcatch-output-dir", "serial"
    )
    assert serial.ret == -signal.SIGSEGV
    (again,) = reports(pytester.path / "serial")
    assert again["fingerprint"] == report["fingerprint"]
    assert again["process"]["pid"] != report["process"]["pid"]


def test_junitxml_cacheprovider_and_output_are_unchanged(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytester.makepyfile(test_fine=PASSING)
    xml = pytester.path / "junit.xml"
    bare = pytester.runpytest_subprocess(*plugin_args, "--junitxml=junit.xml", "-v")
    bare_xml = xml.read_text()
    xml.unlink()
    caught = pytester.runpytest_subprocess(*plugin_args, "--junitxml=junit.xml", "-v", "--crashcatch")
    assert bare.ret == caught.ret == 0
    assert without_noise(caught.outlines) == without_noise(bare.outlines)
    assert caught.stderr.str() == bare.stderr.str() == ""
    for text in (bare_xml, xml.read_text()):
        assert 'tests="2"' in text and 'name="test_two"' in text, text
    assert (pytester.path / ".pytest_cache" / "v" / "cache" / "nodeids").exists()


def test_the_session_really_runs_under_crashcatch(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytester.makepyfile(
        test_tracer="""
        import os

        def test_tracer():
            status = open("/proc/self/status").read()
            tracer = [l.split()[1] for l in status.splitlines() if l.startswith("TracerPid:")][0]
            comm = open("/proc/%s/comm" % tracer).read().strip() if tracer != "0" else ""
            open("tracer.txt", "w").write(comm + " " + os.environ.get("CRASHCATCH_PYTEST_SESSION", ""))
        """
    )
    result = pytester.runpytest_subprocess(*plugin_args, "--crashcatch")
    assert result.ret == 0, result.stdout.str()
    comm, guard = (pytester.path / "tracer.txt").read_text().split(" ")
    assert comm == "crashcatch"
    assert guard.isdigit()


@pytest.mark.parametrize(
    "how",
    ["ini", "env", "positional-after-flag"],
)
def test_ways_to_turn_it_on(pytester: pytest.Pytester, plugin_args: List[str], monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    pytester.makepyfile(test_native=CRASHING)
    args = [*plugin_args, "-p", "no:cacheprovider"]
    if how == "ini":
        pytester.makeini("[pytest]\ncrashcatch = true\n")
    elif how == "env":
        monkeypatch.setenv("CRASHCATCH", "1")
    else:
        # `--crashcatch PATH`: the path stays a path (only `--crashcatch=required` takes a value).
        args += ["--crashcatch", "test_native.py"]
    monkeypatch.setenv("CRASHCATCH_OUTPUT_DIR", str(pytester.path / "reports"))
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == -signal.SIGSEGV
    assert len(reports(pytester.path / "reports")) == 1


def test_off_and_the_guard_keep_it_from_running(pytester: pytest.Pytester, plugin_args: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_native=CRASHING)
    monkeypatch.setenv("CRASHCATCH_OUTPUT_DIR", str(pytester.path / "reports"))
    pytester.makeini("[pytest]\ncrashcatch = true\n")
    off = pytester.runpytest_subprocess(*plugin_args, "-p", "no:cacheprovider", "--no-crashcatch")
    assert off.ret == -signal.SIGSEGV
    monkeypatch.setenv(GUARD_ENV, "1")
    guarded = pytester.runpytest_subprocess(*plugin_args, "-p", "no:cacheprovider")
    assert guarded.ret == -signal.SIGSEGV
    assert reports(pytester.path / "reports") == []


def test_already_under_crashcatch_it_does_nothing(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """`crashcatch -- pytest --crashcatch`: the session is traced once (a second crashcatch
    could not trace what the first already does) and the crash reported once."""
    pytester.makepyfile(test_native=CRASHING)
    result = pytester.run(
        binary(), "--output-dir", "reports", "--",
        sys.executable, "-m", "pytest", *plugin_args, "-p", "no:cacheprovider", "--crashcatch",
    )
    assert result.ret == 128 + signal.SIGSEGV or result.ret == -signal.SIGSEGV, result.stderr.str()
    assert len(reports(pytester.path / "reports")) == 1
    assert "not catching" not in result.stderr.str()


def fake_binary(folder: Path, message: str, status: int) -> str:
    """A stand-in for a crashcatch that cannot trace here (ptrace denied by the kernel, a
    seccomp profile or a container without CAP_SYS_PTRACE), as the real one says it to the
    plugin (src/supervise/session.rs): `error: WHY` on the descriptor it is given."""
    path = folder / "fake-crashcatch"
    path.write_text(
        "#!/bin/sh\n"
        'while [ $# -gt 0 ]; do [ "$1" = --notify-fd ] && fd=$2; shift; done\n'
        f"eval \"echo 'error: {message}' >&$fd\"\n"
        f"exit {status}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_when_ptrace_is_denied_it_says_why_and_runs_without(pytester: pytest.Pytester, plugin_args: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_fine=PASSING)
    why = "cannot trace the command: ptrace(PTRACE_TRACEME): Operation not permitted"
    monkeypatch.setenv("CRASHCATCH_BINARY", fake_binary(pytester.path, why, 125))
    result = pytester.runpytest_subprocess(*plugin_args, "--crashcatch")
    assert result.ret == 0
    assert result.errlines == [f"crashcatch: not catching crashes in this session: {why}"]
    assert summary_line(result.outlines) == "2 passed"
    required = pytester.runpytest_subprocess(*plugin_args, "--crashcatch=required", "test_fine.py")
    assert required.ret == pytest.ExitCode.USAGE_ERROR
    assert f"crashcatch cannot run this session: {why}" in required.stderr.str()
    assert "passed" not in required.stdout.str()


def test_a_missing_binary_is_said_once(pytester: pytest.Pytester, plugin_args: List[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_fine=PASSING)
    nowhere = pytester.path / "nowhere"
    monkeypatch.setenv("CRASHCATCH_BINARY", str(nowhere))
    monkeypatch.setenv("CRASHCATCH", "yes")
    result = pytester.runpytest_subprocess(*plugin_args)
    assert result.ret == 0
    # The variable that points nowhere is named, with where it points.
    assert result.errlines == [f"crashcatch: not catching crashes in this session: $CRASHCATCH_BINARY is {nowhere}: no such file"]
    required = pytester.runpytest_subprocess(*plugin_args, "--crashcatch=required")
    assert required.ret == pytest.ExitCode.USAGE_ERROR
    assert f"$CRASHCATCH_BINARY is {nowhere}: no such file" in required.stderr.str()
    monkeypatch.setenv("CRASHCATCH", "maybe")
    bad = pytester.runpytest_subprocess(*plugin_args)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "use true, false or required" in bad.stderr.str()


def test_a_bad_value_lists_the_choices(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytester.makepyfile(test_fine=PASSING)
    bad = pytester.runpytest_subprocess(*plugin_args, "--crashcatch=maybe")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    err = bad.stderr.str()
    assert "--crashcatch=maybe: not a choice; use --crashcatch, --crashcatch=required or --crashcatch=off" in err, err
    assert "passed" not in bad.stdout.str()


def test_the_output_dir_in_the_space_form_keeps_the_rootdir(pytester: pytest.Pytester, plugin_args: List[str], tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--crashcatch-output-dir DIR` with DIR an existing folder outside the project: pytest
    reads DIR as a test path when it looks for its rootdir and ini file, before the plugin is
    loaded. The session must still run in the project's rootdir with its ini file (which here
    decides which files are tests), and the report must go to DIR."""
    pytester.makeini("[pytest]\npython_files = check_*.py\n")
    pytester.makepyfile(check_native=CRASHING)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = pytester.runpytest_subprocess(
        *plugin_args, "-p", "no:cacheprovider", "--crashcatch", "--crashcatch-output-dir", str(elsewhere)
    )
    out = result.stdout.str()
    assert f"rootdir: {pytester.path}" in out, out
    assert result.ret == -signal.SIGSEGV, out
    (report,) = reports(elsewhere)
    assert report["process"]["test"] == "check_native.py::test_crash (call)"


def test_command_line_is_this_interpreters() -> None:
    argv = command_line()
    assert argv[0] == sys.executable
    if hasattr(sys, "orig_argv"):
        assert argv[1:] == sys.orig_argv[1:]


def test_pytest_starts_once(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """The session is watched where it stands: a plugin given with -p (imported before any
    hook) is imported once, in the one pytest process there is."""
    pytester.makepyfile(counter="open('starts.txt', 'a').write('x')\n", test_fine=PASSING)
    result = pytester.runpytest_subprocess(*plugin_args, "-p", "counter", "--crashcatch")
    assert result.ret == 0, result.stderr.str()
    assert (pytester.path / "starts.txt").read_text() == "x"
    assert result.stderr.str() == ""


WATCHER_KILLED = """
import os, signal, time

def tracer():
    status = open("/proc/self/status").read()
    return int([l.split()[1] for l in status.splitlines() if l.startswith("TracerPid:")][0])

def test_kill_the_watcher():
    watcher = tracer()
    assert open("/proc/%d/comm" % watcher).read().strip() == "crashcatch"
    os.kill(watcher, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while tracer() != 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tracer() == 0

def test_after():
    assert tracer() == 0
"""


def test_a_dead_watcher_leaves_the_session_running_untraced(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """crashcatch never holds the session with PTRACE_O_EXITKILL: killed, it lets go (the
    kernel detaches it) and the session runs on, untraced, to its own end."""
    pytester.makepyfile(test_watcher=WATCHER_KILLED)
    result = pytester.runpytest_subprocess(*plugin_args, "-p", "no:cacheprovider", "--crashcatch", "-v")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2)


TRACER = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
pid = os.fork()
if pid == 0:
    libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME: this other tracer has the session
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):
        sys.exit(os.WEXITSTATUS(status))
    if os.WIFSIGNALED(status):
        sys.exit(128 + os.WTERMSIG(status))
    sig = os.WSTOPSIG(status)
    libc.ptrace(7, pid, None, ctypes.c_void_p(0 if sig == signal.SIGTRAP else sig))  # PTRACE_CONT
"""


def test_a_session_another_tracer_has_is_said_and_required_fails(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """A real refusal: the session is already traced by another program (a debugger). crashcatch
    says why in one line, seizes nothing, and the session runs, or fails with `required`."""
    pytester.makepyfile(test_fine=PASSING)
    tracer = pytester.makepyfile(other_tracer=TRACER)
    pytest_cmd = [sys.executable, "-m", "pytest", *plugin_args, "-p", "no:cacheprovider"]
    result = pytester.run(sys.executable, str(tracer), *pytest_cmd, "--crashcatch")
    assert result.ret == 0, result.stderr.str()
    (line,) = result.errlines
    assert line.startswith("crashcatch: not catching crashes in this session: pid ") and "is already traced by pid" in line, line
    assert summary_line(result.outlines) == "2 passed"
    required = pytester.run(sys.executable, str(tracer), *pytest_cmd, "--crashcatch=required")
    assert required.ret == pytest.ExitCode.USAGE_ERROR, required.stderr.str()
    assert "crashcatch cannot run this session: pid " in required.stderr.str()
    assert "passed" not in required.stdout.str()


def junit_cases(path: Path) -> List[Any]:
    import xml.etree.ElementTree as ET

    root = ET.parse(str(path)).getroot()
    assert not [s for s in root.iter("testsuite") if s.get("name") == "crashcatch"], path.read_text()
    return list(root.iter("testcase"))


def test_junitxml_gets_the_crash_in_the_tests_own_testcase(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """`pytest -n 2 --crashcatch --junitxml=F`, nothing else: crashcatch's report and fingerprint
    go into F, in the testcase pytest wrote for the crashed test (xdist's "worker crashed"
    error), once: F has as many testcases as there are tests, as without crashcatch."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_native=CRASHING)
    bare = pytester.runpytest_subprocess(*plugin_args, "-n", "2", "--junitxml=bare.xml")
    caught = pytester.runpytest_subprocess(
        *plugin_args, "-n", "2", "--crashcatch", "--junitxml=junit.xml", "--crashcatch-output-dir=reports"
    )
    assert bare.ret == caught.ret == 1, caught.stderr.str()
    (report,) = reports(pytester.path / "reports")
    cases = junit_cases(pytester.path / "junit.xml")
    assert len(cases) == len(junit_cases(pytester.path / "bare.xml")) == 3
    (crashed,) = [c for c in cases if c.get("name") == "test_crash"]
    props = {p.get("name"): p.get("value") for p in crashed.iter("property")}
    assert props["crashcatch.kind"] == "crash"
    assert props["crashcatch.fingerprint"] == report["fingerprint"]
    (error,) = [e for e in crashed if e.tag in ("error", "failure")]
    assert error.get("message", "").startswith("SIGSEGV") and "crashed while running" in error.get("message", "")
    assert "was killed by SIGSEGV" in (error.text or "") and report["fingerprint"] in (error.text or "")
    for passed in ("test_ok", "test_after"):
        (case,) = [c for c in cases if c.get("name") == passed]
        assert len(case) == 0, passed


def test_junitxml_gets_a_test_timeout_in_the_tests_own_testcase(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_hang=HANGING)
    caught = pytester.runpytest_subprocess(
        *plugin_args, "-n", "2", "--crashcatch-test-timeout", "2", "--junitxml=junit.xml", timeout=120
    )
    assert caught.ret == pytest.ExitCode.TESTS_FAILED, caught.stderr.str()
    cases = junit_cases(pytester.path / "junit.xml")
    assert len(cases) == 3
    (hung,) = [c for c in cases if c.get("name") == "test_hangs_in_libc"]
    props = {p.get("name"): p.get("value") for p in hung.iter("property")}
    assert props["crashcatch.kind"] == "timeout"
    (error,) = [e for e in hung if e.tag in ("error", "failure")]
    assert error.get("message", "").startswith("test ran longer than 2 s")


def test_a_serial_crash_still_leaves_a_junit_file(pytester: pytest.Pytester, plugin_args: List[str]) -> None:
    """Serially pytest dies with the crash and never writes F: crashcatch writes it, with the
    crash as the test's testcase (the one test pytest would not report)."""
    import xml.etree.ElementTree as ET

    pytester.makepyfile(test_native=CRASHING)
    caught = pytester.runpytest_subprocess(*plugin_args, "-p", "no:cacheprovider", "--crashcatch", "--junitxml=junit.xml")
    assert caught.ret == -signal.SIGSEGV
    root = ET.parse(str(pytester.path / "junit.xml")).getroot()
    (case,) = list(root.iter("testcase"))
    assert (case.get("classname"), case.get("name")) == ("test_native", "test_crash")
    assert [e.tag for e in case if e.tag == "error"] == ["error"]

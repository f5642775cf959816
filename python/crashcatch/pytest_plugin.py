"""pytest --crashcatch: the running pytest session watched by the crashcatch binary.

Turned on by ``--crashcatch`` (or ``--crashcatch=required``), by ``crashcatch = true`` (or
``required``) in the ini file, or by the environment variable ``CRASHCATCH=1`` (or ``required``).
At the earliest hook a plugin gets (``pytest_load_initial_conftests``: before output capture
starts, before xdist starts a worker), the plugin starts ``crashcatch session`` and allows it as
this process's tracer; crashcatch seizes every thread of the session where it stands and follows
everything the session starts (xdist workers, subprocesses). pytest is not started again: its
arguments, rootdir and plugins are the ones it already has. When crashcatch cannot watch here
(ptrace denied, binary missing) the session runs without it after one line saying why, unless
``required`` was asked for. How the two meet is in src/supervise/session.rs.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Generator, List, Optional, Tuple

import pytest

from . import locate_binary

#: Set in the environment once the session's process decided (its pid when it is watched, 0
#: when not): the processes it starts (xdist workers) are watched with it, and never try again.
GUARD_ENV = "CRASHCATCH_PYTEST_SESSION"
#: Set before the one restart this plugin may do (see :func:`joined_values`).
REEXEC_ENV = "CRASHCATCH_PYTEST_REEXEC"
#: Turns the plugin on like --crashcatch: 1/true/yes/auto, required, 0/false/no/off.
MODE_ENV = "CRASHCATCH"

MODES = ("auto", "required", "off")
_TRUE = ("1", "true", "yes", "on", "auto")
_FALSE = ("0", "false", "no", "off", "")

#: The values ``--crashcatch=VALUE`` takes (``--crashcatch`` alone is ``auto``).
CLI_VALUES = ("required", "off")
#: Our options that take a value: in the space form (``--crashcatch-output-dir DIR``) pytest
#: reads the value as a test path when it looks for its rootdir, before this plugin is loaded.
VALUE_OPTIONS = ("--crashcatch-output-dir", "--crashcatch-test-timeout", "--crashcatch-test-timeout-action")

#: How long crashcatch may take to say its pid, and then to seize the session.
HANDSHAKE_SECONDS = 10.0
#: prctl(2)'s PR_SET_PTRACER (Yama): lets the given process trace this one.
PR_SET_PTRACER = 0x59616D61


def _mode_word(value: str, where: str) -> str:
    v = value.strip().lower()
    if v in _TRUE:
        return "auto"
    if v in _FALSE:
        return "off"
    if v == "required":
        return "required"
    raise pytest.UsageError(f"crashcatch: {where} is {value!r}: use true, false or required")


def _check_values(args: List[str]) -> None:
    """``--crashcatch=maybe`` is refused with the values there are (argparse would only say it
    ignored an explicit argument)."""
    for arg in args:
        if arg == "--":
            return
        if arg.startswith("--crashcatch="):
            value = arg.split("=", 1)[1]
            if value not in CLI_VALUES:
                raise pytest.UsageError(
                    f"{arg}: not a choice; use --crashcatch, --crashcatch=required or --crashcatch=off"
                )


def _invocation_args(config: Any) -> List[str]:
    """The command line as given, with $PYTEST_ADDOPTS (the ini file's addopts are not known
    yet where this is needed)."""
    invocation = getattr(config, "invocation_params", None)
    args = list(invocation.args) if invocation is not None else []
    return [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *args]


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    config = pluginmanager.get_plugin("pytestconfig")
    if config is not None:
        _check_values(_invocation_args(config))
    group = parser.getgroup("crashcatch", "native crash reports (crashcatch)")
    # argparse matches a whole option string before it splits at '=', so `--crashcatch=required`
    # is an option of its own and `--crashcatch tests/` never takes `tests/` as a value.
    group.addoption(
        "--crashcatch",
        action="store_const",
        const="auto",
        dest="crashcatch",
        default=None,
        help="watch the session with crashcatch (if it cannot here, say why and run without it)",
    )
    group.addoption(
        "--crashcatch=required",
        action="store_const",
        const="required",
        dest="crashcatch",
        help="watch the session with crashcatch, or fail when it cannot here",
    )
    group.addoption(
        "--crashcatch=off",
        "--no-crashcatch",
        action="store_const",
        const="off",
        dest="crashcatch",
        help="do not watch the session (overrides the ini file and $CRASHCATCH)",
    )
    group.addoption(
        "--crashcatch-output-dir",
        dest="crashcatch_output_dir",
        default=None,
        metavar="DIR",
        help="write each crash report into DIR (crashcatch --output-dir; or $CRASHCATCH_OUTPUT_DIR)",
    )
    group.addoption(
        "--crashcatch-test-timeout",
        dest="crashcatch_test_timeout",
        default=None,
        metavar="SECONDS",
        help="report (with native stacks) and kill a process whose test runs longer than SECONDS "
        "(crashcatch --test-timeout; or $CRASHCATCH_TEST_TIMEOUT); turns --crashcatch on",
    )
    group.addoption(
        "--crashcatch-test-timeout-action",
        dest="crashcatch_test_timeout_action",
        default=None,
        choices=("kill", "term", "dump"),
        help="after a test timeout's report: kill (default; an xdist worker is replaced), term or dump",
    )
    parser.addini("crashcatch", "watch sessions with crashcatch: true, false or required", default="")


def _mode(config: pytest.Config) -> str:
    cli = getattr(config.known_args_namespace, "crashcatch", None)
    if cli:
        return str(cli)
    if getattr(config.known_args_namespace, "crashcatch_test_timeout", None):
        return "auto"
    env = os.environ.get(MODE_ENV)
    if env is not None:
        return _mode_word(env, f"${MODE_ENV}")
    ini = config.getini("crashcatch")
    return _mode_word(str(ini), "the ini option crashcatch") if ini else "off"


def traced_by_crashcatch() -> bool:
    """Whether this process is already traced by a crashcatch process (TracerPid's name)."""
    try:
        with open("/proc/self/status", encoding="utf-8", errors="replace") as f:
            tracer = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("TracerPid:")), "0")
        if tracer in ("", "0"):
            return False
        with open(f"/proc/{int(tracer)}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip().startswith("crashcatch")
    except (OSError, ValueError):
        return False


def command_line() -> List[str]:
    """This interpreter's own command line, to run again: ``python -m pytest ARGS``, the
    ``pytest`` script, an IDE's runner script, with the interpreter's own flags (-X, -W), our
    options' values joined to them (:func:`joined_values`)."""
    orig = getattr(sys, "orig_argv", None)  # 3.10+
    if orig:
        return [sys.executable, *joined_values(orig[1:])]
    flags: List[str] = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        name = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return [sys.executable, *flags, "-m", name, *joined_values(sys.argv[1:])]
    return [sys.executable, *flags, sys.argv[0], *joined_values(sys.argv[1:])]


def joined_values(args: List[str]) -> List[str]:
    """``--crashcatch-output-dir DIR`` written ``--crashcatch-output-dir=DIR`` (and so for our
    other options with a value): pytest reads a separate DIR as a test path when it looks for
    its rootdir and ini file, before any plugin is loaded."""
    out: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out.extend(args[i:])
            break
        if arg in VALUE_OPTIONS and i + 1 < len(args):
            out.append(f"{arg}={args[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def moved_rootdir(args: List[str]) -> bool:
    """Whether one of our options was given in the space form with a value pytest can take for
    a path that exists: then pytest may have looked for its rootdir and ini file there."""
    for opt, value in zip(args, args[1:]):
        if opt == "--":
            return False
        if opt in VALUE_OPTIONS and not value.startswith("-") and os.path.exists(value.split("::")[0]):
            return True
    return False


def session_args(config: pytest.Config) -> List[str]:
    """crashcatch's options for this session (the rest comes from the CRASHCATCH_* variables)."""
    ns = config.known_args_namespace
    args: List[str] = []
    out = getattr(ns, "crashcatch_output_dir", None)
    if out:
        args += ["--output-dir", os.path.abspath(str(out))]
    timeout = getattr(ns, "crashcatch_test_timeout", None)
    if timeout:
        args += ["--test-timeout", str(timeout)]
    action = getattr(ns, "crashcatch_test_timeout_action", None)
    if action:
        args += ["--test-timeout-action", str(action)]
    # pytest's own JUnit file (--junitxml, resolved as its junitxml plugin does): each crash goes
    # into the testcase of its test there. $CRASHCATCH_JUNIT_XML, when set, says otherwise.
    xml = getattr(ns, "xmlpath", None)
    if xml and not os.environ.get("CRASHCATCH_JUNIT_XML"):
        args += ["--junit-xml", os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xml))))]
    return args


class _Lines:
    """Lines from crashcatch's notify pipe, each waited for until one deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""

    def next(self, deadline: float) -> Optional[str]:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").strip()


def _allow_tracer(pid: int) -> None:
    """prctl(PR_SET_PTRACER, pid) where Yama asks for it (ptrace_scope 1: only ancestors may
    trace, and crashcatch is none); elsewhere it changes nothing and is not done."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope", encoding="ascii") as f:
            if f.read().strip() != "1":
                return
    except OSError:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(pid), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def start_watching(binary: str, args: List[str]) -> Optional[str]:
    """Has crashcatch watch this process (the handshake in src/supervise/session.rs); None when
    it does, else why not. Whatever happens, nothing is left holding this process: a crashcatch
    that did not say ``ok`` in time is killed, and the kernel lets go of what it seized."""
    notify_r, notify_w = os.pipe()
    go_r, go_w = os.pipe()
    watcher = -1
    try:
        argv = [binary, "session", *args, "--notify-fd", str(notify_w), "--go-fd", str(go_r), str(os.getpid())]
        try:
            first = subprocess.Popen(
                argv, pass_fds=(notify_w, go_r), stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as e:
            return f"{binary}: {e}"
        _close(notify_w, go_r)
        notify_w = go_r = -1
        lines = _Lines(notify_r)
        said = lines.next(time.monotonic() + HANDSHAKE_SECONDS)
        try:
            status = first.wait(timeout=HANDSHAKE_SECONDS)
        except subprocess.TimeoutExpired:
            first.kill()
            status = first.wait()
        if said is None or not said.startswith("pid "):
            if said and said.startswith("error: "):
                return said[len("error: ") :]
            return f"{binary} session did not start (exit status {status})"
        watcher = int(said[len("pid ") :])
        _allow_tracer(watcher)
        os.write(go_w, b"go\n")
        answer = lines.next(time.monotonic() + HANDSHAKE_SECONDS)
        if answer == "ok":
            watcher = -1
            return None
        if answer and answer.startswith("error: "):
            return answer[len("error: ") :]
        return f"crashcatch did not start watching within {HANDSHAKE_SECONDS:.0f} s"
    except (OSError, ValueError) as e:
        return f"{binary} session: {e}"
    finally:
        _close(notify_r, notify_w, go_r, go_w)
        if watcher > 0:
            try:
                os.kill(watcher, signal.SIGKILL)
            except OSError:
                pass


def _restart(config: pytest.Config) -> None:
    """Runs this session again, once, with our options' values joined to them, so pytest finds
    the rootdir and ini file it would have found."""
    capman: Any = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:  # not started yet when this hook runs first; stopped if it did
        capman.stop_global_capturing()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    env = dict(os.environ)
    env[REEXEC_ENV] = str(os.getpid())
    if env.get("PYTEST_ADDOPTS"):
        env["PYTEST_ADDOPTS"] = " ".join(shlex.quote(a) for a in joined_values(shlex.split(env["PYTEST_ADDOPTS"])))
    argv = command_line()
    os.execve(argv[0], argv, env)


def watch(config: pytest.Config) -> None:
    """Decides, once per session, whether crashcatch watches it, and has it do so."""
    mode = _mode(config)
    if mode == "off" or os.environ.get(GUARD_ENV) is not None or traced_by_crashcatch():
        return
    ns = config.known_args_namespace
    if getattr(ns, "help", False) or getattr(ns, "version", False):
        return
    binary, why = locate_binary()
    if binary is not None:
        why = start_watching(binary, session_args(config)) or ""
    # Decided, either way: the processes this session starts do not try again.
    os.environ[GUARD_ENV] = "0" if why else str(os.getpid())
    if why:
        if mode == "required":
            raise pytest.UsageError(f"crashcatch cannot run this session: {why}")
        sys.stderr.write(f"crashcatch: not catching crashes in this session: {why}\n")
        sys.stderr.flush()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    # Only the process the user started: an xdist worker has the session's arguments too, but
    # not its command line (and by then crashcatch may have made the folder).
    first = not any(os.environ.get(v) is not None for v in (REEXEC_ENV, GUARD_ENV, "PYTEST_XDIST_WORKER"))
    if first and moved_rootdir(_invocation_args(early_config)):
        try:
            _restart(early_config)
        except OSError:  # this process is still pytest, its rootdir as pytest found it
            pass
    watch(early_config)
    yield

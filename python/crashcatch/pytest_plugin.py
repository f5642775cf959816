"""pytest --crashcatch: run the whole pytest session under the crashcatch binary.

Turned on by ``--crashcatch`` (or ``--crashcatch=required``), by ``crashcatch = true`` (or
``required``) in the ini file, or by the environment variable ``CRASHCATCH=1`` (or ``required``).
At the earliest hook a plugin gets (``pytest_load_initial_conftests``, before output capture
starts) the process replaces itself, once, with ``crashcatch [--output-dir DIR] -- PYTHON ARGS``:
the same interpreter, arguments, working folder and environment, so pytest starts again under
crashcatch and everything it runs (xdist workers too) is watched. A guard variable set before
the exec, and a look at who traces this process, keep it from doing it twice. When crashcatch
cannot trace here (ptrace denied, binary missing) the session runs without it after one line
saying why, unless ``required`` was asked for.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any, Generator, List, Optional, Tuple

import pytest

from . import locate_binary

#: Set (to this process's pid) just before the exec: the re-executed session must not do it again.
GUARD_ENV = "CRASHCATCH_PYTEST_REEXEC"
#: Turns the plugin on like --crashcatch: 1/true/yes/auto, required, 0/false/no/off.
MODE_ENV = "CRASHCATCH"

MODES = ("auto", "required", "off")
_TRUE = ("1", "true", "yes", "on", "auto")
_FALSE = ("0", "false", "no", "off", "")


def _mode_word(value: str, where: str) -> str:
    v = value.strip().lower()
    if v in _TRUE:
        return "auto"
    if v in _FALSE:
        return "off"
    if v == "required":
        return "required"
    raise pytest.UsageError(f"crashcatch: {where} is {value!r}: use true, false or required")


#: The values ``--crashcatch=VALUE`` takes (``--crashcatch`` alone is ``auto``).
CLI_VALUES = ("required", "off")
#: Our options that take a value: in the space form (``--crashcatch-output-dir DIR``) pytest
#: reads the value as a test path when it looks for its rootdir, before this plugin is loaded.
VALUE_OPTIONS = ("--crashcatch-output-dir", "--crashcatch-test-timeout", "--crashcatch-test-timeout-action")


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


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    config = pluginmanager.get_plugin("pytestconfig")
    invocation = getattr(config, "invocation_params", None)
    if invocation is not None:
        _check_values([*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *invocation.args])
    group = parser.getgroup("crashcatch", "native crash reports (crashcatch)")
    # argparse matches a whole option string before it splits at '=', so `--crashcatch=required`
    # is an option of its own and `--crashcatch tests/` never takes `tests/` as a value.
    group.addoption(
        "--crashcatch",
        action="store_const",
        const="auto",
        dest="crashcatch",
        default=None,
        help="run the session under crashcatch (if it cannot trace here, say why and run without it)",
    )
    group.addoption(
        "--crashcatch=required",
        action="store_const",
        const="required",
        dest="crashcatch",
        help="run the session under crashcatch, or fail when it cannot trace here",
    )
    group.addoption(
        "--crashcatch=off",
        "--no-crashcatch",
        action="store_const",
        const="off",
        dest="crashcatch",
        help="do not run under crashcatch (overrides the ini file and $CRASHCATCH)",
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
    parser.addini("crashcatch", "run sessions under crashcatch: true, false or required", default="")


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
    ``pytest`` script, an IDE's runner script, with the interpreter's own flags (-X, -W)."""
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
    its rootdir and ini file, before any plugin is loaded, so an existing folder elsewhere would
    move the rootdir of the session run again."""
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


def probe(binary: str) -> Optional[str]:
    """None when crashcatch can trace a child here, else why not (its own one line)."""
    try:
        r = subprocess.run(
            [binary, "--quiet", "--", sys.executable, "-S", "-c", ""],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"{binary}: {e}"
    if r.returncode == 0:
        return None
    lines = [ln.strip() for ln in r.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    why = lines[-1] if lines else f"exit status {r.returncode}"
    return why[len("crashcatch: ") :] if why.startswith("crashcatch: ") else why


def plan(config: pytest.Config) -> Optional[Tuple[str, List[str]]]:
    """What to exec (binary, argv), or None to run this session as it is."""
    mode = _mode(config)
    if mode == "off" or os.environ.get(GUARD_ENV) or traced_by_crashcatch():
        return None
    ns = config.known_args_namespace
    if getattr(ns, "help", False) or getattr(ns, "version", False):
        return None
    binary, missing = locate_binary()
    why = probe(binary) if binary else missing
    if why is not None:
        if mode == "required":
            raise pytest.UsageError(f"crashcatch cannot run this session: {why}")
        sys.stderr.write(f"crashcatch: not catching crashes in this session: {why}\n")
        sys.stderr.flush()
        return None
    assert binary is not None
    argv = [binary]
    out = getattr(ns, "crashcatch_output_dir", None)
    if out:
        argv += ["--output-dir", str(out)]
    timeout = getattr(ns, "crashcatch_test_timeout", None)
    if timeout:
        argv += ["--test-timeout", str(timeout)]
    action = getattr(ns, "crashcatch_test_timeout_action", None)
    if action:
        argv += ["--test-timeout-action", str(action)]
    return binary, [*argv, "--", *command_line()]


def _exec(config: pytest.Config, binary: str, argv: List[str]) -> None:
    capman: Any = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:  # not started yet when this hook runs first; stopped if it did
        capman.stop_global_capturing()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    env = dict(os.environ)
    env[GUARD_ENV] = str(os.getpid())
    if env.get("PYTEST_ADDOPTS"):
        env["PYTEST_ADDOPTS"] = " ".join(shlex.quote(a) for a in joined_values(shlex.split(env["PYTEST_ADDOPTS"])))
    os.execve(binary, argv, env)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    target = plan(early_config)
    if target is not None:
        try:
            _exec(early_config, *target)
        except OSError as e:  # exec failed: this process is still pytest
            if _mode(early_config) == "required":
                raise pytest.UsageError(f"crashcatch cannot run this session: {target[0]}: {e}") from e
            sys.stderr.write(f"crashcatch: not catching crashes in this session: {target[0]}: {e}\n")
    yield

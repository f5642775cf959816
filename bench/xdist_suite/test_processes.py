"""Tests that run subprocesses and handle signals."""
import os
import signal
import subprocess
import sys

import pytest


@pytest.mark.parametrize("n", range(60))
def test_subprocess_echo(n):
    out = subprocess.run(["/bin/echo", str(n)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(n)


@pytest.mark.parametrize("n", range(8))
def test_python_subprocess(n):
    out = subprocess.run([sys.executable, "-c", f"print({n} * 2)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(n * 2)


@pytest.mark.parametrize("n", range(40))
def test_signal_handler(n):
    seen = []
    old = signal.signal(signal.SIGUSR1, lambda s, f: seen.append(s))
    try:
        for _ in range(100):
            os.kill(os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert len(seen) == 100

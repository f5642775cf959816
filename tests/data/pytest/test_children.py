"""Tests whose children crash while the test itself passes: a multiprocessing child per start
method, and a grandchild started through two subprocess levels."""

import multiprocessing
import os
import signal
import subprocess
import sys

import pytest

import crashers

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_mp_child_crash(method):
    ctx = multiprocessing.get_context(method)
    p = ctx.Process(target=crashers.read_null)
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGSEGV


def test_subprocess_grandchild_crash():
    middle = os.path.join(HERE, "middle.py")
    r = subprocess.run([sys.executable, middle], timeout=60)
    assert r.returncode == 0

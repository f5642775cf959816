"""A stand-in for your own tests. `docker run -e CRASH_DEMO=1 ...` adds a native crash, to see
what crashcatch reports."""

import ctypes
import os

import pytest


def test_passes():
    assert sorted([3, 1, 2]) == [1, 2, 3]


def _read_null():
    return ctypes.string_at(0)


@pytest.mark.skipif(not os.environ.get("CRASH_DEMO"), reason="set CRASH_DEMO=1 to crash")
def test_native_crash():
    _read_null()

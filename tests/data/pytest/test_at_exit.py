"""Every test passes; the last one starts a native thread that calls into the interpreter after
it has been finalized (see late_callback.c), so the process crashes at exit."""

import ctypes
import os

import pytest


def test_first():
    assert [1, 2] + [3] == [1, 2, 3]


def test_second():
    assert {"a": 1}.get("a") == 1


def test_last_starts_native_thread():
    path = os.environ.get("CRASHCATCH_TEST_LATE_LIB")
    if not path:
        pytest.skip("CRASHCATCH_TEST_LATE_LIB is not set (tests/pytest_runs.rs builds it)")
    lib = ctypes.CDLL(path)
    lib.start_late_callback.argtypes = [ctypes.c_void_p]
    lib.start_late_callback.restype = ctypes.c_int
    ensure = ctypes.cast(ctypes.pythonapi.PyGILState_Ensure, ctypes.c_void_p).value
    assert lib.start_late_callback(ensure) == 0

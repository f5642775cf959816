"""Passing tests around one that crashes the interpreter with a NULL read."""

import ctypes


def test_before():
    assert sum([1, 2, 3]) == 6


def _read_null():
    return ctypes.string_at(0)  # CRASH-LINE helper


def test_crash():
    _read_null()


def test_after():
    assert "crash" in "crashcatch"

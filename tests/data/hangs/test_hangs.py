# Two tests that hang (one asleep in libc through ctypes, one waiting on a lock it already holds)
# among three that pass: run under `crashcatch --test-timeout` by tests/test_timeout.rs.
import ctypes
import threading
import time


def test_ok_1():
    pass


def test_sleeps_in_libc():
    libc = ctypes.CDLL(None)
    libc.sleep(1000)  # HANG-LINE libc


def test_ok_2():
    time.sleep(0.1)


def test_waits_on_lock():
    lock = threading.Lock()
    lock.acquire()
    lock.acquire()  # HANG-LINE lock


def test_ok_3():
    pass

"""Lets the Rust tests find the pytest main process: its pid goes to $CRASHCATCH_TEST_PIDFILE
(xdist workers leave the file alone)."""

import os


def pytest_configure(config):
    path = os.environ.get("CRASHCATCH_TEST_PIDFILE")
    if path and "PYTEST_XDIST_WORKER" not in os.environ:
        with open(path, "w") as f:
            f.write("%d\n" % os.getpid())

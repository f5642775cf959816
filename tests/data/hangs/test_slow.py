# One test slower than the limit that then passes: `--test-timeout-action dump` reports it and
# leaves it running. The first test leaves a child process behind that inherited its
# PYTEST_CURRENT_TEST and outlives it: the child runs no test and must not be reported.
import subprocess
import sys
import time


def test_leaves_a_child():
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(5)"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_slow_but_fine():
    time.sleep(3.5)  # HANG-LINE slow

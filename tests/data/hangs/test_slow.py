# One test slower than the limit that then passes: `--test-timeout-action dump` reports it and
# leaves it running.
import time


def test_slow_but_fine():
    time.sleep(3.5)  # HANG-LINE slow

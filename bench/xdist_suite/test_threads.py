"""Tests that start threads, as tests of servers and pools do."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.mark.parametrize("n", range(60))
def test_pool_map(n):
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda x: x * x, range(50))) == [x * x for x in range(50)]


@pytest.mark.parametrize("n", range(60))
def test_short_threads(n):
    out = []
    lock = threading.Lock()

    def work(i):
        with lock:
            out.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == list(range(10))

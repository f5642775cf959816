"""Plain computation, the bulk of most test suites."""
import hashlib
import json

import pytest


@pytest.mark.parametrize("n", range(300))
def test_sort_and_hash(n):
    data = [(i * 7919 + n) % 1009 for i in range(2000)]
    assert sorted(data) == sorted(sorted(data, reverse=True))
    assert len(hashlib.sha256(repr(data).encode()).hexdigest()) == 64


@pytest.mark.parametrize("n", range(200))
def test_json_roundtrip(n):
    doc = {"n": n, "items": [{"k": i, "v": str(i) * 3} for i in range(300)]}
    assert json.loads(json.dumps(doc)) == doc

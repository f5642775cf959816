import ctypes

def test_fine():
    assert True
def test_boom():
    ctypes.string_at(0)  # line 6

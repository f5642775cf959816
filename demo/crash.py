"""crashcatch's demo: a Python program that crashes in native code.

`parse_header` hands a NULL pointer to a C function through ctypes, the kind of bug a native
extension hides. Run it under crashcatch (make demo) to see the faulting C function, the
library it lives in, and the Python line that called it.
"""
import ctypes
import threading
import time

libc = ctypes.CDLL(None)
libc.strlen.argtypes = [ctypes.c_char_p]


def heartbeat():
    while True:
        time.sleep(1)


def parse_header(raw):
    # A missing header arrives as None: strlen(NULL) crashes inside libc.
    return libc.strlen(raw)


def handle(request):
    return parse_header(request.get("header"))


threading.Thread(target=heartbeat, name="heartbeat", daemon=True).start()
print("handling a request without a header...", flush=True)
handle({"body": b"hello"})

"""The target of bench/pause.py: a process of 21 threads (the main thread; 19 Python threads
waiting in sleeps, on a lock, on a queue and at the bottom of a deep recursion; the thread of
bench/stallmeter.c, which measures how long the process is stopped). Prints READY, then waits
for stdin to close.

    python pause_target.py LIBSTALLMETER SHM_FILE
"""
import ctypes
import queue
import sys
import threading
import time


def sleeper():
    while True:
        time.sleep(0.05)


def locker(lock):
    while True:
        with lock:
            pass
        time.sleep(0.01)


def waiter(q):
    while True:
        q.get()


def nested(n):
    if n == 0:
        while True:
            time.sleep(0.02)
    return nested(n - 1)


def main():
    lib = ctypes.CDLL(sys.argv[1])
    if lib.stallmeter_start(sys.argv[2].encode()) != 0:
        sys.exit("stallmeter_start failed")
    lock, q = threading.Lock(), queue.Queue()
    workers = [sleeper] * 6 + [lambda: locker(lock)] * 4 + [lambda: waiter(q)] * 4 + [lambda: nested(30)] * 5
    for w in workers:
        threading.Thread(target=w, daemon=True).start()
    print("READY", threading.active_count(), flush=True)
    sys.stdin.read()


main()

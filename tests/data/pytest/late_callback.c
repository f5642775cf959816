/* A native library whose background thread calls into Python after the interpreter is gone,
 * the way a client library's callback thread outlives the program's end. Built at test time by
 * tests/pytest_runs.rs (gcc -shared -fPIC -O0 -g) and loaded with ctypes by test_at_exit.py.
 *
 * start_late_callback(PyGILState_Ensure) starts the thread, which waits on a pipe; a C atexit
 * handler, which runs after Py_FinalizeEx, wakes it and joins it, so the call into the
 * finalized interpreter always happens, and always before the process is gone. */

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*ensure_fn)(void);

static ensure_fn ensure;
static int wake[2];
static pthread_t worker;

static void *late_callback_thread(void *arg) {
    char c;
    (void)arg;
    while (read(wake[0], &c, 1) < 0 && errno == EINTR) {
    }
    int state = ensure(); /* CRASH-LINE late */
    (void)state;
    return NULL;
}

static void wake_at_exit(void) {
    while (write(wake[1], "x", 1) < 0 && errno == EINTR) {
    }
    pthread_join(worker, NULL);
}

int start_late_callback(ensure_fn fn) {
    ensure = fn;
    if (pipe(wake) != 0) {
        return -1;
    }
    if (pthread_create(&worker, NULL, late_callback_thread, NULL) != 0) {
        return -1;
    }
    pthread_setname_np(worker, "late-callback");
    return atexit(wake_at_exit);
}

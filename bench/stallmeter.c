/* stallmeter: how long a process was stopped, seen from inside it. Loaded into the target of
 * bench/pause.py (ctypes), `stallmeter_start(path)` maps 8 bytes of the file `path` and starts a
 * thread that wakes every 100 us and keeps in those bytes the longest time between two wake-ups
 * (nanoseconds, beyond the 100 us asked for). While a debugger has the process stopped, the
 * thread does not run: the gap it sees next is that stop. The benchmark resets the value to 0
 * before each tool runs and reads it after. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t *worst;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *meter(void *arg)
{
    (void)arg;
    const struct timespec nap = {0, 100000};
    uint64_t last = now_ns();
    for (;;) {
        nanosleep(&nap, NULL);
        uint64_t t = now_ns();
        uint64_t gap = t - last > 100000 ? t - last - 100000 : 0;
        if (gap > *worst)
            *worst = gap;
        last = t;
    }
    return NULL;
}

int stallmeter_start(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, 8) != 0)
        return -1;
    void *p = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return -1;
    worst = p;
    *worst = 0;
    pthread_t t;
    return pthread_create(&t, NULL, meter, NULL);
}

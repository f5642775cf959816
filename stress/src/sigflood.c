/* sigflood PID N: queue N real-time signals (SIGRTMIN, value = index) to PID, then N/10
 * SIGUSR1 (which may coalesce). Retries on EAGAIN (a full queue). Exit 0 when all were sent. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: sigflood PID N\n");
        return 2;
    }
    pid_t pid = atoi(argv[1]);
    long n = atol(argv[2]);
    long retries = 0;
    time_t start = time(NULL);
    for (long i = 0; i < n; i++) {
        union sigval v = {.sival_int = (int)i};
        while (sigqueue(pid, SIGRTMIN, v) == -1) {
            if (errno != EAGAIN) {
                perror("sigqueue");
                return 1;
            }
            retries++;
            sched_yield();
            if (time(NULL) - start > 60) {
                fprintf(stderr, "sigflood: queue stayed full for 60 s at %ld\n", i);
                return 1;
            }
        }
    }
    for (long i = 0; i < n / 10; i++)
        if (kill(pid, SIGUSR1) == -1) {
            perror("kill");
            return 1;
        }
    printf("sent %ld (%ld retries on a full queue)\n", n, retries);
    return 0;
}

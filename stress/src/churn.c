/* Process and thread churn under the tracer. Each mode checks its own result and exits 0 only
 * when nothing was lost.
 *
 *   churn threads N        create and join N threads, 16 alive at a time
 *   churn forks N          fork N children (8 alive at a time), each exits with i & 0xff; check each status
 *   churn vfork N          vfork N children: even ones _exit(i & 0x7f), odd ones exec /bin/true
 *   churn exec_thread K    a non-leader thread execs `churn exec_thread K-1`; at 0 exit 42
 *   churn forkbomb D W     a tree of processes, depth D, W children each; count them all
 *   churn sigcount N       print pid; count N queued SIGRTMIN (sum of values checked) within 60 s
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static atomic_long counter;

static void *thread_body(void *arg) {
    atomic_fetch_add(&counter, 1);
    return arg;
}

static int threads(long n) {
    enum { BATCH = 16 };
    pthread_t t[BATCH];
    long bad = 0;
    for (long i = 0; i < n; i += BATCH) {
        int k = 0;
        for (; k < BATCH && i + k < n; k++) {
            int e = pthread_create(&t[k], NULL, thread_body, (void *)(i + k));
            if (e) {
                fprintf(stderr, "pthread_create: %s\n", strerror(e));
                return 1;
            }
        }
        for (int j = 0; j < k; j++) {
            void *r;
            pthread_join(t[j], &r);
            if ((long)r != i + j)
                bad++;
        }
    }
    long c = atomic_load(&counter);
    printf("threads %ld ran %ld bad %ld\n", n, c, bad);
    return c == n && bad == 0 ? 0 : 1;
}

static int forks(long n) {
    enum { ALIVE = 8 };
    pid_t pids[ALIVE];
    long want[ALIVE];
    long bad = 0, done = 0;
    for (long i = 0; i < n; i += ALIVE) {
        int k = 0;
        for (; k < ALIVE && i + k < n; k++) {
            pid_t p = fork();
            if (p == -1) {
                perror("fork");
                return 1;
            }
            if (p == 0)
                _exit((int)((i + k) & 0xff));
            pids[k] = p;
            want[k] = (i + k) & 0xff;
        }
        for (int j = 0; j < k; j++) {
            int st;
            if (waitpid(pids[j], &st, 0) != pids[j] || !WIFEXITED(st) || WEXITSTATUS(st) != want[j])
                bad++;
            done++;
        }
    }
    printf("forks %ld done %ld bad %ld\n", n, done, bad);
    return done == n && bad == 0 ? 0 : 1;
}

static int vforks(long n) {
    /* volatile: the parent resumes after the child has run on its stack. */
    volatile long bad = 0;
    for (volatile long i = 0; i < n; i++) {
        pid_t p = vfork();
        if (p == -1) {
            perror("vfork");
            return 1;
        }
        if (p == 0) {
            if (i % 2 == 0)
                _exit((int)(i & 0x7f));
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int st;
        int want = i % 2 == 0 ? (int)(i & 0x7f) : 0;
        if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != want)
            bad++;
    }
    printf("vforks %ld bad %ld\n", n, bad);
    return bad == 0 ? 0 : 1;
}

static char next_k[32];

static void *sleeper(void *arg) {
    for (;;)
        pause();
    return arg;
}

static void *exec_body(void *arg) {
    char **argv0 = arg;
    execl("/proc/self/exe", argv0[0], "exec_thread", next_k, (char *)NULL);
    perror("execl");
    _exit(1);
}

static int exec_thread(long k) {
    printf("exec_thread %ld pid %d\n", k, (int)getpid());
    fflush(stdout);
    if (k <= 0)
        return 42;
    snprintf(next_k, sizeof next_k, "%ld", k - 1);
    static char *argv0[1];
    argv0[0] = "churn";
    /* A few busy siblings, so that exec has other threads to kill. */
    pthread_t t;
    for (int i = 0; i < 3; i++)
        pthread_create(&t, NULL, sleeper, NULL);
    pthread_create(&t, NULL, exec_body, argv0);
    for (;;)
        pause();
}

static atomic_long *tree_count;

static int node(int depth, int width) {
    atomic_fetch_add(tree_count, 1);
    if (depth == 0)
        return 0;
    pid_t kids[64];
    int n = 0, bad = 0;
    for (int i = 0; i < width && i < 64; i++) {
        pid_t p = fork();
        if (p == -1) {
            bad++;
            continue;
        }
        if (p == 0)
            _exit(node(depth - 1, width));
        kids[n++] = p;
    }
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    return bad ? 1 : 0;
}

static int forkbomb(int depth, int width) {
    tree_count = mmap(NULL, sizeof *tree_count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (tree_count == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    int r = node(depth, width);
    long want = 0, level = 1;
    for (int d = 0; d <= depth; d++, level *= width)
        want += level;
    long got = atomic_load(tree_count);
    printf("forkbomb depth %d width %d processes %ld expected %ld\n", depth, width, got, want);
    return r == 0 && got == want ? 0 : 1;
}

static volatile long rt_count, rt_sum, usr1_count;

static void on_rt(int sig, siginfo_t *si, void *ctx) {
    (void)sig, (void)ctx;
    rt_count++;
    rt_sum += si->si_value.sival_int;
}

static void on_usr1(int sig) {
    (void)sig;
    usr1_count++;
}

static int sigcount(long n) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    signal(SIGUSR1, on_usr1);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    time_t start = time(NULL);
    while (rt_count < n && time(NULL) - start < 60) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    /* The SIGUSR1 burst follows the queued signals: give it a moment. */
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    long want_sum = n * (n - 1) / 2;
    printf("sigcount rt %ld of %ld sum %s usr1 %ld\n", rt_count, n, rt_sum == want_sum ? "ok" : "BAD", usr1_count);
    return rt_count == n && rt_sum == want_sum ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: churn MODE N [W]\n");
        return 2;
    }
    const char *m = argv[1];
    long n = atol(argv[2]);
    if (!strcmp(m, "threads"))
        return threads(n);
    if (!strcmp(m, "forks"))
        return forks(n);
    if (!strcmp(m, "vfork"))
        return vforks(n);
    if (!strcmp(m, "exec_thread"))
        return exec_thread(n);
    if (!strcmp(m, "forkbomb") && argc > 3)
        return forkbomb((int)n, atoi(argv[3]));
    if (!strcmp(m, "sigcount"))
        return sigcount(n);
    fprintf(stderr, "churn: unknown mode %s\n", m);
    return 2;
}

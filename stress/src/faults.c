/* Faults in the middle of something. Every mode prints what the checker needs on stdout,
 * one line each, flushed, before it faults.
 *
 *   faults two            two threads fault at the same moment (NULL and 0x10); prints "tid T" for each
 *   faults blocked        threads in read(pipe), nanosleep, futex wait and pthread_cond_wait; main faults
 *   faults fork_crash MS  one thread forks (children exit at once) in a loop; another faults after MS ms
 *   faults handler        a SIGUSR1 handler dereferences NULL (on the normal stack)
 *   faults altstack       a SIGSEGV handler on an alternate stack faults again
 *   faults sleeper        print "pid P", fork a child that prints "pid C"; both sleep, with 2 more threads
 *   faults busy           print "pid P"; 3 threads (spin, sleep, futex) while main echoes stdin to EOF
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_barrier_t barrier;
static int futex_word;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int pipefd[2];

static void say(const char *what, long v) {
    printf("%s %ld\n", what, v);
    fflush(stdout);
}

static void *faulter(void *arg) {
    say("tid", (long)gettid());
    pthread_barrier_wait(&barrier);
    *(volatile int *)arg = 1;
    return NULL;
}

static int two(void) {
    pthread_t a, b;
    pthread_barrier_init(&barrier, NULL, 2);
    pthread_create(&a, NULL, faulter, (void *)0);
    pthread_create(&b, NULL, faulter, (void *)0x10);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}

static void *reader(void *arg) {
    char c;
    (void)arg;
    say("reader", (long)gettid());
    read(pipefd[0], &c, 1);
    return NULL;
}

static void *napper(void *arg) {
    (void)arg;
    say("napper", (long)gettid());
    struct timespec ts = {100, 0};
    nanosleep(&ts, NULL);
    return NULL;
}

static void *futexer(void *arg) {
    (void)arg;
    say("futex", (long)gettid());
    for (;;)
        syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

static void *condwaiter(void *arg) {
    (void)arg;
    say("cond", (long)gettid());
    pthread_mutex_lock(&mu);
    for (;;)
        pthread_cond_wait(&cv, &mu);
    return NULL;
}

static void *spinner(void *arg) {
    (void)arg;
    for (volatile unsigned long i = 0;; i++)
        ;
    return NULL;
}

static void nap_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int blocked(void) {
    pthread_t t;
    pipe(pipefd);
    pthread_create(&t, NULL, reader, NULL);
    pthread_create(&t, NULL, napper, NULL);
    pthread_create(&t, NULL, futexer, NULL);
    pthread_create(&t, NULL, condwaiter, NULL);
    nap_ms(100); /* let them all block */
    say("main", (long)gettid());
    *(volatile int *)0 = 1;
    return 0;
}

static atomic_int stop_forking;

static void *forker(void *arg) {
    (void)arg;
    long n = 0;
    while (!atomic_load(&stop_forking)) {
        pid_t p = fork();
        if (p == 0)
            _exit(0);
        if (p > 0)
            waitpid(p, NULL, 0);
        n++;
    }
    return NULL;
}

static int fork_crash(long ms) {
    pthread_t t;
    pthread_create(&t, NULL, forker, NULL);
    pthread_create(&t, NULL, forker, NULL);
    nap_ms(ms);
    say("main", (long)gettid());
    *(volatile int *)0 = 1;
    return 0;
}

static void on_usr1(int sig) {
    (void)sig;
    *(volatile int *)0 = 1;
}

static int handler(void) {
    signal(SIGUSR1, on_usr1);
    say("pid", (long)getpid());
    raise(SIGUSR1);
    return 0;
}

static void on_segv(int sig) {
    (void)sig;
    /* Fault again inside the handler: SIGSEGV is blocked here, so the kernel forces the
     * default action. */
    *(volatile int *)0x20 = 1;
}

static int altstack(void) {
    stack_t ss = {.ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    say("pid", (long)getpid());
    *(volatile int *)0 = 1;
    return 0;
}

static int sleeper(void) {
    pthread_t t;
    say("pid", (long)getpid());
    pid_t c = fork();
    if (c == 0)
        say("pid", (long)getpid());
    pthread_create(&t, NULL, napper, NULL);
    pthread_create(&t, NULL, futexer, NULL);
    for (;;)
        pause();
    return 0;
}

static int busy(void) {
    pthread_t t;
    pthread_create(&t, NULL, spinner, NULL);
    pthread_create(&t, NULL, napper, NULL);
    pthread_create(&t, NULL, futexer, NULL);
    say("pid", (long)getpid());
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        printf("got %s\n", line);
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: faults MODE [ARG]\n");
        return 2;
    }
    const char *m = argv[1];
    if (!strcmp(m, "two"))
        return two();
    if (!strcmp(m, "blocked"))
        return blocked();
    if (!strcmp(m, "fork_crash"))
        return fork_crash(argc > 2 ? atol(argv[2]) : 50);
    if (!strcmp(m, "handler"))
        return handler();
    if (!strcmp(m, "altstack"))
        return altstack();
    if (!strcmp(m, "sleeper"))
        return sleeper();
    if (!strcmp(m, "busy"))
        return busy();
    fprintf(stderr, "faults: unknown mode %s\n", m);
    return 2;
}

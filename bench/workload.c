/* Process-heavy workloads for BENCHMARKS.md, each one the kind of event a ptrace supervisor
 * must handle:
 *
 *   workload spawn N      N child processes run to completion one after another: even ones by
 *                         fork+execv, odd ones by posix_spawn (a vfork-style clone, as Python's
 *                         subprocess does), each running /bin/true
 *   workload threads N    N short threads, created and joined one after another
 *   workload signals N    N signals (SIGUSR1) sent to itself with kill(getpid()) and handled
 *   workload mixed S T G  S spawns, T threads and G signals, interleaved in S rounds
 *
 * Exits 0 only if every child exited 0, every thread ran and every signal was handled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t handled;
static long thread_runs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void *thread_body(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    thread_runs++;
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void spawn_one(long i) {
    static char *const argv[] = {"true", NULL};
    pid_t pid;
    if (i % 2 == 0) {
        pid = fork();
        if (pid == -1)
            die("fork");
        if (pid == 0) {
            execv("/bin/true", argv);
            _exit(127);
        }
    } else {
        int e = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
        if (e != 0) {
            errno = e;
            die("posix_spawn");
        }
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "workload: child %ld failed (status %#x)\n", i, status);
        exit(1);
    }
}

static void spawns(long n, long *done) {
    for (long i = 0; i < n; i++)
        spawn_one((*done)++);
}

static void threads(long n) {
    for (long i = 0; i < n; i++) {
        pthread_t t;
        int e = pthread_create(&t, NULL, thread_body, NULL);
        if (e != 0) {
            errno = e;
            die("pthread_create");
        }
        pthread_join(t, NULL);
    }
}

static void signals(long n) {
    for (long i = 0; i < n; i++)
        if (kill(getpid(), SIGUSR1) == -1)
            die("kill");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: workload spawn|threads|signals N | workload mixed S T G\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) == -1)
        die("sigaction");

    long spawned = 0, want_spawns = 0, want_threads = 0, want_signals = 0;
    if (strcmp(argv[1], "spawn") == 0) {
        want_spawns = atol(argv[2]);
        spawns(want_spawns, &spawned);
    } else if (strcmp(argv[1], "threads") == 0) {
        want_threads = atol(argv[2]);
        threads(want_threads);
    } else if (strcmp(argv[1], "signals") == 0) {
        want_signals = atol(argv[2]);
        signals(want_signals);
    } else if (strcmp(argv[1], "mixed") == 0 && argc == 5) {
        want_spawns = atol(argv[2]);
        want_threads = atol(argv[3]);
        want_signals = atol(argv[4]);
        long rounds = want_spawns > 0 ? want_spawns : 1;
        for (long r = 0; r < rounds; r++) {
            /* Round r does its share so that the totals come out exact. */
            spawns(want_spawns > 0 ? 1 : 0, &spawned);
            threads(want_threads * (r + 1) / rounds - want_threads * r / rounds);
            signals(want_signals * (r + 1) / rounds - want_signals * r / rounds);
        }
    } else {
        fprintf(stderr, "workload: unknown mode %s\n", argv[1]);
        return 2;
    }
    if (spawned != want_spawns || thread_runs != want_threads || handled != want_signals) {
        fprintf(stderr, "workload: spawned %ld/%ld, threads %ld/%ld, signals %ld/%ld\n", spawned,
                want_spawns, thread_runs, want_threads, (long)handled, want_signals);
        return 1;
    }
    return 0;
}

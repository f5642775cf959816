/* mintrace: the smallest honest ptrace supervisor, the baseline crashcatch's tracing cost is
 * compared with in BENCHMARKS.md.
 *
 *   mintrace CMD [ARGS...]
 *
 * It does what crashcatch's event loop must do and nothing else: PTRACE_SEIZE the command with
 * TRACEFORK | TRACEVFORK | TRACECLONE | TRACEEXEC | EXITKILL (so every thread and descendant is
 * followed), resume every event stop, pass every signal on unchanged, keep group-stops stopped
 * with PTRACE_LISTEN, and exit with the command's status (dying of the same signal, without a
 * core of its own). No bookkeeping of threads, no /proc reads, no reports.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

static int is_stop_signal(int sig) {
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void exit_like(int status) {
    if (WIFEXITED(status))
        exit(WEXITSTATUS(status));
    int sig = WTERMSIG(status);
    struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    kill(getpid(), sig);
    exit(128 + sig);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: mintrace CMD [ARGS...]\n");
        return 2;
    }
    int go[2];
    if (pipe2(go, O_CLOEXEC) == -1) {
        perror("mintrace: pipe2");
        return 125;
    }
    pid_t child = fork();
    if (child == -1) {
        perror("mintrace: fork");
        return 125;
    }
    if (child == 0) {
        /* Hold until the parent has seized us, so the exec itself is traced. */
        char b;
        close(go[1]);
        while (read(go[0], &b, 1) == -1 && errno == EINTR) {
        }
        execvp(argv[1], argv + 1);
        fprintf(stderr, "mintrace: %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    long opts = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SEIZE, child, NULL, (void *)opts) == -1) {
        perror("mintrace: PTRACE_SEIZE");
        kill(child, SIGKILL);
        return 125;
    }
    if (write(go[1], "g", 1) != 1) {
        perror("mintrace: write");
        return 125;
    }
    close(go[1]);
    close(go[0]);

    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid == -1) {
            if (errno == EINTR)
                continue;
            return 0; /* no tracee left */
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (tid == child)
                exit_like(status);
            continue;
        }
        if (!WIFSTOPPED(status))
            continue;
        int sig = WSTOPSIG(status);
        int event = (status >> 16) & 0xff;
        if (event == PTRACE_EVENT_STOP && is_stop_signal(sig))
            ptrace(PTRACE_LISTEN, tid, NULL, NULL); /* group-stop: stay stopped */
        else if (event != 0)
            ptrace(PTRACE_CONT, tid, NULL, NULL); /* fork/vfork/clone/exec or a new thread */
        else
            ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig); /* pass the signal on */
    }
}

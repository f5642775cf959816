/* Transparency probe: what a program does with exit codes and signals.
 *
 *   sigprog exit N     exit(N)
 *   sigprog raise N    print "pid P", raise(N); if it survives (ignored, or stopped and
 *                      continued), print "survived N" and exit 0
 *   sigprog wait       print "pid P", read stdin to EOF (echoing "got LINE"), print "eof", exit 0
 *   sigprog block      block signals 1..31, then as `wait`; prints the pending set at the end
 *   sigprog ignore     ignore signals 1..31 (SIG_IGN), then as `wait`
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say_pid(void) {
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
}

static void wait_eof(void) {
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        printf("got %s\n", line);
        fflush(stdout);
    }
    printf("eof\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: sigprog exit N | raise N | wait | block | ignore\n");
        return 2;
    }
    const char *mode = argv[1];
    if (!strcmp(mode, "exit") && argc > 2)
        exit(atoi(argv[2]));
    if (!strcmp(mode, "raise") && argc > 2) {
        int sig = atoi(argv[2]);
        say_pid();
        raise(sig);
        printf("survived %d\n", sig);
        return 0;
    }
    if (!strcmp(mode, "wait")) {
        say_pid();
        wait_eof();
        return 0;
    }
    if (!strcmp(mode, "block")) {
        sigset_t all;
        sigemptyset(&all);
        for (int s = 1; s < 32; s++)
            sigaddset(&all, s);
        sigprocmask(SIG_BLOCK, &all, NULL);
        say_pid();
        wait_eof();
        sigset_t pend;
        sigpending(&pend);
        printf("pending:");
        for (int s = 1; s < 32; s++)
            if (sigismember(&pend, s))
                printf(" %d", s);
        printf("\n");
        return 0;
    }
    if (!strcmp(mode, "ignore")) {
        for (int s = 1; s < 32; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_IGN);
        say_pid();
        wait_eof();
        return 0;
    }
    fprintf(stderr, "sigprog: unknown mode %s\n", mode);
    return 2;
}

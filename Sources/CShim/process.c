// Engine start-up for `udocker run`: exec, spawn-and-wait with signal forwarding, CPU affinity.
// In C because a signal handler must reach the child's pid without Swift runtime calls.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "include/process.h"

int ud_exec(const char *path, char *const argv[], char *const envp[], const char *cwd) {
    if (cwd && chdir(cwd) != 0) return errno;
    execve(path, argv, envp);
    return errno;
}

static volatile pid_t ud_child = 0;

// A terminal's ^C reaches the whole foreground group (si_pid 0): the child has it already.
static void ud_forward(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    pid_t child = ud_child;
    if (child > 0 && si && si->si_pid != 0 && si->si_pid != child) kill(child, sig);
}

static const int ud_forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

int ud_spawn_wait(const char *path, char *const argv[], char *const envp[], const char *cwd, int *status) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, old, defaults;
    pid_t pid;
    int rc, ws, i;

    posix_spawn_file_actions_init(&fa);
    if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawnattr_init(&at);
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    sigfillset(&defaults);
    posix_spawnattr_setsigdefault(&at, &defaults);
    posix_spawnattr_setsigmask(&at, &old);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawn(&pid, path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    ud_child = pid;
    for (i = 0; i < (int)(sizeof(ud_forwarded) / sizeof(ud_forwarded[0])); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = ud_forward;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(ud_forwarded[i], &sa, NULL);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    for (;;) {
        if (waitpid(pid, &ws, 0) == pid) break;
        if (errno != EINTR) { *status = 1; return 0; }
    }
    ud_child = 0;
    if (WIFEXITED(ws)) *status = WEXITSTATUS(ws);
    else if (WIFSIGNALED(ws)) *status = 128 + WTERMSIG(ws);
    else *status = 1;
    return 0;
}

int ud_set_cpu_affinity(const char *list) {
    cpu_set_t set;
    const char *p = list;
    CPU_ZERO(&set);
    if (!p || !*p) return EINVAL;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b;
        if (end == p || a < 0 || a >= CPU_SETSIZE) return EINVAL;
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || b < a || b >= CPU_SETSIZE) return EINVAL;
            p = end;
        }
        for (long c = a; c <= b; c++) CPU_SET((int)c, &set);
        if (*p == ',') p++;
        else if (*p) return EINVAL;
    }
    if (sched_setaffinity(0, sizeof(set), &set) != 0) return errno;
    return 0;
}

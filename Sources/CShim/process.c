// Engine start-up for `udocker run`: exec, spawn-and-wait with signal forwarding, CPU affinity.
// In C because a signal handler must reach the child's pid without Swift runtime calls.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "include/process.h"

// A program starts with no signal blocked, whatever thread (a dispatch worker blocks most) ran us.
int ud_exec(const char *path, char *const argv[], char *const envp[], const char *cwd) {
    sigset_t none, old;
    if (cwd && chdir(cwd) != 0) return errno;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, &old);
    execve(path, argv, envp);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return errno;
}

static volatile pid_t ud_child = 0;
static volatile int ud_to_children = 0;

// Sends sig to the children of pid, read from /proc (open/read/close are async-signal-safe).
static void ud_kill_children(pid_t pid, int sig) {
    char path[64], buf[4096];
    int fd, n, i;
    long v = 0;
    int have = 0;
    // /proc/PID/task/PID/children lists the children of the main thread.
    char num[24];
    int len = 0;
    long p = pid;
    do { num[len++] = (char)('0' + p % 10); p /= 10; } while (p > 0 && len < 20);
    i = 0;
    const char *a = "/proc/";
    while (*a) path[i++] = *a++;
    for (int k = len - 1; k >= 0; k--) path[i++] = num[k];
    a = "/task/";
    while (*a) path[i++] = *a++;
    for (int k = len - 1; k >= 0; k--) path[i++] = num[k];
    a = "/children";
    while (*a) path[i++] = *a++;
    path[i] = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { kill(pid, sig); return; }
    n = (int)read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) { kill(pid, sig); return; }
    for (i = 0; i < n; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') { v = v * 10 + (buf[i] - '0'); have = 1; }
        else if (have) { kill((pid_t)v, sig); v = 0; have = 0; }
    }
    if (have) kill((pid_t)v, sig);
}

// A terminal's ^C reaches the whole foreground group (si_pid 0): the child has it already.
static void ud_forward(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    pid_t child = ud_child;
    if (child <= 0 || !si || si->si_pid == 0 || si->si_pid == child) return;
    if (ud_to_children && sig != SIGCONT && sig != SIGWINCH) ud_kill_children(child, sig);
    else kill(child, sig);
}

static const int ud_forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

int ud_spawn_wait(const char *path, char *const argv[], char *const envp[], const char *cwd, int to_children, int *status) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, old, defaults, none, forwarded;
    pid_t pid;
    int rc, ws, i;

    posix_spawn_file_actions_init(&fa);
    if (cwd) posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawnattr_init(&at);
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    sigfillset(&defaults);
    posix_spawnattr_setsigdefault(&at, &defaults);
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    rc = posix_spawn(&pid, path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    ud_child = pid;
    ud_to_children = to_children;
    for (i = 0; i < (int)(sizeof(ud_forwarded) / sizeof(ud_forwarded[0])); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = ud_forward;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(ud_forwarded[i], &sa, NULL);
    }
    // The signals we forward must reach us even if the caller had them blocked.
    sigemptyset(&forwarded);
    for (i = 0; i < (int)(sizeof(ud_forwarded) / sizeof(ud_forwarded[0])); i++) sigaddset(&forwarded, ud_forwarded[i]);
    for (i = 0; i < (int)(sizeof(ud_forwarded) / sizeof(ud_forwarded[0])); i++) sigdelset(&old, ud_forwarded[i]);
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

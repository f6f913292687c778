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
#include <sys/syscall.h>
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
static volatile int ud_depth = 0;

// Appends the decimal digits of v to buf at *i.
static void ud_put_number(char *buf, int *i, long v) {
    char num[24];
    int len = 0;
    do { num[len++] = (char)('0' + v % 10); v /= 10; } while (v > 0 && len < 20);
    while (len > 0) buf[(*i)++] = num[--len];
}

static void ud_put_text(char *buf, int *i, const char *t) {
    while (*t) buf[(*i)++] = *t++;
}

static void ud_kill_at_depth(pid_t pid, int sig, int depth);

// Signals the children listed in /proc/PID/task/TID/children; returns how many it found.
static int ud_kill_task_children(pid_t pid, long tid, int sig, int depth) {
    char path[96], buf[4096];
    int fd, n, i = 0, found = 0, have = 0;
    long v = 0;
    ud_put_text(path, &i, "/proc/");
    ud_put_number(path, &i, pid);
    ud_put_text(path, &i, "/task/");
    ud_put_number(path, &i, tid);
    ud_put_text(path, &i, "/children");
    path[i] = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    n = (int)read(fd, buf, sizeof(buf) - 1);
    close(fd);
    for (i = 0; i < n; i++) {
        if (buf[i] >= '0' && buf[i] <= '9') { v = v * 10 + (buf[i] - '0'); have = 1; }
        else if (have) { ud_kill_at_depth((pid_t)v, sig, depth - 1); found++; v = 0; have = 0; }
    }
    if (have) { ud_kill_at_depth((pid_t)v, sig, depth - 1); found++; }
    return found;
}

// Sends sig to the descendants of pid `depth` generations down (to pid itself when it has none).
// The children of every thread count: a Go program such as runc starts processes from any of its
// threads. Only async-signal-safe calls: open, read, getdents64, close, kill.
static void ud_kill_at_depth(pid_t pid, int sig, int depth) {
    char path[64], dents[4096];
    int fd, i = 0, found = 0;
    long n;
    if (depth <= 0) { kill(pid, sig); return; }
    ud_put_text(path, &i, "/proc/");
    ud_put_number(path, &i, pid);
    ud_put_text(path, &i, "/task");
    path[i] = 0;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        while ((n = syscall(SYS_getdents64, fd, dents, sizeof(dents))) > 0) {
            long off = 0;
            while (off < n) {
                struct ud_dirent { unsigned long long ino; long long off; unsigned short reclen; unsigned char type; char name[]; };
                struct ud_dirent *d = (struct ud_dirent *)(dents + off);
                long tid = 0;
                const char *c = d->name;
                if (*c >= '0' && *c <= '9') {
                    while (*c >= '0' && *c <= '9') tid = tid * 10 + (*c++ - '0');
                    found += ud_kill_task_children(pid, tid, sig, depth);
                }
                off += d->reclen;
            }
        }
        close(fd);
    }
    if (found == 0) kill(pid, sig);
}

// A terminal's ^C reaches the whole foreground group (si_pid 0): the child has it already.
static void ud_forward(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    pid_t child = ud_child;
    if (child <= 0 || !si || si->si_pid == 0 || si->si_pid == child) return;
    if (ud_depth > 0 && sig != SIGCONT && sig != SIGWINCH) ud_kill_at_depth(child, sig, ud_depth);
    else kill(child, sig);
}

static const int ud_forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

int ud_spawn_wait(const char *path, char *const argv[], char *const envp[], const char *cwd, int depth, int *status) {
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
    ud_depth = depth;
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

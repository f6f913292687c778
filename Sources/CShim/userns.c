// Store protection (see userns.h): children cloned into a new user namespace with CLONE_VM|CLONE_FILES
// work through batches of links and ownership changes on the caller's descriptors, with raw system
// calls only, so that a multithreaded Swift process can use them without forking.
#define _GNU_SOURCE
#include "include/userns.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

// The children share this process's memory and, with it, the thread-local storage of the thread that
// cloned them; a libc call there could write that thread's errno or take a lock another thread holds.
// So every call a child makes is a raw system call returning -errno.
#if defined(__x86_64__)
static long raw6(long n, long a, long b, long c, long d, long e) {
    long r;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
    return r;
}
#elif defined(__aarch64__)
static long raw6(long n, long a, long b, long c, long d, long e) {
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                  x3 __asm__("x3") = d, x4 __asm__("x4") = e;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
    return x0;
}
#else
#error "unsupported architecture"
#endif

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

struct ud_open_how { unsigned long long flags, mode, resolve; };

struct child_arg {
    struct ud_ns_op *ops;
    size_t nops, first, step;
    int gate;        // read end: one byte once the maps are written
    int userns;      // children after the first: the first one's namespace, joined with setns
    int parent;      // pid of the caller, to notice its death before PR_SET_PDEATHSIG took effect
};

// Opens a directory beneath `root` without following any symlink; `path` "" is the root itself
// (returned as is). Falls back to one component at a time where openat2 is missing.
static long open_dir(int root, const char *path) {
    if (path[0] == 0) return root;
    struct ud_open_how how = { O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0x08 | 0x04 | 0x02 };
    long fd = raw6(SYS_openat2, root, (long)path, (long)&how, sizeof how, 0);
    if (fd != -ENOSYS) return fd;
    char name[256];
    long dir = root;
    const char *p = path;
    while (*p) {
        size_t n = 0;
        while (p[n] && p[n] != '/') n++;
        if (n == 0 || n >= sizeof name || (n == 2 && p[0] == '.' && p[1] == '.')) {
            if (dir != root) raw6(SYS_close, dir, 0, 0, 0, 0);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) name[i] = p[i];
        name[n] = 0;
        long next = raw6(SYS_openat, dir, (long)name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0);
        if (dir != root) raw6(SYS_close, dir, 0, 0, 0, 0);
        if (next < 0) return next;
        dir = next;
        p += n;
        while (*p == '/') p++;
    }
    return dir;
}

static void run_op(struct ud_ns_op *op) {
    long src = -1, dst = open_dir(op->dst_root, op->dst_dir);
    if (dst >= 0 && op->kind == UD_NS_LINK) src = open_dir(op->src_root, op->src_dir);
    long fail = dst < 0 ? dst : (op->kind == UD_NS_LINK && src < 0) ? src : 0;
    for (size_t i = 0; i < op->count; i++) {
        long r = fail;
        if (r == 0 && op->kind == UD_NS_LINK) {
            const char *to = op->dst_names ? op->dst_names[i] : op->names[i];
            r = raw6(SYS_linkat, src, (long)op->names[i], dst, (long)to, 0);
        } else if (r == 0 && op->kind == UD_NS_CHOWN) {
            r = raw6(SYS_fchownat, dst, (long)op->names[i], 1, 1, AT_SYMLINK_NOFOLLOW);
            // chown clears setuid and setgid bits: the mode is set again after it.
            if (r == 0) r = raw6(SYS_fchmodat, dst, (long)op->names[i], op->modes[i], 0, 0);
        } else if (r == 0) {
            r = -EINVAL;
        }
        op->results[i] = (int)-r;
    }
    if (src >= 0 && src != op->src_root) raw6(SYS_close, src, 0, 0, 0, 0);
    if (dst >= 0 && dst != op->dst_root) raw6(SYS_close, dst, 0, 0, 0, 0);
}

static int child_main(void *p) {
    struct child_arg *a = p;
    raw6(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (raw6(SYS_getppid, 0, 0, 0, 0, 0) != a->parent) raw6(SYS_exit, 1, 0, 0, 0, 0);
    char go = 0;
    if (raw6(SYS_read, a->gate, (long)&go, 1, 0, 0) != 1 || go != 'g') raw6(SYS_exit, 2, 0, 0, 0, 0);
    // A process of the namespace's owner has every capability there: it may join it, and so needs no
    // maps of its own (two setuid programs fewer per child).
    if (a->userns >= 0 && raw6(SYS_setns, a->userns, CLONE_NEWUSER, 0, 0, 0) != 0) raw6(SYS_exit, 3, 0, 0, 0, 0);
    for (size_t i = a->first; i < a->nops; i += a->step) run_op(&a->ops[i]);
    raw6(SYS_exit, 0, 0, 0, 0, 0);
    return 0;
}

// Runs newuidmap or newgidmap for `pid`: "0 <id> 1 1 <subid> 1". Returns 0, else errno with the tool's
// own words in err.
static int write_map(const char *tool, int pid, unsigned id, unsigned subid, pid_t *spawned, int *errfd) {
    char p[24], a[24], b[24];
    snprintf(p, sizeof p, "%d", pid);
    snprintf(a, sizeof a, "%u", id);
    snprintf(b, sizeof b, "%u", subid);
    char *argv[] = { (char *)tool, p, "0", a, "1", "1", b, "1", NULL };
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return errno;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(spawned, tool, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) { close(fds[0]); return rc; }
    *errfd = fds[0];
    return 0;
}

static int finish_map(const char *tool, pid_t spawned, int errfd, char *err, size_t errlen) {
    int st = 0;
    while (waitpid(spawned, &st, 0) < 0 && errno == EINTR) {}
    char text[512];
    ssize_t n = read(errfd, text, sizeof text - 1);
    close(errfd);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    text[n > 0 ? n : 0] = 0;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) text[--n] = 0;
    if (err && errlen) snprintf(err, errlen, "%s failed: %s", tool, n > 0 ? text : "no reason given");
    return EPERM;
}

#define CHILD_STACK (64 * 1024)
#define MAX_CHILDREN 8

struct ud_ns_session {
    int children, stacked;
    int userns;  // the first child's namespace, for the others
    struct child_arg args[MAX_CHILDREN];
    int gates[MAX_CHILDREN][2];
    pid_t pids[MAX_CHILDREN];
    char *stacks;
    // The newuidmap/newgidmap processes still running, with their stderr.
    pid_t tools[2 * MAX_CHILDREN];
    int errfds[2 * MAX_CHILDREN];
    const char *names[2 * MAX_CHILDREN];
    int ntools;
    int rc;
    char err[512];
};

struct ud_ns_session *ud_userns_start(int children, const struct ud_ns_ids *ids) {
    struct ud_ns_session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->userns = -1;
    if (children < 1) children = 1;
    if (children > MAX_CHILDREN) children = MAX_CHILDREN;
    s->stacked = children;
    s->stacks = mmap(NULL, (size_t)children * CHILD_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s->stacks == MAP_FAILED) {
        s->stacks = NULL;
        s->rc = errno;
        snprintf(s->err, sizeof s->err, "cannot allocate stacks: %s", strerror(s->rc));
        return s;
    }
    for (; s->children < children; s->children++) {
        int k = s->children;
        if (pipe2(s->gates[k], O_CLOEXEC) != 0) { s->rc = errno; break; }
        s->args[k] = (struct child_arg){ NULL, 0, (size_t)k, (size_t)children, s->gates[k][0], k == 0 ? -1 : s->userns,
                                         (int)getpid() };
        s->pids[k] = clone(child_main, s->stacks + (size_t)(k + 1) * CHILD_STACK,
                           (k == 0 ? CLONE_NEWUSER : 0) | CLONE_VM | CLONE_FILES | SIGCHLD, &s->args[k]);
        if (s->pids[k] < 0) {
            int e = errno;
            close(s->gates[k][0]);
            close(s->gates[k][1]);
            if (k > 0) break;  // fewer children do the work
            s->rc = e;
            snprintf(s->err, sizeof s->err, "cannot create a user namespace: %s", strerror(e));
            break;
        }
        if (k == 0) {
            char ns[64];
            snprintf(ns, sizeof ns, "/proc/%d/ns/user", (int)s->pids[0]);
            s->userns = open(ns, O_RDONLY | O_CLOEXEC);
            if (s->userns < 0) { s->children = 1; break; }  // the first child alone does the work
        }
    }
    // Maps for the first child (the others join its namespace); newuidmap and newgidmap run side by
    // side, and beside the caller, which goes on with its own work until ud_userns_finish.
    for (int k = 0; k < 1 && k < s->children && s->rc == 0; k++) {
        const char *t[2] = { ids->newuidmap, ids->newgidmap };
        unsigned id[2] = { ids->uid, ids->gid }, sub[2] = { ids->subuid, ids->subgid };
        for (int j = 0; j < 2 && s->rc == 0; j++) {
            s->rc = write_map(t[j], s->pids[k], id[j], sub[j], &s->tools[s->ntools], &s->errfds[s->ntools]);
            if (s->rc == 0) s->names[s->ntools++] = t[j];
            else snprintf(s->err, sizeof s->err, "cannot start %s: %s", t[j], strerror(s->rc));
        }
    }
    return s;
}

int ud_userns_finish(struct ud_ns_session *s, struct ud_ns_op *ops, size_t nops, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!s) {
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return ENOMEM;
    }
    int rc = s->rc;
    for (int i = 0; i < s->ntools; i++) {
        int r = finish_map(s->names[i], s->tools[i], s->errfds[i], rc == 0 ? s->err : NULL, sizeof s->err);
        if (rc == 0) rc = r;
    }
    for (int k = 0; k < s->children; k++) {
        s->args[k].ops = ops;
        s->args[k].nops = nops;
        s->args[k].step = (size_t)s->children;
    }
    for (int k = 0; k < s->children; k++) {
        if (rc == 0 && nops > 0) {
            char go = 'g';
            if (write(s->gates[k][1], &go, 1) != 1) rc = errno;
        }
        close(s->gates[k][1]);  // without the byte, the child exits
    }
    for (int k = 0; k < s->children; k++) {
        int st = 0;
        while (waitpid(s->pids[k], &st, 0) < 0 && errno == EINTR) {}
        close(s->gates[k][0]);
        if (rc == 0 && nops > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            rc = ECHILD;
            snprintf(s->err, sizeof s->err, "a user-namespace child ended early (status %d)", st);
        }
    }
    if (s->userns >= 0) close(s->userns);
    if (rc != 0 && err && errlen) snprintf(err, errlen, "%s", s->err[0] ? s->err : strerror(rc));
    if (s->stacks) munmap(s->stacks, (size_t)s->stacked * CHILD_STACK);
    free(s);
    return rc;
}

int ud_userns_run(struct ud_ns_op *ops, size_t nops, int children, const struct ud_ns_ids *ids,
                  char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (nops == 0) return 0;
    if ((size_t)children > nops) children = (int)nops;
    return ud_userns_finish(ud_userns_start(children, ids), ops, nops, err, errlen);
}

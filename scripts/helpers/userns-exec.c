// udocker's userns-exec: runs a program as UID:GID inside a new user namespace that maps that
// uid/gid to the caller's (container root in a rootless runc container). Freestanding: no libc.
// usage: userns-exec UID_MAP GID_MAP PATH ARGV0 [ARG...]   e.g. "1000 0 1" "1000 0 1" /bin/id id

#if defined(__x86_64__)
enum { NR_write = 1, NR_close = 3, NR_execve = 59, NR_exit_group = 231, NR_openat = 257, NR_unshare = 272 };
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
__asm__(".globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call start_c\n hlt\n");
#elif defined(__aarch64__)
enum { NR_openat = 56, NR_close = 57, NR_write = 64, NR_exit_group = 94, NR_unshare = 97, NR_execve = 221 };
static long sys3(long n, long a, long b, long c) {
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c;
    __asm__ volatile ("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
__asm__(".globl _start\n_start:\n mov x0, sp\n bl start_c\n");
#else
#error "unsupported architecture"
#endif

#define CLONE_NEWUSER 0x10000000L
#define AT_FDCWD (-100L)
#define O_WRONLY 1L

static long len(const char *s) { long n = 0; while (s[n]) n++; return n; }

static void say(const char *a, const char *b) {
    sys3(NR_write, 2, (long)"userns-exec: ", 13);
    sys3(NR_write, 2, (long)a, len(a));
    sys3(NR_write, 2, (long)b, len(b));
    sys3(NR_write, 2, (long)"\n", 1);
}

// Writes text to a /proc/self file; the map files accept one write only.
static int put(const char *path, const char *text, int optional) {
    long fd = sys3(NR_openat, AT_FDCWD, (long)path, O_WRONLY);
    if (fd < 0) { if (optional) return 0; say("cannot open ", path); return -1; }
    long n = sys3(NR_write, fd, (long)text, len(text));
    sys3(NR_close, fd, 0, 0);
    if (n != len(text)) { say("cannot write ", path); return -1; }
    return 0;
}

__attribute__((noreturn, used)) void start_c(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 5) { say("usage: userns-exec UID_MAP GID_MAP PATH ARGV0 [ARG...]", ""); sys3(NR_exit_group, 125, 0, 0); }
    if (sys3(NR_unshare, CLONE_NEWUSER, 0, 0) < 0) { say("unshare(CLONE_NEWUSER) failed", ""); sys3(NR_exit_group, 125, 0, 0); }
    if (put("/proc/self/setgroups", "deny", 1) || put("/proc/self/uid_map", argv[1], 0) || put("/proc/self/gid_map", argv[2], 0))
        sys3(NR_exit_group, 125, 0, 0);
    long e = sys3(NR_execve, (long)argv[3], (long)(argv + 4), (long)envp);
    say("cannot execute ", argv[3]);
    sys3(NR_exit_group, e == -2 ? 127 : 126, 0, 0);
    for (;;) {}
}

// udocker's exit relay: the first process PRoot starts (P1, P2, R2, R3). It runs the program as its
// child and exits with the program's status, 128+N when signal N ended it: PRoot reports a first
// process killed by a signal as exit status 255, so without the relay a script could not tell.
//
// usage: exit-relay [-e NAME=VALUE]... PATH ARGV0 [ARG...]
// -e sets NAME in the program's environment only (P modes give the link-copy library's LD_PRELOAD
// to the program this way: in PRoot's own environment the host's loader would look for it on the host).
//
// Built by the EmbedPreload plugin as a static freestanding program (no libc), so it runs in any
// container. The relay blocks the signals udocker forwards: udocker sends them one generation
// further down, to the program.

#if defined(__x86_64__)
enum { NR_write = 1, NR_rt_sigprocmask = 14, NR_clone = 56, NR_execve = 59, NR_wait4 = 61, NR_exit_group = 231 };
static long sys4(long n, long a, long b, long c, long d) {
    long r;
    register long r10 __asm__("r10") = d;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return r;
}
__asm__(".globl _start\n_start:\n xor %rbp,%rbp\n mov %rsp,%rdi\n and $-16,%rsp\n call start_c\n hlt\n");
#elif defined(__aarch64__)
enum { NR_write = 64, NR_exit_group = 94, NR_rt_sigprocmask = 135, NR_clone = 220, NR_execve = 221, NR_wait4 = 260 };
static long sys4(long n, long a, long b, long c, long d) {
    register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                  x3 __asm__("x3") = d;
    __asm__ volatile ("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
__asm__(".globl _start\n_start:\n mov x0, sp\n bl start_c\n");
#else
#error "unsupported architecture"
#endif

#define SIGCHLD 17
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define ENOENT 2
#define EINTR 4

static long len(const char *s) { long n = 0; while (s[n]) n++; return n; }

static __attribute__((noreturn)) void quit(int status) {
    sys4(NR_exit_group, status, 0, 0, 0);
    for (;;) {}
}

static void say(const char *a, const char *b) {
    sys4(NR_write, 2, (long)"udocker: ", 9, 0);
    sys4(NR_write, 2, (long)a, len(a), 0);
    sys4(NR_write, 2, (long)b, len(b), 0);
    sys4(NR_write, 2, (long)"\n", 1, 0);
}

// Whether environment entry `entry` sets the variable that `assignment` (NAME=VALUE) sets.
static int same_name(const char *entry, const char *assignment) {
    long i = 0;
    while (assignment[i] && assignment[i] != '=' && entry[i] == assignment[i]) i++;
    return assignment[i] == '=' && entry[i] == '=';
}

__attribute__((noreturn, used)) void start_c(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    long first = 1;
    while (first + 1 < argc && argv[first][0] == '-' && argv[first][1] == 'e' && argv[first][2] == 0) first += 2;
    if (argc - first < 2) { say("usage: exit-relay [-e NAME=VALUE]... PATH ARGV0 [ARG...]", ""); quit(125); }
    long n = 0;
    while (envp[n]) n++;
    char *env[n + argc / 2 + 1];
    long k = 0;
    for (long i = 0; i < n; i++) {
        int replaced = 0;
        for (long j = 2; j < first; j += 2) replaced |= same_name(envp[i], argv[j]);
        if (!replaced) env[k++] = envp[i];
    }
    for (long j = 2; j < first; j += 2) env[k++] = argv[j];
    env[k] = 0;

    // The relay keeps every signal blocked (pending signals die with it): one would otherwise end
    // it, and with it the exit status. The child gets the mask it came with back. One call, not a
    // sigaction per signal: under PRoot every system call of the relay costs a stop of the tracer.
    unsigned long all = ~0UL, old = 0;
    sys4(NR_rt_sigprocmask, SIG_BLOCK, (long)&all, (long)&old, 8);
    long pid = sys4(NR_clone, SIGCHLD, 0, 0, 0);
    if (pid == 0) {
        sys4(NR_rt_sigprocmask, SIG_SETMASK, (long)&old, 0, 8);
        long e = sys4(NR_execve, (long)argv[first], (long)(argv + first + 1), (long)env, 0);
        say("cannot execute ", argv[first]);
        quit(e == -ENOENT ? 127 : 126);
    }
    if (pid < 0) { say("cannot start ", argv[first]); quit(125); }
    int status = 0;
    for (;;) {
        long r = sys4(NR_wait4, pid, (long)&status, 0, 0);
        if (r == pid) break;
        if (r != -EINTR) { say("lost ", argv[first]); quit(125); }
    }
    quit((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
}

// The library `run` preloads in containers of a sealed store: a hard link the kernel refuses to a
// file the user does not own (a sealed store file) is made as a copy instead, so dpkg's backup links work.
//
// Built by the EmbedPreload plugin with -nostdlib and embedded in udocker (PreloadImage.swift), so it
// needs nothing from the host and loads into any glibc or musl program: it calls only syscall() and
// __errno_location(), which every libc has under those names, and no symbol versions are asked for.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

long syscall(long number, ...);
int *__errno_location(void);

// A system call's result as -errno on failure.
static long sys(long n, long a, long b, long c, long d, long e) {
    long r = syscall(n, a, b, c, d, e);
    return r < 0 ? -*__errno_location() : r;
}

static void close_fd(long fd) { sys(SYS_close, fd, 0, 0, 0, 0); }

// Copies the regular file (olddirfd, oldpath) to a new (newdirfd, newpath) with its mode and times;
// 0 or -errno. Anything but a regular file keeps the link's EPERM.
static long copy_file(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
    struct stat st;
    int nofollow = (flags & AT_SYMLINK_FOLLOW) ? 0 : AT_SYMLINK_NOFOLLOW;
    if (sys(SYS_newfstatat, olddirfd, (long)oldpath, (long)&st, nofollow, 0) < 0 || !S_ISREG(st.st_mode)) return -EPERM;
    long in = sys(SYS_openat, olddirfd, (long)oldpath, O_RDONLY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0), 0, 0);
    if (in < 0) return -EPERM;
    long out = sys(SYS_openat, newdirfd, (long)newpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600, 0);
    if (out < 0) { close_fd(in); return out; }
    char buffer[16384];   // on the stack: no TLS, and small enough for musl's thread stacks
    long result = 0;
    for (;;) {
        long n = sys(SYS_read, in, (long)buffer, sizeof buffer, 0, 0);
        if (n == -EINTR) continue;
        if (n <= 0) { result = n; break; }
        for (long done = 0; done < n && result == 0;) {
            long w = sys(SYS_write, out, (long)(buffer + done), n - done, 0, 0);
            if (w == -EINTR) continue;
            if (w < 0) result = w; else done += w;
        }
        if (result < 0) break;
    }
    if (result == 0) result = sys(SYS_fchmod, out, st.st_mode & 07777, 0, 0, 0);
    if (result == 0) {
        struct timespec times[2] = { st.st_atim, st.st_mtim };
        sys(SYS_utimensat, out, 0, (long)times, 0, 0);
    }
    close_fd(in);
    if (sys(SYS_close, out, 0, 0, 0, 0) < 0 && result == 0) result = -EIO;
    if (result < 0) sys(SYS_unlinkat, newdirfd, (long)newpath, 0, 0, 0);
    return result;
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
    long r = sys(SYS_linkat, olddirfd, (long)oldpath, newdirfd, (long)newpath, flags);
    // EPERM is fs.protected_hardlinks refusing a file of another owner (or a filesystem without
    // hard links); the copy is what the caller gets instead of a failure.
    if (r == -EPERM) r = copy_file(olddirfd, oldpath, newdirfd, newpath, flags);
    if (r < 0) { *__errno_location() = (int)-r; return -1; }
    return 0;
}

int link(const char *oldpath, const char *newpath) { return linkat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0); }

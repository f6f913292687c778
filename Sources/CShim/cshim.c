/* Implementation of the C helpers declared in include/cshim.h. */
#define _GNU_SOURCE
#include "cshim.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <dlfcn.h>
#include <pthread.h>
#include <openssl/evp.h>

/* libcrypto is loaded on first use (dlopen), not at start-up: `run` hashes nothing, and loading
   and relocating libcrypto cost every start about 0.5 ms. */
static struct {
    EVP_MD_CTX *(*ctx_new)(void);
    void (*ctx_free)(EVP_MD_CTX *);
    const EVP_MD *(*sha256)(void);
    int (*init)(EVP_MD_CTX *, const EVP_MD *, ENGINE *);
    int (*update)(EVP_MD_CTX *, const void *, size_t);
    int (*final)(EVP_MD_CTX *, unsigned char *, unsigned int *);
} ud_crypto;
static int ud_crypto_loaded;
static pthread_once_t ud_crypto_once = PTHREAD_ONCE_INIT;

static void ud_crypto_load(void) {
    static const char *const names[] = { "libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so" };
    void *lib = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    ud_crypto.ctx_new = (EVP_MD_CTX *(*)(void))dlsym(lib, "EVP_MD_CTX_new");
    ud_crypto.ctx_free = (void (*)(EVP_MD_CTX *))dlsym(lib, "EVP_MD_CTX_free");
    ud_crypto.sha256 = (const EVP_MD *(*)(void))dlsym(lib, "EVP_sha256");
    ud_crypto.init = (int (*)(EVP_MD_CTX *, const EVP_MD *, ENGINE *))dlsym(lib, "EVP_DigestInit_ex");
    ud_crypto.update = (int (*)(EVP_MD_CTX *, const void *, size_t))dlsym(lib, "EVP_DigestUpdate");
    ud_crypto.final = (int (*)(EVP_MD_CTX *, unsigned char *, unsigned int *))dlsym(lib, "EVP_DigestFinal_ex");
    ud_crypto_loaded = ud_crypto.ctx_new && ud_crypto.ctx_free && ud_crypto.sha256 && ud_crypto.init
        && ud_crypto.update && ud_crypto.final;
}

struct ud_sha256 { EVP_MD_CTX *ctx; };

ud_sha256 *ud_sha256_new(void) {
    pthread_once(&ud_crypto_once, ud_crypto_load);
    if (!ud_crypto_loaded) return NULL;
    ud_sha256 *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->ctx = ud_crypto.ctx_new();
    if (!h->ctx || ud_crypto.init(h->ctx, ud_crypto.sha256(), NULL) != 1) {
        if (h->ctx) ud_crypto.ctx_free(h->ctx);
        free(h);
        return NULL;
    }
    return h;
}

int ud_sha256_update(ud_sha256 *h, const void *data, size_t len) {
    return ud_crypto.update(h->ctx, data, len) == 1 ? 0 : -1;
}

int ud_sha256_final(ud_sha256 *h, unsigned char out[32]) {
    unsigned int n = 0;
    if (ud_crypto.final(h->ctx, out, &n) != 1 || n != 32) return -1;
    return ud_crypto.init(h->ctx, ud_crypto.sha256(), NULL) == 1 ? 0 : -1;
}

void ud_sha256_free(ud_sha256 *h) {
    if (!h) return;
    ud_crypto.ctx_free(h->ctx);
    free(h);
}

int ud_sha256_fd(int fd, unsigned char out[32], uint64_t *bytes) {
    enum { BUF = 1 << 20 };
    unsigned char *buf = malloc(BUF);
    if (!buf) { errno = ENOMEM; return -1; }
    ud_sha256 *h = ud_sha256_new();
    if (!h) { free(buf); errno = ENOMEM; return -1; }
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, buf, BUF);
        if (r < 0) { if (errno == EINTR) continue; rc = -1; break; }
        if (r == 0) break;
        ud_sha256_update(h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    if (rc == 0) rc = ud_sha256_final(h, out);
    int saved = errno;
    ud_sha256_free(h);
    free(buf);
    errno = saved;
    if (bytes) *bytes = total;
    return rc;
}

static int ofd_setlk(int fd, short type, int wait, off_t start, off_t len) {
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    int cmd = wait ? F_OFD_SETLKW : F_OFD_SETLK;
    for (;;) {
        int r = fcntl(fd, cmd, &fl);
        if (r == 0) return 0;
        if (errno == EINTR) continue;
        /* Filesystems without OFD support fall back to classic POSIX record locks. */
        if (errno == EINVAL) {
            cmd = wait ? F_SETLKW : F_SETLK;
            r = fcntl(fd, cmd, &fl);
            if (r == 0) return 0;
            if (errno == EINTR) continue;
        }
        return -1;
    }
}

int ud_ofd_lock(int fd, int exclusive, int wait) {
    return ofd_setlk(fd, exclusive ? F_WRLCK : F_RDLCK, wait, 0, 0);
}

int ud_ofd_lock_byte(int fd, int exclusive, int wait, int64_t offset) {
    return ofd_setlk(fd, exclusive ? F_WRLCK : F_RDLCK, wait, (off_t)offset, 1);
}

int ud_ofd_unlock(int fd) { return ofd_setlk(fd, F_UNLCK, 0, 0, 0); }

long ud_statfs_type(const char *path) {
    struct statfs s;
    if (statfs(path, &s) != 0) return -1;
    return (long)s.f_type;
}

int ud_ficlone(int dst_fd, int src_fd) { return ioctl(dst_fd, FICLONE, src_fd); }

int ud_syncfs(int fd) { return syncfs(fd); }

int ud_openat_beneath(int dirfd, const char *path, int flags, mode_t mode, int nosymlinks) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    if (flags & (O_CREAT | O_TMPFILE)) how.mode = mode;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    if (nosymlinks) how.resolve |= RESOLVE_NO_SYMLINKS;
    for (;;) {
        long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        if (r >= 0) return (int)r;
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
    }
}

int ud_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    int rc = (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, RENAME_NOREPLACE);
    if (rc == 0 || (errno != EINVAL && errno != ENOSYS)) return rc;
    /* NFS, FUSE and older kernels refuse the flag (EINVAL). A file: link(2) fails with EEXIST when the
       name is taken, which is the same promise. A directory: rename(2) refuses to replace a non-empty
       one, and the store only ever moves non-empty directories this way. */
    struct stat st;
    if (fstatat(olddirfd, oldpath, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
    if (S_ISDIR(st.st_mode)) {
        struct stat dst;
        if (fstatat(newdirfd, newpath, &dst, AT_SYMLINK_NOFOLLOW) == 0) { errno = EEXIST; return -1; }
        return renameat(olddirfd, oldpath, newdirfd, newpath);
    }
    if (linkat(olddirfd, oldpath, newdirfd, newpath, 0) != 0) return -1;
    (void)unlinkat(olddirfd, oldpath, 0);
    return 0;
}

int ud_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, RENAME_EXCHANGE);
}

int ud_pid_alive(int pid) {
    if (pid <= 0) return 0;
    if (kill(pid, 0) == 0) return 1;
    return errno == EPERM ? 1 : 0;
}

int ud_start_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}

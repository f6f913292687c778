/* C helpers for calls Swift cannot make directly: variadic syscalls (ioctl, fcntl), Linux-only
   syscalls without glibc wrappers in Swift (openat2, renameat2), and OpenSSL's SHA-256. */
#ifndef UDOCKER_CSHIM_H
#define UDOCKER_CSHIM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* SHA-256 over OpenSSL's libcrypto (uses the CPU's SHA extensions where present). */
typedef struct ud_sha256 ud_sha256;
ud_sha256 *ud_sha256_new(void);
int ud_sha256_update(ud_sha256 *ctx, const void *data, size_t len);
/* Writes 32 bytes to out and resets the context for reuse. */
int ud_sha256_final(ud_sha256 *ctx, unsigned char out[32]);
void ud_sha256_free(ud_sha256 *ctx);
/* One-shot hash of an open file descriptor from its current offset to EOF (reads with a large buffer). */
int ud_sha256_fd(int fd, unsigned char out[32], uint64_t *bytes);

/* Open-file-description locks: exclusive or shared, blocking or not. Return 0 or -1 with errno. */
int ud_ofd_lock(int fd, int exclusive, int wait);
/* The same on the one byte at `offset` only: many independent locks in one file. */
int ud_ofd_lock_byte(int fd, int exclusive, int wait, int64_t offset);
int ud_ofd_unlock(int fd);

/* statfs f_type of a path, or -1 with errno. */
long ud_statfs_type(const char *path);

/* ioctl(FICLONE): reflink dst to src. 0 or -1 with errno. */
int ud_ficlone(int dst_fd, int src_fd);
/* syncfs(2): flush the filesystem holding fd. 0 or -1 with errno. */
int ud_syncfs(int fd);

/* openat2 with RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS (and RESOLVE_NO_SYMLINKS when nosymlinks).
   Returns fd, or -1 with errno (ENOSYS on kernels without openat2). */
int ud_openat_beneath(int dirfd, const char *path, int flags, mode_t mode, int nosymlinks);

/* renameat2(RENAME_NOREPLACE). 0 or -1 with errno (EEXIST when the target exists). */
int ud_rename_noreplace(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
/* renameat2(RENAME_EXCHANGE): swaps two paths in one step (a container replaced by its update). */
int ud_rename_exchange(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);

/* Starts writeback of a written range without waiting (sync_file_range SYNC_FILE_RANGE_WRITE), so a
   later fsync has little left to do. 0 or -1 with errno. */
int ud_start_writeback(int fd, int64_t offset, int64_t length);

/* Whether a process exists (kill(pid, 0) semantics, EPERM counts as alive). */
int ud_pid_alive(int pid);

#endif

/* libarchive loaded on first use (dlopen), not at start-up: `run`, the command started hundreds of
   times per job, never reads a tar, and libarchive brings eleven libraries (libxml2, ICU, the
   compressors) whose loading and relocation cost every start about 1.5 ms. These definitions stand
   in for the libarchive functions udocker and its tests call; archive.h checks their prototypes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <archive.h>
#include <archive_entry.h>
#include "archive_lazy.h"

static void *ud_archive_handle;
static pthread_once_t ud_archive_once = PTHREAD_ONCE_INIT;

static void ud_archive_open(void) {
    ud_archive_handle = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!ud_archive_handle) ud_archive_handle = dlopen("libarchive.so", RTLD_NOW | RTLD_LOCAL);
}

static void *ud_archive_sym(const char *name) {
    pthread_once(&ud_archive_once, ud_archive_open);
    return ud_archive_handle ? dlsym(ud_archive_handle, name) : NULL;
}

/* The function `name` of libarchive, looked up once (unpack threads call these concurrently). */
#define UD_LA_FN(name) \
    static name##_t cached; \
    name##_t fn = __atomic_load_n(&cached, __ATOMIC_ACQUIRE); \
    if (!fn) { fn = (name##_t)ud_archive_sym(#name); __atomic_store_n(&cached, fn, __ATOMIC_RELEASE); }

/* A stand-in returning `fail` when libarchive cannot be loaded. */
#define UD_LA(ret, name, params, args, fail) \
    typedef ret (*name##_t) params; \
    ret name params { UD_LA_FN(name) return fn ? fn args : fail; }
#define UD_LA_VOID(name, params, args) \
    typedef void (*name##_t) params; \
    void name params { UD_LA_FN(name) if (fn) fn args; }

typedef struct archive A;
typedef struct archive_entry E;

UD_LA(A *, archive_read_new, (void), (), NULL)
UD_LA(int, archive_read_free, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_format_tar, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_format_gnutar, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_format_raw, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_filter_all, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_filter_bzip2, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_filter_gzip, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_filter_xz, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_support_filter_zstd, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_read_open_fd, (A *a, int fd, size_t block), (a, fd, block), ARCHIVE_FATAL)
UD_LA(int, archive_read_open, (A *a, void *data, archive_open_callback *o, archive_read_callback *r, archive_close_callback *c),
      (a, data, o, r, c), ARCHIVE_FATAL)
UD_LA(int, archive_read_next_header, (A *a, E **e), (a, e), ARCHIVE_FATAL)
UD_LA(la_ssize_t, archive_read_data, (A *a, void *buf, size_t len), (a, buf, len), -1)
UD_LA(int, archive_read_data_block, (A *a, const void **buf, size_t *len, la_int64_t *off), (a, buf, len, off), ARCHIVE_FATAL)
UD_LA(int, archive_read_data_skip, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_filter_code, (A *a, int n), (a, n), -1)
UD_LA(int, archive_errno, (A *a), (a), -1)
UD_LA(const char *, archive_error_string, (A *a), (a), "libarchive.so.13 cannot be loaded")

UD_LA(A *, archive_write_new, (void), (), NULL)
UD_LA(int, archive_write_free, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_close, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_set_format_pax_restricted, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_set_bytes_in_last_block, (A *a, int n), (a, n), ARCHIVE_FATAL)
UD_LA(int, archive_write_add_filter_none, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_add_filter_gzip, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_add_filter_bzip2, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_add_filter_xz, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_add_filter_zstd, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_open_fd, (A *a, int fd), (a, fd), ARCHIVE_FATAL)
UD_LA(int, archive_write_open_filename, (A *a, const char *path), (a, path), ARCHIVE_FATAL)
UD_LA(int, archive_write_header, (A *a, E *e), (a, e), ARCHIVE_FATAL)
UD_LA(la_ssize_t, archive_write_data, (A *a, const void *buf, size_t len), (a, buf, len), -1)

UD_LA(E *, archive_entry_new, (void), (), NULL)
UD_LA_VOID(archive_entry_free, (E *e), (e))
UD_LA(E *, archive_entry_clear, (E *e), (e), NULL)
UD_LA(const char *, archive_entry_pathname, (E *e), (e), NULL)
UD_LA(const char *, archive_entry_hardlink, (E *e), (e), NULL)
UD_LA(const char *, archive_entry_symlink, (E *e), (e), NULL)
UD_LA(__LA_MODE_T, archive_entry_filetype, (E *e), (e), 0)
UD_LA(__LA_MODE_T, archive_entry_perm, (E *e), (e), 0)
UD_LA(la_int64_t, archive_entry_size, (E *e), (e), 0)
UD_LA(la_int64_t, archive_entry_uid, (E *e), (e), 0)
UD_LA(la_int64_t, archive_entry_gid, (E *e), (e), 0)
UD_LA(time_t, archive_entry_mtime, (E *e), (e), 0)
UD_LA(long, archive_entry_mtime_nsec, (E *e), (e), 0)
UD_LA(dev_t, archive_entry_rdevmajor, (E *e), (e), 0)
UD_LA(dev_t, archive_entry_rdevminor, (E *e), (e), 0)
UD_LA_VOID(archive_entry_set_pathname, (E *e, const char *p), (e, p))
UD_LA_VOID(archive_entry_set_hardlink, (E *e, const char *p), (e, p))
UD_LA_VOID(archive_entry_set_symlink, (E *e, const char *p), (e, p))
UD_LA_VOID(archive_entry_set_filetype, (E *e, unsigned int t), (e, t))
UD_LA_VOID(archive_entry_set_perm, (E *e, __LA_MODE_T m), (e, m))
UD_LA_VOID(archive_entry_set_size, (E *e, la_int64_t s), (e, s))
UD_LA_VOID(archive_entry_set_uid, (E *e, la_int64_t u), (e, u))
UD_LA_VOID(archive_entry_set_gid, (E *e, la_int64_t g), (e, g))
UD_LA_VOID(archive_entry_set_mtime, (E *e, time_t t, long ns), (e, t, ns))
UD_LA_VOID(archive_entry_set_rdev, (E *e, dev_t d), (e, d))
UD_LA_VOID(archive_entry_set_rdevmajor, (E *e, dev_t d), (e, d))
UD_LA_VOID(archive_entry_set_rdevminor, (E *e, dev_t d), (e, d))

/* Sync (Sources/Runtime/Sync/SyncCompression.swift): zstd streams of metadata frames in memory. */
UD_LA(int, archive_write_set_format_raw, (A *a), (a), ARCHIVE_FATAL)
UD_LA(int, archive_write_open_memory, (A *a, void *buf, size_t size, size_t *used), (a, buf, size, used), ARCHIVE_FATAL)
UD_LA(int, archive_read_open_memory, (A *a, const void *buf, size_t size), (a, buf, size), ARCHIVE_FATAL)

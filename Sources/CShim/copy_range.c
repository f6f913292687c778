/* copy_file_range(2) for Swift callers (Glibc's Swift module does not export it); see include/copy_range.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "copy_range.h"

long ud_copy_file_range(int fd_in, int fd_out, size_t len) {
#ifdef SYS_copy_file_range
    for (;;) {
        long r = syscall(SYS_copy_file_range, fd_in, NULL, fd_out, NULL, len, 0);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
#else
    (void)fd_in; (void)fd_out; (void)len;
    errno = ENOSYS;
    return -1;
#endif
}

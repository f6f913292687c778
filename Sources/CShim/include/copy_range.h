/* copy_file_range(2) from the current offsets of both descriptors, which the kernel advances: used to
   copy files inside the kernel (server-side copy on NFS) when a reflink is not possible. */
#ifndef UDOCKER_CSHIM_COPY_RANGE_H
#define UDOCKER_CSHIM_COPY_RANGE_H
#include <stddef.h>

/* Bytes copied (0 at end of input), or -1 with errno (ENOSYS, EXDEV, EINVAL, EOPNOTSUPP: fall back to read/write). */
long ud_copy_file_range(int fd_in, int fd_out, size_t len);

#endif

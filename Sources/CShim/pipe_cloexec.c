/* pipe2(O_CLOEXEC) for Swift callers; see include/pipe_cloexec.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>
#include "pipe_cloexec.h"

int ud_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

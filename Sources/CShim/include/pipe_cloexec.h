/* pipe2(O_CLOEXEC), which Glibc's Swift module does not export (it needs _GNU_SOURCE). Used where
   several threads spawn processes at once, so no child inherits another's pipe ends. */
#ifndef UDOCKER_CSHIM_PIPE_CLOEXEC_H
#define UDOCKER_CSHIM_PIPE_CLOEXEC_H

/* Both ends close-on-exec. 0 or -1 with errno. */
int ud_pipe_cloexec(int fds[2]);

#endif

// Starting an engine: exec in place, or spawn and wait while forwarding signals sent to us;
// CPU affinity for --cpuset-cpus.
#ifndef UD_PROCESS_H
#define UD_PROCESS_H

/// Replaces this process with `path` (after chdir to `cwd` when not NULL). Returns errno on failure.
int ud_exec(const char *path, char *const argv[], char *const envp[], const char *cwd);

/// posix_spawns `path` (in `cwd` when not NULL) with default signal dispositions, forwards the
/// signals other processes send us (INT TERM HUP QUIT USR1 USR2 WINCH CONT) to it, waits for it.
/// Sets *status to its exit code, or 128+signal. Returns 0, or errno when it could not start.
/// With `depth` 1 the signals go to the child's own children instead, with 2 to their children
/// (PRoot does not pass signals sent to it on to the program it traces, which is its child; under
/// runc, PRoot is runc's child).
int ud_spawn_wait(const char *path, char *const argv[], char *const envp[], const char *cwd, int depth, int *status);

/// Restricts this process (and what it starts) to the CPUs of a list like "0-2,5".
/// Returns 0, EINVAL for a malformed list, or the errno of sched_setaffinity.
int ud_set_cpu_affinity(const char *list);

#endif

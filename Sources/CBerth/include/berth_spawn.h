// Starting a child process: everything between fork and exec happens here, in C, using
// async-signal-safe calls only. Failures in the child are reported through a pipe.
#ifndef BERTH_SPAWN_H
#define BERTH_SPAWN_H

#include <sys/types.h>

struct berth_spawn_attr {
    const char *path;           // executable, absolute (the caller resolves PATH)
    char *const *argv;
    char *const *envp;
    int stdin_fd, stdout_fd, stderr_fd; // -1: inherit
    int netns_fd;               // -1: stay; otherwise setns(CLONE_NEWNET) before exec
    int new_session;            // setsid() in the child
    const char *cwd;            // NULL: stay
    const int *extra_fds;       // become the child's fds 3, 4, ... (as a readiness pipe, a listening socket)
    int n_extra_fds;            // at most BERTH_SPAWN_MAX_EXTRA_FDS
};

#define BERTH_SPAWN_MAX_EXTRA_FDS 16

/// Starts the child. Returns 0 and sets *pid, or a negative errno; on failure
/// *failed_step names the step that failed in the child ("setns", "exec", ...).
int berth_spawn(const struct berth_spawn_attr *attr, pid_t *pid, const char **failed_step);

#endif

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "berth_spawn.h"

// Steps the child can fail at; the index travels through the pipe with errno.
static const char *const steps[] = {"setns", "setsid", "dup2", "chdir", "exec", "sigmask", "extra fds"};
enum { STEP_SETNS, STEP_SETSID, STEP_DUP2, STEP_CHDIR, STEP_EXEC, STEP_SIGMASK, STEP_EXTRA };

static void report_and_exit(int fd, int step) {
    int msg[2] = {step, errno};
    ssize_t unused = write(fd, msg, sizeof msg);
    (void)unused;
    _exit(127);
}

// Moves fd to target; if fd is below 3 and would be clobbered by an earlier dup2, the caller
// has already lifted it (see below).
static int place(int fd, int target) {
    if (fd < 0) return 0;
    if (fd == target) {
        int flags = fcntl(fd, F_GETFD);
        return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    return dup2(fd, target) < 0 ? -1 : 0;
}

static int lift(int fd) {
    // An fd already in 0..2 may be overwritten by another dup2: move it above first.
    if (fd >= 0 && fd <= 2) return fcntl(fd, F_DUPFD_CLOEXEC, 3);
    return fd;
}

int berth_spawn(const struct berth_spawn_attr *a, pid_t *pid, const char **failed_step) {
    if (a->n_extra_fds < 0 || a->n_extra_fds > BERTH_SPAWN_MAX_EXTRA_FDS) return -EINVAL;
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) return -errno;

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    // vfork: no copy of the parent's page tables (a large static binary made fork cost
    // milliseconds). The child only touches its own locals and makes system calls until exec.
    pid_t child = vfork();
    if (child < 0) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        close(pipefd[0]);
        close(pipefd[1]);
        return -err;
    }
    if (child == 0) {
        // Child: async-signal-safe calls only from here to exec. exec resets handled signals
        // but keeps ignored ones: berth ignores only SIGPIPE, which children must not inherit.
        signal(SIGPIPE, SIG_DFL);
        if (a->netns_fd >= 0 && setns(a->netns_fd, CLONE_NEWNET) < 0) report_and_exit(pipefd[1], STEP_SETNS);
        if (a->new_session && setsid() < 0) report_and_exit(pipefd[1], STEP_SETSID);
        // Extra fds first move above their targets (3 .. 3+n-1), so that neither placing stdio
        // nor placing another extra fd can overwrite one still to be placed.
        int extra[BERTH_SPAWN_MAX_EXTRA_FDS];
        int n_extra = a->extra_fds ? a->n_extra_fds : 0;
        for (int i = 0; i < n_extra; i++) {
            extra[i] = fcntl(a->extra_fds[i], F_DUPFD_CLOEXEC, 3 + n_extra);
            if (extra[i] < 0) report_and_exit(pipefd[1], STEP_EXTRA);
        }
        int in = lift(a->stdin_fd), out = lift(a->stdout_fd), err = lift(a->stderr_fd);
        if (place(in, 0) < 0 || place(out, 1) < 0 || place(err, 2) < 0) report_and_exit(pipefd[1], STEP_DUP2);
        for (int i = 0; i < n_extra; i++) {
            // The report pipe may sit on a target: move it out of the way first.
            if (pipefd[1] == 3 + i) {
                int moved = fcntl(pipefd[1], F_DUPFD_CLOEXEC, 3 + n_extra);
                if (moved < 0) report_and_exit(pipefd[1], STEP_EXTRA);
                pipefd[1] = moved;
            }
            if (dup2(extra[i], 3 + i) < 0) report_and_exit(pipefd[1], STEP_EXTRA);
        }
        if (a->cwd && chdir(a->cwd) < 0) report_and_exit(pipefd[1], STEP_CHDIR);
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) report_and_exit(pipefd[1], STEP_SIGMASK);
        execve(a->path, a->argv, a->envp);
        report_and_exit(pipefd[1], STEP_EXEC);
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pipefd[1]);
    int msg[2];
    ssize_t n;
    do { n = read(pipefd[0], msg, sizeof msg); } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n == (ssize_t)sizeof msg) {
        // The child failed before exec; reap it so no zombie is left.
        int status;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
        if (failed_step) *failed_step = (msg[0] >= 0 && msg[0] <= STEP_EXTRA) ? steps[msg[0]] : "spawn";
        return -msg[1];
    }
    *pid = child;
    return 0;
}

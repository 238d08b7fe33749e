#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include "berth_sys.h"

int berth_setns(int fd, int nstype) { return setns(fd, nstype); }
int berth_unshare(int flags) { return unshare(flags); }
pid_t berth_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int berth_clone_newnet(void) { return CLONE_NEWNET; }
int berth_clone_newns(void) { return CLONE_NEWNS; }
int berth_clone_newuts(void) { return CLONE_NEWUTS; }
int berth_clone_newipc(void) { return CLONE_NEWIPC; }
int berth_clone_newpid(void) { return CLONE_NEWPID; }
int berth_clone_newcgroup(void) { return CLONE_NEWCGROUP; }
int berth_clone_newuser(void) { return CLONE_NEWUSER; }

int berth_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int berth_cloexec_from(int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
    return -errno;
#else
    (void)first;
    return -ENOSYS;
#endif
}

int berth_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

#include <sys/vfs.h>
long berth_fs_type(int fd) {
    struct statfs fs;
    if (fstatfs(fd, &fs) < 0) return -1;
    return (long)fs.f_type;
}

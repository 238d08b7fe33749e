// _GNU_SOURCE-only system calls and constants.
#ifndef BERTH_SYS_H
#define BERTH_SYS_H

#include <sys/types.h>

int berth_setns(int fd, int nstype);
int berth_unshare(int flags);
pid_t berth_gettid(void);
int berth_clone_newnet(void);
int berth_clone_newns(void);
int berth_clone_newuts(void);
int berth_clone_newipc(void);
int berth_clone_newpid(void);
int berth_clone_newcgroup(void);
int berth_clone_newuser(void);
/// pidfd_open(2); -1 with errno on failure.
int berth_pidfd_open(pid_t pid);
/// close_range(first, ~0, CLOEXEC) where available, else nothing; 0 or -errno.
int berth_cloexec_from(int first);
/// pipe2(fds, O_CLOEXEC).
int berth_pipe_cloexec(int fds[2]);
/// The file system magic of an open file (statfs f_type), or -1 with errno.
long berth_fs_type(int fd);

#endif

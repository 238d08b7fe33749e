// Zero-copy and socket calls that need _GNU_SOURCE (splice, accept4, pipe sizes), for
// berth-proxy. Implemented in io.c.
#ifndef BERTH_IO_H
#define BERTH_IO_H

#include <sys/types.h>
#include <sys/socket.h>

/// splice(2) between a socket and a pipe with SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
/// bytes moved, 0 at end of file, or -1 with errno.
ssize_t berth_splice(int from, int to, size_t length);
/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; the peer's address goes to addr/len if given.
int berth_accept(int listener, struct sockaddr *addr, socklen_t *len);
/// pipe2(fds, O_NONBLOCK | O_CLOEXEC), then F_SETPIPE_SZ to `size` when size > 0 (a failure
/// to resize is ignored: the pipe keeps the default size). 0 or -1 with errno.
int berth_pipe_nonblocking(int fds[2], int size);

#endif

// Datagram batching (recvmmsg/sendmmsg), address-binding options and inotify for berth-dns.
// recvmmsg/sendmmsg and struct mmsghdr are _GNU_SOURCE-only, so Swift sees them through
// these functions.
#ifndef BERTH_DNS_H
#define BERTH_DNS_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/inotify.h>

/// One datagram in a batch: the caller's buffer and, after receiving, its length and sender.
struct berth_datagram {
    void *buffer;
    uint32_t capacity;          // bytes the buffer holds (receive) or to send (send: length)
    uint32_t length;            // bytes received
    struct sockaddr_storage peer;
    socklen_t peer_length;
};

/// Receives up to `count` (at most 64) datagrams without blocking (MSG_DONTWAIT).
/// Returns how many, or -1 with errno (EAGAIN when none is waiting).
int berth_receive_batch(int fd, struct berth_datagram *datagrams, unsigned count);

/// Sends `count` (at most 64) datagrams, each `length` bytes to its `peer`. Returns how many
/// were sent, or -1 with errno.
int berth_send_batch(int fd, struct berth_datagram *datagrams, unsigned count);

/// accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC).
int berth_accept_nonblocking(int fd, struct sockaddr *address, socklen_t *length);

/// IP_FREEBIND / IPV6_FREEBIND: bind an address the host does not have (yet).
int berth_ip_freebind(void);
int berth_ipv6_freebind(void);

#endif

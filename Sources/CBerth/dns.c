#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include "berth_dns.h"

#define BATCH_MAX 64

// One mmsghdr per datagram, pointing at its buffer and peer address.
static void describe(struct mmsghdr *messages, struct iovec *vectors, struct berth_datagram *d, unsigned count, int receiving) {
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = d[i].buffer;
        vectors[i].iov_len = d[i].capacity;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &d[i].peer;
        messages[i].msg_hdr.msg_namelen = receiving ? sizeof(struct sockaddr_storage) : d[i].peer_length;
    }
}

int berth_receive_batch(int fd, struct berth_datagram *d, unsigned count) {
    struct mmsghdr messages[BATCH_MAX];
    struct iovec vectors[BATCH_MAX];
    if (count > BATCH_MAX) count = BATCH_MAX;
    describe(messages, vectors, d, count, 1);
    int n;
    do {
        n = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        d[i].length = messages[i].msg_len;
        d[i].peer_length = messages[i].msg_hdr.msg_namelen;
        // A datagram longer than the buffer is cut; report it as too long to parse.
        if (messages[i].msg_hdr.msg_flags & MSG_TRUNC) d[i].length = d[i].capacity + 1;
    }
    return n;
}

int berth_send_batch(int fd, struct berth_datagram *d, unsigned count) {
    struct mmsghdr messages[BATCH_MAX];
    struct iovec vectors[BATCH_MAX];
    if (count > BATCH_MAX) count = BATCH_MAX;
    describe(messages, vectors, d, count, 0);
    unsigned sent = 0;
    while (sent < count) {
        int n = sendmmsg(fd, messages + sent, count - sent, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            // Skip a datagram the kernel refuses (unreachable peer) rather than the batch.
            if (errno != EAGAIN && errno != ENOBUFS) { sent++; continue; }
            return sent > 0 ? (int)sent : -1;
        }
        sent += (unsigned)n;
    }
    return (int)sent;
}

int berth_accept_nonblocking(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int berth_ip_freebind(void) { return IP_FREEBIND; }
int berth_ipv6_freebind(void) {
#ifdef IPV6_FREEBIND
    return IPV6_FREEBIND;
#else
    return 78;
#endif
}

// Netlink macros and libmnl macro helpers, as functions Swift can call.
#ifndef BERTH_NETLINK_H
#define BERTH_NETLINK_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <libmnl/libmnl.h>

static inline size_t berth_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }
static inline size_t berth_mnl_align(size_t len) { return MNL_ALIGN(len); }
static inline size_t berth_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }
static inline size_t berth_attr_hdrlen(void) { return MNL_ATTR_HDRLEN; }
static inline size_t berth_nlmsg_align(size_t len) { return NLMSG_ALIGN(len); }

// Attribute iteration (mnl_attr_for_each* are macros).
static inline struct nlattr *berth_attr_first(const struct nlmsghdr *nlh, size_t offset) {
    return (struct nlattr *)mnl_nlmsg_get_payload_offset(nlh, offset);
}
static inline bool berth_attr_ok(const struct nlmsghdr *nlh, const struct nlattr *attr) {
    return mnl_attr_ok(attr, (char *)mnl_nlmsg_get_payload_tail(nlh) - (char *)attr);
}
static inline struct nlattr *berth_nested_first(const struct nlattr *nest) {
    return (struct nlattr *)mnl_attr_get_payload(nest);
}
static inline bool berth_nested_ok(const struct nlattr *nest, const struct nlattr *attr) {
    return mnl_attr_ok(attr, (char *)mnl_attr_get_payload(nest) + mnl_attr_get_payload_len(nest) - (char *)attr);
}
static inline struct nlattr *berth_attr_next(const struct nlattr *attr) { return mnl_attr_next(attr); }

#endif

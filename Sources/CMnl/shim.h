// Order matters: <net/if.h> before any linux/ header, never <linux/if.h>; <netinet/in.h>
// before <linux/if_bridge.h> (which pulls in <linux/in6.h>: in6_addr would clash with Glibc's
// in modules that use sockaddr_in6 and import this one).
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/veth.h>
#include <linux/neighbour.h>
#include <libmnl/libmnl.h>

// CBerth: what Swift cannot import from C (macros, _GNU_SOURCE-only calls) and the
// async-signal-safe fork-to-exec stage. No other logic lives here.
#ifndef CBERTH_H
#define CBERTH_H

#include "berth_netlink.h"
#include "berth_sys.h"
#include "berth_spawn.h"
#include "berth_events.h"
#include "berth_dns.h"
#include "berth_io.h"

#endif

// Event notification APIs Glibc's Swift module does not export.
#ifndef BERTH_EVENTS_H
#define BERTH_EVENTS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#endif

/* Telling the service manager how vmplugd is doing (sd_notify(3)): ready,
 * reloading, stopping, and a one-line status. Built without libsystemd,
 * or not started by a service manager (no NOTIFY_SOCKET), every call does
 * nothing. */
#pragma once

#include <stdint.h>

#include "loop/loop.h"

/* READY=1: the configuration is loaded, the watcher runs and every sink
 * exists. Also ends a reload. */
void notify_ready(void);
/* RELOADING=1: a reload started; notify_ready() ends it. */
void notify_reloading(void);
/* STOPPING=1: vmplugd is shutting down. */
void notify_stopping(void);

/* The STATUS= line, sent when it changes but at most once per interval:
 * a change within the interval is sent when the interval ends (only the
 * latest text). */
struct notify_status;

/* interval_usec: the least time between two STATUS= messages. */
struct notify_status *notify_status_new(struct loop *loop, uint64_t interval_usec);
/* NULL is a no-op. */
void notify_status_free(struct notify_status *s);
/* The status is now text (copied). */
void notify_status_set(struct notify_status *s, const char *text);

/* WATCHDOG=1 when the service manager asks for it (WATCHDOG_USEC, and
 * WATCHDOG_PID if set, naming vmplugd): sent by a timer of loop every
 * half of that time, so a loop that stops turning stops the pings and
 * the manager restarts vmplugd. NULL when no watchdog is asked for. */
struct notify_watchdog;

struct notify_watchdog *notify_watchdog_new(struct loop *loop);
/* NULL is a no-op. */
void notify_watchdog_free(struct notify_watchdog *w);

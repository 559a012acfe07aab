/* [usb-export]: the devices this host gives to a usb-redir slot on
 * another host. For each present device a section matches, one
 * usbredirect child (`usbredirect --device BUS-DEVNUM --to HOST:PORT`,
 * execve, no shell, stdin /dev/null, stdout and stderr vmplugd's, no other
 * descriptor); it is stopped (SIGTERM, SIGKILL after 5 s) and reaped when
 * the device goes or the section no longer claims it. A child that exits
 * while its device is there (the far side went away, the network is
 * down) is started again after 1 s, doubling up to 60 s; the first exit
 * of an outage is logged, the others at debug level, and a child that
 * stays up 60 s ends the outage. Children are watched with a pidfd on
 * the loop: no SIGCHLD, no polling, nothing when nothing is plugged. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf/conf.h"
#include "loop/loop.h"
#include "usb/device.h"

#define EXPORT_RETRY_FIRST_USEC 1000000ULL
#define EXPORT_RETRY_MAX_USEC 60000000ULL
/* A child up this long is taken for connected: the next exit is a new outage. */
#define EXPORT_UP_USEC 60000000ULL
/* A stopped child that has not exited this long after SIGTERM gets SIGKILL. */
#define EXPORT_KILL_USEC 5000000ULL

struct exporter;

/* One export as status shows it. */
struct export_info {
	const char *name;   /* the [usb-export] section */
	const char *device; /* BUS-DEVNUM as usbredirect's --device takes it */
	const char *port;   /* the device's sysfs port path */
	const char *to;
	bool running;           /* a child runs; else it waits to be started again */
	time_t since;           /* when it started running, or began retrying (wall clock) */
	unsigned failures;      /* exits in the current outage */
	uint64_t retry_in_usec; /* retrying: the wait before the next start */
};

enum export_event {
	EXPORT_STARTED, /* a child started */
	EXPORT_EXITED,  /* it exited while wanted: retried */
	EXPORT_STOPPED, /* the device went or the section stopped claiming it */
};

typedef void (*export_event_fn)(void *data, enum export_event ev, const struct export_info *info);

/* fn (may be NULL) is told every change; data is passed back. */
struct exporter *export_new(struct loop *loop, export_event_fn fn, void *data);
/* Stop every child and wait for each up to 2 s (SIGKILL after), then
 * free. NULL is a no-op. */
void export_free(struct exporter *x);

/* The configuration (borrowed until the next call): the sections and the
 * program. The exports are made to match it at once: new ones started,
 * those no longer claimed or whose destination changed stopped. */
void export_set_conf(struct exporter *x, const struct conf *conf);
/* A USB device is present (added, or changed); copied. A new device
 * number at the same port is a new device. */
void export_device_add(struct exporter *x, const struct usb_device *dev);
void export_device_remove(struct exporter *x, const char *syspath);

/* Every export, in no particular order, to fn. */
void export_foreach(struct exporter *x, void (*fn)(void *ctx, const struct export_info *info),
		    void *ctx);

/* The D-Bus announcement of a switch: the signal
 * org.vmplug.Switch1.Switched(s from, s to) from the object
 * /org/vmplug/Switch1 on the system bus, whose name org.vmplug.Switch1
 * vmplugd owns when the bus policy (data/org.vmplug.Switch1.conf) lets it.
 * The connection runs on the loop and never blocks it. When the system
 * bus cannot be reached, that is logged once and the signal is skipped;
 * the next switch tries again. Built without libsystemd, it does
 * nothing. DBUS_SYSTEM_BUS_ADDRESS points it at another bus (tests). */
#pragma once

#include "loop/loop.h"

#define BUS_NAME "org.vmplug.Switch1"
#define BUS_PATH "/org/vmplug/Switch1"
#define BUS_INTERFACE "org.vmplug.Switch1"

struct bus;

/* Connects now (failure is logged, not fatal). Never NULL. */
struct bus *bus_new(struct loop *loop);
/* Sends what is queued (briefly) and disconnects. NULL is a no-op. */
void bus_free(struct bus *b);
void bus_switched(struct bus *b, const char *from, const char *to);

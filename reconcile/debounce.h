/* Debounce: when a device that appeared on a flapping port may be
 * attached. A pure policy: a port's changes and "now" in, a settle time
 * out; no devices, no VMs, no clock of its own (tested on virtual time by
 * the scenarios in tests/data/debounce/).
 *
 * A port (a syspath) "changes" when a device is removed from it or a new
 * device (a new bus/devnum) appears on it; changes less than
 * RECONCILE_FLAP_WINDOW_USEC apart form one burst. The first
 * RECONCILE_FLAP_FREE changes of a burst (plug, unplug, replug) act at
 * once; after that, a device that appears on the port is attached only
 * once the port has been quiet for a settle delay that starts at
 * RECONCILE_SETTLE_USEC and doubles with every second change of the
 * burst, up to RECONCILE_SETTLE_MAX_USEC. Removals always act at once.
 * A port quiet for a whole window is forgotten. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECONCILE_FLAP_WINDOW_USEC 2000000ULL /* 2 s */
#define RECONCILE_FLAP_FREE 3
#define RECONCILE_SETTLE_USEC 200000ULL      /* 200 ms */
#define RECONCILE_SETTLE_MAX_USEC 2000000ULL /* 2 s */

struct reconcile_debounce;

struct reconcile_debounce_verdict {
	/* A device that arrived: not attached before this (0: at once).
	 * Always 0 for a removal. */
	uint64_t settle_at;
	/* The changes of the port's burst so far, this one included. */
	unsigned changes;
	/* This is the first device of the burst to be held back: the one
	 * moment worth telling the user. */
	bool first_held;
};

struct reconcile_debounce *reconcile_debounce_new(void);
/* NULL is a no-op. */
void reconcile_debounce_free(struct reconcile_debounce *db);

/* The port `syspath` changed at `now`: a new device `arrived` there, or
 * one left it. `now` never goes back. */
struct reconcile_debounce_verdict reconcile_debounce_change(struct reconcile_debounce *db,
							    const char *syspath, bool arrived,
							    uint64_t now);
/* The ports remembered now (each changed within a window of its last
 * change, as of the latest call). */
size_t reconcile_debounce_ports(const struct reconcile_debounce *db);

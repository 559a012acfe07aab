/* Debounce of flapping ports, a pure policy (see debounce.h). */
#include "config.h"

#include "reconcile/debounce.h"

#include <stdlib.h>

#include "util/list.h"
#include "util/util.h"

/* A port that changed recently, present device or not. */
struct port {
	struct list link;
	char *syspath;
	uint32_t hash; /* of syspath */
	uint64_t last_change;
	unsigned changes; /* in the current burst */
	bool told;        /* the burst's first held device was reported */
};

struct reconcile_debounce {
	struct list ports;
};

struct reconcile_debounce *reconcile_debounce_new(void)
{
	struct reconcile_debounce *db = xnew(struct reconcile_debounce);

	list_init(&db->ports);
	return db;
}

/* Forget a port (quiet for a window, or at the end). */
static void port_free(struct port *p)
{
	list_remove(&p->link);
	free(p->syspath);
	free(p);
}

void reconcile_debounce_free(struct reconcile_debounce *db)
{
	struct port *p, *tmp;

	if (!db)
		return;
	list_for_each_safe(p, tmp, &db->ports, link)
		port_free(p);
	free(db);
}

/* The port's history, made on its first change; ports quiet for a whole
 * window are forgotten on the way, so the list holds only ports that
 * changed within the last window. */
static struct port *port_get(struct reconcile_debounce *db, const char *syspath, uint64_t now)
{
	struct port *p, *tmp, *found = NULL;
	uint32_t h = str_hash(syspath);

	list_for_each_safe(p, tmp, &db->ports, link) {
		if (p->hash == h && streq(p->syspath, syspath))
			found = p;
		else if (now - p->last_change > RECONCILE_FLAP_WINDOW_USEC)
			port_free(p);
	}
	if (!found) {
		found = xnew(struct port);
		found->syspath = xstrdup(syspath);
		found->hash = h;
		list_insert_tail(&db->ports, &found->link);
	} else if (now - found->last_change > RECONCILE_FLAP_WINDOW_USEC) {
		found->changes = 0;
		found->told = false;
	}
	return found;
}

/* How long a device arriving with the port's `changes`-th change waits:
 * changes 4-5 the base delay, 6-7 twice that, ... up to the cap. */
static uint64_t settle_delay(unsigned changes)
{
	unsigned doublings = (changes - RECONCILE_FLAP_FREE - 1) / 2;
	uint64_t delay = RECONCILE_SETTLE_USEC << (doublings > 4 ? 4 : doublings);

	return delay > RECONCILE_SETTLE_MAX_USEC ? RECONCILE_SETTLE_MAX_USEC : delay;
}

struct reconcile_debounce_verdict reconcile_debounce_change(struct reconcile_debounce *db,
							    const char *syspath, bool arrived,
							    uint64_t now)
{
	struct port *p = port_get(db, syspath, now);
	struct reconcile_debounce_verdict v = { 0 };

	p->changes++;
	p->last_change = now;
	v.changes = p->changes;
	if (!arrived || p->changes <= RECONCILE_FLAP_FREE)
		return v;
	v.settle_at = now + settle_delay(p->changes);
	v.first_held = !p->told;
	p->told = true;
	return v;
}

size_t reconcile_debounce_ports(const struct reconcile_debounce *db)
{
	const struct port *p;
	size_t n = 0;

	list_for_each(p, &db->ports, link)
		n++;
	return n;
}

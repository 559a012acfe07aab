/* Debounce of flapping ports, a pure policy (see debounce.h). */
#include "config.h"

#include "reconcile/debounce.h"

#include <stdlib.h>

#include "util/hash.h"
#include "util/list.h"
#include "util/util.h"

/* A port that changed recently, present device or not. */
struct port {
	struct list link;         /* in ports, least recently changed first */
	struct hash_link by_path; /* in by_path */
	char *syspath;
	uint64_t last_change;
	unsigned changes; /* in the current burst */
	bool told;        /* the burst's first held device was reported */
};

/* The ports by syspath, and in the order of their last change, so a
 * change finds its port and forgets the quiet ones without a walk of
 * every port. */
struct reconcile_debounce {
	struct list ports;
	struct hash by_path;
};

struct reconcile_debounce *reconcile_debounce_new(void)
{
	struct reconcile_debounce *db = xnew(struct reconcile_debounce);

	list_init(&db->ports);
	return db;
}

/* Forget a port (quiet for a window, or at the end). */
static void port_free(struct reconcile_debounce *db, struct port *p)
{
	list_remove(&p->link);
	hash_remove(&db->by_path, &p->by_path);
	free(p->syspath);
	free(p);
}

void reconcile_debounce_free(struct reconcile_debounce *db)
{
	struct port *p, *tmp;

	if (!db)
		return;
	list_for_each_safe(p, tmp, &db->ports, link)
		port_free(db, p);
	hash_clear(&db->by_path);
	free(db);
}

/* The port's history, made on its first change, and last in the list
 * now; ports quiet for a whole window are forgotten on the way (they are
 * the first in the list), so the list holds only ports that changed
 * within the last window. */
static struct port *port_get(struct reconcile_debounce *db, const char *syspath, uint64_t now)
{
	struct port *p, *tmp, *found = NULL;
	uint32_t h = str_hash(syspath);

	hash_for_each_match(p, &db->by_path, h, by_path)
		if (streq(p->syspath, syspath)) {
			found = p;
			break;
		}
	list_for_each_safe(p, tmp, &db->ports, link) {
		if (now - p->last_change <= RECONCILE_FLAP_WINDOW_USEC)
			break;
		if (p != found)
			port_free(db, p);
	}
	if (!found) {
		found = xnew(struct port);
		found->syspath = xstrdup(syspath);
		hash_insert(&db->by_path, &found->by_path, h);
	} else {
		list_remove(&found->link);
		if (now - found->last_change > RECONCILE_FLAP_WINDOW_USEC) {
			found->changes = 0;
			found->told = false;
		}
	}
	list_insert_tail(&db->ports, &found->link);
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
	return db->by_path.len;
}

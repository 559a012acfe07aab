/* The reconciler's present host devices, by syspath and by address. */
#include "config.h"

#include <stdlib.h>

#include "reconcile/reconcile-int.h"
#include "usb/device.h"
#include "util/util.h"

void reconcile_index_init(struct rc_index *ix)
{
	list_init(&ix->devices);
}

struct rc_device *reconcile_index_find(const struct rc_index *ix, const char *syspath)
{
	uint32_t h = str_hash(syspath);
	struct rc_device *d;

	hash_for_each_match(d, &ix->by_path, h, by_path)
		if (streq(d->dev->syspath, syspath))
			return d;
	return NULL;
}

struct rc_device *reconcile_index_at_slow(const struct rc_index *ix, unsigned bus, unsigned devnum)
{
	struct rc_device *d;

	list_for_each(d, &ix->devices, link)
		if (d->dev->bus == bus && d->dev->devnum == devnum)
			return d;
	return NULL;
}

/* The slot of bus/devnum in the table, NULL when the table has none. */
static struct rc_device **slot(const struct rc_index *ix, unsigned bus, unsigned devnum)
{
	size_t i = (size_t)bus * RC_ADDR_DEVNUMS + devnum;

	if (bus >= RC_ADDR_MAX_BUS || devnum >= RC_ADDR_DEVNUMS || i >= ix->by_addr_len)
		return NULL;
	return &ix->by_addr[i];
}

struct rc_device *reconcile_index_add(struct rc_index *ix, struct usb_device *dev)
{
	struct rc_device *d = xnew(struct rc_device);
	size_t i = (size_t)dev->bus * RC_ADDR_DEVNUMS + dev->devnum;

	d->dev = dev;
	list_init(&d->owned_link);
	heap_node_init(&d->settle.node);
	d->settle.kind = RC_DEADLINE_SETTLE;
	hash_insert(&ix->by_path, &d->by_path, str_hash(dev->syspath));
	list_insert_tail(&ix->devices, &d->link);
	if (dev->bus >= RC_ADDR_MAX_BUS || dev->devnum >= RC_ADDR_DEVNUMS)
		return d;
	if (i >= ix->by_addr_len) {
		size_t len = ((size_t)dev->bus + 1) * RC_ADDR_DEVNUMS;

		ix->by_addr = xrealloc(ix->by_addr, len * sizeof(*ix->by_addr));
		memset(ix->by_addr + ix->by_addr_len, 0,
		       (len - ix->by_addr_len) * sizeof(*ix->by_addr));
		ix->by_addr_len = len;
	}
	/* A device there already (a missed remove) keeps the slot. */
	if (!ix->by_addr[i]) {
		ix->by_addr[i] = d;
	} else {
		d->shadowed = true;
		ix->shadowed++;
	}
	return d;
}

void reconcile_index_remove(struct rc_index *ix, struct rc_device *d)
{
	struct rc_device **s = slot(ix, d->dev->bus, d->dev->devnum), *o;

	list_remove(&d->link);
	list_remove(&d->owned_link);
	hash_remove(&ix->by_path, &d->by_path);
	if (d->shadowed)
		ix->shadowed--;
	if (s && *s == d) {
		/* Another device with its address (a missed remove) takes
		 * its place: walked for only while some device is shadowed. */
		*s = NULL;
		if (ix->shadowed)
			list_for_each(o, &ix->devices, link)
				if (o->shadowed && o->dev->bus == d->dev->bus &&
				    o->dev->devnum == d->dev->devnum) {
					*s = o;
					o->shadowed = false;
					ix->shadowed--;
					break;
				}
	}
	free(d->override_vm);
	usb_device_free(d->dev);
	free(d);
}

void reconcile_index_clear(struct rc_index *ix)
{
	struct rc_device *d, *tmp;

	list_for_each_safe(d, tmp, &ix->devices, link)
		reconcile_index_remove(ix, d);
	hash_clear(&ix->by_path);
	free(ix->by_addr);
	ix->by_addr = NULL;
	ix->by_addr_len = 0;
}

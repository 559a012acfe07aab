/* The reconciler: desired vs actual, per VM (see reconcile.h). */
#include "config.h"

#include "daemon/reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "usb/rules.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

#define LIST_RETRY_MAX_USEC (5 * USEC_PER_SEC)
#define ADDR_DEVNUMS 128 /* USB device numbers are 1 to 127 */
#define ADDR_MAX_BUS 1024
/* Conflicts remembered as said; past this many the memory starts over. */
#define CONFLICTS_MAX 256

/* A present host USB device and the verdict of the current config. */
struct rc_device {
	struct list link;
	struct usb_device *dev;
	const struct conf_vm *owner;      /* who gets it, overrides applied */
	const struct conf_usb_rule *rule; /* the owner's claiming rule, if any */
	enum conf_attach_mode mode;
	size_t claimers;
	enum reconcile_override override;
	char *override_vm;
	uint64_t settle_at; /* debounce: not desired before this; 0: settled */
	uint32_t hash;      /* of dev->syspath */
};

/* A port that changed recently (debounce), present device or not. */
struct rc_port {
	struct list link;
	char *syspath;
	uint32_t hash; /* of syspath */
	uint64_t last_change;
	unsigned changes; /* in the current burst */
	bool told;        /* the burst was logged */
};

struct rc_vm;

/* One object with a vmplug- id in one VM. */
struct rc_item {
	struct list link;
	struct rc_vm *vm;
	char *id;
	enum reconcile_item_state state;
	bool input;
	unsigned bus, devnum; /* from the id; 0 if it names no host device */
	unsigned gen;         /* input: vm->input_gen it was attached under, 0: found in QEMU */
	char *evdev;          /* input: the node QEMU opened */
	char *desc;           /* usb: the host device as it was when attached, for logs */
	char *syspath;        /* usb: where that device was; NULL if found in QEMU */
	unsigned failures;
	uint64_t retry_at; /* RETRY, or a detach to retry (ATTACHED) */
	char *error;
	struct rc_op *op;
};

/* The callback data of one backend operation; lives until the callback
 * ran or the backend was destroyed. */
struct rc_op {
	struct list link;
	struct rc_vm *vm;
	struct rc_item *item; /* NULL for list, or once the item is gone */
};

struct rc_vm {
	struct list link;
	struct reconcile *rc;
	const struct conf_vm *conf; /* NULL while retiring */
	struct conf_vm params;      /* the backend's own copy: name and how to reach it */
	struct backend_vm *backend;
	enum reconcile_vm_state state;
	struct list items;
	struct list ops;
	bool list_pending;
	unsigned list_failures;
	uint64_t list_retry_at;
	char *last_error;
	bool dead;  /* retired: freed by the next reconcile_tick() */
	bool dirty; /* due for a pass */
	unsigned input_gen;
};

struct reconcile {
	const struct conf *conf;
	struct reconcile_hooks hooks;
	void *data;
	struct list vms;
	struct list devices;
	struct list ports; /* struct rc_port, debounce history */
	/* devices by address, [bus * ADDR_DEVNUMS + devnum]: a lookup per
	 * item and pass must not walk every device */
	struct rc_device **by_addr;
	size_t by_addr_len;
	size_t vm_passes;
	char **conflicts; /* conflicts logged under this config: conflict_key() */
	uint64_t scheduled;
	bool in_pass; /* guards against passes started from inside a pass */
	bool again;
	bool reap; /* some VM is dead */
};

static const struct backend_events vm_events;
static void pass_all(struct reconcile *rc);
static void pass_vm(struct rc_vm *vm);
static void pass_address(struct reconcile *rc, unsigned bus, unsigned devnum,
			 const struct conf_vm *owner);
static void pass_inputs(struct rc_vm *vm, uint64_t t);

static uint64_t now(const struct reconcile *rc)
{
	return rc->hooks.now ? rc->hooks.now(rc->data) : now_usec();
}

static void notify(struct reconcile *rc, const struct reconcile_event *ev)
{
	if (rc->hooks.notify)
		rc->hooks.notify(rc->data, ev);
}

/* ------------------------------------------------------------------- ids */

static const struct {
	enum conf_attach_mode mode;
	const char *prefix;
} id_prefixes[] = {
	{ CONF_ATTACH_ADDRESS, BACKEND_ID_PREFIX "usb-" },
	{ CONF_ATTACH_FD, BACKEND_ID_PREFIX "usbfd-" },
	{ CONF_ATTACH_PORT, BACKEND_ID_PREFIX "usbport-" },
};

char *reconcile_usb_id(const struct usb_device *dev, enum conf_attach_mode mode)
{
	for (size_t i = 0; i < ARRAY_SIZE(id_prefixes); i++)
		if (id_prefixes[i].mode == mode)
			return xasprintf("%s%u-%u", id_prefixes[i].prefix, dev->bus, dev->devnum);
	abort();
}

/* The host device an id of ours names: 0 if it is not one of our USB ids. */
static bool parse_usb_id(const char *id, unsigned *bus, unsigned *devnum)
{
	for (size_t i = 0; i < ARRAY_SIZE(id_prefixes); i++) {
		const char *p = id_prefixes[i].prefix;
		char tail;

		if (startswith(id, p) && sscanf(id + strlen(p), "%u-%u%c", bus, devnum, &tail) == 2)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------- devices */

/* FNV-1a: syspaths share a long prefix, so lists of devices and ports
 * are searched by hash first, and compared in full only on a match. */
static uint32_t path_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct rc_device *find_device(const struct reconcile *rc, const char *syspath)
{
	uint32_t h = path_hash(syspath);
	struct rc_device *d;

	list_for_each(d, &rc->devices, link)
		if (d->hash == h && streq(d->dev->syspath, syspath))
			return d;
	return NULL;
}

static bool addr_indexed(unsigned bus, unsigned devnum)
{
	return bus < ADDR_MAX_BUS && devnum < ADDR_DEVNUMS;
}

static struct rc_device *find_device_by_address(const struct reconcile *rc, unsigned bus,
						unsigned devnum)
{
	struct rc_device *d;
	size_t i = (size_t)bus * ADDR_DEVNUMS + devnum;

	if (addr_indexed(bus, devnum))
		return i < rc->by_addr_len ? rc->by_addr[i] : NULL;
	list_for_each(d, &rc->devices, link)
		if (d->dev->bus == bus && d->dev->devnum == devnum)
			return d;
	return NULL;
}

/* d (in the device list) now has its address: index it. */
static void addr_add(struct reconcile *rc, struct rc_device *d)
{
	size_t i = (size_t)d->dev->bus * ADDR_DEVNUMS + d->dev->devnum;

	if (!addr_indexed(d->dev->bus, d->dev->devnum))
		return;
	if (i >= rc->by_addr_len) {
		size_t len = ((size_t)d->dev->bus + 1) * ADDR_DEVNUMS;

		rc->by_addr = xrealloc(rc->by_addr, len * sizeof(*rc->by_addr));
		memset(rc->by_addr + rc->by_addr_len, 0,
		       (len - rc->by_addr_len) * sizeof(*rc->by_addr));
		rc->by_addr_len = len;
	}
	if (!rc->by_addr[i])
		rc->by_addr[i] = d;
}

/* d leaves the device list: another device with its address (a missed
 * remove) takes its place in the index. */
static void addr_remove(struct reconcile *rc, struct rc_device *d)
{
	size_t i = (size_t)d->dev->bus * ADDR_DEVNUMS + d->dev->devnum;
	struct rc_device *o;

	if (!addr_indexed(d->dev->bus, d->dev->devnum) || i >= rc->by_addr_len ||
	    rc->by_addr[i] != d)
		return;
	rc->by_addr[i] = NULL;
	list_for_each(o, &rc->devices, link)
		if (o != d && o->dev->bus == d->dev->bus && o->dev->devnum == d->dev->devnum) {
			rc->by_addr[i] = o;
			break;
		}
}

/* Debug level: who gets the device and why, for bug reports. */
static void log_verdict(const struct rc_device *d)
{
	char *desc;

	if (log_get_level() < LOG_LEVEL_DEBUG)
		return;
	desc = usb_device_describe(d->dev);
	if (d->owner && d->override == RECONCILE_OVERRIDE_ATTACH)
		log_debug("usb %s: goes to vm %s (vmplugctl attach), attach-mode %s", desc,
			  d->owner->name, conf_attach_mode_name(d->mode));
	else if (d->owner)
		log_debug("usb %s: goes to vm %s (rule %s), attach-mode %s", desc, d->owner->name,
			  d->rule ? d->rule->name : "?", conf_attach_mode_name(d->mode));
	else if (d->override == RECONCILE_OVERRIDE_DETACH)
		log_debug("usb %s: kept from vm %s (vmplugctl detach)", desc, d->override_vm);
	else
		log_debug("usb %s: no VM claims it", desc);
	free(desc);
}

/* A device on the same port with the same identity is the same conflict,
 * whatever its device number: a device replugged or reset over and over
 * must not repeat it. */
static char *conflict_key(const struct usb_device *dev)
{
	return xasprintf("%s %04x:%04x %s", dev->syspath, (unsigned)dev->vendor,
			 (unsigned)dev->product, dev->serial ? dev->serial : "");
}

/* Said once per conflict and configuration (a reload judges anew). */
static void log_conflict(struct reconcile *rc, const struct rc_device *d)
{
	char *key = conflict_key(d->dev), *desc, **names = NULL, *joined;

	if (strv_contains(rc->conflicts, key)) {
		free(key);
		return;
	}
	if (strv_len(rc->conflicts) >= CONFLICTS_MAX) {
		strv_free(rc->conflicts);
		rc->conflicts = NULL;
	}
	strv_append(&rc->conflicts, key);
	free(key);
	desc = usb_device_describe(d->dev);
	for (size_t i = 0; i < rc->conf->n_vms; i++)
		if (usb_vm_verdict(&rc->conf->vms[i], d->dev, NULL) == USB_VERDICT_CLAIM)
			strv_append(&names, rc->conf->vms[i].name);
	joined = strv_join(names, ", ");
	/* the rules' choice: an override may have changed d->owner */
	log_warning("usb %s: claimed by VMs %s; it goes to %s (the first in file-name order)", desc,
		    joined, names ? names[0] : "?");
	free(joined);
	strv_free(names);
	free(desc);
}

static void judge(struct reconcile *rc, struct rc_device *d)
{
	d->owner = usb_owner(rc->conf, d->dev, &d->rule, &d->claimers);
	if (d->override == RECONCILE_OVERRIDE_ATTACH) {
		d->owner = conf_find_vm(rc->conf, d->override_vm);
		if (d->owner && usb_vm_verdict(d->owner, d->dev, &d->rule) != USB_VERDICT_CLAIM)
			d->rule = NULL;
	} else if (d->override == RECONCILE_OVERRIDE_DETACH && d->owner &&
		   streq(d->owner->name, d->override_vm)) {
		d->owner = NULL;
		d->rule = NULL;
	}
	d->mode = d->rule ? d->rule->attach_mode : CONF_ATTACH_ADDRESS;
	log_verdict(d);
	if (d->claimers > 1)
		log_conflict(rc, d);
}

static void device_free(struct reconcile *rc, struct rc_device *d)
{
	addr_remove(rc, d);
	list_remove(&d->link);
	free(d->override_vm);
	usb_device_free(d->dev);
	free(d);
}

/* ------------------------------------------------------------ debounce */

/* Said once per burst, when the first device on a flapping port is held back. */
static void log_flapping(struct rc_port *p, const struct usb_device *dev, uint64_t settle_at)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(60 * USEC_PER_SEC, 10);
	char *desc;

	if (p->told)
		return;
	p->told = true;
	desc = usb_device_describe(dev);
	log_ratelimited(&rl, LOG_LEVEL_INFO,
			"usb %s: its port changed %u times in a row; attaching once it has been "
			"quiet for %llu ms",
			desc, p->changes - 1,
			(unsigned long long)((settle_at - p->last_change) / USEC_PER_MSEC));
	free(desc);
}

static void port_free(struct rc_port *p)
{
	list_remove(&p->link);
	free(p->syspath);
	free(p);
}

/* A device left syspath, or a new one appeared there: count the change
 * and return when a device now on the port may be attached (0: at once).
 * Ports quiet for a whole window are forgotten on the way. */
static uint64_t port_changed(struct reconcile *rc, const char *syspath,
			     const struct usb_device *arrived)
{
	struct rc_port *p, *tmp, *port = NULL;
	uint64_t t = now(rc), delay;
	uint32_t h = path_hash(syspath);
	unsigned doublings;

	if (!rc->hooks.debounce)
		return 0;
	list_for_each_safe(p, tmp, &rc->ports, link) {
		if (p->hash == h && streq(p->syspath, syspath))
			port = p;
		else if (t - p->last_change > RECONCILE_FLAP_WINDOW_USEC)
			port_free(p);
	}
	if (!port) {
		port = xnew(struct rc_port);
		port->syspath = xstrdup(syspath);
		port->hash = h;
		list_insert_tail(&rc->ports, &port->link);
	} else if (t - port->last_change > RECONCILE_FLAP_WINDOW_USEC) {
		port->changes = 0;
		port->told = false;
	}
	port->changes++;
	port->last_change = t;
	if (port->changes <= RECONCILE_FLAP_FREE)
		return 0;
	/* changes 4-5: the base delay, 6-7: twice that, ... */
	doublings = (port->changes - RECONCILE_FLAP_FREE - 1) / 2;
	delay = RECONCILE_SETTLE_USEC << (doublings > 4 ? 4 : doublings);
	if (delay > RECONCILE_SETTLE_MAX_USEC)
		delay = RECONCILE_SETTLE_MAX_USEC;
	if (arrived)
		log_flapping(port, arrived, t + delay);
	return t + delay;
}

/* --------------------------------------------------------------- items */

static struct rc_item *find_item(const struct rc_vm *vm, const char *id)
{
	struct rc_item *it;

	list_for_each(it, &vm->items, link)
		if (streq(it->id, id))
			return it;
	return NULL;
}

static struct rc_item *item_new(struct rc_vm *vm, const char *id, bool input)
{
	struct rc_item *it = xnew(struct rc_item);

	it->vm = vm;
	it->id = xstrdup(id);
	it->input = input;
	if (!input)
		parse_usb_id(id, &it->bus, &it->devnum);
	list_insert_tail(&vm->items, &it->link);
	return it;
}

static void item_free(struct rc_item *it)
{
	if (it->op)
		it->op->item = NULL;
	list_remove(&it->link);
	free(it->id);
	free(it->evdev);
	free(it->desc);
	free(it->syspath);
	free(it->error);
	free(it);
}

static void set_error(char **slot, int err, const char *msg)
{
	free(*slot);
	*slot = msg ? xstrdup(msg) : xstrdup(strerror(-err));
}

static const struct usb_device *item_device(const struct rc_item *it)
{
	struct rc_device *d;

	if (it->input || !it->bus)
		return NULL;
	d = find_device_by_address(it->vm->rc, it->bus, it->devnum);
	return d ? d->dev : NULL;
}

/* Is the host device bus/devnum held by an item other than `self` (in any
 * VM)? Then it must not be attached again until that item is gone. */
static bool device_busy(const struct reconcile *rc, unsigned bus, unsigned devnum,
			const struct rc_item *self)
{
	struct rc_vm *vm;
	struct rc_item *it;

	list_for_each(vm, &rc->vms, link)
		list_for_each(it, &vm->items, link)
			if (it != self && !it->input && it->bus == bus && it->devnum == devnum &&
			    it->state != RECONCILE_ITEM_RETRY && it->state != RECONCILE_ITEM_FAILED)
				return true;
	return false;
}

/* ---------------------------------------------------------- deadlines */

static uint64_t next_deadline(const struct reconcile *rc)
{
	const struct rc_vm *vm;
	const struct rc_item *it;
	const struct rc_device *d;
	uint64_t best = 0;

	if (rc->reap)
		return 1; /* as soon as possible */
	list_for_each(vm, &rc->vms, link) {
		if (vm->list_retry_at && (!best || vm->list_retry_at < best))
			best = vm->list_retry_at;
		list_for_each(it, &vm->items, link)
			if (it->retry_at && (!best || it->retry_at < best))
				best = it->retry_at;
	}
	list_for_each(d, &rc->devices, link)
		if (d->settle_at && (!best || d->settle_at < best))
			best = d->settle_at;
	return best;
}

uint64_t reconcile_next_deadline(const struct reconcile *rc)
{
	return next_deadline(rc);
}

static void reschedule(struct reconcile *rc)
{
	uint64_t d = next_deadline(rc);

	if (d == rc->scheduled)
		return;
	rc->scheduled = d;
	if (rc->hooks.schedule)
		rc->hooks.schedule(rc->data, d);
}

static uint64_t backoff(unsigned failures)
{
	unsigned shift = failures > 1 ? failures - 1 : 0;

	return RECONCILE_RETRY_BASE_USEC << (shift > 5 ? 5 : shift);
}

/* ------------------------------------------------------- operations */

static struct rc_op *op_new(struct rc_vm *vm, struct rc_item *item)
{
	struct rc_op *op = xnew(struct rc_op);

	op->vm = vm;
	op->item = item;
	if (item)
		item->op = op;
	list_insert_tail(&vm->ops, &op->link);
	return op;
}

static void op_free(struct rc_op *op)
{
	if (op->item)
		op->item->op = NULL;
	list_remove(&op->link);
	free(op);
}

static void item_event(struct rc_item *it, enum reconcile_event_type type, int err, const char *msg,
		       bool final)
{
	struct reconcile_event ev = {
		.type = !it->input                       ? type
			: type == RECONCILE_USB_ATTACHED ? RECONCILE_INPUT_ATTACHED
			: type == RECONCILE_USB_DETACHED ? RECONCILE_INPUT_DETACHED
							 : RECONCILE_INPUT_FAILED,
		.vm = it->vm->params.name,
		.id = it->id,
		.dev = item_device(it),
		.err = err,
		.msg = msg,
		.final = final,
	};

	notify(it->vm->rc, &ev);
}

static void log_item(const struct rc_item *it, enum log_level level, const char *what,
		     const char *detail)
{
	const struct usb_device *dev = item_device(it);
	char *desc = dev ? usb_device_describe(dev) : it->desc ? xstrdup(it->desc) : NULL;

	log_msg(level, "vm %s: %s %s%s%s: %s%s%s", it->vm->params.name, it->input ? "input" : "usb",
		desc ? desc : "", desc ? " " : "", it->id, what, detail ? ": " : "",
		detail ? detail : "");
	free(desc);
}

static void attach_failed(struct rc_item *it, int err, const char *msg)
{
	bool final;

	it->failures++;
	set_error(&it->error, err, msg);
	final = it->failures >= RECONCILE_ATTACH_TRIES;
	if (final) {
		it->state = RECONCILE_ITEM_FAILED;
		it->retry_at = 0;
		log_item(it, LOG_LEVEL_ERROR, "attach failed, giving up", it->error);
	} else {
		it->state = RECONCILE_ITEM_RETRY;
		it->retry_at = now(it->vm->rc) + backoff(it->failures);
		log_item(it, LOG_LEVEL_WARNING, "attach failed, will retry", it->error);
	}
	item_event(it, RECONCILE_USB_FAILED, err, it->error, final);
}

static void attach_done(void *data, int err, const char *msg)
{
	struct rc_op *op = data;
	struct rc_vm *vm = op->vm;
	struct rc_item *it = op->item;

	op_free(op);
	if (!it)
		return;
	if (err == -ENOTCONN) {
		/* The VM went away; vm_gone follows and clears everything. */
		item_free(it);
	} else if (err < 0) {
		attach_failed(it, err, msg);
	} else {
		it->state = RECONCILE_ITEM_ATTACHED;
		it->gen = vm->input_gen;
		it->failures = 0;
		it->retry_at = 0;
		free(it->error);
		it->error = NULL;
		log_item(it, LOG_LEVEL_INFO, "attached", NULL);
		item_event(it, RECONCILE_USB_ATTACHED, 0, NULL, false);
	}
	pass_vm(vm);
}

/* The backend's answer to starting an attach: on a refusal at once, the
 * callback never comes. */
static void launched(struct rc_item *it, struct rc_op *op, int r)
{
	if (r >= 0)
		return;
	op_free(op);
	if (r == -ENOTCONN)
		item_free(it);
	else
		attach_failed(it, r, NULL);
}

static void start_attach(struct rc_item *it, const struct rc_device *d)
{
	struct rc_vm *vm = it->vm;
	enum conf_attach_mode mode = d->mode;
	struct backend_usb_dev req = {
		.id = it->id,
		.mode = mode,
		.bus = d->dev->bus,
		.addr = d->dev->devnum,
		.port = usb_device_hostport(d->dev),
		.devnode = d->dev->devnode,
		.vendor = d->dev->vendor >= 0 ? (unsigned)d->dev->vendor : 0,
		.product = d->dev->product >= 0 ? (unsigned)d->dev->product : 0,
	};
	struct rc_op *op;

	op = op_new(vm, it);
	it->state = RECONCILE_ITEM_ATTACHING;
	it->retry_at = 0;
	free(it->desc);
	it->desc = usb_device_describe(d->dev);
	free(it->syspath);
	it->syspath = xstrdup(d->dev->syspath);
	log_item(it, LOG_LEVEL_DEBUG, "attaching", conf_attach_mode_name(mode));
	launched(it, op, vm->backend->ops->usb_attach(vm->backend, &req, attach_done, op));
}

static void start_input_attach(struct rc_item *it, const struct reconcile_input *in)
{
	struct rc_vm *vm = it->vm;
	struct backend_input_dev req = {
		.id = it->id,
		.evdev = in->evdev,
		.grab_all = in->grab_all,
		.repeat = in->repeat,
		.grab_toggle = in->grab_toggle,
	};
	struct rc_op *op;

	op = op_new(vm, it);
	it->state = RECONCILE_ITEM_ATTACHING;
	it->retry_at = 0;
	free(it->evdev);
	it->evdev = xstrdup(in->evdev);
	log_item(it, LOG_LEVEL_DEBUG, "attaching", in->evdev);
	launched(it, op, vm->backend->ops->input_attach(vm->backend, &req, attach_done, op));
}

static void detach_done(void *data, int err, const char *msg)
{
	struct rc_op *op = data;
	struct rc_vm *vm = op->vm;
	struct rc_item *it = op->item;

	op_free(op);
	if (!it)
		return;
	if (err == 0 || err == -ENOTCONN) {
		if (err == 0) {
			log_item(it, LOG_LEVEL_INFO, "detached", NULL);
			item_event(it, RECONCILE_USB_DETACHED, 0, NULL, false);
		}
		bool input = it->input;
		unsigned bus = it->bus, devnum = it->devnum;

		item_free(it);
		/* The id and the host device are free again: the VM that owns
		 * the device there may want them. */
		vm->dirty = true;
		if (!input && bus) {
			const struct rc_device *d = find_device_by_address(vm->rc, bus, devnum);

			pass_address(vm->rc, bus, devnum, d ? d->owner : NULL);
		} else {
			pass_vm(vm);
		}
		return;
	}
	it->failures++;
	set_error(&it->error, err, msg);
	it->state = RECONCILE_ITEM_ATTACHED;
	if (it->failures < RECONCILE_ATTACH_TRIES) {
		it->retry_at = now(vm->rc) + backoff(it->failures);
		log_item(it, LOG_LEVEL_WARNING, "detach failed, will retry", it->error);
	} else {
		it->retry_at = 0;
		log_item(it, LOG_LEVEL_ERROR, "detach failed, giving up", it->error);
	}
	pass_vm(vm);
}

static void start_detach(struct rc_item *it)
{
	struct rc_vm *vm = it->vm;
	struct rc_op *op = op_new(vm, it);
	int r;

	it->state = RECONCILE_ITEM_DETACHING;
	it->retry_at = 0;
	log_item(it, LOG_LEVEL_DEBUG, "detaching", NULL);
	if (it->input)
		r = vm->backend->ops->input_detach(vm->backend, it->id, detach_done, op);
	else
		r = vm->backend->ops->usb_detach(vm->backend, it->id, detach_done, op);
	if (r < 0) {
		op_free(op);
		if (r == -ENOTCONN) {
			item_free(it);
		} else {
			it->state = RECONCILE_ITEM_ATTACHED;
			set_error(&it->error, r, NULL);
			log_item(it, LOG_LEVEL_ERROR, "cannot detach", it->error);
		}
	}
}

/* ----------------------------------------------------------------- VMs */

static struct rc_vm *find_vm(const struct reconcile *rc, const char *name)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		if (!vm->dead && streq(vm->params.name, name))
			return vm;
	return NULL;
}

static void copy_params(struct conf_vm *dst, const struct conf_vm *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->name = xstrdup(src->name);
	dst->file = xstrdup(src->file);
	dst->backend = src->backend;
	dst->qmp_socket = src->qmp_socket ? xstrdup(src->qmp_socket) : NULL;
	dst->usb_bus = src->usb_bus ? xstrdup(src->usb_bus) : NULL;
	dst->uri = src->uri ? xstrdup(src->uri) : NULL;
	dst->domain = src->domain ? xstrdup(src->domain) : NULL;
}

static void free_params(struct conf_vm *p)
{
	free(p->name);
	free(p->file);
	free(p->qmp_socket);
	free(p->usb_bus);
	free(p->uri);
	free(p->domain);
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && streq(a, b));
}

/* Does a change from a to b need a new backend? */
static bool params_differ(const struct conf_vm *a, const struct conf_vm *b)
{
	return a->backend != b->backend || !same_str(a->qmp_socket, b->qmp_socket) ||
	       !same_str(a->usb_bus, b->usb_bus) || !same_str(a->uri, b->uri) ||
	       !same_str(a->domain, b->domain);
}

static void forget_state(struct rc_vm *vm)
{
	struct rc_item *it, *itmp;

	list_for_each_safe(it, itmp, &vm->items, link)
		item_free(it);
	vm->state = RECONCILE_VM_DOWN;
	vm->list_pending = false;
	vm->list_failures = 0;
	vm->list_retry_at = 0;
}

static void backend_stop(struct rc_vm *vm)
{
	struct rc_op *op, *otmp;

	if (vm->backend)
		vm->backend->ops->destroy(vm->backend);
	vm->backend = NULL;
	/* Destroyed backends call nothing back: their ops die here. */
	list_for_each_safe(op, otmp, &vm->ops, link)
		op_free(op);
	forget_state(vm);
}

static void backend_start(struct rc_vm *vm)
{
	struct reconcile *rc = vm->rc;

	vm->backend = rc->hooks.create_backend(rc->data, &vm->params, &vm_events, vm);
	if (!vm->backend) {
		set_error(&vm->last_error, -errno, NULL);
		log_error("vm %s: cannot start the %s backend: %s", vm->params.name,
			  conf_backend_name(vm->params.backend), vm->last_error);
	}
}

static struct rc_vm *vm_new(struct reconcile *rc, const struct conf_vm *conf)
{
	struct rc_vm *vm = xnew(struct rc_vm);

	vm->rc = rc;
	vm->conf = conf;
	vm->input_gen = 1;
	copy_params(&vm->params, conf);
	list_init(&vm->items);
	list_init(&vm->ops);
	list_insert_tail(&rc->vms, &vm->link);
	backend_start(vm);
	return vm;
}

static void vm_free(struct rc_vm *vm)
{
	backend_stop(vm);
	list_remove(&vm->link);
	free_params(&vm->params);
	free(vm->last_error);
	free(vm);
}

/* Free it later: this may run inside one of its backend's callbacks, and
 * a backend is never destroyed from there. */
static void retire(struct rc_vm *vm)
{
	log_info("vm %s: no longer configured", vm->params.name);
	vm->dead = true;
	vm->rc->reap = true;
}

static void list_done(void *data, int err, const struct backend_list *list)
{
	struct rc_op *op = data;
	struct rc_vm *vm = op->vm;
	struct reconcile *rc = vm->rc;

	op_free(op);
	vm->list_pending = false;
	if (err == -ENOTCONN)
		return;
	if (err < 0) {
		uint64_t delay = RECONCILE_LIST_RETRY_USEC
				 << (vm->list_failures < 6 ? vm->list_failures : 6);

		vm->list_failures++;
		set_error(&vm->last_error, err, NULL);
		vm->list_retry_at = now(rc) +
				    (delay > LIST_RETRY_MAX_USEC ? LIST_RETRY_MAX_USEC : delay);
		/* Said once per connection; the retries go on quietly. */
		log_msg(vm->list_failures == 1 ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG,
			"vm %s: cannot list its devices (%s); retrying", vm->params.name,
			vm->last_error);
		reschedule(rc);
		return;
	}
	vm->list_failures = 0;
	vm->list_retry_at = 0;
	for (size_t i = 0; i < list->n; i++) {
		const struct backend_item *bi = &list->items[i];
		struct rc_item *it;

		if (!startswith(bi->id, BACKEND_ID_PREFIX) || find_item(vm, bi->id))
			continue;
		it = item_new(vm, bi->id, bi->kind == BACKEND_ITEM_INPUT);
		it->state = RECONCILE_ITEM_ATTACHED;
		it->evdev = bi->evdev ? xstrdup(bi->evdev) : NULL;
		if (!it->input && !it->bus && bi->bus > 0 && bi->addr > 0) {
			it->bus = (unsigned)bi->bus;
			it->devnum = (unsigned)bi->addr;
		}
	}
	vm->state = RECONCILE_VM_READY;
	log_info("vm %s: ready, %zu object(s) of vmplug's already there", vm->params.name, list->n);
	notify(rc, &(struct reconcile_event){ .type = RECONCILE_VM_UP, .vm = vm->params.name });
	pass_vm(vm);
}

static void start_list(struct rc_vm *vm)
{
	struct rc_op *op = op_new(vm, NULL);
	int r;

	vm->list_pending = true;
	vm->list_retry_at = 0;
	r = vm->backend->ops->list(vm->backend, list_done, op);
	if (r < 0) {
		op_free(op);
		vm->list_pending = false;
		if (r != -ENOTCONN)
			list_done(op_new(vm, NULL), r, NULL);
	}
}

static void on_vm_up(void *data)
{
	struct rc_vm *vm = data;

	vm->state = RECONCILE_VM_LISTING;
	free(vm->last_error);
	vm->last_error = NULL;
	start_list(vm);
	reschedule(vm->rc);
}

static void on_vm_gone(void *data, const char *reason)
{
	struct rc_vm *vm = data;
	struct reconcile *rc = vm->rc;
	struct rc_op *op, *otmp;

	log_info("vm %s: gone (%s)", vm->params.name, reason);
	/* Whatever it had went with it. Ops still pending are orphaned. */
	list_for_each_safe(op, otmp, &vm->ops, link) {
		if (op->item) {
			op->item->op = NULL;
			op->item = NULL;
		}
	}
	forget_state(vm);
	set_error(&vm->last_error, 0, reason);
	notify(rc, &(struct reconcile_event){
		       .type = RECONCILE_VM_GONE, .vm = vm->params.name, .msg = reason });
	if (!vm->conf)
		retire(vm);
	reschedule(rc);
}

static void on_vm_down(void *data, const char *why)
{
	struct rc_vm *vm = data;

	/* (the backend logged it) */
	set_error(&vm->last_error, 0, why);
}

static void on_vm_event(void *data, const char *event)
{
	struct rc_vm *vm = data;

	/* The backend logged it (rate-limited: a guest can repeat it). */
	log_debug("vm %s: %s", vm->params.name, event);
}

static void on_item_gone(void *data, const char *id)
{
	struct rc_vm *vm = data;
	struct rc_item *it = find_item(vm, id);

	if (!it)
		return;
	log_item(it, LOG_LEVEL_WARNING, "removed from the VM by someone else", NULL);
	if (it->state == RECONCILE_ITEM_ATTACHED)
		item_event(it, RECONCILE_USB_DETACHED, 0, "removed outside vmplug", false);
	item_free(it);
	pass_vm(vm);
}

static const struct backend_events vm_events = {
	.vm_up = on_vm_up,
	.vm_gone = on_vm_gone,
	.vm_down = on_vm_down,
	.vm_event = on_vm_event,
	.item_gone = on_item_gone,
};

/* --------------------------------------------------------------- passes */

/* Bring one VM's USB devices to what the config says. */
static void pass_vm_once(struct rc_vm *vm)
{
	struct reconcile *rc = vm->rc;
	struct rc_device *d;
	struct rc_item *it, *itmp;
	uint64_t t = now(rc);

	if (vm->state != RECONCILE_VM_READY) {
		if (vm->state == RECONCILE_VM_LISTING && !vm->list_pending && vm->list_retry_at &&
		    vm->list_retry_at <= t)
			start_list(vm);
		return;
	}
	/* Desired: every present device this VM owns. */
	list_for_each(d, &rc->devices, link) {
		char *id;

		if (!vm->conf || d->owner != vm->conf || d->settle_at > t)
			continue;
		id = reconcile_usb_id(d->dev, d->mode);
		it = find_item(vm, id);
		if (!it) {
			if (!device_busy(rc, d->dev->bus, d->dev->devnum, NULL))
				start_attach(item_new(vm, id, false), d);
		} else if (it->state == RECONCILE_ITEM_RETRY && it->retry_at <= t &&
			   !device_busy(rc, d->dev->bus, d->dev->devnum, it)) {
			start_attach(it, d);
		}
		free(id);
	}
	/* Actual but not desired: detach (or forget, if never attached). */
	list_for_each_safe(it, itmp, &vm->items, link) {
		const struct rc_device *owner_dev;
		bool wanted = false;

		if (it->input)
			continue;
		owner_dev = it->bus ? find_device_by_address(rc, it->bus, it->devnum) : NULL;
		/* The device at that address now may be another one: the number
		 * came round again on another port while this item was held. */
		if (owner_dev && vm->conf && owner_dev->owner == vm->conf &&
		    owner_dev->settle_at <= t &&
		    (!it->syspath || streq(it->syspath, owner_dev->dev->syspath))) {
			char *id = reconcile_usb_id(owner_dev->dev, owner_dev->mode);

			wanted = streq(id, it->id);
			free(id);
		}
		switch (it->state) {
		case RECONCILE_ITEM_ATTACHED:
			if (!wanted && (!it->retry_at || it->retry_at <= t) &&
			    (it->failures < RECONCILE_ATTACH_TRIES || !it->error))
				start_detach(it);
			break;
		case RECONCILE_ITEM_RETRY:
		case RECONCILE_ITEM_FAILED:
			if (!wanted)
				item_free(it);
			break;
		case RECONCILE_ITEM_ATTACHING:
		case RECONCILE_ITEM_DETACHING:
			break;
		}
	}
	pass_inputs(vm, t);
}

static bool input_current(const struct rc_vm *vm, const struct rc_item *it,
			  const struct reconcile_input *in)
{
	if (it->gen != 0)
		return it->gen == vm->input_gen; /* else the sink changed since */
	/* Found in QEMU: it works only if its node outlived the old vmplugd. */
	return in->keep_existing && it->evdev && streq(it->evdev, in->evdev);
}

/* Bring one VM's input-linux objects to its sinks. */
static void pass_inputs(struct rc_vm *vm, uint64_t t)
{
	struct reconcile *rc = vm->rc;
	struct reconcile_input *in = NULL;
	struct rc_item *it, *itmp;
	size_t n = 0;

	if (!rc->hooks.vm_inputs || !vm->backend->ops->input_attach)
		return;
	if (vm->conf)
		n = rc->hooks.vm_inputs(rc->data, vm->params.name, &in);
	for (size_t i = 0; i < n; i++) {
		it = find_item(vm, in[i].id);
		if (!it)
			start_input_attach(item_new(vm, in[i].id, true), &in[i]);
		else if (it->state == RECONCILE_ITEM_RETRY && it->retry_at <= t)
			start_input_attach(it, &in[i]);
	}
	list_for_each_safe(it, itmp, &vm->items, link) {
		const struct reconcile_input *want = NULL;

		if (!it->input)
			continue;
		for (size_t i = 0; i < n && !want; i++)
			if (streq(in[i].id, it->id))
				want = &in[i];
		if (it->state == RECONCILE_ITEM_ATTACHED &&
		    (!want || !input_current(vm, it, want)) &&
		    (!it->retry_at || it->retry_at <= t) &&
		    (it->failures < RECONCILE_ATTACH_TRIES || !it->error))
			start_detach(it); /* a replaced one comes back in the next pass */
		else if ((it->state == RECONCILE_ITEM_RETRY ||
			  it->state == RECONCILE_ITEM_FAILED) &&
			 !want)
			item_free(it);
	}
	reconcile_inputs_free(in, n);
}

void reconcile_inputs_free(struct reconcile_input *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(in[i].id);
		free(in[i].evdev);
	}
	free(in);
}

void reconcile_inputs_changed(struct reconcile *rc, const char *name)
{
	struct rc_vm *vm = find_vm(rc, name);

	if (!vm)
		return;
	vm->input_gen++;
	pass_vm(vm);
}

/* Retiring VMs go once they hold nothing of ours. */
static void maybe_retire(struct rc_vm *vm)
{
	if (vm->conf || vm->dead)
		return;
	if (!list_empty(&vm->items) && vm->state != RECONCILE_VM_DOWN)
		return;
	if (!list_empty(&vm->ops) && vm->state != RECONCILE_VM_DOWN)
		return;
	retire(vm);
}

/* Pass every VM marked dirty; a pass asked for during a pass (a backend
 * that completes at once) runs in the same loop. */
static void run_passes(struct reconcile *rc)
{
	struct rc_vm *vm, *tmp;

	if (rc->in_pass) {
		rc->again = true;
		return;
	}
	rc->in_pass = true;
	do {
		rc->again = false;
		list_for_each_safe(vm, tmp, &rc->vms, link) {
			if (vm->dead || !vm->dirty)
				continue;
			vm->dirty = false;
			rc->vm_passes++;
			pass_vm_once(vm);
			maybe_retire(vm);
		}
	} while (rc->again);
	rc->in_pass = false;
	reschedule(rc);
}

static void pass_vm(struct rc_vm *vm)
{
	vm->dirty = true;
	run_passes(vm->rc);
}

static void pass_all(struct reconcile *rc)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		vm->dirty = true;
	run_passes(rc);
}

/* A change about the host device at bus/devnum: pass the VMs it
 * concerns, the owner of the device there now (`owner`, may be NULL) and
 * every VM with an item for that address, not every VM (with many VMs
 * and devices, a pass of all per uevent made a storm cost VMs x devices
 * per event). */
static void pass_address(struct reconcile *rc, unsigned bus, unsigned devnum,
			 const struct conf_vm *owner)
{
	struct rc_vm *vm;
	struct rc_item *it;

	list_for_each(vm, &rc->vms, link) {
		if (owner && vm->conf == owner) {
			vm->dirty = true;
			continue;
		}
		list_for_each(it, &vm->items, link)
			if (!it->input && it->bus == bus && it->devnum == devnum) {
				vm->dirty = true;
				break;
			}
	}
	run_passes(rc);
}

/* ----------------------------------------------------------------- API */

struct reconcile *reconcile_new(const struct conf *conf, const struct reconcile_hooks *hooks,
				void *data)
{
	struct reconcile *rc = xnew(struct reconcile);

	rc->conf = conf;
	rc->hooks = *hooks;
	rc->data = data;
	list_init(&rc->vms);
	list_init(&rc->devices);
	list_init(&rc->ports);
	for (size_t i = 0; i < conf->n_vms; i++)
		vm_new(rc, &conf->vms[i]);
	return rc;
}

void reconcile_free(struct reconcile *rc)
{
	struct rc_vm *vm, *vtmp;
	struct rc_device *d, *dtmp;
	struct rc_port *p, *ptmp;

	if (!rc)
		return;
	list_for_each_safe(vm, vtmp, &rc->vms, link)
		vm_free(vm);
	list_for_each_safe(d, dtmp, &rc->devices, link)
		device_free(rc, d);
	list_for_each_safe(p, ptmp, &rc->ports, link)
		port_free(p);
	free(rc->by_addr);
	strv_free(rc->conflicts);
	free(rc);
}

void reconcile_set_conf(struct reconcile *rc, const struct conf *conf)
{
	struct rc_vm *vm, *tmp;
	struct rc_device *d;

	rc->conf = conf;
	list_for_each_safe(vm, tmp, &rc->vms, link) {
		const struct conf_vm *c = conf_find_vm(conf, vm->params.name);
		struct rc_item *it;

		if (vm->dead)
			continue;
		vm->conf = c;
		if (!c) {
			/* Retiring: the next pass detaches its devices. */
			if (vm->state == RECONCILE_VM_DOWN || !vm->backend)
				vm_free(vm);
			continue;
		}
		if (params_differ(&vm->params, c)) {
			log_info("vm %s: how to reach it changed; reconnecting", c->name);
			backend_stop(vm);
			free_params(&vm->params);
			copy_params(&vm->params, c);
			backend_start(vm);
			continue;
		}
		/* A new config deserves new tries. */
		list_for_each(it, &vm->items, link) {
			it->failures = 0;
			if (it->state == RECONCILE_ITEM_FAILED) {
				it->state = RECONCILE_ITEM_RETRY;
				it->retry_at = 0;
			} else if (it->state == RECONCILE_ITEM_ATTACHED) {
				it->retry_at = 0;
			}
		}
	}
	for (size_t i = 0; i < conf->n_vms; i++)
		if (!find_vm(rc, conf->vms[i].name))
			vm_new(rc, &conf->vms[i]);
	/* A new config: its conflicts are said again. */
	strv_free(rc->conflicts);
	rc->conflicts = NULL;
	list_for_each(d, &rc->devices, link) {
		/* A reload ends manual overrides. */
		d->override = RECONCILE_OVERRIDE_NONE;
		free(d->override_vm);
		d->override_vm = NULL;
		judge(rc, d);
	}
	pass_all(rc);
}

/* Mark the VMs with an item for bus/devnum. */
static void mark_address(struct reconcile *rc, unsigned bus, unsigned devnum)
{
	struct rc_vm *vm;
	struct rc_item *it;

	list_for_each(vm, &rc->vms, link)
		list_for_each(it, &vm->items, link)
			if (!it->input && it->bus == bus && it->devnum == devnum) {
				vm->dirty = true;
				break;
			}
}

void reconcile_device_add(struct reconcile *rc, struct usb_device *dev)
{
	struct rc_device *d = find_device(rc, dev->syspath);
	bool is_new = !d;

	if (d && (d->dev->bus != dev->bus || d->dev->devnum != dev->devnum)) {
		/* A missed remove: the old instance is gone. */
		mark_address(rc, d->dev->bus, d->dev->devnum);
		port_changed(rc, d->dev->syspath, NULL);
		device_free(rc, d);
		d = NULL;
		is_new = true;
	}
	if (!d) {
		d = xnew(struct rc_device);
		list_insert_tail(&rc->devices, &d->link);
		d->settle_at = port_changed(rc, dev->syspath, dev);
	} else {
		usb_device_free(d->dev);
	}
	d->dev = dev;
	d->hash = path_hash(dev->syspath);
	if (is_new)
		addr_add(rc, d);
	judge(rc, d);
	pass_address(rc, dev->bus, dev->devnum, d->owner);
}

void reconcile_device_remove(struct reconcile *rc, const char *syspath)
{
	struct rc_device *d = find_device(rc, syspath);

	if (!d)
		return;
	unsigned bus = d->dev->bus, devnum = d->dev->devnum;

	port_changed(rc, syspath, NULL);
	device_free(rc, d);
	pass_address(rc, bus, devnum, NULL);
}

void reconcile_tick(struct reconcile *rc)
{
	struct rc_vm *vm, *tmp;
	struct rc_device *d;
	uint64_t t = now(rc);

	rc->scheduled = 0;
	/* Pass the VMs with something due: a device that settled (its
	 * owner), a retry, a list to ask for again. */
	list_for_each(d, &rc->devices, link)
		if (d->settle_at && d->settle_at <= t) {
			d->settle_at = 0;
			list_for_each(vm, &rc->vms, link)
				if (d->owner && vm->conf == d->owner)
					vm->dirty = true;
		}
	if (rc->reap) {
		list_for_each_safe(vm, tmp, &rc->vms, link)
			if (vm->dead)
				vm_free(vm);
		rc->reap = false;
	}
	list_for_each(vm, &rc->vms, link) {
		struct rc_item *it;

		if (vm->list_retry_at && vm->list_retry_at <= t)
			vm->dirty = true;
		list_for_each(it, &vm->items, link)
			if (it->retry_at && it->retry_at <= t)
				vm->dirty = true;
		/* a retiring VM goes once its devices are detached */
		if (!vm->conf)
			vm->dirty = true;
	}
	run_passes(rc);
}

/* ----------------------------------------------------------- inspection */

size_t reconcile_vm_passes(const struct reconcile *rc)
{
	return rc->vm_passes;
}

void reconcile_counts(const struct reconcile *rc, size_t *up, size_t *usb_attached)
{
	const struct rc_vm *vm;
	const struct rc_item *it;

	*up = *usb_attached = 0;
	list_for_each(vm, &rc->vms, link) {
		if (vm->dead || !vm->conf)
			continue;
		*up += vm->state != RECONCILE_VM_DOWN;
		list_for_each(it, &vm->items, link)
			*usb_attached += !it->input && it->state == RECONCILE_ITEM_ATTACHED;
	}
}

bool reconcile_vm_info(const struct reconcile *rc, const char *name, enum reconcile_vm_state *state,
		       const char **last_error)
{
	const struct rc_vm *vm = find_vm(rc, name);

	if (!vm)
		return false;
	if (state)
		*state = vm->state;
	if (last_error)
		*last_error = vm->last_error;
	return true;
}

size_t reconcile_vm_items(const struct reconcile *rc, const char *name,
			  void (*fn)(void *data, const struct reconcile_item_info *info),
			  void *data)
{
	const struct rc_vm *vm = find_vm(rc, name);
	const struct rc_item *it;
	size_t n = 0;

	if (!vm)
		return 0;
	list_for_each(it, &vm->items, link) {
		struct reconcile_item_info info = {
			.id = it->id,
			.state = it->state,
			.input = it->input,
			.bus = it->bus,
			.devnum = it->devnum,
			.dev = item_device(it),
			.error = it->error,
			.failures = it->failures,
		};

		fn(data, &info);
		n++;
	}
	return n;
}

size_t reconcile_devices(const struct reconcile *rc,
			 void (*fn)(void *data, const struct reconcile_device_info *info),
			 void *data)
{
	const struct rc_device *d;
	size_t n = 0;

	list_for_each(d, &rc->devices, link) {
		struct reconcile_device_info info = {
			.dev = d->dev,
			.owner = d->owner,
			.rule = d->rule,
			.mode = d->mode,
			.claimers = d->claimers,
			.override = d->override,
			.override_vm = d->override_vm,
			.settle_at = d->settle_at,
		};

		fn(data, &info);
		n++;
	}
	return n;
}

int reconcile_override(struct reconcile *rc, const char *syspath, const char *vm,
		       enum reconcile_override override)
{
	struct rc_device *d = find_device(rc, syspath);

	if (!d)
		return -ENOENT;
	if (vm && !conf_find_vm(rc->conf, vm))
		return -ESRCH;
	if (override == RECONCILE_OVERRIDE_ATTACH && usb_device_is_hub(d->dev))
		return -EINVAL;
	free(d->override_vm);
	d->override = override;
	d->override_vm = override != RECONCILE_OVERRIDE_NONE ? xstrdup(vm) : NULL;
	judge(rc, d);
	pass_all(rc);
	return 0;
}

const struct usb_device *reconcile_find_device(const struct reconcile *rc, const char *syspath)
{
	const struct rc_device *d = find_device(rc, syspath);

	return d ? d->dev : NULL;
}

const char *reconcile_vm_state_name(enum reconcile_vm_state s)
{
	switch (s) {
	case RECONCILE_VM_LISTING:
		return "connecting";
	case RECONCILE_VM_READY:
		return "running";
	case RECONCILE_VM_DOWN:
		break;
	}
	return "down";
}

const char *reconcile_item_state_name(enum reconcile_item_state s)
{
	switch (s) {
	case RECONCILE_ITEM_ATTACHING:
		return "attaching";
	case RECONCILE_ITEM_DETACHING:
		return "detaching";
	case RECONCILE_ITEM_RETRY:
		return "retrying";
	case RECONCILE_ITEM_FAILED:
		return "failed";
	case RECONCILE_ITEM_ATTACHED:
		break;
	}
	return "attached";
}

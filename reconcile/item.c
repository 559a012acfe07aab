/* The reconciler's items (the objects vmplug owns in a VM) and the backend
 * operations on them: attach, detach, list, their completions, and when a
 * failed one is tried again. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "reconcile/reconcile-int.h"
#include "usb/device.h"
#include "util/util.h"

/* ------------------------------------------------------------------- ids */

static const struct {
	enum conf_attach_mode mode;
	const char *prefix;
} id_prefixes[] = {
	{ CONF_ATTACH_ADDRESS, BACKEND_ID_PREFIX "usb-" },
	{ CONF_ATTACH_FD, BACKEND_ID_PREFIX "usbfd-" },
	{ CONF_ATTACH_PORT, BACKEND_ID_PREFIX "usbport-" },
};

/* Write v in decimal at p; the end. */
static char *put_uint(char *p, unsigned v)
{
	char digits[10];
	int n = 0;

	do
		digits[n++] = (char)('0' + v % 10);
	while (v /= 10);
	while (n)
		*p++ = digits[--n];
	return p;
}

const char *reconcile_usb_id_in(char buf[RC_USB_ID_MAX], const struct usb_device *dev,
				enum conf_attach_mode mode)
{
	for (size_t i = 0; i < ARRAY_SIZE(id_prefixes); i++) {
		size_t n = strlen(id_prefixes[i].prefix);
		char *p = buf + n;

		if (id_prefixes[i].mode != mode)
			continue;
		memcpy(buf, id_prefixes[i].prefix, n);
		p = put_uint(p, dev->bus);
		*p++ = '-';
		*put_uint(p, dev->devnum) = '\0';
		return buf;
	}
	abort();
}

char *reconcile_usb_id(const struct usb_device *dev, enum conf_attach_mode mode)
{
	char buf[RC_USB_ID_MAX];

	return xstrdup(reconcile_usb_id_in(buf, dev, mode));
}

char *reconcile_redir_id(const char *name)
{
	return xasprintf(BACKEND_ID_PREFIX "redir-%s", name);
}

/* The host device an id of ours names: false if it is not one of our USB ids. */
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

/* --------------------------------------------------------------- items */

struct rc_item *reconcile_item_at(const struct rc_vm *vm, unsigned bus, unsigned devnum,
				  const char *id)
{
	uint32_t h = reconcile_addr_hash(bus, devnum);
	struct rc_item *it;

	hash_for_each_match(it, &vm->rc->items_by_addr, h, by_addr)
		if (it->vm == vm && it->bus == bus && it->devnum == devnum && streq(it->id, id))
			return it;
	return NULL;
}

/* Ids of ours that name a host device are found through their address;
 * the rest (inputs, ids QEMU had) by a walk of the VM's items. */
struct rc_item *reconcile_item_find(const struct rc_vm *vm, const char *id)
{
	struct rc_item *it;
	unsigned bus, devnum;

	if (parse_usb_id(id, &bus, &devnum) && bus)
		return reconcile_item_at(vm, bus, devnum, id);
	list_for_each(it, &vm->items, link)
		if (streq(it->id, id))
			return it;
	return NULL;
}

/* The item names the host device at bus/devnum (not 0): indexed by it. */
static void item_set_address(struct rc_item *it, unsigned bus, unsigned devnum)
{
	it->bus = bus;
	it->devnum = devnum;
	hash_insert(&it->vm->rc->items_by_addr, &it->by_addr, reconcile_addr_hash(bus, devnum));
}

struct rc_item *reconcile_item_new(struct rc_vm *vm, const char *id, bool input)
{
	struct rc_item *it = xnew(struct rc_item);
	unsigned bus, devnum;

	it->vm = vm;
	it->id = xstrdup(id);
	it->input = input;
	heap_node_init(&it->retry.node);
	it->retry.kind = RC_DEADLINE_RETRY;
	if (!input && parse_usb_id(id, &bus, &devnum) && bus)
		item_set_address(it, bus, devnum);
	list_insert_tail(&vm->items, &it->link);
	return it;
}

void reconcile_item_free(struct rc_item *it)
{
	struct reconcile *rc = it->vm->rc;

	if (it->op)
		it->op->item = NULL;
	if (it->bus)
		hash_remove(&rc->items_by_addr, &it->by_addr);
	reconcile_deadline_set(rc, &it->retry, 0);
	list_remove(&it->link);
	free(it->id);
	free(it->evdev);
	free(it->address);
	free(it->desc);
	free(it->syspath);
	free(it->error);
	free(it);
}

void reconcile_set_error(char **slot, int err, const char *msg)
{
	free(*slot);
	*slot = msg ? xstrdup(msg) : xstrdup(strerror(-err));
}

const struct usb_device *reconcile_item_device(const struct rc_item *it)
{
	struct rc_device *d;

	if (it->input || it->redir || !it->bus)
		return NULL;
	d = reconcile_index_at(&it->vm->rc->index, it->bus, it->devnum);
	return d ? d->dev : NULL;
}

bool reconcile_items_hold(const struct reconcile *rc, unsigned bus, unsigned devnum,
			  const struct rc_item *self)
{
	uint32_t h = reconcile_addr_hash(bus, devnum);
	struct rc_item *it;

	hash_for_each_match(it, &rc->items_by_addr, h, by_addr)
		if (it != self && !it->input && !it->redir && it->bus == bus &&
		    it->devnum == devnum && it->state != RECONCILE_ITEM_RETRY &&
		    it->state != RECONCILE_ITEM_FAILED && !reconcile_detach_given_up(it))
			return true;
	return false;
}

void reconcile_item_event(struct rc_item *it, enum reconcile_event_type type, int err,
			  const char *msg, bool final)
{
	static const enum reconcile_event_type redir_types[] = {
		[RECONCILE_USB_ATTACHED] = RECONCILE_REMOTE_ADDED,
		[RECONCILE_USB_DETACHED] = RECONCILE_REMOTE_REMOVED,
		[RECONCILE_USB_FAILED] = RECONCILE_REMOTE_FAILED,
	};
	struct reconcile_event ev = {
		.type = it->redir                        ? redir_types[type]
			: !it->input                     ? type
			: type == RECONCILE_USB_ATTACHED ? RECONCILE_INPUT_ATTACHED
			: type == RECONCILE_USB_DETACHED ? RECONCILE_INPUT_DETACHED
							 : RECONCILE_INPUT_FAILED,
		.vm = it->vm->params.name,
		.id = it->id,
		.dev = reconcile_item_device(it),
		.err = err,
		.msg = msg,
		.final = final,
	};

	reconcile_notify(it->vm->rc, &ev);
}

void reconcile_item_log(const struct rc_item *it, enum log_level level, const char *what,
			const char *detail)
{
	const struct usb_device *dev = reconcile_item_device(it);
	char *desc = dev ? usb_device_describe(dev) : it->desc ? xstrdup(it->desc) : NULL;

	log_msg(level, "vm %s: %s %s%s%s: %s%s%s", it->vm->params.name,
		it->input   ? "input"
		: it->redir ? "usb-remote"
			    : "usb",
		desc ? desc : "", desc ? " " : "", it->id, what, detail ? ": " : "",
		detail ? detail : "");
	free(desc);
}

/* ---------------------------------------------------------------- retries */

/* When an operation that failed is tried again (reconcile.h says why
 * these): after `first`, doubling up to `max`, `tries` tries in all (0:
 * for ever). */
struct retry {
	uint64_t first;
	uint64_t max;
	unsigned tries;
};

static const struct retry race_retry = { RECONCILE_ATTACH_RACE_USEC, UINT64_MAX,
					 RECONCILE_ATTACH_QUIET + 1 };
static const struct retry attach_retry = { RECONCILE_ATTACH_RETRY_USEC, UINT64_MAX,
					   RECONCILE_ATTACH_TRIES };
static const struct retry detach_retry = { RECONCILE_DETACH_RETRY_USEC, UINT64_MAX,
					   RECONCILE_DETACH_TRIES };
static const struct retry list_retry = { RECONCILE_LIST_RETRY_USEC, RECONCILE_LIST_RETRY_MAX_USEC,
					 0 };

/* After `failures` (1 or more) in a row: how long until the next try, 0
 * when there is none. */
static uint64_t retry_after(const struct retry *r, unsigned failures)
{
	unsigned shift = failures - 1;
	uint64_t delay;

	if (r->tries && failures >= r->tries)
		return 0;
	delay = r->first << (shift > 16 ? 16 : shift);
	return delay > r->max ? r->max : delay;
}

bool reconcile_detach_due(const struct rc_item *it, uint64_t now)
{
	return (!rc_at(&it->retry) || rc_at(&it->retry) <= now) &&
	       (it->failures < detach_retry.tries || !it->error);
}

bool reconcile_detach_given_up(const struct rc_item *it)
{
	return it->state == RECONCILE_ITEM_ATTACHED && it->error &&
	       it->failures >= detach_retry.tries;
}

/* ------------------------------------------------------------ operations */

/* The callback data of one backend operation, tied to its item (if any). */
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

/* The operation is over (its callback ran or never will). */
static void op_free(struct rc_op *op)
{
	if (op->item)
		op->item->op = NULL;
	list_remove(&op->link);
	free(op);
}

void reconcile_ops_orphan(struct rc_vm *vm)
{
	struct rc_op *op;

	list_for_each(op, &vm->ops, link) {
		if (op->item) {
			op->item->op = NULL;
			op->item = NULL;
		}
	}
}

void reconcile_ops_drop(struct rc_vm *vm)
{
	while (!list_empty(&vm->ops))
		op_free(container_of(vm->ops.next, struct rc_op, link));
}

/* An attach failed with err: try again later, or give up. */
static void attach_failed(struct rc_item *it, int err, const char *msg)
{
	/* Not news: a device just plugged that QEMU does not see yet. */
	bool quiet = err == -ENODEV && it->races == it->failures &&
		     it->races < RECONCILE_ATTACH_QUIET;
	uint64_t after;

	it->failures++;
	if (quiet)
		it->races++;
	reconcile_set_error(&it->error, err, msg);
	after = quiet ? retry_after(&race_retry, it->races)
		      : retry_after(&attach_retry, it->failures - it->races);
	if (!after) {
		it->state = RECONCILE_ITEM_FAILED;
		reconcile_deadline_set(it->vm->rc, &it->retry, 0);
		reconcile_item_log(it, LOG_LEVEL_ERROR, "attach failed, giving up", it->error);
		reconcile_item_event(it, RECONCILE_USB_FAILED, err, it->error, true);
		return;
	}
	it->state = RECONCILE_ITEM_RETRY;
	reconcile_deadline_set(it->vm->rc, &it->retry, reconcile_now(it->vm->rc) + after);
	reconcile_item_log(it, quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING,
			   "attach failed, will retry", it->error);
	if (!quiet)
		reconcile_item_event(it, RECONCILE_USB_FAILED, err, it->error, false);
}

/* The operation is over: its item, NULL when that is gone meanwhile
 * (then there is nothing left to do). */
static struct rc_item *op_end(struct rc_op *op)
{
	struct rc_item *it = op->item;

	op_free(op);
	return it;
}

/* The backend answered an attach: attached, to retry, or the VM went. */
static void attach_done(void *data, int err, const char *msg)
{
	struct rc_vm *vm = ((struct rc_op *)data)->vm;
	struct rc_item *it = op_end(data);
	unsigned bus, devnum;

	if (!it)
		return;
	/* what it can change is at its address (a USB item's) */
	bus = it->input ? 0 : it->bus;
	devnum = it->devnum;
	if (err == -ENOTCONN) {
		/* The VM went away; vm_gone follows and clears everything. */
		reconcile_item_free(it);
	} else if (err == -EEXIST && it->redir) {
		/* QEMU has a slot of that id after all (a late or stale
		 * DEVICE_DELETED said it had gone): taken as found, where
		 * it listens unknown, so the pass replaces it. */
		it->state = RECONCILE_ITEM_ATTACHED;
		free(it->address);
		it->address = NULL;
		reconcile_item_log(it, LOG_LEVEL_INFO, "already in QEMU, to be made again", msg);
	} else if (err < 0) {
		attach_failed(it, err, msg);
	} else {
		it->state = RECONCILE_ITEM_ATTACHED;
		it->gen = vm->input_gen;
		it->failures = 0;
		it->races = 0;
		reconcile_deadline_set(vm->rc, &it->retry, 0);
		free(it->error);
		it->error = NULL;
		reconcile_item_log(it, LOG_LEVEL_INFO, "attached", NULL);
		reconcile_item_event(it, RECONCILE_USB_ATTACHED, 0, NULL, false);
	}
	reconcile_mark_at(vm, bus, devnum);
	reconcile_run_passes(vm->rc);
}

/* The backend's answer to starting an attach: on a refusal at once, the
 * callback never comes. */
static void launched(struct rc_item *it, struct rc_op *op, int r)
{
	if (r >= 0)
		return;
	op_free(op);
	if (r == -ENOTCONN)
		reconcile_item_free(it);
	else
		attach_failed(it, r, NULL);
}

/* The item is being attached: the callback data of its operation. */
static struct rc_op *attaching(struct rc_item *it)
{
	it->state = RECONCILE_ITEM_ATTACHING;
	reconcile_deadline_set(it->vm->rc, &it->retry, 0);
	return op_new(it->vm, it);
}

void reconcile_attach(struct rc_item *it, const struct rc_device *d)
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
	struct rc_op *op = attaching(it);

	free(it->desc);
	it->desc = usb_device_describe(d->dev);
	free(it->syspath);
	it->syspath = xstrdup(d->dev->syspath);
	reconcile_item_log(it, LOG_LEVEL_DEBUG, "attaching", conf_attach_mode_name(mode));
	launched(it, op, vm->backend->ops->usb_attach(vm->backend, &req, attach_done, op));
}

void reconcile_attach_redir(struct rc_item *it, const struct conf_usb_remote *r)
{
	struct rc_vm *vm = it->vm;
	struct backend_redir_dev req = {
		.id = it->id,
		.host = r->host,
		.port = r->port,
		.path = r->path,
	};
	struct rc_op *op = attaching(it);

	free(it->address);
	it->address = conf_usb_remote_address(r);
	it->redir_attached = it->redir_connected = false;
	reconcile_item_log(it, LOG_LEVEL_DEBUG, "adding", it->address);
	launched(it, op, vm->backend->ops->redir_attach(vm->backend, &req, attach_done, op));
}

void reconcile_attach_input(struct rc_item *it, const struct reconcile_input *in)
{
	struct rc_vm *vm = it->vm;
	struct backend_input_dev req = {
		.id = it->id,
		.evdev = in->evdev,
		.grab_all = in->grab_all,
		.repeat = in->repeat,
		.grab_toggle = in->grab_toggle,
	};
	struct rc_op *op = attaching(it);

	free(it->evdev);
	it->evdev = xstrdup(in->evdev);
	reconcile_item_log(it, LOG_LEVEL_DEBUG, "attaching", in->evdev);
	launched(it, op, vm->backend->ops->input_attach(vm->backend, &req, attach_done, op));
}

/* A detach failed with err (the object is still there): try again later,
 * or give up and let the device's owner have it (true: passes were run). */
static bool detach_failed(struct rc_item *it, int err, const char *msg)
{
	struct rc_vm *vm = it->vm;
	const struct rc_device *d;
	uint64_t after;

	it->failures++;
	reconcile_set_error(&it->error, err, msg);
	it->state = RECONCILE_ITEM_ATTACHED;
	after = retry_after(&detach_retry, it->failures);
	if (after) {
		reconcile_deadline_set(vm->rc, &it->retry, reconcile_now(vm->rc) + after);
		reconcile_item_log(it, LOG_LEVEL_WARNING, "detach failed, will retry", it->error);
		return false;
	}
	reconcile_deadline_set(vm->rc, &it->retry, 0);
	reconcile_item_log(it, LOG_LEVEL_ERROR, "detach failed, giving up", it->error);
	/* No longer in the way of the device's owner (see
	 * reconcile_detach_given_up()). */
	d = it->bus ? reconcile_index_at(&vm->rc->index, it->bus, it->devnum) : NULL;
	if (!d)
		return false;
	reconcile_mark_at(vm, it->bus, it->devnum);
	reconcile_pass_address(vm->rc, it->bus, it->devnum, d->owner);
	return true;
}

/* The backend answered a detach: the id and device are free, or retry. */
static void detach_done(void *data, int err, const char *msg)
{
	struct rc_vm *vm = ((struct rc_op *)data)->vm;
	struct rc_item *it = op_end(data);

	if (!it)
		return;
	if (err == 0 || err == -ENOTCONN) {
		if (err == 0) {
			reconcile_item_log(it, LOG_LEVEL_INFO, "detached", NULL);
			reconcile_item_event(it, RECONCILE_USB_DETACHED, 0, NULL, false);
		}
		bool input = it->input;
		unsigned bus = it->bus, devnum = it->devnum;

		reconcile_item_free(it);
		/* The id and the host device are free again: the VM that owns
		 * the device there may want them. */
		if (!input && bus) {
			const struct rc_device *d = reconcile_index_at(&vm->rc->index, bus, devnum);

			reconcile_mark_at(vm, bus, devnum);
			reconcile_pass_address(vm->rc, bus, devnum, d ? d->owner : NULL);
		} else {
			reconcile_pass_vm(vm);
		}
		return;
	}
	if (detach_failed(it, err, msg))
		return;
	reconcile_pass_vm(vm);
}

void reconcile_detach(struct rc_item *it)
{
	struct rc_vm *vm = it->vm;
	struct rc_op *op = op_new(vm, it);
	int r;

	it->state = RECONCILE_ITEM_DETACHING;
	reconcile_deadline_set(vm->rc, &it->retry, 0);
	reconcile_item_log(it, LOG_LEVEL_DEBUG, "detaching", NULL);
	if (it->input)
		r = vm->backend->ops->input_detach(vm->backend, it->id, detach_done, op);
	else if (it->redir)
		r = vm->backend->ops->redir_detach(vm->backend, it->id, detach_done, op);
	else
		r = vm->backend->ops->usb_detach(vm->backend, it->id, detach_done, op);
	if (r < 0) {
		op_free(op);
		if (r == -ENOTCONN) {
			reconcile_item_free(it);
		} else {
			detach_failed(it, r, NULL);
			reconcile_reschedule(vm->rc);
		}
	}
}

/* What the VM has: vmplug's objects become items, and the VM is ready. */
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
		vm->list_failures++;
		reconcile_set_error(&vm->last_error, err, NULL);
		reconcile_deadline_set(rc, &vm->list_retry,
				       reconcile_now(rc) +
					   retry_after(&list_retry, vm->list_failures));
		/* Said once per connection; the retries go on quietly. */
		log_msg(vm->list_failures == 1 ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG,
			"vm %s: cannot list its devices (%s); retrying", vm->params.name,
			vm->last_error);
		reconcile_reschedule(rc);
		return;
	}
	vm->list_failures = 0;
	reconcile_deadline_set(rc, &vm->list_retry, 0);
	for (size_t i = 0; i < list->n; i++) {
		const struct backend_item *bi = &list->items[i];
		struct rc_item *it;

		if (!startswith(bi->id, BACKEND_ID_PREFIX) || reconcile_item_find(vm, bi->id))
			continue;
		it = reconcile_item_new(vm, bi->id, bi->kind == BACKEND_ITEM_INPUT);
		it->state = RECONCILE_ITEM_ATTACHED;
		it->evdev = bi->evdev ? xstrdup(bi->evdev) : NULL;
		if (bi->kind == BACKEND_ITEM_REDIR) {
			it->redir = true;
			it->address = bi->address ? xstrdup(bi->address) : NULL;
			it->redir_attached = bi->attached;
			it->redir_connected = bi->connected;
		} else if (!it->input && !it->bus && bi->bus > 0 && bi->addr > 0) {
			item_set_address(it, (unsigned)bi->bus, (unsigned)bi->addr);
		}
	}
	vm->state = RECONCILE_VM_READY;
	log_info("vm %s: ready, %zu object(s) of vmplug's already there", vm->params.name, list->n);
	reconcile_notify(
	    rc, &(struct reconcile_event){ .type = RECONCILE_VM_UP, .vm = vm->params.name });
	reconcile_pass_vm(vm);
}

void reconcile_list(struct rc_vm *vm)
{
	struct rc_op *op = op_new(vm, NULL);
	int r;

	vm->list_pending = true;
	reconcile_deadline_set(vm->rc, &vm->list_retry, 0);
	r = vm->backend->ops->list(vm->backend, list_done, op);
	if (r < 0) {
		op_free(op);
		vm->list_pending = false;
		if (r != -ENOTCONN)
			list_done(op_new(vm, NULL), r, NULL);
	}
}

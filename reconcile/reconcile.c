/* The reconciler's VMs and the events that come in: devices, reloads,
 * manual overrides, ticks and what the backends report (see reconcile.h). */
#include "config.h"

#include "reconcile/reconcile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "reconcile/reconcile-int.h"
#include "usb/rules.h"
#include "util/util.h"

/* Conflicts remembered as said; past this many the memory starts over. */
#define CONFLICTS_MAX 256

static const struct backend_events vm_events;

/* ------------------------------------------------------------ verdicts */

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

/* The device joins its owner's list of devices (the pass of a VM walks
 * only those), leaving its previous owner's; unchanged, it keeps its place. */
static void set_owned(struct reconcile *rc, struct rc_device *d)
{
	struct rc_vm *vm = d->owner ? reconcile_vm_of(rc, d->owner) : NULL;

	if (vm == d->owned_by)
		return;
	list_remove(&d->owned_link);
	d->owned_by = vm;
	if (vm)
		list_insert_tail(&vm->owned, &d->owned_link);
}

/* Who gets the device under the current config and overrides. */
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
	set_owned(rc, d);
	log_verdict(d);
	if (d->claimers > 1)
		log_conflict(rc, d);
}

/* ------------------------------------------------------------ debounce */

/* A device left its port (arrived false) or a new one appeared there:
 * when a device now there may be attached (0: at once). The first device
 * a burst holds back is said once. */
static uint64_t port_changed(struct reconcile *rc, const struct usb_device *dev, bool arrived)
{
	struct reconcile_debounce_verdict v;
	uint64_t t;
	char *desc;

	if (!rc->debounce)
		return 0;
	t = reconcile_now(rc);
	v = reconcile_debounce_change(rc->debounce, dev->syspath, arrived, t);
	if (v.first_held && log_ratelimit_allow(&rc->flap_rl, t)) {
		desc = usb_device_describe(dev);
		log_info("usb %s: its port changed %u times in a row; attaching once it has been "
			 "quiet for %llu ms",
			 desc, v.changes - 1,
			 (unsigned long long)((v.settle_at - t) / USEC_PER_MSEC));
		free(desc);
	}
	return v.settle_at;
}

/* ----------------------------------------------------------------- VMs */

struct rc_vm *reconcile_vm_of(const struct reconcile *rc, const struct conf_vm *conf)
{
	size_t i = (size_t)(conf - rc->conf->vms);
	struct rc_vm *vm;

	if (conf >= rc->conf->vms && i < rc->n_by_conf && rc->by_conf[i] &&
	    rc->by_conf[i]->conf == conf)
		return rc->by_conf[i];
	/* (in the middle of a reload, before index_vms()) */
	list_for_each(vm, &rc->vms, link)
		if (!vm->dead && vm->conf == conf)
			return vm;
	return NULL;
}

/* by_conf for the current configuration, once every VM of it exists. */
static void index_vms(struct reconcile *rc)
{
	struct rc_vm *vm;

	free(rc->by_conf);
	rc->n_by_conf = rc->conf->n_vms;
	rc->by_conf = xcalloc(rc->n_by_conf ? rc->n_by_conf : 1, sizeof(*rc->by_conf));
	rc->retiring = 0;
	list_for_each(vm, &rc->vms, link) {
		if (vm->dead)
			continue;
		if (vm->conf)
			rc->by_conf[vm->conf - rc->conf->vms] = vm;
		else
			rc->retiring++;
	}
}

struct rc_vm *reconcile_vm_find(const struct reconcile *rc, const char *name)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		if (!vm->dead && streq(vm->params.name, name))
			return vm;
	return NULL;
}

/* What the backend needs of a VM's config, kept across reloads. */
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
	dst->qemu_user = src->qemu_user ? xstrdup(src->qemu_user) : NULL;
}

/* Free what copy_params() made. */
static void free_params(struct conf_vm *p)
{
	free(p->name);
	free(p->file);
	free(p->qmp_socket);
	free(p->usb_bus);
	free(p->uri);
	free(p->domain);
	free(p->qemu_user);
}

/* Equal strings, or both NULL. */
static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && streq(a, b));
}

/* Does a change from a to b need a new backend? */
static bool params_differ(const struct conf_vm *a, const struct conf_vm *b)
{
	return a->backend != b->backend || !same_str(a->qmp_socket, b->qmp_socket) ||
	       !same_str(a->usb_bus, b->usb_bus) || !same_str(a->uri, b->uri) ||
	       !same_str(a->domain, b->domain) || !same_str(a->qemu_user, b->qemu_user);
}

/* The VM is down or its backend new: what it had is not known any more. */
static void forget_state(struct rc_vm *vm)
{
	struct rc_item *it, *itmp;

	list_for_each_safe(it, itmp, &vm->items, link)
		reconcile_item_free(it);
	vm->state = RECONCILE_VM_DOWN;
	vm->list_pending = false;
	vm->list_failures = 0;
	reconcile_deadline_set(vm->rc, &vm->list_retry, 0);
}

/* Destroy the VM's backend; its operations never complete. */
static void backend_stop(struct rc_vm *vm)
{
	if (vm->backend)
		vm->backend->ops->destroy(vm->backend);
	vm->backend = NULL;
	/* Destroyed backends call nothing back: their ops die here. */
	reconcile_ops_drop(vm);
	forget_state(vm);
}

/* Make the VM's backend; a failure is logged and kept as its last error. */
static void backend_start(struct rc_vm *vm)
{
	struct reconcile *rc = vm->rc;

	vm->backend = rc->hooks.create_backend(rc->data, &vm->params, &vm_events, vm);
	if (!vm->backend) {
		reconcile_set_error(&vm->last_error, -errno, NULL);
		log_error("vm %s: cannot start the %s backend: %s", vm->params.name,
			  conf_backend_name(vm->params.backend), vm->last_error);
	}
}

/* A VM of the configuration, its backend started. */
static struct rc_vm *vm_new(struct reconcile *rc, const struct conf_vm *conf)
{
	struct rc_vm *vm = xnew(struct rc_vm);

	vm->rc = rc;
	vm->conf = conf;
	vm->input_gen = 1;
	vm->seq = ++rc->vm_seq;
	heap_node_init(&vm->list_retry.node);
	vm->list_retry.kind = RC_DEADLINE_LIST;
	copy_params(&vm->params, conf);
	list_init(&vm->items);
	list_init(&vm->ops);
	list_init(&vm->owned);
	list_init(&vm->dirty_link);
	list_insert_tail(&rc->vms, &vm->link);
	backend_start(vm);
	return vm;
}

/* The VM and its backend go (never from inside the backend's callback). */
static void vm_free(struct rc_vm *vm)
{
	struct reconcile *rc = vm->rc;

	backend_stop(vm);
	while (!list_empty(&vm->owned)) {
		struct rc_device *d = container_of(vm->owned.next, struct rc_device, owned_link);

		list_remove(&d->owned_link);
		d->owned_by = NULL;
	}
	for (size_t i = 0; i < rc->n_by_conf; i++)
		if (rc->by_conf[i] == vm)
			rc->by_conf[i] = NULL;
	list_remove(&vm->dirty_link);
	list_remove(&vm->link);
	free_params(&vm->params);
	free(vm->last_error);
	free(vm);
}

/* Freed later: this may run inside one of its backend's callbacks, and a
 * backend is never destroyed from there. */
void reconcile_vm_retire(struct rc_vm *vm)
{
	log_info("vm %s: no longer configured", vm->params.name);
	vm->dead = true;
	vm->rc->reap = true;
}

/* The backend reached the VM: list what it has before anything else. */
static void on_vm_up(void *data)
{
	struct rc_vm *vm = data;

	vm->state = RECONCILE_VM_LISTING;
	free(vm->last_error);
	vm->last_error = NULL;
	reconcile_list(vm);
	reconcile_reschedule(vm->rc);
}

/* The VM went away with everything it had. */
static void on_vm_gone(void *data, const char *reason)
{
	struct rc_vm *vm = data;
	struct reconcile *rc = vm->rc;

	log_info("vm %s: gone (%s)", vm->params.name, reason);
	/* Whatever it had went with it. Ops still pending are orphaned. */
	reconcile_ops_orphan(vm);
	forget_state(vm);
	reconcile_set_error(&vm->last_error, 0, reason);
	reconcile_notify(rc, &(struct reconcile_event){
				 .type = RECONCILE_VM_GONE, .vm = vm->params.name, .msg = reason });
	if (!vm->conf)
		reconcile_vm_retire(vm);
	reconcile_reschedule(rc);
}

/* Why the VM is not up, for the status. */
static void on_vm_down(void *data, const char *why)
{
	struct rc_vm *vm = data;

	/* (the backend logged it) */
	reconcile_set_error(&vm->last_error, 0, why);
}

/* A lifecycle event of the VM, for debugging. */
static void on_vm_event(void *data, const char *event)
{
	struct rc_vm *vm = data;

	/* The backend logged it (rate-limited: a guest can repeat it). */
	log_debug("vm %s: %s", vm->params.name, event);
}

/* An object of vmplug's left the VM behind its back: pass again. */
static void on_item_gone(void *data, const char *id)
{
	struct rc_vm *vm = data;
	struct rc_item *it = reconcile_item_find(vm, id);

	if (!it)
		return;
	reconcile_item_log(it, LOG_LEVEL_WARNING, "removed from the VM by someone else", NULL);
	if (it->state == RECONCILE_ITEM_ATTACHED)
		reconcile_item_event(it, RECONCILE_USB_DETACHED, 0, "removed outside vmplug",
				     false);
	reconcile_item_free(it);
	reconcile_pass_vm(vm);
}

static const struct backend_events vm_events = {
	.vm_up = on_vm_up,
	.vm_gone = on_vm_gone,
	.vm_down = on_vm_down,
	.vm_event = on_vm_event,
	.item_gone = on_item_gone,
};

/* ----------------------------------------------------------------- API */

struct reconcile *reconcile_new(const struct conf *conf, const struct reconcile_hooks *hooks,
				void *data)
{
	struct reconcile *rc;

	if (!hooks->create_backend || !hooks->now)
		abort(); /* a caller's mistake, not a condition to handle */
	rc = xnew(struct reconcile);
	rc->conf = conf;
	rc->hooks = *hooks;
	rc->data = data;
	rc->flap_rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(60 * USEC_PER_SEC, 10);
	list_init(&rc->vms);
	list_init(&rc->dirty);
	reconcile_index_init(&rc->index);
	if (hooks->debounce)
		rc->debounce = reconcile_debounce_new();
	for (size_t i = 0; i < conf->n_vms; i++)
		vm_new(rc, &conf->vms[i]);
	index_vms(rc);
	return rc;
}

void reconcile_free(struct reconcile *rc)
{
	struct rc_vm *vm, *vtmp;

	if (!rc)
		return;
	list_for_each_safe(vm, vtmp, &rc->vms, link)
		vm_free(vm);
	reconcile_index_clear(&rc->index);
	reconcile_debounce_free(rc->debounce);
	strv_free(rc->conflicts);
	hash_clear(&rc->items_by_addr);
	heap_clear(&rc->deadlines);
	free(rc->by_conf);
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
		/* A backend that could not be created is tried again too. */
		if (!vm->backend || params_differ(&vm->params, c)) {
			if (vm->backend)
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
			it->races = 0;
			if (it->state == RECONCILE_ITEM_FAILED) {
				it->state = RECONCILE_ITEM_RETRY;
				reconcile_deadline_set(rc, &it->retry, 0);
			} else if (it->state == RECONCILE_ITEM_ATTACHED) {
				reconcile_deadline_set(rc, &it->retry, 0);
			}
		}
	}
	for (size_t i = 0; i < conf->n_vms; i++)
		if (!reconcile_vm_find(rc, conf->vms[i].name))
			vm_new(rc, &conf->vms[i]);
	index_vms(rc);
	/* A new config: its conflicts are said again. */
	strv_free(rc->conflicts);
	rc->conflicts = NULL;
	list_for_each(d, &rc->index.devices, link) {
		/* A reload ends manual overrides. */
		d->override = RECONCILE_OVERRIDE_NONE;
		free(d->override_vm);
		d->override_vm = NULL;
		judge(rc, d);
	}
	reconcile_pass_all(rc);
}

/* The device is gone: out of the deadlines and the index. */
static void device_drop(struct reconcile *rc, struct rc_device *d)
{
	reconcile_deadline_set(rc, &d->settle, 0);
	reconcile_index_remove(&rc->index, d);
}

void reconcile_device_add(struct reconcile *rc, struct usb_device *dev)
{
	struct rc_device *d = reconcile_index_find(&rc->index, dev->syspath);

	if (d && (d->dev->bus != dev->bus || d->dev->devnum != dev->devnum)) {
		/* A missed remove: the old instance is gone. */
		reconcile_mark_address(rc, d->dev->bus, d->dev->devnum);
		port_changed(rc, d->dev, false);
		device_drop(rc, d);
		d = NULL;
	}
	if (d) {
		/* the same device again: "change", its interfaces */
		usb_device_free(d->dev);
		d->dev = dev;
	} else {
		d = reconcile_index_add(&rc->index, dev);
		reconcile_deadline_set(rc, &d->settle, port_changed(rc, dev, true));
	}
	judge(rc, d);
	reconcile_pass_address(rc, dev->bus, dev->devnum, d->owner);
}

void reconcile_device_remove(struct reconcile *rc, const char *syspath)
{
	struct rc_device *d = reconcile_index_find(&rc->index, syspath);
	unsigned bus, devnum;

	if (!d)
		return;
	bus = d->dev->bus;
	devnum = d->dev->devnum;
	port_changed(rc, d->dev, false);
	device_drop(rc, d);
	reconcile_pass_address(rc, bus, devnum, NULL);
}

void reconcile_inputs_changed(struct reconcile *rc, const char *name)
{
	struct rc_vm *vm = reconcile_vm_find(rc, name);

	if (!vm)
		return;
	vm->input_gen++;
	reconcile_pass_vm(vm);
}

void reconcile_tick(struct reconcile *rc)
{
	struct rc_vm *vm, *tmp;
	struct heap_node *n, **due = NULL;
	size_t n_due = 0, cap = 0;
	uint64_t t = reconcile_now(rc);

	rc->scheduled = 0;
	if (rc->reap) {
		list_for_each_safe(vm, tmp, &rc->vms, link)
			if (vm->dead)
				vm_free(vm);
		rc->reap = false;
	}
	/* Pass the VMs with something due: a device that settled (its
	 * owner), a retry, a list to ask for again. Only what is due is
	 * taken from the heap; retries and lists go back in as they were
	 * (their passes decide). */
	while ((n = heap_top(&rc->deadlines)) && n->key <= t) {
		struct rc_deadline *dl = container_of(n, struct rc_deadline, node);

		heap_remove(&rc->deadlines, n);
		switch (dl->kind) {
		case RC_DEADLINE_SETTLE: {
			struct rc_device *d = container_of(dl, struct rc_device, settle);

			n->key = 0;
			if (d->owned_by)
				reconcile_mark_at(d->owned_by, d->dev->bus, d->dev->devnum);
			continue;
		}
		case RC_DEADLINE_RETRY: {
			struct rc_item *it = container_of(dl, struct rc_item, retry);

			if (it->input)
				reconcile_mark(it->vm);
			else
				reconcile_mark_at(it->vm, it->bus, it->devnum);
			break;
		}
		case RC_DEADLINE_LIST:
			reconcile_mark(container_of(dl, struct rc_vm, list_retry));
			break;
		}
		if (n_due == cap) {
			cap = cap ? 2 * cap : 8;
			due = xrealloc(due, cap * sizeof(*due));
		}
		due[n_due++] = n;
	}
	for (size_t i = 0; i < n_due; i++)
		heap_insert(&rc->deadlines, due[i]);
	free(due);
	/* a retiring VM goes once its devices are detached */
	if (rc->retiring) {
		rc->retiring = 0;
		list_for_each(vm, &rc->vms, link)
			if (!vm->conf && !vm->dead) {
				reconcile_mark(vm);
				rc->retiring++;
			}
	}
	reconcile_run_passes(rc);
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
			*usb_attached += !it->input && !it->redir &&
					 it->state == RECONCILE_ITEM_ATTACHED;
	}
}

bool reconcile_vm_info(const struct reconcile *rc, const char *name, enum reconcile_vm_state *state,
		       const char **last_error)
{
	const struct rc_vm *vm = reconcile_vm_find(rc, name);

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
	const struct rc_vm *vm = reconcile_vm_find(rc, name);
	const struct rc_item *it;
	size_t n = 0;

	if (!vm)
		return 0;
	list_for_each(it, &vm->items, link) {
		struct reconcile_item_info info = {
			.id = it->id,
			.state = it->state,
			.input = it->input,
			.redir = it->redir,
			.address = it->address,
			.redir_attached = it->redir_attached,
			.redir_connected = it->redir_connected,
			.bus = it->bus,
			.devnum = it->devnum,
			.dev = reconcile_item_device(it),
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

	list_for_each(d, &rc->index.devices, link) {
		struct reconcile_device_info info = {
			.dev = d->dev,
			.owner = d->owner,
			.rule = d->rule,
			.mode = d->mode,
			.claimers = d->claimers,
			.override = d->override,
			.override_vm = d->override_vm,
			.settle_at = rc_at(&d->settle),
		};

		fn(data, &info);
		n++;
	}
	return n;
}

int reconcile_override(struct reconcile *rc, const char *syspath, const char *vm,
		       enum reconcile_override override)
{
	struct rc_device *d = reconcile_index_find(&rc->index, syspath);

	if (!d)
		return -ENOENT;
	if (vm && !conf_find_vm(rc->conf, vm))
		return -ESRCH;
	if (override == RECONCILE_OVERRIDE_ATTACH && usb_device_is_hub(d->dev))
		return -EINVAL;
	/* a deny rule holds against every request: only a reload lifts it */
	if (override == RECONCILE_OVERRIDE_ATTACH && vm &&
	    usb_vm_verdict(conf_find_vm(rc->conf, vm), d->dev, NULL) == USB_VERDICT_DENIED)
		return -EPERM;
	free(d->override_vm);
	d->override = override;
	d->override_vm = override != RECONCILE_OVERRIDE_NONE ? xstrdup(vm) : NULL;
	judge(rc, d);
	reconcile_pass_all(rc);
	return 0;
}

const struct usb_device *reconcile_find_device(const struct reconcile *rc, const char *syspath)
{
	const struct rc_device *d = reconcile_index_find(&rc->index, syspath);

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

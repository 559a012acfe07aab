/* The reconciler's passes: one VM's objects compared with what the
 * configuration wants, and the operations that close the gap. */
#include "config.h"

#include <stdlib.h>

#include "reconcile/reconcile-int.h"
#include "util/util.h"

/* The owner VM still wants the item: the device at its address is the
 * one it attached (the number may have come round again on another port
 * while the item was held), settled, owned by vm, in the item's mode. */
static bool usb_wanted(const struct rc_vm *vm, const struct rc_item *it, uint64_t t)
{
	const struct rc_device *d = it->bus
					? reconcile_index_at(&vm->rc->index, it->bus, it->devnum)
					: NULL;
	char id[RC_USB_ID_MAX];

	if (!d || !vm->conf || d->owner != vm->conf || rc_at(&d->settle) > t ||
	    (it->syspath && !streq(it->syspath, d->dev->syspath)))
		return false;
	return streq(reconcile_usb_id_in(id, d->dev, d->mode), it->id);
}

static void pass_inputs(struct rc_vm *vm, uint64_t t);
static void pass_redirs(struct rc_vm *vm, uint64_t t);

/* Desired: d, which vm owns, is attached unless another item holds it. */
static void want_device(struct rc_vm *vm, struct rc_device *d, uint64_t t)
{
	struct reconcile *rc = vm->rc;
	char id[RC_USB_ID_MAX];
	struct rc_item *it;

	if (!vm->conf || d->owner != vm->conf || rc_at(&d->settle) > t)
		return;
	reconcile_usb_id_in(id, d->dev, d->mode);
	it = d->dev->bus ? reconcile_item_at(vm, d->dev->bus, d->dev->devnum, id)
			 : reconcile_item_find(vm, id);
	if (!it) {
		if (!reconcile_items_hold(rc, d->dev->bus, d->dev->devnum, NULL))
			reconcile_attach(reconcile_item_new(vm, id, false), d);
	} else if (it->state == RECONCILE_ITEM_RETRY && rc_at(&it->retry) <= t &&
		   !reconcile_items_hold(rc, d->dev->bus, d->dev->devnum, it)) {
		reconcile_attach(it, d);
	}
}

/* Actual but not desired: detach the USB item (or forget it, if never
 * attached). Frees nothing but it. */
static void check_item(struct rc_vm *vm, struct rc_item *it, uint64_t t)
{
	switch (it->state) {
	case RECONCILE_ITEM_ATTACHED:
		if (reconcile_detach_due(it, t) && !usb_wanted(vm, it, t))
			reconcile_detach(it);
		break;
	case RECONCILE_ITEM_RETRY:
	case RECONCILE_ITEM_FAILED:
		if (!usb_wanted(vm, it, t))
			reconcile_item_free(it);
		break;
	case RECONCILE_ITEM_ATTACHING:
	case RECONCILE_ITEM_DETACHING:
		break;
	}
}

/* A VM not ready has no pass but its list, asked for again when due
 * (true). */
static bool not_ready(struct rc_vm *vm, uint64_t t)
{
	if (vm->state == RECONCILE_VM_READY)
		return false;
	if (vm->state == RECONCILE_VM_LISTING && !vm->list_pending && rc_at(&vm->list_retry) &&
	    rc_at(&vm->list_retry) <= t)
		reconcile_list(vm);
	return true;
}

/* Bring one VM's USB devices and inputs to what the config says. */
static void pass_vm_once(struct rc_vm *vm)
{
	struct rc_device *d;
	struct rc_item *it, *itmp;
	uint64_t t = reconcile_now(vm->rc);

	if (not_ready(vm, t))
		return;
	list_for_each(d, &vm->owned, owned_link)
		want_device(vm, d, t);
	list_for_each_safe(it, itmp, &vm->items, link)
		if (!it->input && !it->redir)
			check_item(vm, it, t);
	pass_inputs(vm, t);
	pass_redirs(vm, t);
}

/* Is it a USB item of vm naming bus/devnum? */
static bool item_here(const struct rc_item *it, const struct rc_vm *vm, unsigned bus,
		      unsigned devnum)
{
	return it->vm == vm && !it->input && !it->redir && it->bus == bus && it->devnum == devnum;
}

/* The same for one address: the device there and the VM's items naming
 * it, all that an event at that address can change. false: more items
 * there than it takes in one go (the caller passes the whole VM). */
static bool pass_vm_at(struct rc_vm *vm, unsigned bus, unsigned devnum)
{
	struct reconcile *rc = vm->rc;
	uint32_t h = reconcile_addr_hash(bus, devnum);
	struct rc_item *it, *here[8];
	struct rc_device *d;
	size_t n = 0;
	uint64_t t = reconcile_now(rc);

	if (not_ready(vm, t))
		return true;
	hash_for_each_match(it, &rc->items_by_addr, h, by_addr)
		if (item_here(it, vm, bus, devnum) && n++ == ARRAY_SIZE(here))
			return false;
	d = reconcile_index_at(&rc->index, bus, devnum);
	if (d && d->owned_by == vm)
		want_device(vm, d, t);
	/* collected first: check_item() may free an item, a link of the chain */
	n = 0;
	hash_for_each_match(it, &rc->items_by_addr, h, by_addr)
		if (item_here(it, vm, bus, devnum))
			here[n++] = it;
	for (size_t i = 0; i < n; i++)
		check_item(vm, here[i], t);
	return true;
}

/* The [usb-remote] slot of vm an item stands for, NULL if none (any more). */
static const struct conf_usb_remote *redir_wanted(const struct rc_vm *vm, const struct rc_item *it)
{
	for (size_t i = 0; vm->conf && i < vm->conf->n_remotes; i++) {
		const struct conf_usb_remote *r = &vm->conf->remotes[i];
		char *id = reconcile_redir_id(r->name);
		bool same = streq(id, it->id);

		free(id);
		if (same)
			return r;
	}
	return NULL;
}

/* Bring one VM's usb-redir slots to its [usb-remote] sections: a slot
 * that listens elsewhere than its section says (changed by a reload, or
 * found half made in QEMU) is removed, and added again by the next pass. */
static void pass_redirs(struct rc_vm *vm, uint64_t t)
{
	struct rc_item *it, *itmp;

	if (!vm->backend->ops->redir_attach)
		return;
	for (size_t i = 0; vm->conf && i < vm->conf->n_remotes; i++) {
		char *id = reconcile_redir_id(vm->conf->remotes[i].name);

		it = reconcile_item_find(vm, id);
		if (!it) {
			it = reconcile_item_new(vm, id, false);
			it->redir = true;
			reconcile_attach_redir(it, &vm->conf->remotes[i]);
		} else if (it->redir && it->state == RECONCILE_ITEM_RETRY &&
			   rc_at(&it->retry) <= t) {
			reconcile_attach_redir(it, &vm->conf->remotes[i]);
		}
		free(id);
	}
	list_for_each_safe(it, itmp, &vm->items, link) {
		const struct conf_usb_remote *want;
		char *addr;
		bool current;

		if (!it->redir)
			continue;
		want = redir_wanted(vm, it);
		addr = want ? conf_usb_remote_address(want) : NULL;
		current = addr && it->address && streq(addr, it->address);
		free(addr);
		if (it->state == RECONCILE_ITEM_ATTACHED && !current && reconcile_detach_due(it, t))
			reconcile_detach(it);
		else if ((it->state == RECONCILE_ITEM_RETRY ||
			  it->state == RECONCILE_ITEM_FAILED) &&
			 !want)
			reconcile_item_free(it);
	}
}

/* Does the object QEMU has for a sink still work? */
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
		it = reconcile_item_find(vm, in[i].id);
		if (!it)
			reconcile_attach_input(reconcile_item_new(vm, in[i].id, true), &in[i]);
		else if (it->state == RECONCILE_ITEM_RETRY && rc_at(&it->retry) <= t)
			reconcile_attach_input(it, &in[i]);
	}
	list_for_each_safe(it, itmp, &vm->items, link) {
		const struct reconcile_input *want = NULL;

		if (!it->input)
			continue;
		for (size_t i = 0; i < n && !want; i++)
			if (streq(in[i].id, it->id))
				want = &in[i];
		if (it->state == RECONCILE_ITEM_ATTACHED &&
		    (!want || !input_current(vm, it, want)) && reconcile_detach_due(it, t))
			reconcile_detach(it); /* a replaced one comes back in the next pass */
		else if ((it->state == RECONCILE_ITEM_RETRY ||
			  it->state == RECONCILE_ITEM_FAILED) &&
			 !want)
			reconcile_item_free(it);
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

/* Retiring VMs go once they hold nothing of ours. */
static void maybe_retire(struct rc_vm *vm)
{
	if (vm->conf || vm->dead)
		return;
	if (!list_empty(&vm->items) && vm->state != RECONCILE_VM_DOWN)
		return;
	if (!list_empty(&vm->ops) && vm->state != RECONCILE_VM_DOWN)
		return;
	reconcile_vm_retire(vm);
}

/* Queue vm for the next passes. */
static void enqueue(struct rc_vm *vm)
{
	if (vm->dirty)
		return;
	vm->dirty = true;
	list_insert_tail(&vm->rc->dirty, &vm->dirty_link);
}

void reconcile_mark(struct rc_vm *vm)
{
	vm->full = true;
	vm->n_addrs = 0;
	enqueue(vm);
}

void reconcile_mark_at(struct rc_vm *vm, unsigned bus, unsigned devnum)
{
	unsigned a = bus * RC_ADDR_DEVNUMS + devnum;

	/* Without an address, or with two devices at one (a missed
	 * remove), only a pass of the whole VM is sure. */
	if (!bus || bus >= RC_ADDR_MAX_BUS || devnum >= RC_ADDR_DEVNUMS || vm->rc->index.shadowed ||
	    (!vm->full && vm->n_addrs == ARRAY_SIZE(vm->addrs))) {
		reconcile_mark(vm);
		return;
	}
	for (size_t i = 0; !vm->full && i < vm->n_addrs; i++)
		if (vm->addrs[i] == a) {
			enqueue(vm);
			return;
		}
	if (!vm->full)
		vm->addrs[vm->n_addrs++] = a;
	enqueue(vm);
}

/* Creation order, the order passes run in whatever order VMs were marked. */
static int by_seq(const void *a, const void *b)
{
	const struct rc_vm *x = *(struct rc_vm *const *)a, *y = *(struct rc_vm *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Pass every VM marked dirty, in creation order; a pass asked for during
 * a pass (a backend that completes at once) runs in the same loop. Only
 * the marked VMs are visited, not every VM. */
void reconcile_run_passes(struct reconcile *rc)
{
	struct rc_vm *vm, **due = NULL;
	size_t n, cap = 0;

	if (rc->in_pass) {
		rc->again = true;
		return;
	}
	rc->in_pass = true;
	while (!list_empty(&rc->dirty)) {
		n = 0;
		while (!list_empty(&rc->dirty)) {
			vm = container_of(rc->dirty.next, struct rc_vm, dirty_link);
			list_remove(&vm->dirty_link);
			vm->dirty = false;
			if (vm->dead)
				continue;
			if (n == cap) {
				cap = cap ? 2 * cap : 8;
				due = xrealloc(due, cap * sizeof(*due));
			}
			due[n++] = vm;
		}
		if (n > 1)
			qsort(due, n, sizeof(*due), by_seq);
		for (size_t i = 0; i < n; i++) {
			unsigned addrs[ARRAY_SIZE(due[i]->addrs)];
			size_t n_addrs;
			bool full;

			vm = due[i];
			/* a VM freed meanwhile is not in due: only ticks free VMs */
			if (vm->dead)
				continue;
			rc->vm_passes++;
			full = vm->full;
			n_addrs = vm->n_addrs;
			memcpy(addrs, vm->addrs, n_addrs * sizeof(*addrs));
			vm->full = false;
			vm->n_addrs = 0;
			for (size_t j = 0; !full && j < n_addrs; j++)
				full = !pass_vm_at(vm, addrs[j] / RC_ADDR_DEVNUMS,
						   addrs[j] % RC_ADDR_DEVNUMS);
			if (full)
				pass_vm_once(vm);
			maybe_retire(vm);
		}
	}
	free(due);
	rc->again = false;
	rc->in_pass = false;
	reconcile_reschedule(rc);
}

void reconcile_pass_vm(struct rc_vm *vm)
{
	reconcile_mark(vm);
	reconcile_run_passes(vm->rc);
}

void reconcile_pass_all(struct reconcile *rc)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		reconcile_mark(vm);
	reconcile_run_passes(rc);
}

void reconcile_mark_address(struct reconcile *rc, unsigned bus, unsigned devnum)
{
	uint32_t h = reconcile_addr_hash(bus, devnum);
	struct rc_item *it;

	hash_for_each_match(it, &rc->items_by_addr, h, by_addr)
		if (!it->input && it->bus == bus && it->devnum == devnum)
			reconcile_mark_at(it->vm, bus, devnum);
}

/* Not every VM: with many VMs and devices, a pass of all per uevent made
 * a storm cost VMs x devices per event. */
void reconcile_pass_address(struct reconcile *rc, unsigned bus, unsigned devnum,
			    const struct conf_vm *owner)
{
	struct rc_vm *vm = owner ? reconcile_vm_of(rc, owner) : NULL;

	if (vm)
		reconcile_mark_at(vm, bus, devnum);
	reconcile_mark_address(rc, bus, devnum);
	reconcile_run_passes(rc);
}

/* ------------------------------------------------------------- deadlines */

void reconcile_deadline_set(struct reconcile *rc, struct rc_deadline *d, uint64_t at)
{
	if (at != d->node.key || !at)
		heap_arm(&rc->deadlines, &d->node, at);
}

uint64_t reconcile_next_deadline(const struct reconcile *rc)
{
	const struct heap_node *top = heap_top(&rc->deadlines);

	if (rc->reap)
		return 1; /* as soon as possible */
	return top ? top->key : 0;
}

void reconcile_reschedule(struct reconcile *rc)
{
	uint64_t d = reconcile_next_deadline(rc);

	if (d == rc->scheduled)
		return;
	rc->scheduled = d;
	if (rc->hooks.schedule)
		rc->hooks.schedule(rc->data, d);
}

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

	if (!d || !vm->conf || d->owner != vm->conf || d->settle_at > t ||
	    (it->syspath && !streq(it->syspath, d->dev->syspath)))
		return false;
	return streq(reconcile_usb_id_in(id, d->dev, d->mode), it->id);
}

static void pass_inputs(struct rc_vm *vm, uint64_t t);

/* Bring one VM's USB devices to what the config says. */
static void pass_vm_once(struct rc_vm *vm)
{
	struct reconcile *rc = vm->rc;
	struct rc_device *d;
	struct rc_item *it, *itmp;
	uint64_t t = reconcile_now(rc);

	if (vm->state != RECONCILE_VM_READY) {
		if (vm->state == RECONCILE_VM_LISTING && !vm->list_pending && vm->list_retry_at &&
		    vm->list_retry_at <= t)
			reconcile_list(vm);
		return;
	}
	/* Desired: every present device this VM owns. */
	list_for_each(d, &rc->index.devices, link) {
		char id[RC_USB_ID_MAX];

		if (!vm->conf || d->owner != vm->conf || d->settle_at > t)
			continue;
		reconcile_usb_id_in(id, d->dev, d->mode);
		it = reconcile_item_find(vm, id);
		if (!it) {
			if (!reconcile_items_hold(rc, d->dev->bus, d->dev->devnum, NULL))
				reconcile_attach(reconcile_item_new(vm, id, false), d);
		} else if (it->state == RECONCILE_ITEM_RETRY && it->retry_at <= t &&
			   !reconcile_items_hold(rc, d->dev->bus, d->dev->devnum, it)) {
			reconcile_attach(it, d);
		}
	}
	/* Actual but not desired: detach (or forget, if never attached). */
	list_for_each_safe(it, itmp, &vm->items, link) {
		if (it->input)
			continue;
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
	pass_inputs(vm, t);
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
		else if (it->state == RECONCILE_ITEM_RETRY && it->retry_at <= t)
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

/* Pass every VM marked dirty; a pass asked for during a pass (a backend
 * that completes at once) runs in the same loop. */
void reconcile_run_passes(struct reconcile *rc)
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
	reconcile_reschedule(rc);
}

void reconcile_pass_vm(struct rc_vm *vm)
{
	vm->dirty = true;
	reconcile_run_passes(vm->rc);
}

void reconcile_pass_all(struct reconcile *rc)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		vm->dirty = true;
	reconcile_run_passes(rc);
}

/* Does vm hold an item for the host device at bus/devnum? */
static bool holds_address(const struct rc_vm *vm, unsigned bus, unsigned devnum)
{
	const struct rc_item *it;

	list_for_each(it, &vm->items, link)
		if (!it->input && it->bus == bus && it->devnum == devnum)
			return true;
	return false;
}

void reconcile_mark_address(struct reconcile *rc, unsigned bus, unsigned devnum)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		if (holds_address(vm, bus, devnum))
			vm->dirty = true;
}

/* Not every VM: with many VMs and devices, a pass of all per uevent made
 * a storm cost VMs x devices per event. */
void reconcile_pass_address(struct reconcile *rc, unsigned bus, unsigned devnum,
			    const struct conf_vm *owner)
{
	struct rc_vm *vm;

	list_for_each(vm, &rc->vms, link)
		if ((owner && vm->conf == owner) || holds_address(vm, bus, devnum))
			vm->dirty = true;
	reconcile_run_passes(rc);
}

/* ------------------------------------------------------------- deadlines */

uint64_t reconcile_next_deadline(const struct reconcile *rc)
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
	list_for_each(d, &rc->index.devices, link)
		if (d->settle_at && (!best || d->settle_at < best))
			best = d->settle_at;
	return best;
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

/* The reconciler's internals, shared by its files (reconcile.h says what
 * the whole does):
 * - index.c: the present host devices, found by syspath and by address;
 * - debounce.c: when a device on a flapping port may be attached (pure);
 * - item.c: the objects vmplug owns in a VM, the backend operations on
 *   them and the one retry policy;
 * - pass.c: passes, each bringing one VM to what the configuration wants,
 *   and the deadline they leave;
 * - reconcile.c: the VMs and their backends, the events that come in,
 *   the verdict on each device, inspection. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "reconcile/debounce.h"
#include "reconcile/reconcile.h"
#include "util/list.h"
#include "util/log.h"

/* ------------------------------------------------------------- index.c */

#define RC_ADDR_DEVNUMS 128 /* USB device numbers are 1 to 127 */
#define RC_ADDR_MAX_BUS 1024

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

/* The present devices, in the order they came, and by address: a lookup
 * per item and pass must not walk every device. */
struct rc_index {
	struct list devices;
	struct rc_device **by_addr; /* [bus * RC_ADDR_DEVNUMS + devnum] */
	size_t by_addr_len;
};

void reconcile_index_init(struct rc_index *ix);
/* Frees every device. */
void reconcile_index_clear(struct rc_index *ix);
/* The device at syspath, NULL if none. */
struct rc_device *reconcile_index_find(const struct rc_index *ix, const char *syspath);
/* Add dev (owned from now on), with no verdict yet. */
struct rc_device *reconcile_index_add(struct rc_index *ix, struct usb_device *dev);
/* d leaves the index and is freed. */
void reconcile_index_remove(struct rc_index *ix, struct rc_device *d);
/* Bus numbers past RC_ADDR_MAX_BUS are not in the table: walked. */
struct rc_device *reconcile_index_at_slow(const struct rc_index *ix, unsigned bus, unsigned devnum);

/* The device at bus/devnum, NULL if none (per item and pass: inline). */
static inline struct rc_device *reconcile_index_at(const struct rc_index *ix, unsigned bus,
						   unsigned devnum)
{
	size_t i = (size_t)bus * RC_ADDR_DEVNUMS + devnum;

	if (bus >= RC_ADDR_MAX_BUS || devnum >= RC_ADDR_DEVNUMS)
		return reconcile_index_at_slow(ix, bus, devnum);
	return i < ix->by_addr_len ? ix->by_addr[i] : NULL;
}

/* ----------------------------------------------------- the whole's state */

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
	unsigned races;    /* of those, attaches refused quietly (-ENODEV, reconcile.h) */
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
	struct rc_index index;
	struct reconcile_debounce *debounce; /* NULL: off */
	struct log_ratelimit flap_rl;        /* "its port changed N times" */
	size_t vm_passes;
	char **conflicts; /* conflicts logged under this config */
	uint64_t scheduled;
	bool in_pass; /* guards against passes started from inside a pass */
	bool again;
	bool reap; /* some VM is dead */
};

static inline uint64_t reconcile_now(const struct reconcile *rc)
{
	return rc->hooks.now(rc->data);
}

static inline void reconcile_notify(struct reconcile *rc, const struct reconcile_event *ev)
{
	if (rc->hooks.notify)
		rc->hooks.notify(rc->data, ev);
}

/* -------------------------------------------------------------- item.c */

/* Room for any id reconcile_usb_id() makes. */
#define RC_USB_ID_MAX 48

/* reconcile_usb_id() into buf, without printf or malloc: a pass makes
 * one per device. Returns buf. */
const char *reconcile_usb_id_in(char buf[RC_USB_ID_MAX], const struct usb_device *dev,
				enum conf_attach_mode mode);

struct rc_item *reconcile_item_find(const struct rc_vm *vm, const char *id);
struct rc_item *reconcile_item_new(struct rc_vm *vm, const char *id, bool input);
void reconcile_item_free(struct rc_item *it);
/* The present host device an item names, NULL if none. */
const struct usb_device *reconcile_item_device(const struct rc_item *it);
/* Is the host device bus/devnum held by an item other than `self`, in
 * any VM? Then it is not attached again until that item is gone, or its
 * detach has given up. */
bool reconcile_items_hold(const struct reconcile *rc, unsigned bus, unsigned devnum,
			  const struct rc_item *self);
/* The item's detach failed RECONCILE_DETACH_TRIES times and is not tried
 * again. It no longer keeps the device it names from the device's owner:
 * which host device an object holds is only what its VM reports, and a
 * compromised QEMU can name any address; if it really holds the device,
 * the owner's attach fails and is retried by the attach policy. */
bool reconcile_detach_given_up(const struct rc_item *it);
void reconcile_item_event(struct rc_item *it, enum reconcile_event_type type, int err,
			  const char *msg, bool final);
void reconcile_item_log(const struct rc_item *it, enum log_level level, const char *what,
			const char *detail);
/* *slot = msg, or the text of -err without one. */
void reconcile_set_error(char **slot, int err, const char *msg);

/* Start an operation on the VM's backend; its completion passes the VM
 * again. */
void reconcile_attach(struct rc_item *it, const struct rc_device *d);
void reconcile_attach_input(struct rc_item *it, const struct reconcile_input *in);
void reconcile_detach(struct rc_item *it);
void reconcile_list(struct rc_vm *vm);
/* An attached item with a detach to retry may be detached again now:
 * its retry is due and it has tries left. */
bool reconcile_detach_due(const struct rc_item *it, uint64_t now);
/* The VM went away: its operations' callbacks, still to come, find no
 * item. */
void reconcile_ops_orphan(struct rc_vm *vm);
/* Its backend was destroyed: the callbacks never come. */
void reconcile_ops_drop(struct rc_vm *vm);

/* -------------------------------------------------------------- pass.c */

/* Pass one VM, every VM, or those a change at bus/devnum concerns: the
 * owner of the device there now (may be NULL) and every VM holding an
 * item for that address. A pass asked for during a pass runs when it
 * ends. */
void reconcile_pass_vm(struct rc_vm *vm);
void reconcile_pass_all(struct reconcile *rc);
void reconcile_pass_address(struct reconcile *rc, unsigned bus, unsigned devnum,
			    const struct conf_vm *owner);
/* Mark the VMs with an item for bus/devnum for the next pass. */
void reconcile_mark_address(struct reconcile *rc, unsigned bus, unsigned devnum);
/* Run the passes marked. */
void reconcile_run_passes(struct reconcile *rc);
/* Tell the owner when the earliest deadline changed. */
void reconcile_reschedule(struct reconcile *rc);

/* ---------------------------------------------------------- reconcile.c */

/* The configured or retiring VM called name, NULL if none. */
struct rc_vm *reconcile_vm_find(const struct reconcile *rc, const char *name);
/* The VM is no longer configured and holds nothing: freed by the next
 * tick, never from inside its backend's callback. */
void reconcile_vm_retire(struct rc_vm *vm);

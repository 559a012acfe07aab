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
#include "util/hash.h"
#include "util/heap.h"
#include "util/list.h"
#include "util/log.h"

struct rc_vm;

/* A deadline of a device, an item or a VM, in the reconciler's heap
 * (reconcile_deadline_set()): the tick takes only what is due, and the
 * next deadline is the heap's top. */
enum rc_deadline_kind {
	RC_DEADLINE_SETTLE, /* a device's debounce ends: its owner passes */
	RC_DEADLINE_RETRY,  /* an item's retry: its VM passes */
	RC_DEADLINE_LIST,   /* a VM's list to ask for again */
};

struct rc_deadline {
	struct heap_node node; /* key: when; 0: none */
	enum rc_deadline_kind kind;
};

/* When; 0: no deadline. */
static inline uint64_t rc_at(const struct rc_deadline *d)
{
	return d->node.key;
}

/* ------------------------------------------------------------- index.c */

#define RC_ADDR_DEVNUMS 128 /* USB device numbers are 1 to 127 */
#define RC_ADDR_MAX_BUS 1024

/* A present host USB device and the verdict of the current config. */
struct rc_device {
	struct list link;
	struct hash_link by_path; /* the index's, by dev->syspath */
	struct list owned_link;   /* in owned_by->owned */
	struct rc_vm *owned_by;   /* the VM of owner, NULL if none */
	bool shadowed;            /* another device had its address when it came */
	struct usb_device *dev;
	const struct conf_vm *owner;      /* who gets it, overrides applied */
	const struct conf_usb_rule *rule; /* the owner's claiming rule, if any */
	enum conf_attach_mode mode;
	size_t claimers;
	enum reconcile_override override;
	char *override_vm;
	struct rc_deadline settle; /* debounce: not desired before this; 0: settled */
};

/* The present devices, in the order they came, by syspath and by
 * address: a lookup per event, item and pass must not walk every device. */
struct rc_index {
	struct list devices;
	struct hash by_path;
	struct rc_device **by_addr; /* [bus * RC_ADDR_DEVNUMS + devnum] */
	size_t by_addr_len;
	size_t shadowed; /* devices not in by_addr for another with their address */
};

void reconcile_index_init(struct rc_index *ix);
/* Frees every device. */
void reconcile_index_clear(struct rc_index *ix);
/* The device at syspath, NULL if none. */
struct rc_device *reconcile_index_find(const struct rc_index *ix, const char *syspath);
/* Add dev (owned from now on), with no verdict yet. */
struct rc_device *reconcile_index_add(struct rc_index *ix, struct usb_device *dev);
/* d leaves the index (and the VM that owns it) and is freed; its settle
 * deadline must be out of the heap. */
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

/* One object with a vmplug- id in one VM. */
struct rc_item {
	struct list link;
	struct hash_link by_addr; /* in the reconciler's items_by_addr while bus != 0 */
	struct rc_vm *vm;
	char *id;
	enum reconcile_item_state state;
	bool input;
	bool redir;           /* a [usb-remote] slot: usb-redir and its chardev */
	unsigned bus, devnum; /* from the id; 0 if it names no host device */
	unsigned gen;         /* input: vm->input_gen it was attached under, 0: found in QEMU */
	char *evdev;          /* input: the node QEMU opened */
	char *address;        /* redir: where it listens (conf_usb_remote_address), NULL: unknown */
	bool redir_attached, redir_connected; /* redir: its peer, at the last list */
	char *desc;    /* usb: the host device as it was when attached, for logs */
	char *syspath; /* usb: where that device was; NULL if found in QEMU */
	unsigned failures;
	unsigned races;           /* of those, attaches refused quietly (-ENODEV, reconcile.h) */
	struct rc_deadline retry; /* RETRY, or a detach to retry (ATTACHED) */
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
	struct list dirty_link; /* in the reconciler's dirty list while dirty */
	struct list owned;      /* the present devices whose owner it is (rc_device.owned_link) */
	uint64_t seq;           /* creation order: passes run in it */
	struct reconcile *rc;
	const struct conf_vm *conf; /* NULL while retiring */
	struct conf_vm params;      /* the backend's own copy: name and how to reach it */
	struct backend_vm *backend;
	enum reconcile_vm_state state;
	struct list items;
	struct list ops;
	bool list_pending;
	unsigned list_failures;
	struct rc_deadline list_retry;
	char *last_error;
	bool dead;         /* retired: freed by the next reconcile_tick() */
	bool dirty;        /* due for a pass: in the reconciler's dirty list */
	bool full;         /* ... of everything, else of addrs only */
	unsigned addrs[8]; /* bus * RC_ADDR_DEVNUMS + devnum: what an event there can change */
	size_t n_addrs;
	unsigned input_gen;
};

struct reconcile {
	const struct conf *conf;
	struct reconcile_hooks hooks;
	void *data;
	struct list vms;
	struct rc_vm **by_conf; /* [i]: the VM of conf->vms[i] */
	size_t n_by_conf;
	uint64_t vm_seq;
	size_t retiring;           /* VMs no longer configured, not yet dead */
	struct list dirty;         /* VMs due for a pass */
	struct hash items_by_addr; /* USB items of every VM, by the address they name */
	struct heap deadlines;
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

/* The hash of a host device's address in items_by_addr. */
static inline uint32_t reconcile_addr_hash(unsigned bus, unsigned devnum)
{
	return ((uint32_t)bus * RC_ADDR_DEVNUMS + devnum) * 2654435761u;
}

struct rc_item *reconcile_item_find(const struct rc_vm *vm, const char *id);
/* The USB item of vm with id, which names bus/devnum (not 0), NULL if none. */
struct rc_item *reconcile_item_at(const struct rc_vm *vm, unsigned bus, unsigned devnum,
				  const char *id);
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
void reconcile_attach_redir(struct rc_item *it, const struct conf_usb_remote *r);
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
/* Mark vm for the next pass, of everything (reconcile_mark()) or of
 * what is at one host address: an event there changes nothing else. */
void reconcile_mark(struct rc_vm *vm);
void reconcile_mark_at(struct rc_vm *vm, unsigned bus, unsigned devnum);
/* Move d to at in the deadline heap (0: take it out). */
void reconcile_deadline_set(struct reconcile *rc, struct rc_deadline *d, uint64_t at);
/* Run the passes marked. */
void reconcile_run_passes(struct reconcile *rc);
/* Tell the owner when the earliest deadline changed. */
void reconcile_reschedule(struct reconcile *rc);

/* ---------------------------------------------------------- reconcile.c */

/* The VM of a VM of the current configuration (NULL: none). */
struct rc_vm *reconcile_vm_of(const struct reconcile *rc, const struct conf_vm *conf);
/* The configured or retiring VM called name, NULL if none. */
struct rc_vm *reconcile_vm_find(const struct reconcile *rc, const char *name);
/* The VM is no longer configured and holds nothing: freed by the next
 * tick, never from inside its backend's callback. */
void reconcile_vm_retire(struct rc_vm *vm);

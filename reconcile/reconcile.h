/* The reconciler: per VM, desired = present host USB devices its rules
 * claim, actual = what its backend reports (listed after every connect)
 * plus what vmplug attached since; it attaches what is missing and
 * detaches what is no longer desired, after every event.
 *
 * The core has no fds and no clock of its own: events come in through the
 * functions below, work goes out through backends (created by a hook),
 * time comes from a hook, and the next deadline is announced through a
 * hook so the owner can arm one timer. Tests drive it with the null
 * backend on virtual time. reconcile-int.h says how its files divide the
 * work. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "conf/conf.h"
#include "reconcile/debounce.h"
#include "usb/device.h"

struct reconcile;

enum reconcile_event_type {
	RECONCILE_VM_UP,   /* connected and listed */
	RECONCILE_VM_GONE, /* msg: why */
	RECONCILE_USB_ATTACHED,
	RECONCILE_USB_DETACHED,
	RECONCILE_USB_FAILED, /* err, msg; retried unless `final` */
	RECONCILE_INPUT_ATTACHED,
	RECONCILE_INPUT_DETACHED,
	RECONCILE_INPUT_FAILED,
	RECONCILE_REMOTE_ADDED, /* a [usb-remote] slot's socket and device are in the VM */
	RECONCILE_REMOTE_REMOVED,
	RECONCILE_REMOTE_FAILED,
};

struct reconcile_event {
	enum reconcile_event_type type;
	const char *vm;
	const char *id;               /* USB events */
	const struct usb_device *dev; /* USB events, NULL if no longer known */
	int err;
	const char *msg;
	bool final; /* USB_FAILED: no more retries */
};

/* An input-linux object a VM should have (one per input sink of the VM). */
struct reconcile_input {
	char *id;    /* "vmplug-in-SOURCE" */
	char *evdev; /* the sink's node, as QEMU should open it */
	bool grab_all;
	bool repeat;
	const char *grab_toggle; /* QEMU's GrabToggleKeys name (static), NULL: QEMU's */
	/* The sink survived from an earlier vmplugd (fd store): an object
	 * QEMU already has for it still works and is kept. Otherwise such an
	 * object points at a node that died with the old vmplugd and is
	 * replaced. */
	bool keep_existing;
};

struct reconcile_hooks {
	/* Required: create the backend for vm; events/evdata go to the backend's
	 * create(). NULL (errno set) if it cannot be created. */
	struct backend_vm *(*create_backend)(void *data, const struct conf_vm *vm,
					     const struct backend_events *events, void *evdata);
	/* Required: the time, in microseconds on a clock that never goes
	 * back (CLOCK_MONOTONIC in vmplugd, virtual in tests). The
	 * reconciler has no clock of its own. */
	uint64_t (*now)(void *data);
	/* The earliest deadline changed: call reconcile_tick() then (0: none). */
	void (*schedule)(void *data, uint64_t deadline);
	/* Something happened that users may want to see; may be NULL. */
	void (*notify)(void *data, const struct reconcile_event *ev);
	/* The input-linux objects vm should have: their number, and a new
	 * array in *out (the reconciler frees it with reconcile_inputs_free).
	 * NULL: no inputs are managed. */
	size_t (*vm_inputs)(void *data, const char *vm, struct reconcile_input **out);
	/* Debounce flapping ports (reconcile/debounce.h); off: every new
	 * device is attached at once, however often its port changes. */
	bool debounce;
};

void reconcile_inputs_free(struct reconcile_input *in, size_t n);

/* The retry policy. It is the reconciler's alone: a backend reports every
 * failure with its errno and never tries again by itself (backend.h).
 * - A device vmplugd heard of before QEMU's libusb saw it is refused with
 *   -ENODEV for a few hundred milliseconds: the first
 *   RECONCILE_ATTACH_QUIET such failures in a row are tried again after
 *   RECONCILE_ATTACH_RACE_USEC, doubling (the fifth try 1.5 s after the
 *   first), logged at debug level only and reported to nobody.
 * - Any other failed attach (and -ENODEV after those) is tried again
 *   after RECONCILE_ATTACH_RETRY_USEC, doubling, and reported (USB_FAILED);
 *   the RECONCILE_ATTACH_TRIES-th such failure is final: the item is
 *   FAILED (USB_FAILED `final`) until the device is replugged, the
 *   configuration reloaded or the VM restarted.
 * - A failed detach is tried again after RECONCILE_DETACH_RETRY_USEC,
 *   doubling, RECONCILE_DETACH_TRIES tries in all; then the object stays
 *   until a reload.
 * - A failed list is asked again after RECONCILE_LIST_RETRY_USEC,
 *   doubling up to RECONCILE_LIST_RETRY_MAX_USEC, while the VM is up. */
#define RECONCILE_ATTACH_QUIET 4
#define RECONCILE_ATTACH_RACE_USEC 100000ULL /* 100 ms */
#define RECONCILE_ATTACH_TRIES 4
#define RECONCILE_ATTACH_RETRY_USEC 1000000ULL /* 1 s */
#define RECONCILE_DETACH_TRIES 4
#define RECONCILE_DETACH_RETRY_USEC 1000000ULL   /* 1 s */
#define RECONCILE_LIST_RETRY_USEC 100000ULL      /* 100 ms */
#define RECONCILE_LIST_RETRY_MAX_USEC 5000000ULL /* 5 s */

/* conf is borrowed until the next reconcile_set_conf() or free. The
 * backends are created at once. The hooks create_backend and now are
 * required (without them this aborts: a caller's mistake). */
struct reconcile *reconcile_new(const struct conf *conf, const struct reconcile_hooks *hooks,
				void *data);
/* Destroys every backend (their pending callbacks are not called). */
void reconcile_free(struct reconcile *rc);

/* A new configuration (reload): VMs added, removed (their devices are
 * detached first) or changed; every device judged again. */
void reconcile_set_conf(struct reconcile *rc, const struct conf *conf);
/* A host USB device appeared or changed (same syspath: replaced). Takes
 * ownership of dev. */
void reconcile_device_add(struct reconcile *rc, struct usb_device *dev);
/* A host USB device went away (matched by syspath). */
void reconcile_device_remove(struct reconcile *rc, const char *syspath);
/* The input sinks of vm changed (new nodes): QEMU's objects for them
 * are replaced. */
void reconcile_inputs_changed(struct reconcile *rc, const char *vm);
/* Run retries that are due. */
void reconcile_tick(struct reconcile *rc);
/* How many VM passes (one VM's objects compared with what the
 * configuration wants) have run: for tests, so an event's cost stays
 * proportional to the VMs it concerns. */
size_t reconcile_vm_passes(const struct reconcile *rc);
/* The configured VMs that are not down, and the USB devices attached in
 * them, in one walk (the status line is made after every event). */
void reconcile_counts(const struct reconcile *rc, size_t *up, size_t *usb_attached);
/* The earliest pending deadline, 0 if none. */
uint64_t reconcile_next_deadline(const struct reconcile *rc);

/* ------------------------------------------------------------ inspection */

enum reconcile_vm_state {
	RECONCILE_VM_DOWN,    /* not reachable */
	RECONCILE_VM_LISTING, /* connected, learning what it has */
	RECONCILE_VM_READY,   /* connected and reconciled */
};

enum reconcile_item_state {
	RECONCILE_ITEM_ATTACHING,
	RECONCILE_ITEM_ATTACHED,
	RECONCILE_ITEM_DETACHING,
	RECONCILE_ITEM_RETRY,  /* attach failed, retried at retry_at */
	RECONCILE_ITEM_FAILED, /* attach failed for good (the retry policy above) */
};

struct reconcile_item_info {
	const char *id;
	enum reconcile_item_state state;
	bool input;
	bool redir;           /* a [usb-remote] slot */
	const char *address;  /* redir: where it listens */
	bool redir_attached;  /* redir: a peer's device is on the VM's bus (at the last list) */
	bool redir_connected; /* redir: a peer is connected (at the last list) */
	unsigned bus, devnum;
	const struct usb_device *dev; /* the host device, NULL if not present */
	const char *error;            /* last error, NULL if none */
	unsigned failures;
};

/* The VM called name, for status; false if unknown. */
bool reconcile_vm_info(const struct reconcile *rc, const char *name, enum reconcile_vm_state *state,
		       const char **last_error);
/* Visit the items of VM name; returns how many. */
size_t reconcile_vm_items(const struct reconcile *rc, const char *name,
			  void (*fn)(void *data, const struct reconcile_item_info *info),
			  void *data);
enum reconcile_override {
	RECONCILE_OVERRIDE_NONE,
	RECONCILE_OVERRIDE_ATTACH, /* the VM gets it, whatever the rules say */
	RECONCILE_OVERRIDE_DETACH, /* the VM does not get it, whatever the rules say */
};

struct reconcile_device_info {
	const struct usb_device *dev;
	const struct conf_vm *owner;      /* who gets it (overrides applied), NULL: nobody */
	const struct conf_usb_rule *rule; /* the owner's claiming rule, NULL if none */
	enum conf_attach_mode mode;
	size_t claimers; /* VMs whose rules claim it (more than one: a conflict) */
	enum reconcile_override override;
	const char *override_vm;
	uint64_t settle_at; /* its port flaps: not attached before this (0: settled) */
};

/* Visit every present host USB device. */
size_t reconcile_devices(const struct reconcile *rc,
			 void (*fn)(void *data, const struct reconcile_device_info *info),
			 void *data);
/* The present device with this syspath, NULL if none. */
const struct usb_device *reconcile_find_device(const struct reconcile *rc, const char *syspath);

/* A manual decision for one device, kept until the device leaves or the
 * configuration is reloaded: ATTACH gives it to vm whatever its [usb]
 * rules say (in the mode of vm's claiming rule, else address), but never
 * against one of vm's [usb-deny] rules; DETACH keeps it from vm, NONE
 * returns to the rules. 0, -ENOENT (no such device), -ESRCH (no such VM),
 * -EINVAL (hubs are never attached), -EPERM (a deny rule of vm matches it). */
int reconcile_override(struct reconcile *rc, const char *syspath, const char *vm,
		       enum reconcile_override override);

const char *reconcile_vm_state_name(enum reconcile_vm_state s);
const char *reconcile_item_state_name(enum reconcile_item_state s);
/* The id of a VM's [usb-remote "name"] slot (device and chardev); a new string. */
char *reconcile_redir_id(const char *name);
/* The id vmplug gives a host device attached in mode; a new string. */
char *reconcile_usb_id(const struct usb_device *dev, enum conf_attach_mode mode);

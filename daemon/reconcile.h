/* The reconciler: per VM, desired = present host USB devices its rules
 * claim, actual = what its backend reports (listed after every connect)
 * plus what vmplug attached since; it attaches what is missing and
 * detaches what is no longer desired, after every event.
 *
 * The core has no fds and no clock of its own: events come in through the
 * functions below, work goes out through backends (created by a hook),
 * time comes from a hook, and the next deadline is announced through a
 * hook so the owner can arm one timer. Tests drive it with the null
 * backend on virtual time. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backends/backend.h"
#include "conf/conf.h"
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
	/* Create the backend for vm; events/evdata go to the backend's
	 * create(). NULL (errno set) if it cannot be created. */
	struct backend_vm *(*create_backend)(void *data, const struct conf_vm *vm,
					     const struct backend_events *events, void *evdata);
	/* CLOCK_MONOTONIC microseconds (virtual in tests). */
	uint64_t (*now)(void *data);
	/* The earliest deadline changed: call reconcile_tick() then (0: none). */
	void (*schedule)(void *data, uint64_t deadline);
	/* Something happened that users may want to see; may be NULL. */
	void (*notify)(void *data, const struct reconcile_event *ev);
	/* The input-linux objects vm should have: their number, and a new
	 * array in *out (the reconciler frees it with reconcile_inputs_free).
	 * NULL: no inputs are managed. */
	size_t (*vm_inputs)(void *data, const char *vm, struct reconcile_input **out);
	/* Debounce flapping ports (see RECONCILE_FLAP_*); off: every new
	 * device is attached at once, however often its port changes. */
	bool debounce;
};

void reconcile_inputs_free(struct reconcile_input *in, size_t n);

/* Bounds of the retry policy (exposed for tests and documentation). */
#define RECONCILE_ATTACH_TRIES 4             /* then the device is reported failed */
#define RECONCILE_RETRY_BASE_USEC 1000000ULL /* 1 s, doubling */
#define RECONCILE_LIST_RETRY_USEC 100000ULL  /* 100 ms, doubling to 5 s */

/* Debounce. A port "changes" when a device is removed from it or a new
 * device (a new bus/devnum) appears on it; changes less than
 * RECONCILE_FLAP_WINDOW_USEC apart form one burst. The first
 * RECONCILE_FLAP_FREE changes of a burst (plug, unplug, replug) act at
 * once; after that, a device that appears on the port is attached only
 * once the port has been quiet for a settle delay that starts at
 * RECONCILE_SETTLE_USEC and doubles with each further replug of the burst,
 * up to RECONCILE_SETTLE_MAX_USEC. Removals always act at once. */
#define RECONCILE_FLAP_WINDOW_USEC 2000000ULL /* 2 s */
#define RECONCILE_FLAP_FREE 3
#define RECONCILE_SETTLE_USEC 200000ULL      /* 200 ms */
#define RECONCILE_SETTLE_MAX_USEC 2000000ULL /* 2 s */

/* conf is borrowed until the next reconcile_set_conf() or free. The
 * backends are created at once. */
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
	RECONCILE_ITEM_FAILED, /* attach failed RECONCILE_ATTACH_TRIES times */
};

struct reconcile_item_info {
	const char *id;
	enum reconcile_item_state state;
	bool input;
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
 * configuration is reloaded: ATTACH gives it to vm whatever the rules say
 * (in the mode of vm's claiming rule, else address), DETACH keeps it from
 * vm, NONE returns to the rules. 0, -ENOENT (no such device), -ESRCH (no
 * such VM), -EINVAL (hubs are never attached). */
int reconcile_override(struct reconcile *rc, const char *syspath, const char *vm,
		       enum reconcile_override override);

const char *reconcile_vm_state_name(enum reconcile_vm_state s);
const char *reconcile_item_state_name(enum reconcile_item_state s);
/* The id vmplug gives a host device attached in mode; a new string. */
char *reconcile_usb_id(const struct usb_device *dev, enum conf_attach_mode mode);

/* The one interface between vmplug's reconciler and a way of reaching a VM
 * (QMP to a standalone QEMU, libvirt). Every operation is asynchronous and
 * runs on the daemon's event loop; completions come back through
 * callbacks. The reconciler never knows which backend it talks to.
 *
 * Ids: the caller chooses every id, always starting with "vmplug-" (QEMU
 * id syntax: letters, digits, '-', '.', '_'; first a letter). A backend
 * only ever touches objects whose id has that prefix, so devices a user
 * added by hand are left alone. An id passed to usb_detach is free for
 * reuse once that detach has completed (for QMP: after DEVICE_DELETED). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "loop/loop.h"

#define BACKEND_ID_PREFIX "vmplug-"

struct backend_vm;

/* What to attach: a host USB device. */
struct backend_usb_dev {
	const char *id;
	enum conf_attach_mode mode;
	unsigned bus;        /* hostbus, all modes */
	unsigned addr;       /* hostaddr (device number), mode address and fd */
	const char *port;    /* hostport, e.g. "10.2" (sysfs name after "BUS-"), mode port */
	const char *devnode; /* /dev/bus/usb/BBB/DDD, mode fd (opened O_RDWR by the backend) */
	unsigned vendor;     /* for backends that need it (libvirt) */
	unsigned product;
};

/* What to attach: an evdev node for QEMU's input-linux. */
struct backend_input_dev {
	const char *id;
	const char *evdev; /* path QEMU opens itself */
	bool grab_all;
	bool repeat;
	const char *grab_toggle; /* QEMU GrabToggleKeys name, NULL: QEMU's default */
};

enum backend_item_kind {
	BACKEND_ITEM_USB,
	BACKEND_ITEM_INPUT,
};

/* One object the backend has that vmplug owns (id starts with "vmplug-"). */
struct backend_item {
	enum backend_item_kind kind;
	char *id;
	/* USB; -1 / NULL when unknown or unset */
	int bus;
	int addr;
	char *port;
	bool attached; /* QEMU has the host device open */
	/* input */
	char *evdev;
};

struct backend_list {
	struct backend_item *items;
	size_t n;
};

/* Deep copy of src into dst (whose old contents are not freed). */
void backend_item_copy(struct backend_item *dst, const struct backend_item *src);
/* Free what the item owns and zero it. */
void backend_item_clear(struct backend_item *it);

void backend_list_free(struct backend_list *list);
/* A deep copy; NULL is copied as an empty list. */
struct backend_list *backend_list_copy(const struct backend_list *list);
/* Append a zeroed item (bus/addr -1) and return it. */
struct backend_item *backend_list_add(struct backend_list *list, enum backend_item_kind kind,
				      const char *id);

/* Completion of an attach or detach: err is 0 or a negative errno; msg
 * is the peer's own words when it refused (QEMU's "desc"), else NULL.
 * -ENOTCONN: the VM went away before the operation completed. */
typedef void (*backend_done_fn)(void *data, int err, const char *msg);
/* Completion of list(): on success err is 0 and list is valid for the
 * duration of the call (copy what you keep). */
typedef void (*backend_list_fn)(void *data, int err, const struct backend_list *list);

/* What a backend tells its owner, all on the loop. */
struct backend_events {
	/* The VM is reachable and commands can be sent. */
	void (*vm_up)(void *data);
	/* The VM is gone (QEMU exited, connection lost): nothing is attached
	 * any more. Pending operations have completed with -ENOTCONN first. */
	void (*vm_gone)(void *data, const char *reason);
	/* Optional: the VM is not up, and why (the daemon is not there, the
	 * domain is not running...), for the status; told when the reason
	 * changes, not at every retry. vm_up clears it. */
	void (*vm_down)(void *data, const char *why);
	/* A lifecycle event from the VM: "SHUTDOWN", "RESET", "STOP", "RESUME". */
	void (*vm_event)(void *data, const char *event);
	/* An object vmplug owns disappeared without a detach from vmplug
	 * (e.g. removed through another monitor). */
	void (*item_gone)(void *data, const char *id);
};

struct backend_ops {
	const char *name;
	/* Start reaching the VM (connect, watch for it to appear). NULL with
	 * errno set when the VM's config cannot work with this backend. The
	 * conf_vm is borrowed for the backend's life. */
	struct backend_vm *(*create)(struct loop *loop, const struct conf_vm *vm,
				     const struct backend_events *events, void *data);
	/* Stop: pending operations are cancelled without their callbacks. */
	void (*destroy)(struct backend_vm *b);
	bool (*is_up)(const struct backend_vm *b);
	/* Each returns 0 when the operation was started (done is then called
	 * exactly once, later, never from inside this call), or a negative
	 * errno and done is never called (-ENOTCONN: the VM is not up). */
	int (*usb_attach)(struct backend_vm *b, const struct backend_usb_dev *dev,
			  backend_done_fn done, void *data);
	int (*usb_detach)(struct backend_vm *b, const char *id, backend_done_fn done, void *data);
	int (*input_attach)(struct backend_vm *b, const struct backend_input_dev *dev,
			    backend_done_fn done, void *data);
	int (*input_detach)(struct backend_vm *b, const char *id, backend_done_fn done, void *data);
	/* What the VM has now that vmplug owns. */
	int (*list)(struct backend_vm *b, backend_list_fn done, void *data);
};

/* Every backend instance starts with this. */
struct backend_vm {
	const struct backend_ops *ops;
};

/* The backend called `name` ("qmp", "libvirt", "null"), NULL if unknown
 * or not built in. */
const struct backend_ops *backend_find(const char *name);
/* The backend a VM's config asks for, NULL if not built in. */
const struct backend_ops *backend_for_vm(const struct conf_vm *vm);

/* The one interface between vmplug's reconciler and a way of reaching a VM
 * (QMP to a standalone QEMU, libvirt; the null backend for tests). The
 * reconciler never knows which backend it talks to. This is the contract
 * every backend keeps (backends/base.c holds the part they share).
 *
 * Ids. The caller chooses every id, always starting with "vmplug-" (QEMU
 * id syntax: letters, digits, '-', '.', '_'; first a letter). A backend
 * only ever touches objects whose id has that prefix, so devices a user
 * added by hand are left alone. An id passed to a detach is free for reuse
 * once that detach has completed (for QMP: after DEVICE_DELETED).
 *
 * Operations. Each is asynchronous and runs on the daemon's loop. A call
 * returns 0 when the operation started: its callback is then called
 * exactly once, later, never from inside the call. Or it returns a
 * negative errno and the callback is never called: -ENOTCONN (the VM is
 * not up), -EINVAL (an id or device the backend refuses to send), or what
 * preparing failed with (fd mode opens the device node: -ENOENT, -EACCES,
 * ...).
 *
 * Completions. err is 0 or a negative errno; msg is NULL on success, and
 * on a refusal the peer's own words when it gave any (QEMU's "desc",
 * libvirt's message). Each failure is reported once: a backend never
 * tries an operation again by itself, the caller decides (the reconciler's
 * retry policy, reconcile/reconcile.h). What each err means:
 * - -ENOTCONN: the VM went away before the operation completed; the
 *   operation's effect is unknown, and vm_gone follows.
 * - -ENODEV (attach): the VM cannot find the host device. Right after a
 *   plug this is usually QEMU's libusb not having seen it yet, and the
 *   same attach may work a moment later.
 * - -EEXIST (attach): the VM has an object with that id already.
 * - -ETIMEDOUT: the peer did not answer in time (QMP: a command's 5 s,
 *   after which the connection is dropped, or no DEVICE_DELETED within
 *   5 s of a device_del; libvirt: no DEVICE_REMOVED within 10 s); a
 *   detach that timed out may still happen later (item_gone then says so).
 * - -EPROTO: the peer's answer made no sense (a QMP reply of the wrong
 *   shape, libvirt XML vmplug cannot read).
 * - -EIO: any other refusal.
 * A detach of an object the VM does not have completes with 0.
 *
 * Callbacks. Completions and events run on the loop. Inside any of them
 * the caller may start operations and may destroy the backend: its other
 * pending callbacks are then never called, and its memory goes when the
 * callback returns. Everything a callback is handed (msg, list, reason,
 * id) is borrowed for the call only; the caller's data is the caller's. */
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

/* What to attach: a usb-redir slot, QEMU listening on a socket for a
 * usbredir peer (a device exported from another host). */
struct backend_redir_dev {
	const char *id;   /* the device's and its chardev's */
	const char *host; /* numeric address, with port; NULL: path */
	unsigned port;
	const char *path; /* unix socket */
};

enum backend_item_kind {
	BACKEND_ITEM_USB,
	BACKEND_ITEM_INPUT,
	BACKEND_ITEM_REDIR,
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
	/* redir: where its chardev listens, as conf_usb_remote_address()
	 * writes it; NULL when the slot is incomplete (a chardev without its
	 * device or the other way round), which is replaced. `attached`: a
	 * peer is connected and its device is on the VM's bus; `connected`:
	 * a peer is connected to the socket. */
	char *address;
	bool connected;
};

struct backend_list {
	struct backend_item *items;
	size_t n;
};

/* The most objects of vmplug's a list takes from a VM: far above what a
 * real VM has (a few USB devices and inputs; one USB bus addresses 127),
 * low enough that a compromised QEMU listing as many as a message holds
 * costs little; the rest are ignored, and the backend says so once per
 * connection. */
#define BACKEND_LIST_MAX 256

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

/* Completion of an attach or detach (errors: see the top). */
typedef void (*backend_done_fn)(void *data, int err, const char *msg);
/* Completion of list(): on success err is 0 and list is valid for the
 * duration of the call (copy what you keep); on failure list is NULL. */
typedef void (*backend_list_fn)(void *data, int err, const struct backend_list *list);

/* What a backend tells its owner, all on the loop. */
struct backend_events {
	/* The VM is reachable and commands can be sent. */
	void (*vm_up)(void *data);
	/* The VM is gone (QEMU exited, connection lost): nothing is attached
	 * any more. Pending operations have completed with -ENOTCONN first,
	 * oldest first, and none is pending now. */
	void (*vm_gone)(void *data, const char *reason);
	/* Optional: the VM is not up, and why (the daemon is not there, the
	 * domain is not running...), for the status; told when the reason
	 * changes, not at every retry. vm_up clears it. */
	void (*vm_down)(void *data, const char *why);
	/* A lifecycle event from the VM: "SHUTDOWN", "RESET", "STOP", "RESUME". */
	void (*vm_event)(void *data, const char *event);
	/* An object vmplug owns disappeared without a detach from vmplug
	 * (e.g. removed through another monitor, or after its detach timed
	 * out). */
	void (*item_gone)(void *data, const char *id);
};

struct backend_ops {
	const char *name;
	/* Start reaching the VM (connect, watch for it to appear); vm_up
	 * comes from the loop once it is reachable. NULL with errno set when
	 * the VM's config cannot work with this backend (EINVAL) or a
	 * resource could not be had. The conf_vm, events and data are
	 * borrowed for the backend's life. */
	struct backend_vm *(*create)(struct loop *loop, const struct conf_vm *vm,
				     const struct backend_events *events, void *data);
	/* Stop: pending operations are cancelled without their callbacks,
	 * and no event comes any more. Safe from inside any callback. NULL
	 * is a no-op. */
	void (*destroy)(struct backend_vm *b);
	bool (*is_up)(const struct backend_vm *b);
	/* Between vm_up and vm_gone. */
	/* Attach the host device: done(0) once the VM has it (QMP: device_add
	 * answered; QEMU opens the device on its own time, list() says
	 * whether it did). */
	int (*usb_attach)(struct backend_vm *b, const struct backend_usb_dev *dev,
			  backend_done_fn done, void *data);
	/* Detach: done(0) once the VM no longer has it and the id is free. */
	int (*usb_detach)(struct backend_vm *b, const char *id, backend_done_fn done, void *data);
	/* An input-linux object on an evdev node; NULL for backends that
	 * cannot add one (libvirt). */
	int (*input_attach)(struct backend_vm *b, const struct backend_input_dev *dev,
			    backend_done_fn done, void *data);
	int (*input_detach)(struct backend_vm *b, const char *id, backend_done_fn done, void *data);
	/* A usb-redir slot: its socket chardev and the device on it; NULL for
	 * backends that cannot add one. The detach removes both, and
	 * completes with 0 when neither is there. */
	int (*redir_attach)(struct backend_vm *b, const struct backend_redir_dev *dev,
			    backend_done_fn done, void *data);
	int (*redir_detach)(struct backend_vm *b, const char *id, backend_done_fn done, void *data);
	/* What the VM has now that vmplug owns: every object with a
	 * "vmplug-" id, whoever attached it. */
	int (*list)(struct backend_vm *b, backend_list_fn done, void *data);
};

/* Every backend instance starts with this. */
struct backend_vm {
	const struct backend_ops *ops;
};

/* The backend called `name` ("qmp", "libvirt", "null"); NULL with errno
 * set if unknown or not built (ENOSYS) or if its module cannot be loaded
 * (ELIBACC: not installed; EPERM: a file others could have changed;
 * ELIBBAD: not a module of this vmplugd). A module backend (libvirt) is
 * loaded by the first call that names it, so a vmplugd with no such VM
 * never maps it or the libraries it needs. */
const struct backend_ops *backend_find(const char *name);
/* The backend a VM's config asks for, as backend_find(). */
const struct backend_ops *backend_for_vm(const struct conf_vm *vm);
/* Where modules are looked for: $VMPLUG_MODULE_DIR (a build tree's, for
 * its tests), else the installed $(pkglibdir). */
const char *backend_module_dir(void);

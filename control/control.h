/* The control socket: vmplugctl's and scripts' way into vmplugd (the
 * protocol is control/protocol.h, the commands man/vmplugctl.1).
 *
 * Control knows the daemon only through struct control_ops, given at
 * creation: snapshots of what the reconciler and the focus hold, and the
 * few things a client may ask for (reload, switch, attach or detach by
 * hand). The daemon pushes what clients wait for or subscribe to: the
 * reconciler's changes, focus switches and reloads as events, and newly
 * plugged devices for identify. */
#pragma once

#include <jansson.h>
#include <libudev.h>
#include <stdbool.h>

#include "conf/conf.h"
#include "control/protocol.h"
#include "loop/loop.h"
#include "usb/device.h"

struct control;

/* The daemon as `status` shows it. */
struct control_status {
	const char *config_dir;
	bool udevd;          /* device events come from udevd, else the kernel */
	bool switching;      /* some VM takes input */
	const char *focus;   /* where the keyboard and mouse go: "host" or a VM */
	bool input_released; /* a panic left the devices with the host */
};

/* A configured VM as the reconciler sees it. */
struct control_vm {
	const char *state; /* in words: down, connecting, running */
	bool ready;        /* running and reconciled: its items are what it has */
	bool up;           /* connected (listing or ready) */
	const char *last_error;
	/* Its backend cannot add input objects (libvirt): the VM's own
	 * definition holds its sinks, and status names the ones it lacks. */
	bool inputs_by_hand;
};

/* An object vmplug attached, or is attaching, to a VM: a USB device or an
 * input sink. */
struct control_item {
	const char *id;
	const char *state; /* in words: attaching, attached, detaching, retrying, failed */
	bool busy;         /* attaching or detaching */
	bool attached;
	bool failed; /* no more tries */
	bool input;
	bool remote;                  /* a [usb-remote] slot */
	const char *listen;           /* remote: where QEMU listens */
	unsigned bus, devnum;         /* USB */
	const struct usb_device *dev; /* the host device, NULL if not present */
	const char *error;            /* the last one, NULL if none */
	unsigned failures;
};

/* A present host USB device and where it goes. */
struct control_device {
	const struct usb_device *dev;
	const struct conf_vm *owner;      /* who gets it (overrides applied), NULL: nobody */
	const struct conf_usb_rule *rule; /* the owner's claiming rule, NULL if none */
	enum conf_attach_mode mode;
	const char *override; /* "attach", "detach" (by hand, for override_vm) or NULL */
	const char *override_vm;
};

typedef void (*control_item_fn)(void *ctx, const struct control_item *item);
typedef void (*control_device_fn)(void *ctx, const struct control_device *dev);

/* What control may see and do of the daemon. Every pointer a snapshot
 * hands out is borrowed until control returns to the loop. */
struct control_ops {
	/* The running configuration. */
	const struct conf *(*conf)(void *data);
	void (*status)(void *data, struct control_status *out);
	/* The configured VM vm. */
	void (*vm)(void *data, const char *vm, struct control_vm *out);
	/* Visit the items of VM vm. */
	void (*vm_items)(void *data, const char *vm, control_item_fn fn, void *ctx);
	/* Visit every present host USB device. */
	void (*devices)(void *data, control_device_fn fn, void *ctx);
	/* The id a device attached by address has (matched against the
	 * events while an attach waits for a device held elsewhere); a new
	 * string. */
	char *(*usb_id)(void *data, const struct usb_device *dev);
	/* Give dev to vm (attach) or keep it from vm, whatever the rules
	 * say, until it leaves or the configuration is reloaded. 0, or
	 * -EINVAL for a hub. */
	int (*override)(void *data, const struct usb_device *dev, const char *vm, bool attach);
	/* Re-read the configuration: 0, or -EINVAL with *errors (the
	 * running configuration is kept). */
	int (*reload)(void *data, char ***errors);
	/* Move the focus to target (a VM, "host" or "next"): 0, or -errno
	 * with *why a message for the user (a new string); -ENOENT: no such
	 * VM. */
	int (*focus_switch)(void *data, const char *target, char **why);
	/* Remember an answer about dev from now on: vm gets it (NULL: it
	 * stays on the host) whenever it is plugged in. The state file is
	 * written, then the configuration re-read. 0 and *id; or -errno and
	 * *why (a new string). */
	int (*remember)(void *data, const struct usb_device *dev, const char *vm,
			const char *description, unsigned *id, char **why);
	/* Forget remembered answer id: 0; -ENOENT (none such) or -errno, and *why. */
	int (*forget)(void *data, unsigned id, char **why);
};

/* Listen on path (its directory is created), mode 0660, group `group`
 * (NULL: root only); ops and data are borrowed for control's life. NULL
 * with errno set on failure; EADDRINUSE when another vmplugd answers on
 * it. */
struct control *control_new(struct loop *loop, const char *path, const char *group,
			    const struct control_ops *ops, void *data);
/* Closes every client and removes the socket. NULL is a no-op. */
void control_free(struct control *c);

/* Send an event (CONTROL_EVENT_*) to every subscribed client; takes data
 * (may be NULL). c may be NULL. */
void control_emit(struct control *c, const char *event, json_t *data);

/* What the reconciler reports. */
enum control_change {
	CONTROL_VM_UP,
	CONTROL_VM_GONE, /* msg: why */
	CONTROL_USB_ATTACHED,
	CONTROL_USB_DETACHED,
	CONTROL_USB_FAILED, /* msg; retried unless final */
	CONTROL_INPUT_ATTACHED,
	CONTROL_INPUT_DETACHED,
	CONTROL_INPUT_FAILED, /* msg; retried unless final */
	CONTROL_REMOTE_ADDED,
	CONTROL_REMOTE_REMOVED,
	CONTROL_REMOTE_FAILED, /* msg; retried unless final */
};

struct control_event {
	enum control_change change;
	const char *vm;
	const char *id;               /* USB and input changes */
	const struct usb_device *dev; /* USB changes, NULL if no longer present */
	const char *msg;
	bool final;
};

/* A change the reconciler reported: the attach and detach requests that
 * waited for it are answered, and subscribers get it as an event. c may
 * be NULL. */
void control_reconciled(struct control *c, const struct control_event *ev);

/* Plug-time questions (control/unclaimed.c). dev, which no VM's rule
 * claims or denies, was just plugged in while a VM runs: subscribers get
 * USB_UNCLAIMED, and the first `answer` decides. c may be NULL. */
void control_unclaimed(struct control *c, const struct usb_device *dev);
/* The device at syspath left: its open question is closed
 * ("unplugged"). c may be NULL. */
void control_unclaimed_gone(struct control *c, const char *syspath);

/* identify (control/identify.c). A USB device was just plugged in (not
 * found by a scan of what was present): answer the clients waiting in
 * identify, after a moment for the input node of a keyboard or a mouse.
 * c may be NULL. */
void control_identify_usb(struct control *c, const struct usb_device *dev);
/* An input device was just plugged in ("add", not from a scan), borrowed
 * for the call: its event node (not vmplug's own sinks) answers identify,
 * or completes the answer of its USB device. c may be NULL. */
void control_identify_input(struct control *c, struct udev_device *dev);

/* The input manager: every configured source and its sinks, one sink per
 * (source, VM that lists the source in `inputs =`). The daemon creates it
 * at start-up, before any VM is started, so each VM's sinks exist (from
 * the capability cache, or a generic fallback) whether or not the
 * physical device is plugged in; feeds it the udev watcher's input
 * events; hands it each new configuration; and asks it which sinks a VM
 * gets (for QMP `object-add input-linux`) and how things stand (status).
 *
 * When some VM takes input, every source also gets a sink for the host,
 * vmplug-host-SOURCE (vm INPUT_ROUTER_HOST below), which the desktop sees.
 *
 * The manager owns the router (input/router.h) and its timer on the loop:
 * a source's frame goes to the router and on to the sinks it names, all
 * by number (names are resolved when a configuration is applied), and
 * the router's grab requests come back to the sources. What leaves the
 * manager is the focus hook; what comes in are the VMs' comings and
 * goings and the switch command. */
#pragma once

#include <libudev.h>
#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "input/router.h"
#include "loop/loop.h"

struct input_manager;

struct input_manager_hooks {
	/* The focus moved (a hotkey, input_manager_switch, a VM going down,
	 * a reload, a panic): VM names or INPUT_ROUTER_HOST. */
	void (*focus)(void *data, const char *from, const char *to);
	/* A sink of vm appeared, was replaced or went away (created late,
	 * reload, grab-all, repeat or the VM's grab toggle changed): its QEMU
	 * input-linux objects need adding again. May come more than once for
	 * one change. */
	void (*vm_sinks_changed)(void *data, const char *vm);
};

/* Create every sink of conf (re-adopting those the fd store kept) and a
 * source per [input]. Sinks that cannot be made (no /dev/uinput) are
 * logged and shown in the status; the manager works without them. conf
 * is only read during the call. hooks may be NULL. */
struct input_manager *input_manager_new(struct loop *loop, const struct conf *conf,
					const struct input_manager_hooks *hooks, void *data);
/* Release every key held on every sink, close the sources and free. The
 * sinks handed to the fd store stay alive there (for the next vmplugd);
 * the others are destroyed. NULL is a no-op. */
void input_manager_free(struct input_manager *m);

/* A udev event of the input subsystem (the watcher's `input` hook). A
 * new VM sink is offered to QEMU (input_manager_vm_sinks) by its link
 * /dev/input/by-id/vmplug-VM-SOURCE: it is held back until its link
 * leads to it or udev reports it, at most a few seconds (then by its
 * node, logged); vm_sinks_changed follows. */
void input_manager_udev(struct input_manager *m, const char *action, struct udev_device *dev);
/* Whether udevd runs (the watcher knows). Without it nothing makes the
 * links: sinks held back for them are offered at once, and new ones are
 * not held back. */
void input_manager_udevd(struct input_manager *m, bool running);

/* A new configuration (reload). Sources and sinks no longer configured
 * are removed (keys released first), new ones created; unchanged ones,
 * and so every node QEMU holds, stay; then the router takes it (see
 * input_router_set_conf). conf is only read during the call. */
void input_manager_set_conf(struct input_manager *m, const struct conf *conf);

/* The reconciler's word that vm is up or gone (see input_router_vm_up). */
void input_manager_vm_up(struct input_manager *m, const char *vm);
void input_manager_vm_down(struct input_manager *m, const char *vm);
/* vmplugctl switch: target is a VM, INPUT_ROUTER_HOST or "next". 0 or
 * -errno as input_router_switch(). */
int input_manager_switch(struct input_manager *m, const char *target);
/* Where the focus is: a VM name or INPUT_ROUTER_HOST. */
const char *input_manager_focus(const struct input_manager *m);
/* Some VM takes input: there is something to switch between. */
bool input_manager_switching(const struct input_manager *m);
/* A panic gave the devices back to the host and nothing took them since. */
bool input_manager_released(const struct input_manager *m);

/* Grab every source (the default) or leave them all to the host (the
 * router's panic); sources opened later follow. See input_source_set_grab(). */
void input_manager_set_grab(struct input_manager *m, bool grab);
/* Whether source is grabbed now (false: unknown or not open). */
bool input_manager_grabbed(struct input_manager *m, const char *source);

/* What QEMU's input-linux needs for each sink of a VM. */
struct input_vm_sink {
	char *id;     /* the QOM id: vmplug-in-SOURCE */
	char *source; /* the [input] name */
	char *evdev;  /* /dev/input/by-id/vmplug-VM-SOURCE if it exists, else the devnode */
	bool grab_all;
	bool repeat;
	const char *grab_toggle; /* the VM's (conf_vm), static */
	bool adopted;            /* the node outlived the previous vmplugd (fd store) */
};

/* Once vm's QEMU objects are all added: a sink of vm that nobody holds
 * grabbed was let go by QEMU (its input-linux grab toggle, typed some way
 * the router did not see), so the VM gets no keys. Such a sink is logged
 * (once until QEMU holds it again) and vm_sinks_changed asks for vm's
 * objects again, which grab it anew. The number of such sinks. */
size_t input_manager_check_held(struct input_manager *m, const char *vm);

/* The sinks of vm that exist and are not held back for udev, in the
 * order of its `inputs =`: the count,
 * and a new array in *out (NULL when 0; free with input_vm_sinks_free). */
size_t input_manager_vm_sinks(struct input_manager *m, const char *vm, struct input_vm_sink **out);
void input_vm_sinks_free(struct input_vm_sink *s, size_t n);

enum input_caps_origin {
	INPUT_CAPS_CACHE,             /* the cache file */
	INPUT_CAPS_FALLBACK_KEYBOARD, /* no cache, no device: generic keyboard */
	INPUT_CAPS_FALLBACK_MOUSE,    /* no cache, no device: generic mouse */
	INPUT_CAPS_DEVICE,            /* the device, opened in this run */
};
const char *input_caps_origin_name(enum input_caps_origin origin);

struct input_source_status {
	const char *name;
	const char *device;  /* configured path */
	const char *devnode; /* NULL when absent */
	const char *state;   /* input_source_state_name() */
	bool present;
	bool grabbed;
	enum input_caps_origin caps;
	size_t keys_held;
};

struct input_sink_status {
	const char *vm;
	const char *source;
	const char *name;    /* vmplug-VM-SOURCE */
	const char *devnode; /* NULL if not created */
	const char *error;   /* why it could not be created, or NULL */
	bool adopted;        /* taken back from the fd store */
	bool stored;         /* its fd is in the fd store */
	size_t keys_held;
};

/* Snapshots for `vmplugctl status`: a new array (free() it) whose strings
 * stay valid until the next call into the manager. */
size_t input_manager_sources(struct input_manager *m, struct input_source_status **out);
size_t input_manager_sinks(struct input_manager *m, struct input_sink_status **out);

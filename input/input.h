/* The input manager: every configured source and its sinks, one sink per
 * (source, VM that lists the source in `inputs =`). The daemon creates it
 * at start-up, before any VM is started, so each VM's sinks exist (from
 * the capability cache, or a generic fallback) whether or not the
 * physical device is plugged in; feeds it the udev watcher's input
 * events; hands it each new configuration; and asks it which sinks a VM
 * gets (for QMP `object-add input-linux`) and how things stand (status).
 *
 * When some VM takes input, every source also gets a sink for the host,
 * vmplug-host-SOURCE (vm INPUT_ROUTER_HOST below), which the desktop sees:
 * the router (input/router.h) switches between it and the VMs' sinks.
 *
 * Frames from a source go to hooks->frame when set (the router), else to
 * input_manager_forward(). */
#pragma once

#include <libudev.h>
#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"
#include "loop/loop.h"

struct input_manager;

struct input_manager_hooks {
	/* A complete frame from source (borrowed for the call). NULL: the
	 * manager forwards it itself (input_manager_forward). */
	void (*frame)(void *data, struct input_manager *m, const char *source,
		      const struct input_event *ev, size_t n);
	/* A sink of vm appeared, was replaced or went away (created late,
	 * reload, grab-all or repeat changed): its QEMU input-linux objects
	 * need adding again. May come more than once for one change. */
	void (*vm_sinks_changed)(void *data, const char *vm);
	/* source went away; its sinks release what they hold right after. */
	void (*source_closed)(void *data, struct input_manager *m, const char *source);
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

/* A udev event of the input subsystem (the watcher's `input` hook). */
void input_manager_udev(struct input_manager *m, const char *action, struct udev_device *dev);

/* A new configuration (reload). Sources and sinks no longer configured
 * are removed (keys released first), new ones created; unchanged ones,
 * and so every node QEMU holds, stay. conf is only read during the call. */
void input_manager_set_conf(struct input_manager *m, const struct conf *conf);

/* What happens to a frame until the router exists: it goes to the sink
 * of the first VM (in file-name order) that lists the source. 0 or
 * -errno (-ENOENT: unknown source or no sink). */
int input_manager_forward(struct input_manager *m, const char *source, const struct input_event *ev,
			  size_t n);
/* Grab every source (the default) or leave them all to the host (the
 * router's panic); sources opened later follow. See input_source_set_grab(). */
void input_manager_set_grab(struct input_manager *m, bool grab);
/* Whether source is grabbed now (false: unknown or not open). */
bool input_manager_grabbed(struct input_manager *m, const char *source);
/* Write a frame to the sink of (source, vm), vm INPUT_ROUTER_HOST for the
 * host's. 0 or -errno (-ENOENT: no such sink, or it could not be created). */
int input_manager_sink_write(struct input_manager *m, const char *source, const char *vm,
			     const struct input_event *ev, size_t n);

/* What QEMU's input-linux needs for each sink of a VM. */
struct input_vm_sink {
	char *id;     /* the QOM id: vmplug-in-SOURCE */
	char *source; /* the [input] name */
	char *evdev;  /* /dev/input/by-id/vmplug-VM-SOURCE if it exists, else the devnode */
	bool grab_all;
	bool repeat;
	bool adopted; /* the node outlived the previous vmplugd (fd store) */
};

/* The sinks of vm that exist, in the order of its `inputs =`: the count,
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

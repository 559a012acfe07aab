/* The keyboard-and-mouse focus in the daemon: the input router
 * (input/router.h) on the loop, fed the input manager's frames and
 * vanished sources and the reconciler's VM events, writing to the input
 * manager's sinks; and every switch announced: the control event
 * INPUT_FOCUS {from, to}, the on-switch hook (daemon/hook.h) and the
 * D-Bus signal (daemon/bus.h). */
#pragma once

#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

struct daemon;
struct focus;
struct input_manager;
struct reconcile_event;

/* The router for d->conf; d->input and d->control are used when there
 * is something to write or announce (either may come later). */
struct focus *focus_new(struct daemon *d);
/* Kills an on-switch program still running. NULL is a no-op. */
void focus_free(struct focus *f);

/* A new configuration, after the input manager took it. */
void focus_set_conf(struct focus *f, const struct conf *conf);
/* The input manager's frame and source_closed hooks. */
void focus_frame(struct focus *f, struct input_manager *m, const char *source,
		 const struct input_event *ev, size_t n);
void focus_source_closed(struct focus *f, const char *source);
/* The reconciler's events: VMs up and gone (f may be NULL). */
void focus_reconcile_event(struct focus *f, const struct reconcile_event *ev);

/* vmplugctl switch: target is a VM, "host" or "next". 0, or -errno (see
 * input_router_switch) with *why a message for the user (free it). This
 * and the three below take f NULL (not made yet) too. */
int focus_switch(struct focus *f, const char *target, char **why);
/* The target with the focus ("host" or a VM). */
const char *focus_target(const struct focus *f);
/* Some VM takes input (else there is nothing to switch). */
bool focus_switching(const struct focus *f);
/* A panic left the devices with the host. */
bool focus_released(const struct focus *f);

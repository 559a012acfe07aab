/* The keyboard-and-mouse focus as the daemon shows it. The input manager
 * (input/input.h) routes the frames and switches; this announces each
 * switch it reports: the control event INPUT_FOCUS {from, to}, the
 * on-switch hook (daemon/hook.h) and the D-Bus signal (daemon/bus.h); and
 * puts vmplugctl switch's refusals into words. */
#pragma once

#include <stdbool.h>

#include "conf/conf.h"

struct daemon;
struct focus;

/* Announcements for d->conf; d->input and d->control are used when there
 * is something to switch or announce (either may come later). */
struct focus *focus_new(struct daemon *d);
/* Kills an on-switch program still running. NULL is a no-op. */
void focus_free(struct focus *f);

/* A new configuration, after the input manager took it. */
void focus_set_conf(struct focus *f, const struct conf *conf);
/* The input manager's focus hook: announce the switch (f may be NULL). */
void focus_switched(struct focus *f, const char *from, const char *to);

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

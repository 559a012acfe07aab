/* The control socket wired to the daemon: what control may see and do
 * (struct control_ops over the reconciler, the focus and reload), and the
 * reconciler's events told in control's terms. */
#pragma once

#include "control/control.h"
#include "reconcile/reconcile.h"

struct daemon;

/* The ops control_new() takes, with the daemon as their data. */
extern const struct control_ops daemon_control_ops;

/* A reconciler event for control_reconciled(); c may be NULL. */
void daemon_control_reconciled(struct control *c, const struct reconcile_event *ev);

/* The reconciler on a loop, wired the way vmplugd wires it: each VM's
 * backend as its config names it, CLOCK_MONOTONIC, one timer for the
 * reconciler's deadline, flapping ports debounced. For the tests that run
 * it against real QEMUs. */
#pragma once

#include "loop/loop.h"
#include "reconcile/reconcile.h"

struct rcloop {
	struct reconcile *rc;
	struct loop *loop;
	struct loop_timer *timer;
	/* what the reconciler says, passed on with `data` (may be NULL) */
	void (*notify)(void *data, const struct reconcile_event *ev);
	void *data;
};

/* conf is borrowed for the reconciler's life. */
struct rcloop *rcloop_new(struct loop *loop, const struct conf *conf,
			  void (*notify)(void *data, const struct reconcile_event *ev), void *data);
/* NULL is a no-op. */
void rcloop_free(struct rcloop *r);

/* What every backend implementation shares (the backends' users see only
 * backend.h): the operations a caller waits for, completed once each,
 * failed together when the VM goes, dropped without a call when the
 * backend is destroyed; and the guard that lets a caller's callback
 * destroy the backend (its memory goes when the outermost entry from the
 * loop returns). */
#pragma once

#include "backends/backend.h"
#include "util/guard.h"
#include "util/list.h"

/* One operation a caller waits for; a backend's own op embeds it. */
struct backend_op {
	struct list link;          /* in backend_base.ops */
	backend_done_fn done;      /* attach, detach; NULL: nobody waits */
	backend_list_fn list_done; /* list */
	void *data;
};

/* A backend instance's struct starts with this (its memory is released
 * with free() on it). */
struct backend_base {
	struct backend_vm vm; /* what callers hold */
	const struct backend_events *events;
	void *data;
	struct list ops; /* pending, oldest first */
	struct guard guard;
	/* Frees one of the backend's ops, once it is off the list. */
	void (*op_free)(struct backend_op *op);
};

void backend_base_init(struct backend_base *b, const struct backend_ops *ops,
		       const struct backend_events *events, void *data,
		       void (*op_free)(struct backend_op *op));

/* op (zeroed, embedded in the backend's own) is pending from now on. */
void backend_op_add(struct backend_base *b, struct backend_op *op, backend_done_fn done,
		    backend_list_fn list_done, void *data);
/* Complete op: off the list, its callback (done(err, msg), msg only with
 * an error; or list_done(err, list), list only without one), then freed.
 * The callback may destroy the backend or start other operations. */
void backend_op_finish(struct backend_base *b, struct backend_op *op, int err, const char *msg,
		       const struct backend_list *list);
/* Free op without calling anybody. */
void backend_op_drop(struct backend_base *b, struct backend_op *op);

/* The VM went away: every pending op completes with -ENOTCONN, oldest
 * first. False when a callback destroyed the backend (stop there). */
bool backend_base_fail_all(struct backend_base *b);

/* Around every entry from the loop or a thread's result: enter, and
 * leave as the last thing (after it, the backend may be gone). */
void backend_base_enter(struct backend_base *b);
void backend_base_leave(struct backend_base *b);
/* Destroyed: nothing may start any more (checked after callbacks). */
bool backend_base_dead(const struct backend_base *b);
/* The backend is destroyed (its own resources released by the caller):
 * pending ops are dropped without their callbacks, and the memory goes
 * now or when the outermost entry leaves. */
void backend_base_destroy(struct backend_base *b);

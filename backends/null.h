/* The null backend: a VM that exists only in memory, driven by tests.
 * It records every operation and completes each one when the test says
 * so, so reconciler tests control ordering, failures and VM life cycle. */
#pragma once

#include "backends/backend.h"

enum backend_null_op {
	BACKEND_NULL_USB_ATTACH,
	BACKEND_NULL_USB_DETACH,
	BACKEND_NULL_INPUT_ATTACH,
	BACKEND_NULL_INPUT_DETACH,
	BACKEND_NULL_LIST,
};

extern const struct backend_ops backend_null_ops;

/* The null backend instance behind b (which must come from the null ops). */
struct backend_null;
struct backend_null *backend_null_from(struct backend_vm *b);
/* The most recently created null backend (tests create them through the
 * reconciler and need a handle). NULL if none or destroyed. */
struct backend_null *backend_null_last(void);
/* Find the instance created for VM `name`. */
struct backend_null *backend_null_find(const char *name);

/* Bring the VM up or take it away (pending operations get -ENOTCONN
 * and the attached objects are forgotten, like a QEMU that exited). */
void backend_null_set_up(struct backend_null *n, bool up, const char *reason);
/* Operations started and not yet completed. */
size_t backend_null_pending(const struct backend_null *n);
/* The kind and id of pending operation i (0 = oldest). */
enum backend_null_op backend_null_pending_op(const struct backend_null *n, size_t i,
					     const char **id);
/* Complete the oldest pending operation with err (0: success, changing
 * the VM's objects accordingly). Returns false if nothing was pending. */
bool backend_null_complete(struct backend_null *n, int err, const char *msg);
/* Complete everything pending with success, including operations that
 * completions start; returns how many. */
size_t backend_null_complete_all(struct backend_null *n);
/* The objects the VM has now. */
const struct backend_list *backend_null_items(const struct backend_null *n);
/* Add or remove an object behind vmplug's back (remove reports item_gone). */
void backend_null_add_item(struct backend_null *n, const struct backend_item *item);
void backend_null_remove_item(struct backend_null *n, const char *id);
/* The next operation started is refused at once with err (its callback
 * never comes), as a backend that cannot send the command does. */
void backend_null_refuse_next(struct backend_null *n, int err);
/* Counters over the backend's life. */
unsigned backend_null_count(const struct backend_null *n, enum backend_null_op op);

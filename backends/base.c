/* The part every backend instance shares: pending operations and the
 * guard (see base.h). */
#include "config.h"

#include "backends/base.h"

#include <errno.h>
#include <stdlib.h>

void backend_base_init(struct backend_base *b, const struct backend_ops *ops,
		       const struct backend_events *events, void *data,
		       void (*op_free)(struct backend_op *op))
{
	b->vm.ops = ops;
	b->events = events;
	b->data = data;
	b->op_free = op_free;
	list_init(&b->ops);
}

void backend_op_add(struct backend_base *b, struct backend_op *op, backend_done_fn done,
		    backend_list_fn list_done, void *data)
{
	op->done = done;
	op->list_done = list_done;
	op->data = data;
	list_insert_tail(&b->ops, &op->link);
}

void backend_op_finish(struct backend_base *b, struct backend_op *op, int err, const char *msg,
		       const struct backend_list *list)
{
	/* Off the list first: a destroy from the callback must not free
	 * it a second time. */
	list_remove(&op->link);
	if (op->list_done)
		op->list_done(op->data, err, err ? NULL : list);
	else if (op->done)
		op->done(op->data, err, err ? msg : NULL);
	b->op_free(op);
}

void backend_op_drop(struct backend_base *b, struct backend_op *op)
{
	list_remove(&op->link);
	b->op_free(op);
}

bool backend_base_fail_all(struct backend_base *b)
{
	while (!list_empty(&b->ops) && !b->guard.dead)
		backend_op_finish(b, container_of(b->ops.next, struct backend_op, link), -ENOTCONN,
				  NULL, NULL);
	return !b->guard.dead;
}

void backend_base_enter(struct backend_base *b)
{
	guard_enter(&b->guard);
}

void backend_base_leave(struct backend_base *b)
{
	if (guard_leave(&b->guard))
		free(b);
}

bool backend_base_dead(const struct backend_base *b)
{
	return b->guard.dead;
}

void backend_base_destroy(struct backend_base *b)
{
	while (!list_empty(&b->ops))
		backend_op_drop(b, container_of(b->ops.next, struct backend_op, link));
	if (guard_kill(&b->guard))
		free(b);
}

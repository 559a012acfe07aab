/* The reconciler on a loop, for tests (see rcloop.h). */
#include "config.h"

#include "tests/lib/rcloop.h"

#include <errno.h>
#include <stdlib.h>

#include "util/util.h"

/* The backend each VM's config names, on the test's loop. */
static struct backend_vm *create_backend(void *data, const struct conf_vm *vm,
					 const struct backend_events *ev, void *evdata)
{
	struct rcloop *r = data;
	const struct backend_ops *ops = backend_for_vm(vm);

	if (!ops) {
		errno = ENOSYS;
		return NULL;
	}
	return ops->create(r->loop, vm, ev, evdata);
}

/* The machine's clock, as vmplugd gives it. */
static uint64_t clock_now(void *data)
{
	return now_usec();
}

/* One timer for the reconciler's deadline. */
static void schedule(void *data, uint64_t deadline)
{
	struct rcloop *r = data;

	if (deadline)
		loop_timer_arm(r->timer, deadline);
	else
		loop_timer_disarm(r->timer);
}

/* The deadline came: run what is due. */
static void on_timer(struct loop_timer *t, void *data)
{
	struct rcloop *r = data;

	reconcile_tick(r->rc);
}

/* Pass on what the reconciler says. */
static void notify(void *data, const struct reconcile_event *ev)
{
	struct rcloop *r = data;

	if (r->notify)
		r->notify(r->data, ev);
}

struct rcloop *rcloop_new(struct loop *loop, const struct conf *conf,
			  void (*fn)(void *data, const struct reconcile_event *ev), void *data)
{
	static const struct reconcile_hooks hooks = {
		.create_backend = create_backend,
		.now = clock_now,
		.schedule = schedule,
		.notify = notify,
		.debounce = true,
	};
	struct rcloop *r = xnew(struct rcloop);

	r->loop = loop;
	r->notify = fn;
	r->data = data;
	r->timer = loop_timer_new(loop, on_timer, r);
	r->rc = reconcile_new(conf, &hooks, r);
	return r;
}

void rcloop_free(struct rcloop *r)
{
	if (!r)
		return;
	reconcile_free(r->rc);
	loop_timer_free(r->timer);
	free(r);
}

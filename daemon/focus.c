/* The input router on the daemon's loop, and switches announced (see focus.h). */
#include "config.h"

#include "daemon/focus.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "daemon/bus.h"
#include "daemon/daemon.h"
#include "daemon/hook.h"
#include "input/router.h"
#include "util/log.h"
#include "util/util.h"

struct focus {
	struct daemon *d;
	struct input_router *r;
	struct loop_timer *timer;
	struct hook *hook;
	struct bus *bus; /* made once some VM takes input */
};

static void on_write(void *data, const char *source, const char *target,
		     const struct input_event *ev, size_t n)
{
	struct focus *f = data;

	/* Errors are logged by the manager; a missing sink is no error. */
	if (f->d->input)
		input_manager_sink_write(f->d->input, source, target, ev, n);
}

static void on_focus(void *data, const char *from, const char *to)
{
	struct focus *f = data;

	control_emit(f->d->control, CONTROL_EVENT_INPUT_FOCUS,
		     json_pack("{s:s,s:s}", "from", from, "to", to));
	hook_switched(f->hook, from, to, !streq(to, INPUT_ROUTER_HOST));
	if (f->bus)
		bus_switched(f->bus, from, to);
}

static void on_grab(void *data, bool grab)
{
	struct focus *f = data;

	if (f->d->input)
		input_manager_set_grab(f->d->input, grab);
}

static const struct input_router_hooks router_hooks = {
	.write = on_write,
	.focus = on_focus,
	.grab = on_grab,
};

/* After every call into the router: its next deadline on the timer. */
static void schedule(struct focus *f, uint64_t deadline)
{
	if (deadline)
		loop_timer_arm(f->timer, deadline);
	else
		loop_timer_disarm(f->timer);
}

static void on_timer(struct loop_timer *t, void *data)
{
	struct focus *f = data;

	schedule(f, input_router_tick(f->r, now_usec()));
}

static void apply_conf(struct focus *f, const struct conf *conf)
{
	hook_set(f->hook, conf->sw.on_switch, conf->sw.on_switch_timeout * USEC_PER_SEC);
	if (!f->bus && input_router_switching(f->r))
		f->bus = bus_new(f->d->loop);
}

struct focus *focus_new(struct daemon *d)
{
	struct focus *f = xnew(struct focus);

	f->d = d;
	f->timer = loop_timer_new(d->loop, on_timer, f);
	f->hook = hook_new(d->loop);
	f->r = input_router_new(d->conf, &router_hooks, f);
	apply_conf(f, d->conf);
	return f;
}

void focus_free(struct focus *f)
{
	if (!f)
		return;
	input_router_free(f->r);
	hook_free(f->hook);
	bus_free(f->bus);
	loop_timer_free(f->timer);
	free(f);
}

void focus_set_conf(struct focus *f, const struct conf *conf)
{
	schedule(f, input_router_set_conf(f->r, conf, now_usec()));
	apply_conf(f, conf);
}

void focus_frame(struct focus *f, struct input_manager *m, const char *source,
		 const struct input_event *ev, size_t n)
{
	bool grabbed = input_manager_grabbed(m, source);

	schedule(f, input_router_frame(f->r, source, grabbed, ev, n, now_usec()));
}

void focus_source_closed(struct focus *f, const char *source)
{
	schedule(f, input_router_source_gone(f->r, source, now_usec()));
}

void focus_reconcile_event(struct focus *f, const struct reconcile_event *ev)
{
	if (!f)
		return;
	if (ev->type == RECONCILE_VM_UP)
		schedule(f, input_router_vm_up(f->r, ev->vm, now_usec()));
	else if (ev->type == RECONCILE_VM_GONE)
		schedule(f, input_router_vm_down(f->r, ev->vm, now_usec()));
}

int focus_switch(struct focus *f, const char *target, char **why)
{
	int r;

	if (!f) {
		*why = xstrdup("vmplugd is starting");
		return -EAGAIN;
	}
	r = input_router_switch(f->r, target, now_usec());

	schedule(f, input_router_next_deadline(f->r));
	if (r == -ENOENT)
		*why = xasprintf("no VM named '%s' (see: vmplugctl status)", target);
	else if (r == -ENXIO)
		*why = xasprintf("vm %s takes no input: give it inputs = in its file", target);
	else if (r == -EHOSTDOWN && streq(target, "next"))
		*why = xstrdup("no VM that takes input is running");
	else if (r == -EHOSTDOWN)
		*why = xasprintf("vm %s is not running", target);
	else if (r < 0)
		*why = xstrdup(strerror(-r));
	return r;
}

const char *focus_target(const struct focus *f)
{
	return f ? input_router_focus(f->r) : INPUT_ROUTER_HOST;
}

bool focus_switching(const struct focus *f)
{
	return f && input_router_switching(f->r);
}

bool focus_released(const struct focus *f)
{
	return f && input_router_released(f->r);
}

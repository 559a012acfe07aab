/* Switches of the input focus announced, and the switch command's words (see focus.h). */
#include "config.h"

#include "daemon/focus.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

#include "daemon/bus.h"
#include "daemon/daemon.h"
#include "daemon/hook.h"
#include "input/input.h"
#include "util/log.h"
#include "util/util.h"

struct focus {
	struct daemon *d;
	struct hook *hook;
	struct bus *bus; /* made once some VM takes input */
};

/* The on-switch program, and the bus once there is something to switch. */
static void apply_conf(struct focus *f, const struct conf *conf)
{
	hook_set(f->hook, conf->sw.on_switch, conf->sw.on_switch_timeout * USEC_PER_SEC);
	if (!f->bus && f->d->input && input_manager_switching(f->d->input))
		f->bus = bus_new(f->d->loop);
}

struct focus *focus_new(struct daemon *d)
{
	struct focus *f = xnew(struct focus);

	f->d = d;
	f->hook = hook_new(d->loop);
	apply_conf(f, d->conf);
	return f;
}

void focus_free(struct focus *f)
{
	if (!f)
		return;
	hook_free(f->hook);
	bus_free(f->bus);
	free(f);
}

void focus_set_conf(struct focus *f, const struct conf *conf)
{
	apply_conf(f, conf);
}

void focus_switched(struct focus *f, const char *from, const char *to)
{
	if (!f)
		return;
	control_emit(f->d->control, CONTROL_EVENT_INPUT_FOCUS,
		     json_pack("{s:s,s:s}", "from", from, "to", to));
	hook_switched(f->hook, from, to, !streq(to, INPUT_ROUTER_HOST));
	if (f->bus)
		bus_switched(f->bus, from, to);
}

int focus_switch(struct focus *f, const char *target, char **why)
{
	int r;

	if (!f || !f->d->input) {
		*why = xstrdup("vmplugd is starting");
		return -EAGAIN;
	}
	r = input_manager_switch(f->d->input, target);
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
	return f && f->d->input ? input_manager_focus(f->d->input) : INPUT_ROUTER_HOST;
}

bool focus_switching(const struct focus *f)
{
	return f && f->d->input && input_manager_switching(f->d->input);
}

bool focus_released(const struct focus *f)
{
	return f && f->d->input && input_manager_released(f->d->input);
}

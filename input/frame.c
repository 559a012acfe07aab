/* Frames and key state for sources and sinks (see frame.h). */
#include "config.h"

#include "input/frame.h"

#include <libevdev/libevdev.h>
#include <stdlib.h>

#include "util/util.h"

#define LONG_BITS (8 * sizeof(unsigned long))

/* Track one key's state in the bitmap, code down or up. */
static void set_bit(struct input_keys *k, unsigned code, bool on)
{
	unsigned long mask = 1UL << (code % LONG_BITS);

	if (on)
		k->bits[code / LONG_BITS] |= mask;
	else
		k->bits[code / LONG_BITS] &= ~mask;
}

void input_keys_update(struct input_keys *keys, const struct input_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type != EV_KEY || ev[i].code > KEY_MAX)
			continue;
		set_bit(keys, ev[i].code, ev[i].value != 0);
	}
}

size_t input_keys_count(const struct input_keys *keys)
{
	size_t n = 0;

	for (size_t i = 0; i < INPUT_KEYS_LONGS; i++)
		n += (size_t)__builtin_popcountl(keys->bits[i]);
	return n;
}

static void event(struct input_event *ev, unsigned type, unsigned code, int value)
{
	*ev = (struct input_event){ .type = (unsigned short)type,
				    .code = (unsigned short)code,
				    .value = value };
}

size_t input_keys_release_frame(const struct input_keys *keys, struct input_event **out)
{
	size_t held = input_keys_count(keys), n = 0;
	struct input_event *ev;

	if (held == 0)
		return 0;
	ev = xcalloc(held + 1, sizeof(*ev));
	for (unsigned code = 0; code <= KEY_MAX; code++)
		if (input_keys_down(keys, code))
			event(&ev[n++], EV_KEY, code, 0);
	event(&ev[n++], EV_SYN, SYN_REPORT, 0);
	*out = ev;
	return n;
}

char *input_keys_to_string(const struct input_keys *keys)
{
	char **names = NULL;
	char *s;

	for (unsigned code = 0; code <= KEY_MAX; code++) {
		if (!input_keys_down(keys, code))
			continue;
		const char *name = libevdev_event_code_get_name(EV_KEY, code);
		char *num = name ? NULL : xasprintf("KEY_%u", code);

		strv_append(&names, name ? name : num);
		free(num);
	}
	s = names ? strv_join(names, " ") : xstrdup("(none)");
	strv_free(names);
	return s;
}

/* Append one event, growing the frame by doubling. */
static void push(struct input_frame *f, const struct input_event *ev)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 16;
		f->ev = xrealloc(f->ev, f->cap * sizeof(*f->ev));
	}
	f->ev[f->n++] = *ev;
}

/* End the frame with a SYN_REPORT of our own: it is ready to route (true). */
static bool close_frame(struct input_frame *f)
{
	struct input_event syn;

	event(&syn, EV_SYN, SYN_REPORT, 0);
	push(f, &syn);
	f->resync = false;
	return true;
}

bool input_frame_feed(struct input_frame *f, int status, const struct input_event *ev)
{
	if (ev->type == EV_SYN && ev->code == SYN_DROPPED) {
		f->resync = true;
		return false;
	}
	if (ev->type == EV_SYN && ev->code == SYN_REPORT) {
		push(f, ev);
		f->resync = false;
		return true;
	}
	/* Resync events come in sync mode only; a normal event means the
	 * resync is over even if no SYN_REPORT ended it. */
	if (status != LIBEVDEV_READ_STATUS_SYNC)
		f->resync = false;
	push(f, ev);
	if (f->n >= INPUT_FRAME_MAX - 1)
		return close_frame(f);
	return false;
}

bool input_frame_sync_done(struct input_frame *f)
{
	if (!f->resync)
		return false;
	if (f->n == 0) {
		f->resync = false;
		return false;
	}
	return close_frame(f);
}

void input_frame_reset(struct input_frame *f)
{
	f->n = 0;
}

void input_frame_clear(struct input_frame *f)
{
	free(f->ev);
	*f = (struct input_frame){ 0 };
}

/* The input router: focus, hotkeys, and no stuck keys (see router.h). */
#include "config.h"

#include "input/router.h"

#include <errno.h>
#include <libevdev/libevdev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "input/frame.h"
#include "util/log.h"
#include "util/util.h"

#define HOST 0 /* the host is the first target */
#define NONE ((size_t)-1)
/* Held-back keys all belong to one chord (CONF_CHORD_MAX keys), but two
 * sources may hold the same one. */
#define PENDING_MAX (2 * CONF_CHORD_MAX)

enum action {
	ACT_CYCLE,
	ACT_HOST,
	ACT_VM,
	ACT_PANIC,
};

/* What a target's sinks must never receive, so that QEMU's input-linux
 * never sees its grab toggle complete (see router.h). */
enum guard {
	GUARD_NONE,
	GUARD_KEY,  /* this key is never delivered */
	GUARD_PAIR, /* these two keys are never down together */
};

struct target {
	char *name;
	bool running; /* the host always is */
	bool focus_on_start;
	bool lights;   /* its sinks' readers set their lock lights (see router.h) */
	char **inputs; /* a VM's sources; NULL for the host (it takes them all) */
	enum guard guard;
	unsigned short guarded[2];
	const char *toggle; /* QEMU's name for it, for the log */
	bool guard_told;    /* the log said so once */
};

struct source {
	char *name;
	bool *to;               /* per target: it takes this source (worked out at configuration) */
	struct input_keys phys; /* down on the device, as its frames said */
	struct input_keys swallowed; /* down, delivered to nobody (chords) */
	struct input_keys *held;     /* per target: delivered down, not released there */
	unsigned *leds;              /* per target: the lights its sink was told to show */
	unsigned shown;              /* the lights the device was last told to show */
};

struct chord {
	struct conf_chord keys;
	enum action action;
	size_t target; /* ACT_VM: NONE when the VM takes no input */
	char *vm;      /* ACT_VM */
	bool full;     /* every key down */
};

/* A key held back: it may begin a chord. */
struct pending {
	size_t source;
	unsigned short code;
	bool has_scan;
	struct input_event scan;
};

struct outbuf {
	struct input_event *ev;
	size_t n, cap;
};

struct input_router {
	struct input_router_hooks hooks;
	void *data;
	struct target *targets; /* the host, then each VM with inputs, in file-name order */
	size_t n_targets;
	char **mute_vms; /* VMs that take no input */
	struct source *sources;
	size_t n_sources;
	struct chord *chords;
	size_t n_chords;
	struct input_keys chord_keys; /* every key of every chord: the rest skip the chords */
	size_t focus;
	bool released; /* a panic gave the devices to the host */

	struct pending pending[PENDING_MAX];
	size_t n_pending;

	bool latched;   /* a chord was recognised; its keys are not all released */
	size_t latch;   /* that chord (NONE: forgotten by a reload) */
	size_t due;     /* the chord whose switch runs once the frame is written */
	bool panic_due; /* likewise, the panic */
	uint64_t panic_at[INPUT_ROUTER_PANIC_PRESSES - 1];
	size_t n_panic;

	struct outbuf *out; /* per target: the frame being routed */
};

/* ---------------------------------------------------------------- lookups */

/* Only a reload looks a source up by name: frames come by index. */
static size_t find_source(const struct input_router *r, const char *name)
{
	for (size_t i = 0; i < r->n_sources; i++)
		if (streq(r->sources[i].name, name))
			return i;
	return NONE;
}

static size_t find_target(const struct input_router *r, const char *name)
{
	for (size_t i = 0; i < r->n_targets; i++)
		if (streq(r->targets[i].name, name))
			return i;
	return NONE;
}

/* Does target t take source s at all (its configuration, focus aside)? */
static bool takes(const struct input_router *r, size_t t, size_t s)
{
	return r->sources[s].to[t];
}

/* Where source s goes now: the focus, or the host when the focused VM
 * does not take s; NONE when nobody takes it. */
static size_t dest(const struct input_router *r, size_t s)
{
	if (takes(r, r->focus, s))
		return r->focus;
	return takes(r, HOST, s) ? HOST : NONE;
}

/* The lights source s shows: those of the target it goes to, when that
 * target sets them; none otherwise. */
static unsigned lights(const struct input_router *r, size_t s)
{
	size_t t = dest(r, s);

	return t != NONE && r->targets[t].lights ? r->sources[s].leds[t] : 0;
}

/* Tell each source whose lights changed (not while the host has the
 * devices after a panic: it sets their lights itself). */
static void show_lights(struct input_router *r)
{
	if (r->released)
		return;
	for (size_t s = 0; s < r->n_sources; s++) {
		unsigned l = lights(r, s);

		if (l == r->sources[s].shown)
			continue;
		r->sources[s].shown = l;
		if (r->hooks.leds)
			r->hooks.leds(r->data, s, l);
	}
}

/* The target that has code down from source s (NONE: none). */
static size_t holder(const struct input_router *r, size_t s, unsigned code)
{
	for (size_t t = 0; t < r->n_targets; t++)
		if (input_keys_down(&r->sources[s].held[t], code))
			return t;
	return NONE;
}

/* Chords count keys from every source together. */
static bool down_anywhere(const struct input_router *r, unsigned code)
{
	for (size_t s = 0; s < r->n_sources; s++)
		if (input_keys_down(&r->sources[s].phys, code))
			return true;
	return false;
}

/* Mark code down or up in keys through input_keys_update(), as an event would. */
static void set_key(struct input_keys *keys, unsigned code, bool down)
{
	struct input_event e = { .type = EV_KEY, .code = (unsigned short)code, .value = down };

	input_keys_update(keys, &e, 1);
}

static bool chord_has(const struct conf_chord *c, unsigned code)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->codes[i] == code)
			return true;
	return false;
}

/* Every key of c is down, on whichever source. */
static bool chord_full(const struct input_router *r, const struct conf_chord *c)
{
	for (unsigned i = 0; i < c->n; i++)
		if (!down_anywhere(r, c->codes[i]))
			return false;
	return c->n > 0;
}

/* Where code of source s is among the held-back keys (NONE: not held back). */
static size_t find_pending(const struct input_router *r, size_t s, unsigned code)
{
	for (size_t i = 0; i < r->n_pending; i++)
		if (r->pending[i].source == s && r->pending[i].code == code)
			return i;
	return NONE;
}

/* Is code a key of some chord? Most keys and every button are not: they
 * pass by the chord bookkeeping. */
static bool in_chords(const struct input_router *r, unsigned code)
{
	return input_keys_down(&r->chord_keys, code);
}

/* Could code, with every key held back, still become a chord? */
static bool could_chord(const struct input_router *r, unsigned code)
{
	if (!in_chords(r, code))
		return false;
	for (size_t c = 0; c < r->n_chords; c++) {
		const struct conf_chord *k = &r->chords[c].keys;
		bool all = chord_has(k, code);

		for (size_t i = 0; all && i < r->n_pending; i++)
			all = chord_has(k, r->pending[i].code);
		if (all)
			return true;
	}
	return false;
}

/* A wheel turning ends a hold-back: no chord has one. */
static bool is_wheel(const struct input_event *e)
{
	return e->type == EV_REL && (e->code == REL_WHEEL || e->code == REL_HWHEEL ||
				     e->code == REL_WHEEL_HI_RES || e->code == REL_HWHEEL_HI_RES);
}

/* The chord's name for the log (buf for a VM's hotkey). */
static const char *chord_what(const struct input_router *r, const struct chord *c, char *buf,
			      size_t len)
{
	switch (c->action) {
	case ACT_CYCLE:
		return "cycle";
	case ACT_HOST:
		return "host";
	case ACT_PANIC:
		return "panic";
	case ACT_VM:
		snprintf(buf, len, "the hotkey of vm %s", c->vm);
		return buf;
	}
	return "?";
}

/* ----------------------------------------------------------------- output */

/* Make room in o for one more event (once in a while: out of the fast path). */
static void __attribute__((noinline)) out_grow(struct outbuf *o)
{
	o->cap = o->cap ? 2 * o->cap : 16;
	o->ev = xrealloc(o->ev, o->cap * sizeof(*o->ev));
}

/* Add e to the frame being built for target t. */
static inline void out_push(struct input_router *r, size_t t, const struct input_event *e)
{
	struct outbuf *o = &r->out[t];

	if (o->n == o->cap)
		out_grow(o);
	o->ev[o->n++] = *e;
}

/* Write what the frame of source s left for each target. */
static void out_flush(struct input_router *r, size_t s)
{
	static const struct input_event syn = { .type = EV_SYN, .code = SYN_REPORT };

	for (size_t t = 0; t < r->n_targets; t++) {
		struct outbuf *o = &r->out[t];

		if (o->n == 0)
			continue;
		out_push(r, t, &syn);
		r->hooks.write(r->data, s, t, o->ev, o->n);
		o->n = 0;
	}
}

/* Would pressing code on t, from source s, complete QEMU's grab toggle
 * on that sink? Said in the log once per configuration. */
static bool guarded(struct input_router *r, size_t s, size_t t, unsigned code)
{
	struct target *tg = &r->targets[t];
	const struct input_keys *held = &r->sources[s].held[t];
	bool no;

	switch (tg->guard) {
	case GUARD_KEY:
		no = code == tg->guarded[0];
		break;
	case GUARD_PAIR:
		no = (code == tg->guarded[0] && input_keys_down(held, tg->guarded[1])) ||
		     (code == tg->guarded[1] && input_keys_down(held, tg->guarded[0]));
		break;
	default:
		return false;
	}
	if (no && !tg->guard_told) {
		tg->guard_told = true;
		log_info("input: vm %s: %s never reaches it%s: with it QEMU would toggle its grab "
			 "(grab-toggle %s) and the VM would lose its keyboard",
			 tg->name, libevdev_event_code_get_name(EV_KEY, code),
			 tg->guard == GUARD_PAIR ? " while the other key of its pair is down" : "",
			 tg->toggle);
	}
	return no;
}

/* Deliver a key event of source s to t: into the frame being routed when
 * s is its source (cur), else in a frame of its own. Key state follows. */
static void deliver_key(struct input_router *r, size_t cur, size_t s, size_t t,
			const struct input_event *scan, unsigned code, int value)
{
	struct input_event ev[3];
	size_t n = 0;

	/* Not delivered, so neither are its repeats and release. */
	if (value == 1 && guarded(r, s, t, code))
		return;
	if (scan)
		ev[n++] = *scan;
	ev[n++] =
	    (struct input_event){ .type = EV_KEY, .code = (unsigned short)code, .value = value };
	if (value != 2)
		input_keys_update(&r->sources[s].held[t], &ev[n - 1], 1);
	if (s == cur) {
		for (size_t i = 0; i < n; i++)
			out_push(r, t, &ev[i]);
		return;
	}
	ev[n++] = (struct input_event){ .type = EV_SYN, .code = SYN_REPORT };
	r->hooks.write(r->data, s, t, ev, n);
}

/* Release on t everything source s holds there. */
static void release_held(struct input_router *r, size_t s, size_t t)
{
	struct input_keys *held = &r->sources[s].held[t];
	struct input_event *ev = NULL;
	size_t n = input_keys_release_frame(held, &ev);

	if (n == 0)
		return;
	r->hooks.write(r->data, s, t, ev, n);
	memset(held, 0, sizeof(*held));
	free(ev);
}

/* Deliver every held-back key, in order, to where its source goes now. */
static void flush_pending(struct input_router *r, size_t cur)
{
	for (size_t i = 0; i < r->n_pending; i++) {
		const struct pending *p = &r->pending[i];
		size_t t = dest(r, p->source);

		if (t != NONE)
			deliver_key(r, cur, p->source, t, p->has_scan ? &p->scan : NULL, p->code,
				    1);
	}
	r->n_pending = 0;
}

/* ------------------------------------------------------------------ focus */

/* Move the focus to t, releasing what stays behind, and say so. */
static void set_focus(struct input_router *r, size_t t, const char *why)
{
	size_t old = r->focus;

	if (t == old)
		return;
	r->focus = t;
	/* Whatever a source holds on a target it no longer goes to is
	 * released there now; its later release goes nowhere. */
	for (size_t s = 0; s < r->n_sources; s++) {
		size_t d = dest(r, s);

		for (size_t u = 0; u < r->n_targets; u++)
			if (u != d)
				release_held(r, s, u);
	}
	log_info("input: focus %s -> %s (%s)", r->targets[old].name, r->targets[t].name, why);
	if (r->hooks.focus)
		r->hooks.focus(r->data, r->targets[old].name, r->targets[t].name);
	show_lights(r);
}

/* The cycle hotkey's next stop: the next running VM after the focus, else the host. */
static size_t next_target(const struct input_router *r)
{
	for (size_t t = r->focus + 1; t < r->n_targets; t++)
		if (r->targets[t].running)
			return t;
	return HOST;
}

/* Switch to t; after a panic, take the devices back first. */
static void go(struct input_router *r, size_t t, const char *why)
{
	if (r->released) {
		r->released = false;
		log_info("input: taking the devices back from the host (%s)", why);
		if (r->hooks.grab)
			r->hooks.grab(r->data, true);
		/* the host set the devices' lights itself meanwhile */
		for (size_t s = 0; s < r->n_sources; s++)
			r->sources[s].shown = UINT_MAX;
	}
	set_focus(r, t, why);
	show_lights(r);
}

/* Release everything everywhere and give the host its devices back, ungrabbed. */
static void panic(struct input_router *r)
{
	size_t old = r->focus;

	log_warning("input: panic chord pressed %d times: every device goes back to the host, "
		    "ungrabbed; a hotkey or `vmplugctl switch` takes them back",
		    INPUT_ROUTER_PANIC_PRESSES);
	r->n_pending = 0;
	r->latched = false;
	r->due = NONE;
	for (size_t s = 0; s < r->n_sources; s++) {
		memset(&r->sources[s].swallowed, 0, sizeof(r->sources[s].swallowed));
		for (size_t t = 0; t < r->n_targets; t++)
			release_held(r, s, t);
	}
	r->focus = HOST;
	r->released = true;
	if (old != HOST && r->hooks.focus)
		r->hooks.focus(r->data, r->targets[old].name, r->targets[HOST].name);
	if (r->hooks.grab)
		r->hooks.grab(r->data, false);
}

/* A chord's keys are all released: its switch. */
static void apply(struct input_router *r, size_t c)
{
	const struct chord *ch = &r->chords[c];
	char buf[128];
	const char *what = chord_what(r, ch, buf, sizeof(buf));

	switch (ch->action) {
	case ACT_PANIC:
		return; /* fewer presses than a panic needs: nothing */
	case ACT_CYCLE:
		go(r, next_target(r), what);
		return;
	case ACT_HOST:
		go(r, HOST, what);
		return;
	case ACT_VM:
		if (ch->target == NONE) {
			log_info("input: %s: it takes no input (no inputs = in its file)", what);
			return;
		}
		if (!r->targets[ch->target].running) {
			log_info("input: %s: it is not running; the focus stays on %s", what,
				 r->targets[r->focus].name);
			return;
		}
		go(r, ch->target, what);
		return;
	}
}

/* Switches run once the frame that caused them is written. */
static inline void after_event(struct input_router *r)
{
	if (r->panic_due) {
		r->panic_due = false;
		r->due = NONE;
		panic(r);
	} else if (r->due != NONE) {
		size_t c = r->due;

		r->due = NONE;
		apply(r, c);
	}
}

/* ----------------------------------------------------------------- chords */

/* Count a panic chord; the third within the window makes the panic due. */
static void panic_press(struct input_router *r, uint64_t now)
{
	size_t kept = 0;

	if (r->released)
		return;
	for (size_t i = 0; i < r->n_panic; i++)
		if (now - r->panic_at[i] < INPUT_ROUTER_PANIC_USEC)
			r->panic_at[kept++] = r->panic_at[i];
	r->n_panic = kept;
	if (r->n_panic + 1 >= INPUT_ROUTER_PANIC_PRESSES) {
		r->n_panic = 0;
		r->panic_due = true;
		return;
	}
	r->panic_at[r->n_panic++] = now;
}

/* A key went down: a chord whose keys are now all down is recognised (the
 * longest, when one key completes several). Only the chords with code
 * can change. */
static void recognise(struct input_router *r, unsigned code, uint64_t now)
{
	size_t found = NONE;

	if (!in_chords(r, code))
		return;
	for (size_t c = 0; c < r->n_chords; c++) {
		struct chord *ch = &r->chords[c];
		bool full;

		if (!chord_has(&ch->keys, code))
			continue;
		full = chord_full(r, &ch->keys);
		if (full && !ch->full && (found == NONE || ch->keys.n > r->chords[found].keys.n))
			found = c;
		ch->full = full;
	}
	if (found == NONE)
		return;
	if (r->chords[found].action == ACT_PANIC)
		panic_press(r, now);
	r->latched = true;
	r->latch = found;
	/* What was held back for it is part of it. */
	for (size_t i = 0; i < r->n_pending; i++)
		set_key(&r->sources[r->pending[i].source].swallowed, r->pending[i].code, true);
	r->n_pending = 0;
}

/* Which chords are complete (after a reload, or a source gone). */
static void update_full(struct input_router *r)
{
	for (size_t c = 0; c < r->n_chords; c++)
		r->chords[c].full = chord_full(r, &r->chords[c].keys);
}

/* code went up: only the chords with it can have stopped being complete. */
static void update_full_for(struct input_router *r, unsigned code)
{
	if (!in_chords(r, code))
		return;
	for (size_t c = 0; c < r->n_chords; c++)
		if (chord_has(&r->chords[c].keys, code))
			r->chords[c].full = chord_full(r, &r->chords[c].keys);
}

/* The latched chord's keys and everything swallowed with it are up: its
 * switch is due. */
static void check_latch(struct input_router *r)
{
	if (!r->latched)
		return;
	for (size_t s = 0; s < r->n_sources; s++)
		if (input_keys_count(&r->sources[s].swallowed))
			return;
	if (r->latch != NONE) {
		const struct conf_chord *k = &r->chords[r->latch].keys;

		for (unsigned i = 0; i < k->n; i++)
			if (down_anywhere(r, k->codes[i]))
				return;
	}
	r->latched = false;
	r->due = r->latch;
}

/* ------------------------------------------------------------------ frames */

/* A press: chords first, then hold back, swallow or deliver it. */
static void key_down(struct input_router *r, size_t s, bool forward, const struct input_event *scan,
		     unsigned code, uint64_t now)
{
	struct source *src = &r->sources[s];
	bool was = input_keys_down(&src->phys, code), could;
	size_t t;

	set_key(&src->phys, code, true);
	if (!was)
		recognise(r, code, now);
	if (!forward || (r->n_pending && find_pending(r, s, code) != NONE) ||
	    input_keys_down(&src->swallowed, code))
		return;
	if (r->latched) {
		set_key(&src->swallowed, code, true);
		return;
	}
	t = holder(r, s, code);
	if (t != NONE) {
		/* down already (its release was lost): the same target again */
		deliver_key(r, s, s, t, scan, code, 1);
		return;
	}
	could = could_chord(r, code);
	if (!could) {
		flush_pending(r, s);
		could = in_chords(r, code) && could_chord(r, code);
	}
	if (could && r->n_pending < PENDING_MAX) {
		struct pending *p = &r->pending[r->n_pending++];

		*p = (struct pending){ .source = s, .code = (unsigned short)code };
		if (scan) {
			p->has_scan = true;
			p->scan = *scan;
		}
		return;
	}
	flush_pending(r, s);
	t = dest(r, s);
	if (t != NONE)
		deliver_key(r, s, s, t, scan, code, 1);
}

/* A release goes where the press went; it may end a tap or a chord. */
static void key_up(struct input_router *r, size_t s, const struct input_event *scan, unsigned code)
{
	struct source *src = &r->sources[s];
	size_t t;

	set_key(&src->phys, code, false);
	update_full_for(r, code);
	if (r->n_pending && find_pending(r, s, code) != NONE)
		flush_pending(r, s); /* a tap: pressed, now released */
	if (input_keys_down(&src->swallowed, code)) {
		set_key(&src->swallowed, code, false);
	} else if ((t = holder(r, s, code)) != NONE) {
		/* to the target that has it, wherever the focus is */
		deliver_key(r, s, s, t, scan, code, 0);
	}
	check_latch(r);
}

/* A repeat goes where the press went, and nowhere else. */
static void key_repeat(struct input_router *r, size_t s, bool forward,
		       const struct input_event *scan, unsigned code)
{
	size_t t = holder(r, s, code);

	if (forward && t != NONE)
		deliver_key(r, s, s, t, scan, code, 2);
}

void input_router_frame(struct input_router *r, size_t s, bool grabbed,
			const struct input_event *ev, size_t n, uint64_t now)
{
	bool forward = grabbed && !r->released;
	size_t to;

	if (s >= r->n_sources)
		return;
	/* Where motion goes: the focus moves only after the frame. */
	to = dest(r, s);
	for (size_t i = 0; i < n; i++) {
		const struct input_event *e = &ev[i], *scan = NULL;

		/* Motion first, the shortest way: it never touches chords. */
		if (e->type == EV_REL && forward && to != NONE && !is_wheel(e)) {
			out_push(r, to, e);
			continue;
		}
		if (e->type == EV_SYN && e->code == SYN_REPORT)
			continue;
		/* A scan code travels with the key it comes before. */
		if (e->type == EV_MSC && e->code == MSC_SCAN && i + 1 < n &&
		    ev[i + 1].type == EV_KEY) {
			scan = e;
			e = &ev[++i];
		}
		if (e->type == EV_KEY && e->code <= KEY_MAX) {
			if (e->value == 0)
				key_up(r, s, scan, e->code);
			else if (e->value == 1)
				key_down(r, s, forward, scan, e->code, now);
			else
				key_repeat(r, s, forward, scan, e->code);
			continue;
		}
		/* Lights and sounds go to a device, never from one: these are
		 * the echoes of what was set on it. */
		if (!forward || e->type == EV_LED || e->type == EV_SND)
			continue;
		if (r->n_pending && is_wheel(e))
			flush_pending(r, s);
		if (to != NONE)
			out_push(r, to, e);
	}
	out_flush(r, s);
	after_event(r);
}

void input_router_source_gone(struct input_router *r, size_t s)
{
	size_t kept = 0;
	struct source *src;

	if (s >= r->n_sources)
		return;
	src = &r->sources[s];
	for (size_t i = 0; i < r->n_pending; i++)
		if (r->pending[i].source != s)
			r->pending[kept++] = r->pending[i];
	r->n_pending = kept;
	for (size_t t = 0; t < r->n_targets; t++)
		release_held(r, s, t);
	memset(&src->phys, 0, sizeof(src->phys));
	memset(&src->swallowed, 0, sizeof(src->swallowed));
	update_full(r);
	check_latch(r);
	after_event(r);
}

/* ----------------------------------------------------------------- VMs */

void input_router_vm_up(struct input_router *r, const char *vm)
{
	size_t t = find_target(r, vm);

	if (t == NONE || t == HOST)
		return;
	r->targets[t].running = true;
	if (r->targets[t].focus_on_start) {
		if (r->released)
			log_info("input: vm %s came up (focus-on-start), but after the panic the "
				 "devices stay with the host",
				 vm);
		else
			set_focus(r, t, "focus-on-start");
	}
}

void input_router_vm_down(struct input_router *r, const char *vm)
{
	size_t t = find_target(r, vm);

	if (t == NONE || t == HOST)
		return;
	r->targets[t].running = false;
	if (r->focus == t)
		set_focus(r, HOST, "the focused VM went down");
	for (size_t s = 0; s < r->n_sources; s++)
		release_held(r, s, t);
}

void input_router_sink_leds(struct input_router *r, size_t source, size_t target, unsigned leds)
{
	if (source >= r->n_sources || target >= r->n_targets)
		return;
	r->sources[source].leds[target] = leds;
	show_lights(r);
}

unsigned input_router_leds(const struct input_router *r, size_t source)
{
	return source < r->n_sources ? lights(r, source) : 0;
}

int input_router_switch(struct input_router *r, const char *target)
{
	size_t t;

	if (streq(target, "next")) {
		t = next_target(r);
		if (t == HOST && r->focus == HOST && !r->released)
			return -EHOSTDOWN;
	} else {
		t = find_target(r, target);
		if (t == NONE)
			return strv_contains(r->mute_vms, target) ? -ENXIO : -ENOENT;
		if (!r->targets[t].running)
			return -EHOSTDOWN;
	}
	go(r, t, "vmplugctl switch");
	return 0;
}

const char *input_router_focus(const struct input_router *r)
{
	return r->targets[r->focus].name;
}

bool input_router_released(const struct input_router *r)
{
	return r->released;
}

bool input_router_switching(const struct input_router *r)
{
	return r->n_targets > 1;
}

size_t input_router_n_targets(const struct input_router *r)
{
	return r->n_targets;
}

const char *input_router_target_name(const struct input_router *r, size_t t)
{
	return t < r->n_targets ? r->targets[t].name : NULL;
}

const char *input_router_source_name(const struct input_router *r, size_t s)
{
	return s < r->n_sources ? r->sources[s].name : NULL;
}

/* ----------------------------------------------------------- configuration */

static void free_targets(struct target *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		strv_free(t[i].inputs);
	}
	free(t);
}

static void free_sources(struct source *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].to);
		free(s[i].held);
		free(s[i].leds);
	}
	free(s);
}

static void free_chords(struct chord *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].vm);
	free(c);
}

/* What QEMU's input-linux takes as its grab toggle (GrabToggleKeys), and
 * how the router keeps it from completing on a VM's sink:
 *   - scrolllock, ctrl-scrolllock: QEMU never passes Scroll Lock to the
 *     guest with these, so Scroll Lock is never delivered: nothing is
 *     lost, and neither toggle can complete;
 *   - meta-meta, alt-alt, shift-shift, ctrl-ctrl (the left and the right
 *     key together): the second key of the pair is not delivered while
 *     the first is down there. The guest never sees both keys of the
 *     pair at once; each alone works as ever.
 * No toggle (NULL): nothing is held back. */
static void set_guard(struct target *t, const char *toggle)
{
	const unsigned short *keys = conf_grab_toggle_keys(toggle);

	t->toggle = toggle;
	t->guard = GUARD_NONE;
	for (size_t i = 0; keys && keys[i]; i++)
		if (keys[i] == KEY_SCROLLLOCK) {
			t->guard = GUARD_KEY;
			t->guarded[0] = KEY_SCROLLLOCK;
			return;
		}
	if (keys && keys[0] && keys[1] && !keys[2]) {
		t->guard = GUARD_PAIR;
		t->guarded[0] = keys[0];
		t->guarded[1] = keys[1];
	}
}

/* A configured chord (none when keys is empty) and what it does. */
static void add_chord(struct input_router *r, const struct conf_chord *keys, enum action action,
		      const char *vm)
{
	struct chord *c;

	if (keys->n == 0)
		return;
	c = xappend(&r->chords, &r->n_chords, sizeof(*r->chords));
	c->keys = *keys;
	c->action = action;
	for (unsigned i = 0; i < keys->n; i++)
		set_key(&r->chord_keys, keys->codes[i], true);
	c->target = vm ? find_target(r, vm) : NONE;
	c->vm = vm ? xstrdup(vm) : NULL;
}

/* Held-back keys follow their source to its new index; those of sources
 * that went are forgotten. */
static void remap_pending(struct input_router *r, const struct source *old_s)
{
	size_t kept = 0;

	for (size_t i = 0; i < r->n_pending; i++) {
		struct pending p = r->pending[i];

		p.source = find_source(r, old_s[p.source].name);
		if (p.source != NONE)
			r->pending[kept++] = p;
	}
	r->n_pending = kept;
}

void input_router_set_conf(struct input_router *r, const struct conf *conf)
{
	struct target *old_t = r->targets;
	struct source *old_s = r->sources;
	size_t n_old_t = r->n_targets, n_old_s = r->n_sources;
	char *focus = xstrdup(r->targets ? r->targets[r->focus].name : INPUT_ROUTER_HOST);

	r->targets = NULL;
	r->n_targets = 0;
	strv_free(r->mute_vms);
	r->mute_vms = NULL;
	*(struct target *)xappend(&r->targets, &r->n_targets, sizeof(*r->targets)) =
	    (struct target){ .name = xstrdup(INPUT_ROUTER_HOST), .running = true, .lights = true };
	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];
		struct target *t;

		if (!vm->inputs || !vm->inputs[0]) {
			strv_append(&r->mute_vms, vm->name);
			continue;
		}
		t = xappend(&r->targets, &r->n_targets, sizeof(*r->targets));
		t->name = xstrdup(vm->name);
		t->inputs = strv_copy(vm->inputs);
		t->focus_on_start = vm->focus_on_start;
		set_guard(t, vm->grab_toggle);
		for (size_t j = 0; j < n_old_t; j++)
			if (streq(old_t[j].name, vm->name))
				t->running = old_t[j].running;
	}

	/* Sources: what each holds carries over by name, for the targets
	 * that still take it (the manager released the sinks that went). */
	r->sources = xcalloc(conf->n_inputs ? conf->n_inputs : 1, sizeof(*r->sources));
	r->n_sources = conf->n_inputs;
	for (size_t i = 0; i < conf->n_inputs; i++) {
		struct source *s = &r->sources[i];
		const struct source *o = NULL;

		s->name = xstrdup(conf->inputs[i].name);
		s->held = xcalloc(r->n_targets, sizeof(*s->held));
		s->leds = xcalloc(r->n_targets, sizeof(*s->leds));
		s->to = xcalloc(r->n_targets, sizeof(*s->to));
		/* The host's sinks exist when switching is used. */
		s->to[HOST] = r->n_targets > 1;
		for (size_t t = 1; t < r->n_targets; t++)
			s->to[t] = strv_contains(r->targets[t].inputs, s->name);
		for (size_t j = 0; j < n_old_s; j++)
			if (streq(old_s[j].name, s->name))
				o = &old_s[j];
		if (!o)
			continue;
		s->phys = o->phys;
		s->swallowed = o->swallowed;
		s->shown = o->shown;
		for (size_t t = 0; t < r->n_targets; t++)
			for (size_t u = 0; u < n_old_t; u++)
				if (streq(old_t[u].name, r->targets[t].name) && takes(r, t, i)) {
					s->held[t] = o->held[u];
					s->leds[t] = o->leds[u];
				}
	}
	remap_pending(r, old_s);

	free_chords(r->chords, r->n_chords);
	r->chords = NULL;
	r->n_chords = 0;
	memset(&r->chord_keys, 0, sizeof(r->chord_keys));
	add_chord(r, &conf->sw.cycle, ACT_CYCLE, NULL);
	add_chord(r, &conf->sw.host, ACT_HOST, NULL);
	add_chord(r, &conf->sw.panic, ACT_PANIC, NULL);
	for (size_t i = 0; i < conf->n_vms; i++)
		add_chord(r, &conf->vms[i].hotkey, ACT_VM, conf->vms[i].name);
	update_full(r);
	r->latch = NONE; /* a chord held across a reload switches nowhere */
	r->due = NONE;

	for (size_t t = 0; t < n_old_t; t++)
		free(r->out[t].ev);
	free(r->out);
	r->out = xcalloc(r->n_targets, sizeof(*r->out));
	free_targets(old_t, n_old_t);
	free_sources(old_s, n_old_s);

	r->focus = HOST;
	if (!streq(focus, INPUT_ROUTER_HOST)) {
		size_t t = find_target(r, focus);

		if (t != NONE) {
			r->focus = t;
		} else {
			log_info("input: focus %s -> %s (vm %s no longer takes input)", focus,
				 INPUT_ROUTER_HOST, focus);
			if (r->hooks.focus)
				r->hooks.focus(r->data, focus, INPUT_ROUTER_HOST);
		}
	}
	free(focus);
	show_lights(r);
}

struct input_router *input_router_new(const struct conf *conf,
				      const struct input_router_hooks *hooks, void *data)
{
	struct input_router *r = xnew(struct input_router);

	r->hooks = *hooks;
	r->data = data;
	r->latch = NONE;
	r->due = NONE;
	input_router_set_conf(r, conf);
	return r;
}

void input_router_free(struct input_router *r)
{
	if (!r)
		return;
	for (size_t t = 0; t < r->n_targets; t++)
		free(r->out[t].ev);
	free(r->out);
	free_targets(r->targets, r->n_targets);
	free_sources(r->sources, r->n_sources);
	free_chords(r->chords, r->n_chords);
	strv_free(r->mute_vms);
	free(r);
}

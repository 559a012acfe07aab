/* The input manager: sources, their sinks, the router between them, reload,
 * status (see input.h). */
#include "config.h"

#include "input/input.h"
#include "input/input-int.h"

#include <errno.h>
#include <libevdev/libevdev.h>
#include <stdlib.h>
#include <unistd.h>

#include "input/cache.h"
#include "input/fdstore.h"
#include "input/router.h"
#include "input/sink.h"
#include "input/source.h"
#include "util/log.h"
#include "util/util.h"

#define SINK_PREFIX "vmplug-"
#define NONE ((size_t)-1)
/* Where udev's rules (60-vmplug.rules) link each sink by its name. */
#define BY_ID "/dev/input/by-id"
/* How long a new VM sink waits for udev to report it (and so to have
 * made its link) before QEMU is given its event node instead. */
#define UDEV_WAIT_USEC (5 * USEC_PER_SEC)

struct msink {
	char *vm; /* INPUT_ROUTER_HOST for the host's sink */
	char *name;
	const char *grab_toggle; /* the VM's (static; NULL for the host's) */
	char *qemu_user;         /* the VM's qemu-user and qemu-group (NULL: not set) */
	char *qemu_group;
	struct input_sink *sink; /* NULL: could not be created (error says why) */
	struct loop_source *io;  /* its readers setting lights */
	char *error;
	bool adopted;
	bool stored;
	bool told_let_go; /* QEMU let go of it: logged (input_manager_check_held) */
	/* Not offered to QEMU before udev reported it, or until then
	 * (CLOCK_MONOTONIC); 0: offered. */
	uint64_t udev_wait_until;
	bool by_node; /* offered by its node when udev was late: its link is news */
};

struct msource {
	struct input_manager *m;
	char *name;
	char *device;
	bool grab_all;
	bool repeat;
	struct input_source *src;
	struct libevdev *caps; /* what new sinks are made from */
	enum input_caps_origin origin;
	struct msink *sinks; /* in VM file-name order */
	size_t n_sinks;
	size_t index;      /* the router's number for it (NONE: not told yet) */
	struct msink **to; /* per router target: its sink, or NULL */
	size_t n_to;
	struct log_ratelimit rl;
};

struct input_manager {
	struct loop *loop;
	struct input_manager_hooks hooks;
	void *data;
	char *cache_dir;
	bool global_group_warned; /* [daemon] qemu-group, which no longer applies */
	struct msource **sources;
	size_t n_sources;
	input_sink_create_fn create_sink;
	bool starting;                      /* no vm_sinks_changed yet: nobody has asked for any */
	struct input_fdstore_entry *stored; /* fds from the store not adopted yet */
	size_t n_stored;
	bool ungrabbed; /* input_manager_set_grab(false) */
	struct input_router *router;
	struct msource **route; /* by the router's source number */
	size_t n_route;
	bool no_udevd;               /* nothing makes links: sinks are offered at once */
	uint64_t udev_wait_usec;     /* UDEV_WAIT_USEC, or a test's */
	struct loop_timer *udev_due; /* the first sink's udev_wait_until */
};

const char *input_caps_origin_name(enum input_caps_origin origin)
{
	switch (origin) {
	case INPUT_CAPS_CACHE:
		return "cache";
	case INPUT_CAPS_FALLBACK_KEYBOARD:
		return "fallback keyboard";
	case INPUT_CAPS_FALLBACK_MOUSE:
		return "fallback mouse";
	case INPUT_CAPS_DEVICE:
		return "device";
	}
	return "?";
}

static bool is_host(const char *vm)
{
	return streq(vm, INPUT_ROUTER_HOST);
}

/* Is a sink of vm still waiting for udev? */
static bool vm_waits(const struct input_manager *m, const char *vm)
{
	for (size_t i = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i]->n_sinks; j++) {
			const struct msink *k = &m->sources[i]->sinks[j];

			if (k->udev_wait_until && k->vm && streq(k->vm, vm))
				return true;
		}
	return false;
}

/* Tell the daemon that vm's QEMU objects need adding again; while a
 * sink of vm waits for udev, that sink's arrival tells it once for all. */
static void notify(struct input_manager *m, const char *vm)
{
	if (m->hooks.vm_sinks_changed && !m->starting && !is_host(vm) && !vm_waits(m, vm))
		m->hooks.vm_sinks_changed(m->data, vm);
}

static struct msource *find_source(struct input_manager *m, const char *name)
{
	for (size_t i = 0; i < m->n_sources; i++)
		if (streq(m->sources[i]->name, name))
			return m->sources[i];
	return NULL;
}

static struct msink *find_sink(struct msource *s, const char *vm)
{
	for (size_t i = 0; i < s->n_sinks; i++)
		if (streq(s->sinks[i].vm, vm))
			return &s->sinks[i];
	return NULL;
}

/* ------------------------------------------------------------------- sinks */

/* The fd the service manager kept for sink name, taken out of the list; -1 if none. */
static int take_stored(struct input_manager *m, const char *name)
{
	for (size_t i = 0; i < m->n_stored; i++) {
		if (!streq(m->stored[i].name, name))
			continue;
		int fd = m->stored[i].fd;

		free(m->stored[i].name);
		m->stored[i] = m->stored[--m->n_stored];
		return fd;
	}
	return -1;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* Give a VM's sink node to that VM's QEMU alone (qemu-user, qemu-group),
 * root's alone when the VM names neither. */
static void set_owner(const struct msource *s, struct msink *k)
{
	struct input_sink_owner o;
	const char *missing = NULL;
	int r;

	/* The host's sinks are for the desktop: udev's permissions stay. */
	if (!k->sink || !input_sink_devnode(k->sink) || is_host(k->vm))
		return;
	r = input_sink_owner_of(k->qemu_user, k->qemu_group, &o, &missing);
	if (r < 0) {
		/* root's alone rather than anything wider */
		o = (struct input_sink_owner){ 0, 0, 0600 };
		log_warning("input %s: vm %s: qemu-user or qemu-group '%s' does not exist; %s "
			    "stays root's alone (mode 600)",
			    s->name, k->vm, missing, k->name);
	}
	r = input_sink_set_owner(k->sink, &o);
	if (r < 0)
		log_warning("input %s: vm %s: cannot give %s (%s) to uid %u gid %u mode %o: %s",
			    s->name, k->vm, input_sink_devnode(k->sink), k->name, (unsigned)o.uid,
			    (unsigned)o.gid, (unsigned)o.mode, strerror(-r));
}

/* Take k's node back from the fd store when it kept one that fits; true if so. */
static bool adopt(struct input_manager *m, struct msource *s, struct msink *k)
{
	int fd = take_stored(m, k->name), r;

	if (fd < 0)
		return false;
	r = input_sink_adopt(fd, k->name, s->caps, &k->sink);
	if (r < 0) {
		log_warning("input %s: vm %s: the descriptor kept for %s is not that device "
			    "(%s); making a new one",
			    s->name, k->vm, k->name, strerror(-r));
		input_fdstore_remove(k->name);
		close(fd);
		return false;
	}
	k->adopted = k->stored = true;
	input_sink_set_persistent(k->sink, true);
	log_info("input %s: vm %s: %s (%s) taken back from the fd store", s->name, k->vm, k->name,
		 input_sink_devnode(k->sink) ? input_sink_devnode(k->sink) : "no node");
	return true;
}

static void on_sink_readable(struct loop_source *io, int fd, uint32_t revents, void *data);

/* Arm the timer for the first sink still waiting for udev. */
static void arm_udev_due(struct input_manager *m)
{
	uint64_t first = 0;

	for (size_t i = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i]->n_sinks; j++) {
			uint64_t t = m->sources[i]->sinks[j].udev_wait_until;

			if (t && (!first || t < first))
				first = t;
		}
	if (first)
		loop_timer_arm(m->udev_due, first);
	else
		loop_timer_disarm(m->udev_due);
}

/* Does k's link lead to it (input_sink_is_node)? */
static bool has_link(const struct msink *k)
{
	char *link = xasprintf(BY_ID "/%s", k->name);
	bool r = input_sink_is_node(k->sink, link) == 1;

	free(link);
	return r;
}

/* QEMU is to open a VM's sink by its link, which a later boot or another
 * device cannot take over as they can eventN: hold the new sink back
 * until udev, which makes that link, has reported it (a vmplugd at
 * real-time priority outruns udevd), at most UDEV_WAIT_USEC. */
static void wait_for_udev(struct input_manager *m, struct msink *k)
{
	k->udev_wait_until = 0;
	k->by_node = false;
	if (m->no_udevd || is_host(k->vm) || !input_sink_devnode(k->sink) || has_link(k))
		return;
	k->udev_wait_until = now_usec() + m->udev_wait_usec;
	arm_udev_due(m);
}

/* k may go to QEMU now: tell the daemon, once the last of its VM's is. */
static void udev_settled(struct input_manager *m, struct msink *k)
{
	k->udev_wait_until = 0;
	notify(m, k->vm);
	arm_udev_due(m);
}

/* Sinks udev did not report in time go to QEMU by their node. */
static void on_udev_due(struct loop_timer *t, void *data)
{
	struct input_manager *m = data;
	uint64_t now = now_usec();

	for (size_t i = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i]->n_sinks; j++) {
			struct msink *k = &m->sources[i]->sinks[j];

			if (!k->udev_wait_until || k->udev_wait_until > now)
				continue;
			log_warning("input %s: vm %s: udev did not report %s (%s) in time: QEMU "
				    "gets %s, not " BY_ID "/%s, which may name another device "
				    "after a restart (is udevd busy, or are vmplug's udev rules "
				    "missing?)",
				    m->sources[i]->name, k->vm, k->name,
				    input_sink_devnode(k->sink), input_sink_devnode(k->sink),
				    k->name);
			k->by_node = true;
			udev_settled(m, k);
		}
	arm_udev_due(m);
}

/* Make the sink (when missing); true if it exists afterwards. */
static bool make_sink(struct input_manager *m, struct msource *s, struct msink *k)
{
	int r;

	if (k->sink)
		return true;
	if (adopt(m, s, k))
		goto made;
	r = m->create_sink(k->name, s->caps, &k->sink);
	if (r < 0) {
		char *error = xasprintf("%s%s", strerror(-r),
					r == -ENOENT ? " (no /dev/uinput: modprobe uinput)" : "");

		if (!k->error || !streq(k->error, error))
			log_error("input %s: vm %s: cannot create %s: %s", s->name, k->vm, k->name,
				  error);
		free(k->error);
		k->error = error;
		return false;
	}
	free(k->error);
	k->error = NULL;
	log_info("input %s: vm %s: %s is %s (from the %s capabilities)", s->name, k->vm, k->name,
		 input_sink_devnode(k->sink) ? input_sink_devnode(k->sink) : "(no node)",
		 input_caps_origin_name(s->origin));
	r = input_fdstore_push(k->name, input_sink_fd(k->sink));
	if (r > 0) {
		k->stored = true;
		input_sink_set_persistent(k->sink, true);
	} else if (r < 0) {
		log_warning("input %s: vm %s: cannot hand %s to the service manager's fd store "
			    "(%s): a restart of vmplugd will take it from QEMU",
			    s->name, k->vm, k->name, strerror(-r));
	}
made:
	wait_for_udev(m, k);
	set_owner(s, k);
	k->io = loop_add_fd(m->loop, input_sink_fd(k->sink), EPOLLIN, on_sink_readable, m);
	if (!k->io)
		log_warning("input %s: vm %s: cannot watch %s for its lock lights: %m", s->name,
			    k->vm, k->name);
	return true;
}

/* A new sink of s for vm (NULL: the host), made at once when it can be. */
static void add_sink(struct input_manager *m, struct msource *s, const struct conf_vm *vm)
{
	struct msink *k = xappend(&s->sinks, &s->n_sinks, sizeof(*s->sinks));

	k->vm = xstrdup(vm ? vm->name : INPUT_ROUTER_HOST);
	k->name = xasprintf(SINK_PREFIX "%s-%s", k->vm, s->name);
	k->grab_toggle = vm ? vm->grab_toggle : NULL;
	k->qemu_user = vm ? dup_or_null(vm->qemu_user) : NULL;
	k->qemu_group = vm ? dup_or_null(vm->qemu_group) : NULL;
	make_sink(m, s, k);
}

/* Release, take out of the store and destroy. */
static void destroy_sink(struct msink *k)
{
	loop_source_remove(k->io);
	k->io = NULL;
	if (k->sink && k->stored) {
		input_fdstore_remove(k->name);
		input_sink_set_persistent(k->sink, false);
	}
	input_sink_free(k->sink);
	free(k->error);
	free(k->name);
	free(k->vm);
	free(k->qemu_user);
	free(k->qemu_group);
}

/* ------------------------------------------------------------------ router */

/* Write a frame to k, the sink of source s; errors are logged here. */
static int write_sink(struct msource *s, struct msink *k, const struct input_event *ev, size_t n)
{
	int r;

	if (!k || !k->sink)
		return -ENOENT;
	r = input_sink_write(k->sink, ev, n);
	if (r < 0)
		log_ratelimited(&s->rl, LOG_LEVEL_WARNING, "input %s: vm %s: writing to %s: %s",
				s->name, k->vm, k->name, strerror(-r));
	return r;
}

/* The router's frame for (source, target): to that sink, found by number. */
static void on_route_write(void *data, size_t source, size_t target, const struct input_event *ev,
			   size_t n)
{
	struct input_manager *m = data;
	struct msource *s = source < m->n_route ? m->route[source] : NULL;

	/* a missing sink is no error: it could not be made, and said so */
	if (s && target < s->n_to)
		write_sink(s, s->to[target], ev, n);
}

/* The one way up: the focus moved. */
static void on_route_focus(void *data, const char *from, const char *to)
{
	struct input_manager *m = data;

	if (m->hooks.focus)
		m->hooks.focus(m->data, from, to);
}

/* The router's panic, or the switch that ends it: every source at once. */
static void on_route_grab(void *data, bool grab)
{
	input_manager_set_grab(data, grab);
}

/* Lock lights on s's device; one that is not open has none to show. */
static void show_leds(struct msource *s, unsigned leds)
{
	int r = input_source_set_leds(s->src, leds);

	if (r < 0 && r != -ENODEV)
		log_ratelimited(&s->rl, LOG_LEVEL_WARNING,
				"input %s: cannot set the lock lights of %s: %s", s->name,
				input_source_devnode(s->src), strerror(-r));
}

/* The lights a source shows changed (the focus moved, or its target set
 * them). */
static void on_route_leds(void *data, size_t source, unsigned leds)
{
	struct input_manager *m = data;

	if (source < m->n_route && m->route[source])
		show_leds(m->route[source], leds);
}

static const struct input_router_hooks router_hooks = {
	.write = on_route_write,
	.focus = on_route_focus,
	.grab = on_route_grab,
	.leds = on_route_leds,
};

/* A sink's readers set its lights (the desktop on the host's sink, a
 * guest through virtio-input-host on a VM's): the router hears of it by
 * number, as of a frame. */
static void on_sink_readable(struct loop_source *io, int fd, uint32_t revents, void *data)
{
	struct input_manager *m = data;

	for (size_t i = 0; i < m->n_sources; i++) {
		struct msource *s = m->sources[i];

		for (size_t j = 0; j < s->n_sinks; j++) {
			struct msink *k = &s->sinks[j];
			unsigned leds;
			int r;

			if (k->io != io)
				continue;
			r = input_sink_read_leds(k->sink, &leds);
			if (r < 0) {
				log_warning("input %s: vm %s: reading %s: %s; its lock lights are "
					    "no longer followed",
					    s->name, k->vm, k->name, strerror(-r));
				loop_source_remove(k->io);
				k->io = NULL;
				return;
			}
			for (size_t t = 0; r > 0 && t < s->n_to; t++)
				if (s->to[t] == k)
					input_router_sink_leds(m->router, s->index, t, leds);
			return;
		}
	}
}

/* Point each of the router's targets at s's sink for it, in the router's
 * numbering of now: names are looked up here, never per frame. */
static void route_sinks(struct input_manager *m, struct msource *s)
{
	free(s->to);
	s->n_to = input_router_n_targets(m->router);
	s->to = xcalloc(s->n_to, sizeof(*s->to));
	for (size_t t = 0; t < s->n_to; t++)
		s->to[t] = find_sink(s, input_router_target_name(m->router, t));
}

/* The router took conf: the sources by its numbers, and their sinks. */
static void route_all(struct input_manager *m, const struct conf *conf)
{
	free(m->route);
	m->n_route = conf->n_inputs;
	m->route = xcalloc(m->n_route ? m->n_route : 1, sizeof(*m->route));
	for (size_t i = 0; i < m->n_route; i++) {
		struct msource *s = find_source(m, conf->inputs[i].name);

		if (!s)
			continue; /* never: input_manager_set_conf made them all */
		s->index = i;
		m->route[i] = s;
		route_sinks(m, s);
		for (size_t t = 0; t < s->n_to; t++)
			if (s->to[t] && s->to[t]->sink)
				input_router_sink_leds(m->router, i, t,
						       input_sink_leds(s->to[t]->sink));
	}
}

/* ----------------------------------------------------------------- sources */

/* A source opened: warn of capabilities its sinks lack; make the sinks still missing. */
static void on_opened(void *data, struct input_source *src, const struct libevdev *dev)
{
	struct msource *s = data;

	for (size_t i = 0; i < s->n_sinks; i++) {
		struct msink *k = &s->sinks[i];
		const struct libevdev *have = k->sink ? input_sink_caps(k->sink) : NULL;
		char *missing = have ? input_cache_missing(have, dev) : NULL;

		if (missing)
			log_warning("input %s: vm %s: %s has capabilities its sink %s lacks (%s); "
				    "those events are dropped until the sink is made anew "
				    "(restart vmplugd while the VM is off; the cache is updated)",
				    s->name, k->vm, input_source_devnode(src), k->name, missing);
		free(missing);
	}
	libevdev_free(s->caps);
	s->caps = input_cache_copy(dev);
	s->origin = INPUT_CAPS_DEVICE;
	/* Sinks that could not be made at start (uinput missing then) get
	 * another chance now. */
	for (size_t i = 0; i < s->n_sinks; i++) {
		if (s->sinks[i].sink)
			continue;
		if (make_sink(s->m, s, &s->sinks[i]))
			notify(s->m, s->sinks[i].vm);
	}
	if (!input_manager_released(s->m))
		show_leds(s, input_router_leds(s->m->router, s->index));
}

/* A source's frame: to the router by number; it writes to the sinks. */
static void on_frame(void *data, struct input_source *src, const struct input_event *ev, size_t n)
{
	struct msource *s = data;
	struct input_manager *m = s->m;

	input_router_frame(m->router, s->index, input_source_grabbed(src), ev, n, now_usec());
}

/* A source went away: the router releases what it delivered, then every
 * sink of it what it still holds. */
static void on_closed(void *data, struct input_source *src)
{
	struct msource *s = data;
	struct input_manager *m = s->m;

	input_router_source_gone(m->router, s->index);
	/* Each sink knows what it holds: a key may have gone to another
	 * sink than the one that is focused now. */
	for (size_t i = 0; i < s->n_sinks; i++) {
		struct msink *k = &s->sinks[i];
		int r;

		if (!k->sink || input_keys_count(input_sink_keys(k->sink)) == 0)
			continue;
		r = input_sink_release_all(k->sink);
		if (r < 0)
			log_warning("input %s: vm %s: cannot release the keys held on %s: %s",
				    s->name, k->vm, k->name, strerror(-r));
	}
}

static const struct input_source_hooks source_hooks = {
	.opened = on_opened,
	.frame = on_frame,
	.closed = on_closed,
};

/* What s's sinks are made from: the cache, else a generic keyboard or mouse. */
static void load_caps(struct input_manager *m, struct msource *s)
{
	enum input_cache_kind kind;
	const char *why;

	if (input_cache_load(m->cache_dir, s->name, &s->caps) == 0) {
		s->origin = INPUT_CAPS_CACHE;
		return;
	}
	kind = input_cache_guess_kind(s->name, s->device, &why);
	s->caps = input_cache_fallback(kind);
	s->origin = kind == INPUT_CACHE_MOUSE ? INPUT_CAPS_FALLBACK_MOUSE
					      : INPUT_CAPS_FALLBACK_KEYBOARD;
	log_info("input %s: no usable capability cache in %s yet: its sinks start as a generic "
		 "%s, because %s; they take the real capabilities when made after the device "
		 "was seen",
		 s->name, m->cache_dir, input_cache_kind_name(kind), why);
}

/* A source for [input] in, with the capabilities its sinks start from. */
static struct msource *add_source(struct input_manager *m, const struct conf_input *in)
{
	struct msource *s = xnew(struct msource);

	s->m = m;
	s->name = xstrdup(in->name);
	s->device = xstrdup(in->device);
	s->grab_all = in->grab_all;
	s->repeat = in->repeat;
	s->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 3);
	s->index = NONE;
	load_caps(m, s);
	s->src = input_source_new(m->loop, s->name, s->device, m->cache_dir, &source_hooks, s);
	input_source_set_grab(s->src, !m->ungrabbed);
	m->sources = xrealloc(m->sources, (m->n_sources + 1) * sizeof(*m->sources));
	m->sources[m->n_sources++] = s;
	return s;
}

/* Destroy s's sinks (releasing their keys), then s. */
static void free_source(struct msource *s)
{
	struct input_manager *m = s->m;

	if (s->index < m->n_route)
		m->route[s->index] = NULL; /* the router forgets it at its reload */
	/* Sinks first: releasing keys there must not wait for the source. */
	for (size_t i = 0; i < s->n_sinks; i++)
		destroy_sink(&s->sinks[i]);
	free(s->sinks);
	free(s->to);
	input_source_free(s->src);
	libevdev_free(s->caps);
	free(s->device);
	free(s->name);
	free(s);
}

/* Does vm name input in its inputs =? */
static bool vm_lists(const struct conf_vm *vm, const char *input)
{
	return vm->inputs && strv_contains(vm->inputs, input);
}

/* Log where s goes, when that changed. */
static void explain_targets(struct msource *s)
{
	char **vms = NULL, *list;

	for (size_t i = 0; i < s->n_sinks; i++)
		if (!is_host(s->sinks[i].vm))
			strv_append(&vms, s->sinks[i].vm);
	if (!vms)
		return;
	list = strv_join(vms, ", ");
	log_info("input %s: goes to the host or to VM(s) %s, whichever has the focus", s->name,
		 list);
	free(list);
	strv_free(vms);
}

/* Switching is used when some VM takes input: then every source also
 * gets a sink for the host, vmplug-host-SOURCE, that the desktop sees. */
static bool switching(const struct conf *conf)
{
	for (size_t v = 0; v < conf->n_vms; v++)
		if (conf->vms[v].inputs && conf->vms[v].inputs[0])
			return true;
	return false;
}

/* Move the sink of vm from old (n_old) to s->sinks, or make it; vm's
 * grab toggle goes with it (a new one means new QEMU objects). */
static bool keep_or_add(struct input_manager *m, struct msource *s, struct msink *old, size_t n_old,
			const struct conf_vm *vm)
{
	const char *name = vm ? vm->name : INPUT_ROUTER_HOST;
	const char *grab_toggle = vm ? vm->grab_toggle : NULL;
	struct msink *k;

	for (size_t i = 0; i < n_old; i++)
		if (old[i].vm && streq(old[i].vm, name)) {
			k = xappend(&s->sinks, &s->n_sinks, sizeof(*s->sinks));
			*k = old[i];
			old[i].vm = NULL; /* moved */
			if (!streq_null(k->grab_toggle, grab_toggle)) {
				k->grab_toggle = grab_toggle;
				notify(m, name);
			}
			if (vm && (!streq_null(k->qemu_user, vm->qemu_user) ||
				   !streq_null(k->qemu_group, vm->qemu_group))) {
				free(k->qemu_user);
				free(k->qemu_group);
				k->qemu_user = dup_or_null(vm->qemu_user);
				k->qemu_group = dup_or_null(vm->qemu_group);
				set_owner(s, k);
			}
			return false;
		}
	add_sink(m, s, vm);
	notify(m, name);
	return true;
}

/* Another device (or cache) for s: a new source object; the sinks, which
 * QEMU holds, stay. */
static void reopen(struct input_manager *m, struct msource *s, const char *device)
{
	on_closed(s, s->src);
	input_source_free(s->src);
	free(s->device);
	s->device = xstrdup(device);
	s->src = input_source_new(m->loop, s->name, s->device, m->cache_dir, &source_hooks, s);
	input_source_set_grab(s->src, !m->ungrabbed);
	log_info("input %s: now %s; it is opened when udev reports it", s->name, s->device);
}

/* Bring s's sinks in line with conf's VMs: remove, add, keep. */
static void sync_sinks(struct input_manager *m, struct msource *s, const struct conf *conf)
{
	struct msink *old = s->sinks;
	size_t n_old = s->n_sinks;
	bool changed = false;

	s->sinks = NULL;
	s->n_sinks = 0;
	for (size_t v = 0; v < conf->n_vms; v++)
		if (vm_lists(&conf->vms[v], s->name))
			changed |= keep_or_add(m, s, old, n_old, &conf->vms[v]);
	if (switching(conf))
		changed |= keep_or_add(m, s, old, n_old, NULL);
	for (size_t i = 0; i < n_old; i++) {
		if (!old[i].vm)
			continue;
		if (is_host(old[i].vm))
			log_info("input %s: no VM takes input any more: removing %s", s->name,
				 old[i].name);
		else
			log_info("input %s: vm %s no longer lists it: removing %s", s->name,
				 old[i].vm, old[i].name);
		char *vm = xstrdup(old[i].vm);

		destroy_sink(&old[i]);
		notify(m, vm);
		free(vm);
		changed = true;
	}
	free(old);
	route_sinks(m, s); /* the sinks moved */
	if (changed || n_old == 0)
		explain_targets(s);
}

/* ----------------------------------------------------------------- manager */

/* Sinks the fd store kept that the configuration no longer has go for good. */
static void drop_unclaimed(struct input_manager *m)
{
	for (size_t i = 0; i < m->n_stored; i++) {
		log_info("input: the fd store kept %s, which the configuration no longer has; "
			 "destroying it",
			 m->stored[i].name);
		input_fdstore_remove(m->stored[i].name);
		close(m->stored[i].fd);
	}
	input_fdstore_entries_free(m->stored, m->n_stored);
	m->stored = NULL;
	m->n_stored = 0;
}

struct input_manager *input_manager_new(struct loop *loop, const struct conf *conf,
					const struct input_manager_hooks *hooks, void *data)
{
	return input_manager_new_with(loop, conf, hooks, data, input_sink_create);
}

struct input_manager *input_manager_new_with(struct loop *loop, const struct conf *conf,
					     const struct input_manager_hooks *hooks, void *data,
					     input_sink_create_fn create)
{
	struct input_manager *m = xnew(struct input_manager);

	m->loop = loop;
	m->create_sink = create;
	if (hooks)
		m->hooks = *hooks;
	m->data = data;
	m->router = input_router_new(conf, &router_hooks, m);
	m->udev_wait_usec = UDEV_WAIT_USEC;
	m->udev_due = loop_timer_new(loop, on_udev_due, m);
	m->cache_dir = xstrdup(conf->daemon.cache_dir);
	m->n_stored = input_fdstore_take(SINK_PREFIX, &m->stored);
	if (m->n_stored)
		log_info("input: the service manager kept %zu sink(s) across the restart",
			 m->n_stored);
	m->starting = true;
	input_manager_set_conf(m, conf);
	m->starting = false;
	drop_unclaimed(m);
	return m;
}

void input_manager_free(struct input_manager *m)
{
	if (!m)
		return;
	input_router_free(m->router);
	for (size_t i = 0; i < m->n_sources; i++) {
		struct msource *s = m->sources[i];

		/* Keep what the store holds: the next vmplugd takes it back. */
		for (size_t j = 0; j < s->n_sinks; j++) {
			loop_source_remove(s->sinks[j].io);
			s->sinks[j].io = NULL;
			input_sink_free(s->sinks[j].sink);
			s->sinks[j].sink = NULL;
			s->sinks[j].stored = false;
		}
		free_source(s);
	}
	free(m->sources);
	free(m->route);
	loop_timer_free(m->udev_due);
	drop_unclaimed(m);
	free(m->cache_dir);
	free(m);
}

void input_manager_set_conf(struct input_manager *m, const struct conf *conf)
{
	bool dir_changed = !streq(m->cache_dir, conf->daemon.cache_dir);

	free(m->cache_dir);
	m->cache_dir = xstrdup(conf->daemon.cache_dir);
	if (conf->daemon.qemu_group && !m->global_group_warned)
		log_warning("config: qemu-group in [daemon] no longer applies: a VM's sinks are "
			    "root's alone (mode 600) unless its [vm] section sets qemu-user or "
			    "qemu-group; move the setting there (vmplug.conf(5))");
	m->global_group_warned = conf->daemon.qemu_group != NULL;
	/* Sources on another device (or cache) first, while the router's
	 * numbers still hold: it releases what they delivered. */
	for (size_t i = 0; i < conf->n_inputs; i++) {
		struct msource *s = find_source(m, conf->inputs[i].name);

		if (s && (!streq(s->device, conf->inputs[i].device) || dir_changed))
			reopen(m, s, conf->inputs[i].device);
	}
	/* Sources no longer configured go, with their sinks. */
	for (size_t i = 0; i < m->n_sources;) {
		struct msource *s = m->sources[i];

		if (conf_find_input(conf, s->name)) {
			i++;
			continue;
		}
		log_info("input %s: no longer configured: removing it and its sinks", s->name);
		for (size_t j = 0; j < s->n_sinks; j++)
			notify(m, s->sinks[j].vm);
		free_source(s);
		m->sources[i] = m->sources[--m->n_sources];
	}
	for (size_t i = 0; i < conf->n_inputs; i++) {
		const struct conf_input *in = &conf->inputs[i];
		struct msource *s = find_source(m, in->name);

		if (!s)
			s = add_source(m, in);
		if (s->grab_all != in->grab_all || s->repeat != in->repeat) {
			s->grab_all = in->grab_all;
			s->repeat = in->repeat;
			for (size_t j = 0; j < s->n_sinks; j++)
				notify(m, s->sinks[j].vm);
		}
		sync_sinks(m, s, conf);
	}
	input_router_set_conf(m->router, conf);
	route_all(m, conf);
}

void input_manager_udev(struct input_manager *m, const char *action, struct udev_device *dev)
{
	const char *devnode = udev_device_get_devnode(dev);

	if (devnode && !streq(action, "remove")) {
		/* udev sets the mode and group of new nodes from its rules:
		 * our sinks' owner goes on after that. */
		for (size_t i = 0; i < m->n_sources; i++)
			for (size_t j = 0; j < m->sources[i]->n_sinks; j++) {
				struct msink *k = &m->sources[i]->sinks[j];

				if (k->sink && input_sink_devnode(k->sink) &&
				    streq(input_sink_devnode(k->sink), devnode)) {
					set_owner(m->sources[i], k);
					/* udevd reports a device once its rules ran */
					if (k->udev_wait_until &&
					    udev_device_get_is_initialized(dev))
						udev_settled(m, k);
					/* late, but there: QEMU gets the link after all */
					if (k->by_node && has_link(k)) {
						log_info(
						    "input %s: vm %s: udev made " BY_ID "/%s at "
						    "last: QEMU gets it in place of %s",
						    m->sources[i]->name, k->vm, k->name, devnode);
						k->by_node = false;
						notify(m, k->vm);
					}
					return;
				}
			}
	}
	for (size_t i = 0; i < m->n_sources; i++)
		input_source_udev(m->sources[i]->src, action, dev);
}

void input_manager_udevd(struct input_manager *m, bool running)
{
	m->no_udevd = !running;
	if (running)
		return;
	for (size_t i = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i]->n_sinks; j++)
			if (m->sources[i]->sinks[j].udev_wait_until)
				udev_settled(m, &m->sources[i]->sinks[j]);
}

void input_manager_set_udev_wait(struct input_manager *m, uint64_t usec)
{
	uint64_t until = now_usec() + usec;

	m->udev_wait_usec = usec;
	for (size_t i = 0; i < m->n_sources; i++)
		for (size_t j = 0; j < m->sources[i]->n_sinks; j++) {
			struct msink *k = &m->sources[i]->sinks[j];

			if (k->udev_wait_until > until)
				k->udev_wait_until = until;
		}
	arm_udev_due(m);
}

void input_manager_set_grab(struct input_manager *m, bool grab)
{
	m->ungrabbed = !grab;
	for (size_t i = 0; i < m->n_sources; i++)
		input_source_set_grab(m->sources[i]->src, grab);
}

bool input_manager_grabbed(struct input_manager *m, const char *source)
{
	struct msource *s = find_source(m, source);

	return s && input_source_grabbed(s->src);
}

int input_manager_sink_write(struct input_manager *m, const char *source, const char *vm,
			     const struct input_event *ev, size_t n)
{
	struct msource *s = find_source(m, source);

	return s ? write_sink(s, find_sink(s, vm), ev, n) : -ENOENT;
}

void input_manager_vm_up(struct input_manager *m, const char *vm)
{
	input_router_vm_up(m->router, vm);
}

void input_manager_vm_down(struct input_manager *m, const char *vm)
{
	input_router_vm_down(m->router, vm);
}

int input_manager_switch(struct input_manager *m, const char *target)
{
	return input_router_switch(m->router, target);
}

const char *input_manager_focus(const struct input_manager *m)
{
	return input_router_focus(m->router);
}

bool input_manager_switching(const struct input_manager *m)
{
	return input_router_switching(m->router);
}

bool input_manager_released(const struct input_manager *m)
{
	return input_router_released(m->router);
}

size_t input_manager_check_held(struct input_manager *m, const char *vm)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_sources; i++) {
		struct msink *k = find_sink(m->sources[i], vm);

		if (!k || !k->sink || input_sink_grabbed(k->sink) != 0) {
			if (k)
				k->told_let_go = false;
			continue;
		}
		if (!k->told_let_go)
			log_warning(
			    "input %s: vm %s's QEMU has let go of %s (its grab toggle?) and "
			    "gets no keys from it: adding its input-linux object again",
			    m->sources[i]->name, vm, k->name);
		k->told_let_go = true;
		n++;
	}
	if (n)
		notify(m, vm);
	return n;
}

size_t input_manager_vm_sinks(struct input_manager *m, const char *vm, struct input_vm_sink **out)
{
	struct input_vm_sink *v = NULL;
	size_t n = 0;

	for (size_t i = 0; i < m->n_sources; i++) {
		struct msource *s = m->sources[i];
		struct msink *k = find_sink(s, vm);

		if (!k || !k->sink || !input_sink_devnode(k->sink) || k->udev_wait_until)
			continue;
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n].id = xasprintf("vmplug-in-%s", s->name);
		v[n].source = xstrdup(s->name);
		v[n].evdev = input_sink_link(k->sink, BY_ID);
		v[n].grab_all = s->grab_all;
		v[n].repeat = s->repeat;
		v[n].grab_toggle = k->grab_toggle;
		v[n].adopted = k->adopted;
		n++;
	}
	*out = v;
	return n;
}

void input_vm_sinks_free(struct input_vm_sink *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].id);
		free(s[i].source);
		free(s[i].evdev);
	}
	free(s);
}

size_t input_manager_sources(struct input_manager *m, struct input_source_status **out)
{
	struct input_source_status *st = m->n_sources ? xcalloc(m->n_sources, sizeof(*st)) : NULL;

	for (size_t i = 0; i < m->n_sources; i++) {
		struct msource *s = m->sources[i];
		enum input_source_state state = input_source_state(s->src);

		st[i].name = s->name;
		st[i].device = s->device;
		st[i].devnode = input_source_devnode(s->src);
		st[i].state = input_source_state_name(state);
		st[i].present = state != INPUT_SOURCE_ABSENT;
		st[i].grabbed = input_source_grabbed(s->src);
		st[i].caps = s->origin;
		st[i].keys_held = input_keys_count(input_source_keys(s->src));
	}
	*out = st;
	return m->n_sources;
}

size_t input_manager_sinks(struct input_manager *m, struct input_sink_status **out)
{
	struct input_sink_status *st = NULL;
	size_t n = 0;

	for (size_t i = 0; i < m->n_sources; i++) {
		struct msource *s = m->sources[i];

		for (size_t j = 0; j < s->n_sinks; j++) {
			struct msink *k = &s->sinks[j];

			st = xrealloc(st, (n + 1) * sizeof(*st));
			st[n] = (struct input_sink_status){
				.vm = k->vm,
				.source = s->name,
				.name = k->name,
				.devnode = k->sink ? input_sink_devnode(k->sink) : NULL,
				.error = k->error,
				.adopted = k->adopted,
				.stored = k->stored,
				.keys_held = k->sink ? input_keys_count(input_sink_keys(k->sink))
						     : 0,
			};
			n++;
		}
	}
	*out = st;
	return n;
}

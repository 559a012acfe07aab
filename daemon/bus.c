/* The D-Bus signal of a switch, with sd-bus on the loop (see bus.h). */
#include "config.h"

#include "daemon/bus.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-bus.h>
#endif

#include "util/log.h"
#include "util/util.h"

#ifdef HAVE_SYSTEMD
struct bus {
	struct loop *loop;
	sd_bus *bus;
	sd_bus_slot *object;
	struct loop_source *io;
	struct loop_timer *timer;
	bool warned; /* "cannot reach": once until it works again */
};

static const sd_bus_vtable vtable[] = {
	SD_BUS_VTABLE_START(0),
#ifdef SD_BUS_SIGNAL_WITH_NAMES
	SD_BUS_SIGNAL_WITH_NAMES("Switched", "ss", SD_BUS_PARAM(from) SD_BUS_PARAM(to), 0),
#else
	SD_BUS_SIGNAL("Switched", "ss", 0),
#endif
	SD_BUS_VTABLE_END,
};

/* Drop the connection and its watches; connect_bus() makes a new one at the next switch. */
static void disconnect(struct bus *b)
{
	loop_source_remove(b->io);
	b->io = NULL;
	loop_timer_disarm(b->timer);
	b->object = sd_bus_slot_unref(b->object);
	if (b->bus) {
		sd_bus_close(b->bus);
		b->bus = sd_bus_unref(b->bus);
	}
}

/* Warn once until the bus works again, and disconnect so the next switch retries. */
static void fail(struct bus *b, const char *what, int r)
{
	if (!b->warned)
		log_warning("dbus: %s: %s; switches are not announced on D-Bus until it works "
			    "(tried again at each switch)",
			    what, strerror(-r));
	b->warned = true;
	disconnect(b);
}

/* Watch what sd-bus wants next: fd events and its timeout. */
static void update(struct bus *b)
{
	int events = sd_bus_get_events(b->bus);
	uint64_t usec;

	if (events < 0) {
		fail(b, "the system bus connection broke", events);
		return;
	}
	loop_source_set_events(b->io, (events & POLLIN ? EPOLLIN : 0u) |
					  (events & POLLOUT ? EPOLLOUT : 0u));
	if (sd_bus_get_timeout(b->bus, &usec) >= 0 && usec != UINT64_MAX)
		loop_timer_arm(b->timer, usec);
	else
		loop_timer_disarm(b->timer);
}

/* Run sd-bus until it has nothing left to do, then watch what it wants next. */
static void process(struct bus *b)
{
	int r;

	do
		r = sd_bus_process(b->bus, NULL);
	while (r > 0);
	if (r < 0) {
		fail(b, "the system bus connection broke", r);
		return;
	}
	update(b);
}

static void on_io(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	process(data);
}

static void on_timer(struct loop_timer *t, void *data)
{
	struct bus *b = data;

	if (b->bus)
		process(b);
}

/* The reply to the name request: the signal is sent with or without the name, so only log. */
static int on_name(sd_bus_message *m, void *data, sd_bus_error *ret_error)
{
	const sd_bus_error *e = sd_bus_message_get_error(m);

	if (e)
		log_warning("dbus: cannot own the name %s on the system bus (%s): the signal "
			    "comes from vmplugd's unique name; is the bus policy %s.conf installed "
			    "in the bus's system.d?",
			    BUS_NAME, e->message ? e->message : e->name, BUS_NAME);
	else
		log_info("dbus: %s on the system bus", BUS_NAME);
	return 0;
}

/* Connect and export the Switched signal; on failure warn once and stay disconnected. */
static void connect_bus(struct bus *b)
{
	int r = sd_bus_open_system(&b->bus);

	if (r < 0) {
		b->bus = NULL;
		fail(b, "cannot reach the system bus", r);
		return;
	}
	r = sd_bus_add_object_vtable(b->bus, &b->object, BUS_PATH, BUS_INTERFACE, vtable, b);
	if (r >= 0)
		r = sd_bus_request_name_async(b->bus, NULL, BUS_NAME, 0, on_name, b);
	if (r >= 0) {
		b->io = loop_add_fd(b->loop, sd_bus_get_fd(b->bus), EPOLLIN, on_io, b);
		if (!b->io)
			r = -errno;
	}
	if (r < 0) {
		fail(b, "cannot use the system bus", r);
		return;
	}
	if (b->warned)
		log_info("dbus: the system bus can be reached again");
	b->warned = false;
	update(b);
}

struct bus *bus_new(struct loop *loop)
{
	struct bus *b = xnew(struct bus);

	b->loop = loop;
	b->timer = loop_timer_new(loop, on_timer, b);
	connect_bus(b);
	return b;
}

void bus_free(struct bus *b)
{
	if (!b)
		return;
	disconnect(b);
	loop_timer_free(b->timer);
	free(b);
}

void bus_switched(struct bus *b, const char *from, const char *to)
{
	int r;

	if (!b->bus)
		connect_bus(b);
	if (!b->bus)
		return;
	r = sd_bus_emit_signal(b->bus, BUS_PATH, BUS_INTERFACE, "Switched", "ss", from, to);
	if (r < 0) {
		fail(b, "cannot send the Switched signal", r);
		return;
	}
	update(b);
}

#else /* !HAVE_SYSTEMD */

struct bus {
	int unused;
};

struct bus *bus_new(struct loop *loop)
{
	return xnew(struct bus);
}

void bus_free(struct bus *b)
{
	free(b);
}

void bus_switched(struct bus *b, const char *from, const char *to)
{
}
#endif

/* Physical input sources: open, grab, read, resync, replug (see source.h). */
#include "config.h"

#include "input/source.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "input/cache.h"
#include "util/log.h"
#include "util/util.h"

/* Right after "add" the node may not exist yet (devtmpfs without udevd)
 * or udev may not have set its permissions: retry for a while. */
#define OPEN_RETRY_USEC (50 * USEC_PER_MSEC)
#define OPEN_RETRIES 40
/* Keys held when the device is opened: grabbing then would leave them
 * down for the host forever (their release never reaches it). */
#define SETTLE_POLL_USEC (20 * USEC_PER_MSEC)
#define SETTLE_MAX_USEC (3 * USEC_PER_SEC)
#define BUSY_RETRY_USEC (2 * USEC_PER_SEC)

struct input_source {
	struct loop *loop;
	char *name;
	char *device;
	char *cache_dir;
	struct input_source_hooks hooks;
	void *data;

	enum input_source_state state;
	char *devnode;
	int fd;
	struct libevdev *evdev;
	struct loop_source *io;
	struct loop_timer *timer;
	unsigned retries;
	uint64_t settle_deadline;
	bool syncing;
	bool want_grab; /* input_source_set_grab() */
	bool grabbed;
	struct input_frame frame;
	struct input_keys keys;
	struct libevdev *caps;
	struct log_ratelimit rl;
};

static void try_open(struct input_source *src);

struct input_source *input_source_new(struct loop *loop, const char *name, const char *device,
				      const char *cache_dir, const struct input_source_hooks *hooks,
				      void *data)
{
	struct input_source *src = xnew(struct input_source);

	src->loop = loop;
	src->name = xstrdup(name);
	src->device = xstrdup(device);
	src->cache_dir = xstrdup(cache_dir);
	if (hooks)
		src->hooks = *hooks;
	src->data = data;
	src->fd = -1;
	src->want_grab = true;
	src->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	return src;
}

/* Stop reading, ungrab and close; the state is the caller's to set. */
static void close_device(struct input_source *src)
{
	loop_source_remove(src->io);
	src->io = NULL;
	if (src->evdev && src->grabbed)
		libevdev_grab(src->evdev, LIBEVDEV_UNGRAB);
	src->grabbed = false;
	libevdev_free(src->evdev);
	src->evdev = NULL;
	closep(&src->fd);
	src->syncing = false;
	input_frame_reset(&src->frame);
}

/* Back to waiting for udev: closed, no devnode, no retry pending. */
static void set_absent(struct input_source *src)
{
	close_device(src);
	if (src->timer)
		loop_timer_disarm(src->timer);
	free(src->devnode);
	src->devnode = NULL;
	src->state = INPUT_SOURCE_ABSENT;
}

void input_source_free(struct input_source *src)
{
	if (!src)
		return;
	set_absent(src);
	loop_timer_free(src->timer);
	input_frame_clear(&src->frame);
	libevdev_free(src->caps);
	free(src->cache_dir);
	free(src->device);
	free(src->name);
	free(src);
}

/* The device is gone (or unusable): close, and forget what it held. */
static void lose(struct input_source *src, const char *why)
{
	bool was_open = src->io != NULL;
	size_t held = input_keys_count(&src->keys);

	log_info("input %s: %s %s; releasing the %zu key(s) and button(s) it held", src->name,
		 src->devnode ? src->devnode : src->device, why, held);
	memset(&src->keys, 0, sizeof(src->keys));
	set_absent(src);
	if (was_open && src->hooks.closed)
		src->hooks.closed(src->data, src);
}

/* A complete frame: update the keys held, hand it out, start the next. */
static void emit(struct input_source *src)
{
	input_keys_update(&src->keys, src->frame.ev, src->frame.n);
	if (src->hooks.frame)
		src->hooks.frame(src->data, src, src->frame.ev, src->frame.n);
	input_frame_reset(&src->frame);
}

/* Read until the kernel has no more, resyncing after SYN_DROPPED. */
static void on_readable(struct loop_source *io, int fd, uint32_t revents, void *data)
{
	struct input_source *src = data;
	struct input_event ev;

	for (;;) {
		int rc = libevdev_next_event(
		    src->evdev, src->syncing ? LIBEVDEV_READ_FLAG_SYNC : LIBEVDEV_READ_FLAG_NORMAL,
		    &ev);

		if (rc == -EAGAIN) {
			if (!src->syncing)
				return;
			src->syncing = false;
			if (input_frame_sync_done(&src->frame))
				emit(src);
			continue;
		}
		if (rc == -ENODEV) {
			lose(src, "was removed");
			return;
		}
		if (rc < 0) {
			char *why = xasprintf("cannot be read (%s)", strerror(-rc));

			lose(src, why);
			free(why);
			return;
		}
		if (rc == LIBEVDEV_READ_STATUS_SYNC && ev.type == EV_SYN &&
		    ev.code == SYN_DROPPED) {
			log_ratelimited(&src->rl, LOG_LEVEL_WARNING,
					"input %s: %s: the kernel dropped events (reader too "
					"slow); resynchronising",
					src->name, src->devnode);
			src->syncing = true;
		}
		if (input_frame_feed(&src->frame, rc, &ev))
			emit(src);
	}
}

/* Whether the device has any key or button down now (EVIOCGKEY). */
static bool keys_held(int fd)
{
	unsigned long bits[INPUT_KEYS_LONGS] = { 0 };

	if (ioctl(fd, EVIOCGKEY(sizeof(bits)), bits) < 0)
		return false;
	for (size_t i = 0; i < INPUT_KEYS_LONGS; i++)
		if (bits[i])
			return true;
	return false;
}

/* Record the capabilities; log when they differ from the cache. */
static void update_cache(struct input_source *src)
{
	struct libevdev *cached = NULL;
	char *path = input_cache_path(src->cache_dir, src->name);
	int r = input_cache_load(src->cache_dir, src->name, &cached);

	if (r == 0 && input_cache_equal(cached, src->caps)) {
		log_debug("input %s: capabilities match the cache %s", src->name, path);
		goto out;
	}
	if (r == 0) {
		char *more = input_cache_missing(cached, src->caps);
		char *less = input_cache_missing(src->caps, cached);

		log_info("input %s: %s (%s) differs from the cached capabilities%s%s%s%s; "
			 "updating %s",
			 src->name, src->devnode, libevdev_get_name(src->caps),
			 more ? ": it adds " : "", more ? more : "", less ? ", it lacks " : "",
			 less ? less : "", path);
		free(more);
		free(less);
	}
	if (r == -EPERM)
		goto out; /* the directory is refused: said by input_cache_load */
	r = input_cache_save(src->cache_dir, src->name, src->caps);
	if (r < 0)
		log_error("input %s: cannot write the capability cache %s: %s", src->name, path,
			  strerror(-r));
	else if (!cached)
		log_info("input %s: capabilities of %s recorded in %s", src->name,
			 libevdev_get_name(src->caps), path);
out:
	libevdev_free(cached);
	free(path);
}

/* Grab (unless left to the host) and start reading; EBUSY retries later. */
static void grab(struct input_source *src)
{
	int r;

	if (src->want_grab && !src->grabbed) {
		r = libevdev_grab(src->evdev, LIBEVDEV_GRAB);
		if (r == -EBUSY) {
			if (src->state != INPUT_SOURCE_BUSY)
				log_error("input %s: %s is grabbed by another program (EVIOCGRAB: "
					  "device busy), so vmplug cannot take it; `fuser -v %s` "
					  "names it (another vmplugd, a QEMU input-linux on the "
					  "physical device, evtest --grab?). Retrying every %llu s",
					  src->name, src->devnode, src->devnode,
					  (unsigned long long)(BUSY_RETRY_USEC / USEC_PER_SEC));
			src->state = INPUT_SOURCE_BUSY;
			loop_timer_arm_in(src->timer, BUSY_RETRY_USEC);
			return;
		}
		if (r < 0) {
			log_error("input %s: cannot grab %s: %s", src->name, src->devnode,
				  strerror(-r));
			close_device(src);
			src->state = INPUT_SOURCE_FAILED;
			return;
		}
		src->grabbed = true;
	}
	if (src->io) {
		/* open already: grabbed again */
		src->state = src->grabbed ? INPUT_SOURCE_OPEN : INPUT_SOURCE_RELEASED;
		log_info("input %s: %s grabbed again", src->name, src->devnode);
		return;
	}
	src->io = loop_add_fd(src->loop, src->fd, EPOLLIN, on_readable, src);
	if (!src->io) {
		log_error("input %s: cannot watch %s: %m", src->name, src->devnode);
		close_device(src);
		src->state = INPUT_SOURCE_FAILED;
		return;
	}
	src->state = src->grabbed ? INPUT_SOURCE_OPEN : INPUT_SOURCE_RELEASED;
	libevdev_free(src->caps);
	src->caps = input_cache_copy(src->evdev);
	log_info("input %s: %s (%s, %04x:%04x) opened and %s", src->name, src->devnode,
		 libevdev_get_name(src->evdev), libevdev_get_id_vendor(src->evdev),
		 libevdev_get_id_product(src->evdev),
		 src->grabbed ? "grabbed" : "left to the host (not grabbed)");
	update_cache(src);
	if (src->hooks.opened)
		src->hooks.opened(src->data, src, src->caps);
	/* Events may have queued up since the open. */
	if (src->io)
		on_readable(src->io, src->fd, EPOLLIN, src);
}

/* Grab only once no key is held, or the host keeps it down (3 s at most). */
static void settle(struct input_source *src)
{
	if (keys_held(src->fd) && now_usec() < src->settle_deadline) {
		src->state = INPUT_SOURCE_SETTLING;
		loop_timer_arm_in(src->timer, SETTLE_POLL_USEC);
		return;
	}
	grab(src);
}

/* Open the node, retrying while udev is still making it usable. */
static void try_open(struct input_source *src)
{
	int fd, r;

	fd = open(src->devnode, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == EACCES)
		fd = open(src->devnode, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if ((r == -ENOENT || r == -EACCES || r == -ENXIO) && src->retries < OPEN_RETRIES) {
			src->retries++;
			src->state = INPUT_SOURCE_OPENING;
			loop_timer_arm_in(src->timer, OPEN_RETRY_USEC);
			return;
		}
		log_error("input %s: cannot open %s: %s", src->name, src->devnode, strerror(-r));
		src->state = INPUT_SOURCE_FAILED;
		return;
	}
	src->fd = fd;
	r = libevdev_new_from_fd(fd, &src->evdev);
	if (r < 0) {
		log_error("input %s: %s is not a usable evdev device (%s); check `device =` in "
			  "[input \"%s\"]",
			  src->name, src->devnode, strerror(-r), src->name);
		src->evdev = NULL;
		close_device(src);
		src->state = INPUT_SOURCE_FAILED;
		return;
	}
	src->settle_deadline = now_usec() + SETTLE_MAX_USEC;
	if (keys_held(fd))
		log_info("input %s: %s has keys held down; waiting for their release before "
			 "grabbing it",
			 src->name, src->devnode);
	settle(src);
}

/* The one timer serves opening, settling and busy retries alike. */
static void on_timer(struct loop_timer *t, void *data)
{
	struct input_source *src = data;

	switch (src->state) {
	case INPUT_SOURCE_OPENING:
		try_open(src);
		break;
	case INPUT_SOURCE_SETTLING:
		settle(src);
		break;
	case INPUT_SOURCE_BUSY:
		grab(src);
		break;
	default:
		break;
	}
}

void input_source_set_grab(struct input_source *src, bool grab)
{
	src->want_grab = grab;
	if (!src->io)
		return; /* not open yet: grab() decides once it is */
	if (!grab) {
		if (src->grabbed) {
			libevdev_grab(src->evdev, LIBEVDEV_UNGRAB);
			log_info("input %s: %s ungrabbed: the host has it", src->name,
				 src->devnode);
		}
		src->grabbed = false;
		loop_timer_disarm(src->timer);
		src->state = INPUT_SOURCE_RELEASED;
		return;
	}
	if (src->grabbed || src->state != INPUT_SOURCE_RELEASED)
		return;
	src->settle_deadline = now_usec() + SETTLE_MAX_USEC;
	settle(src);
}

int input_source_set_leds(struct input_source *src, unsigned leds)
{
	struct input_event ev[33];
	size_t n = 0;
	ssize_t w;

	if (!src->evdev)
		return -ENODEV;
	/* Every light, not only those that seem to differ: what vmplugd read
	 * back of its last write may be behind, and the kernel passes on
	 * only the lights that change anyway. */
	for (unsigned code = 0; code < 32 && code <= LED_MAX; code++)
		if (libevdev_has_event_code(src->evdev, EV_LED, code))
			ev[n++] = (struct input_event){ .type = EV_LED,
							.code = (unsigned short)code,
							.value = !!(leds & (1u << code)) };
	if (n == 0)
		return 0;
	ev[n++] = (struct input_event){ .type = EV_SYN, .code = SYN_REPORT };
	do
		w = write(src->fd, ev, n * sizeof(ev[0]));
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	return (size_t)w == n * sizeof(ev[0]) ? 0 : -EIO;
}

int input_source_open(struct input_source *src, const char *devnode)
{
	set_absent(src);
	if (!src->timer)
		src->timer = loop_timer_new(src->loop, on_timer, src);
	src->devnode = xstrdup(devnode);
	src->retries = 0;
	src->state = INPUT_SOURCE_OPENING;
	try_open(src);
	return src->state == INPUT_SOURCE_FAILED ? -EIO : 0;
}

/* Whether the symlink chain at link reaches devnode. Followed with
 * readlink() and compared at every hop, rather than realpath(): udev's
 * links are short chains of relative links, and a test harness that
 * fakes /dev may have the node itself be a link (umockdev: to a pty). */
static bool leads_to(const char *link, const char *devnode)
{
	char *cur = path_normalize(link), *next;
	bool found = streq(cur, devnode);

	for (int hops = 0; hops < 16 && !found && (next = path_link_target(cur)); hops++) {
		free(cur);
		cur = next;
		found = streq(cur, devnode);
	}
	free(cur);
	return found;
}

/* Whether dev (at devnode) is the configured device, by any of its names. */
static bool names_device(struct input_source *src, struct udev_device *dev, const char *devnode)
{
	struct udev_list_entry *e;

	if (streq(devnode, src->device))
		return true;
	udev_list_entry_foreach(e, udev_device_get_devlinks_list_entry(dev)) {
		if (streq(udev_list_entry_get_name(e), src->device))
			return true;
	}
	/* Enumerated without a udev database, or events from the kernel
	 * without udevd: no DEVLINKS, so follow the link ourselves. */
	return leads_to(src->device, devnode);
}

/* The open device still answers (a replug can reuse the eventN number). */
static bool alive(struct input_source *src)
{
	int version = 0; /* (umockdev sends the buffer as it is, even for a read) */

	return src->fd >= 0 && ioctl(src->fd, EVIOCGVERSION, &version) == 0;
}

bool input_source_udev(struct input_source *src, const char *action, struct udev_device *dev)
{
	const char *devnode = udev_device_get_devnode(dev);
	const char *sysname = udev_device_get_sysname(dev);

	if (!devnode || !sysname || !startswith(sysname, "event"))
		return false;
	if (streq(action, "remove")) {
		if (!src->devnode || !streq(src->devnode, devnode))
			return false;
		if (src->io)
			lose(src, "was removed");
		else
			set_absent(src);
		return true;
	}
	if (!names_device(src, dev, devnode))
		return false;
	if (src->devnode && streq(src->devnode, devnode) && src->state != INPUT_SOURCE_FAILED &&
	    (!src->io || alive(src)))
		return true; /* a "change", or coldplug of what is open */
	if (src->io)
		lose(src, "was replaced");
	input_source_open(src, devnode);
	return true;
}

const char *input_source_name(const struct input_source *src)
{
	return src->name;
}

const char *input_source_device(const struct input_source *src)
{
	return src->device;
}

const char *input_source_devnode(const struct input_source *src)
{
	return src->devnode;
}

enum input_source_state input_source_state(const struct input_source *src)
{
	return src->state;
}

const char *input_source_state_name(enum input_source_state state)
{
	static const char *const names[] = {
		[INPUT_SOURCE_ABSENT] = "absent",     [INPUT_SOURCE_OPENING] = "opening",
		[INPUT_SOURCE_SETTLING] = "settling", [INPUT_SOURCE_BUSY] = "busy",
		[INPUT_SOURCE_OPEN] = "open",         [INPUT_SOURCE_FAILED] = "failed",
		[INPUT_SOURCE_RELEASED] = "released",
	};

	return state < ARRAY_SIZE(names) ? names[state] : "?";
}

bool input_source_grabbed(const struct input_source *src)
{
	return src->grabbed;
}

const struct input_keys *input_source_keys(const struct input_source *src)
{
	return &src->keys;
}

const struct libevdev *input_source_caps(const struct input_source *src)
{
	return src->caps;
}

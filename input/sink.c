/* Persistent uinput sinks and their frame writer (see sink.h). */
#include "config.h"

#include "input/sink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libevdev/libevdev-uinput.h>
#include <libevdev/libevdev.h>
#include <linux/uinput.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "input/cache.h"
#include "util/log.h"
#include "util/util.h"

struct input_sink {
	char *name;
	int fd;
	struct libevdev_uinput *uidev; /* NULL for writer-only and adopted sinks */
	struct libevdev *caps;
	char *devnode;
	dev_t rdev; /* its event node's device number, as the kernel says (sysfs) */
	char *syspath;
	bool repeats;
	bool persistent;
	bool adopted;
	struct input_keys keys;
	unsigned leds;           /* set by its readers (EV_LED codes below 32) */
	struct input_event *buf; /* the filtered frame */
	size_t cap;
};

/* The struct alone, shared by creating and adopting a sink: caps copied and named name. */
static struct input_sink *sink_new(const char *name, int fd, const struct libevdev *caps)
{
	struct input_sink *s = xnew(struct input_sink);

	s->name = xstrdup(name);
	s->fd = fd;
	if (caps) {
		s->caps = input_cache_copy(caps);
		libevdev_set_name(s->caps, name);
		s->repeats = libevdev_has_event_type(s->caps, EV_REP);
	}
	return s;
}

static void find_node(struct input_sink *s);

int input_sink_create(const char *name, const struct libevdev *caps, struct input_sink **out)
{
	struct input_sink *s;
	const char *v;
	int fd, r;

	fd = open("/dev/uinput", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	s = sink_new(name, fd, caps);
	/* Force feedback through uinput needs a process answering
	 * UI_BEGIN_FF_UPLOAD; without one every upload hangs for seconds. */
	libevdev_disable_event_type(s->caps, EV_FF);
	r = libevdev_uinput_create_from_device(s->caps, fd, &s->uidev);
	if (r < 0) {
		s->uidev = NULL;
		input_sink_free(s);
		return r;
	}
	if ((v = libevdev_uinput_get_syspath(s->uidev))) {
		s->syspath = xstrdup(v);
		find_node(s);
	}
	*out = s;
	return 0;
}

struct input_sink *input_sink_new_fd(const char *name, int fd, const struct libevdev *caps)
{
	return sink_new(name, fd, caps);
}

/* The sysfs attribute `name` of a device directory, without its newline. */
static char *read_attr(const char *dir, const char *attr)
{
	char buf[256];
	ssize_t n = read_small_file(dir, attr, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return xstrdup(buf);
}

/* The device number in a sysfs `dev` attribute ("13:67"); 0 if unreadable. */
static dev_t read_devnum(const char *dir)
{
	char buf[32];
	ssize_t n = read_small_file(dir, "dev", buf, sizeof(buf) - 1);
	unsigned maj, min;

	if (n < 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%u:%u", &maj, &min) != 2)
		return 0;
	return makedev(maj, min);
}

/* The sink's event node, from what the kernel says of its own device
 * (s->syspath's eventN and its device number): /dev/input/eventN when
 * that node is the device, else none (logged). */
static void find_node(struct input_sink *s)
{
	DIR *d = opendir(s->syspath);
	struct dirent *e;
	char *dir = NULL;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (startswith(e->d_name, "event")) {
			dir = xasprintf("%s/%s", s->syspath, e->d_name);
			s->devnode = xasprintf("/dev/input/%s", e->d_name);
			break;
		}
	closedir(d);
	if (!dir)
		return;
	s->rdev = read_devnum(dir);
	free(dir);
	if (s->rdev && input_sink_is_node(s, s->devnode) == 1)
		return;
	log_warning("input: %s: %s is not the node of %s; the sink is left without a node", s->name,
		    s->devnode, s->syspath);
	free(s->devnode);
	s->devnode = NULL;
}

int input_sink_adopt(int fd, const char *name, const struct libevdev *caps, struct input_sink **out)
{
	char sysname[64], *syspath, *sysfs_name;
	struct input_sink *s;
	int r;

	r = ioctl(fd, UI_GET_SYSNAME(sizeof(sysname)), sysname);
	if (r < 0)
		return errno == EINVAL || errno == ENOTTY ? -ENOTTY : -errno;
	sysname[sizeof(sysname) - 1] = '\0';
	syspath = xasprintf("/sys/devices/virtual/input/%s", sysname);
	sysfs_name = read_attr(syspath, "name");
	if (!sysfs_name || !streq(sysfs_name, name)) {
		free(sysfs_name);
		free(syspath);
		return -ESTALE;
	}
	free(sysfs_name);
	s = sink_new(name, fd, caps);
	s->adopted = true;
	s->syspath = syspath;
	find_node(s);
	*out = s;
	return 0;
}

void input_sink_free(struct input_sink *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		input_sink_release_all(s);
	if (s->uidev) {
		/* libevdev_uinput_destroy() always says UI_DEV_DESTROY, which
		 * would take the node from QEMU although the fd store keeps a
		 * descriptor. Point our fd number at /dev/null first (dup2 is
		 * atomic): the ioctl then fails harmlessly and the uinput file
		 * lives on in the store. */
		if (s->persistent) {
			int null = open("/dev/null", O_RDWR | O_CLOEXEC);

			if (null >= 0) {
				dup2(null, s->fd);
				close(null);
			}
		}
		libevdev_uinput_destroy(s->uidev);
	} else if (s->adopted && !s->persistent && s->fd >= 0) {
		(void)ioctl(s->fd, UI_DEV_DESTROY);
	}
	closep(&s->fd);
	libevdev_free(s->caps);
	free(s->buf);
	free(s->devnode);
	free(s->syspath);
	free(s->name);
	free(s);
}

/* Write the whole frame at once; a short write counts as an error. */
static int write_frame(struct input_sink *s, const struct input_event *ev, size_t n)
{
	size_t len = n * sizeof(*ev);
	ssize_t w;

	do
		w = write(s->fd, ev, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	if ((size_t)w != len)
		return -EIO;
	return 0;
}

int input_sink_write(struct input_sink *s, const struct input_event *ev, size_t n)
{
	size_t m = 0;
	bool content = false;
	int r;

	if (n > s->cap) {
		s->cap = n;
		s->buf = xrealloc(s->buf, n * sizeof(*s->buf));
	}
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == EV_KEY && ev[i].value == 2 && s->repeats)
			continue;
		if (ev[i].type == EV_SYN && ev[i].code == SYN_DROPPED)
			continue;
		if (ev[i].type != EV_SYN)
			content = true;
		s->buf[m++] = ev[i];
	}
	if (!content)
		return 0;
	r = write_frame(s, s->buf, m);
	if (r == 0)
		input_keys_update(&s->keys, s->buf, m);
	return r;
}

int input_sink_release_all(struct input_sink *s)
{
	struct input_event *ev = NULL;
	size_t n = input_keys_release_frame(&s->keys, &ev);
	int r = 0;

	if (n == 0)
		return 0;
	r = write_frame(s, ev, n);
	/* Whether or not the write went through, the device must not be
	 * told again later that these keys are up. */
	memset(&s->keys, 0, sizeof(s->keys));
	free(ev);
	return r;
}

int input_sink_read_leds(struct input_sink *s, unsigned *leds)
{
	struct input_event ev[64];
	unsigned old = s->leds;
	ssize_t n;

	do
		n = read(s->fd, ev, sizeof(ev));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (size_t i = 0; i < (size_t)n / sizeof(ev[0]); i++) {
		if (ev[i].type != EV_LED || ev[i].code >= 32)
			continue; /* sounds, force feedback requests, ... */
		if (ev[i].value)
			s->leds |= 1u << ev[i].code;
		else
			s->leds &= ~(1u << ev[i].code);
	}
	if (s->leds == old)
		return 0;
	*leds = s->leds;
	return 1;
}

unsigned input_sink_leds(const struct input_sink *s)
{
	return s->leds;
}

void input_sink_set_persistent(struct input_sink *s, bool persistent)
{
	s->persistent = persistent;
}

int input_sink_owner_of(const char *user, const char *group, struct input_sink_owner *o,
			const char **missing)
{
	struct input_sink_owner r = { 0, 0, 0600 };

	if (user) {
		struct passwd *pw = getpwnam(user);

		if (!pw) {
			*missing = user;
			return -ENOENT;
		}
		r.uid = pw->pw_uid;
	}
	if (group) {
		struct group *g = getgrnam(group);

		if (!g) {
			*missing = group;
			return -ENOENT;
		}
		r.gid = g->gr_gid;
		r.mode = 0660;
	}
	*o = r;
	return 0;
}

int input_sink_set_owner(struct input_sink *s, const struct input_sink_owner *o)
{
	if (!s->devnode)
		return -ENODEV;
	if (chmod(s->devnode, 0600) < 0 || chown(s->devnode, o->uid, o->gid) < 0 ||
	    chmod(s->devnode, o->mode) < 0)
		return -errno;
	return 0;
}

const char *input_sink_name(const struct input_sink *s)
{
	return s->name;
}

const char *input_sink_devnode(const struct input_sink *s)
{
	return s->devnode;
}

int input_sink_grabbed(const struct input_sink *s)
{
	int fd, r;

	if (!s->devnode)
		return -ENODEV;
	fd = open(s->devnode, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, EVIOCGRAB, (void *)1) == 0) {
		(void)ioctl(fd, EVIOCGRAB, (void *)0);
		r = 0;
	} else {
		r = errno == EBUSY ? 1 : -errno;
	}
	close(fd);
	return r;
}

void input_sink_set_node(struct input_sink *s, const char *devnode, dev_t rdev)
{
	free(s->devnode);
	s->devnode = xstrdup(devnode);
	s->rdev = rdev;
}

int input_sink_is_node(const struct input_sink *s, const char *path)
{
	char *cur, *next;
	struct stat st;
	int r;

	if (!s->rdev)
		return -ENODEV;
	/* Links followed as stat() would, but hop by hop: see path_link_target(). */
	cur = path_normalize(path);
	for (int hops = 0;
	     hops < 16 && !streq_null(cur, s->devnode) && (next = path_link_target(cur)); hops++) {
		free(cur);
		cur = next;
	}
	r = stat(cur, &st) < 0 ? -errno : S_ISCHR(st.st_mode) && st.st_rdev == s->rdev;
	free(cur);
	return r;
}

char *input_sink_link(const struct input_sink *s, const char *by_id_dir)
{
	char *link;
	int r;

	if (!s->devnode)
		return NULL;
	link = xasprintf("%s/%s", by_id_dir, s->name);
	r = input_sink_is_node(s, link);
	if (r == 1)
		return link;
	if (r == 0)
		log_warning("input: %s leads to another device than the sink's node %s: "
			    "another device calls itself %s; using %s",
			    link, s->devnode, s->name, s->devnode);
	free(link);
	return xstrdup(s->devnode);
}

const char *input_sink_syspath(const struct input_sink *s)
{
	return s->syspath;
}

int input_sink_fd(const struct input_sink *s)
{
	return s->fd;
}

const struct libevdev *input_sink_caps(const struct input_sink *s)
{
	return s->caps;
}

const struct input_keys *input_sink_keys(const struct input_sink *s)
{
	return &s->keys;
}

bool input_sink_repeats(const struct input_sink *s)
{
	return s->repeats;
}

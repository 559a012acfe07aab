/* Test fixtures shared by the unit tests (see fixture.h). */
#include "config.h"

#include "tests/unit/fixture.h"

#include <check.h>
#include <libevdev/libevdev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "reconcile/reconcile.h"
#include "input/sink.h"
#include "tests/lib/testlib.h"
#include "util/util.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

struct conf *fixture_conf(const char *global, ...)
{
	char dir[] = "/tmp/vmplug-fixture-XXXXXX";
	char *vmdir, *path, **errors = NULL, *cmd;
	struct conf *conf = NULL;
	const char *name;
	va_list ap;
	int r;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	vmdir = xasprintf("%s/vm.d", dir);
	ck_assert_int_eq(mkdir(vmdir, 0755), 0);
	if (global) {
		path = xasprintf("%s/vmplug.conf", dir);
		write_file(path, global);
		free(path);
	}
	va_start(ap, global);
	while ((name = va_arg(ap, const char *))) {
		const char *text = va_arg(ap, const char *);

		path = xasprintf("%s/%s.conf", vmdir, name);
		write_file(path, text);
		free(path);
	}
	va_end(ap);
	r = conf_load(dir, NULL, &conf, &errors);
	ck_assert_msg(r == 0, "fixture config error: %s", errors && errors[0] ? errors[0] : "?");
	strv_free(errors);
	cmd = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(vmdir);
	return conf;
}

static unsigned parse_hex(const char *s)
{
	unsigned long v;

	ck_assert_msg(parse_uint(s, 16, 0xffff, &v) == 0, "bad hex '%s'", s);
	return (unsigned)v;
}

struct usb_device *fixture_usb(const char *desc)
{
	char **words = strv_split(desc, " ");
	char *syspath, *sep;
	struct usb_device *d;
	unsigned long bus;
	char *busstr;

	ck_assert_ptr_nonnull(words[0]);
	busstr = xstrndup(words[0], strcspn(words[0], "-"));
	if (startswith(busstr, "usb"))
		memmove(busstr, busstr + 3, strlen(busstr) - 2);
	ck_assert_int_eq(parse_uint(busstr, 10, 255, &bus), 0);
	/* /sys/devices/.../usb3/3-10/3-10.2: every hub on the way is a directory */
	syspath = xasprintf("/sys/devices/pci0000:00/0000:00:14.0/usb%lu", bus);
	if (!startswith(words[0], "usb")) {
		char *path = xstrdup(words[0]);

		for (char *p = path;; p = sep + 1) {
			char *prefix, *next;

			sep = strchr(p, '.');
			prefix = sep ? xstrndup(path, (size_t)(sep - path)) : xstrdup(path);
			next = xasprintf("%s/%s", syspath, prefix);
			free(syspath);
			free(prefix);
			syspath = next;
			if (!sep)
				break;
		}
		free(path);
	}
	d = usb_device_new(syspath, words[0]);
	d->bus = (unsigned)bus;
	d->device_class = 0;
	free(syspath);
	free(busstr);
	for (size_t i = 1; words[i]; i++) {
		char *w = words[i], *v = strchr(w, '=');

		ck_assert_msg(v != NULL, "bad word '%s'", w);
		*v++ = '\0';
		if (streq(w, "dev")) {
			unsigned long n;

			ck_assert_int_eq(parse_uint(v, 10, 127, &n), 0);
			d->devnum = (unsigned)n;
		} else if (streq(w, "vid")) {
			d->vendor = (int)parse_hex(v);
		} else if (streq(w, "pid")) {
			d->product = (int)parse_hex(v);
		} else if (streq(w, "serial")) {
			usb_device_set_serial(d, test_percent_decode(v));
		} else if (streq(w, "name")) {
			d->product_name = xstrdup(v);
		} else if (streq(w, "class")) {
			d->device_class = (int)parse_hex(v);
		} else if (streq(w, "if")) {
			char **classes = strv_split(v, ",");

			for (size_t j = 0; classes[j]; j++)
				usb_device_add_if_class(d, parse_hex(classes[j]));
			strv_free(classes);
		} else if (streq(w, "prop")) {
			char *eq = strchr(v, '=');

			ck_assert_ptr_nonnull(eq);
			*eq = '\0';
			usb_device_add_prop(d, v, eq + 1);
		} else if (streq(w, "tag")) {
			usb_device_add_tag(d, v);
		} else {
			ck_abort_msg("unknown word '%s'", w);
		}
	}
	d->devnode = xasprintf("/dev/bus/usb/%03u/%03u", d->bus, d->devnum);
	strv_free(words);
	return d;
}

void fixture_plug(struct reconcile *rc, const char *desc)
{
	reconcile_device_add(rc, fixture_usb(desc));
}

void fixture_unplug(struct reconcile *rc, const char *desc)
{
	struct usb_device *d = fixture_usb(desc);

	reconcile_device_remove(rc, d->syspath);
	usb_device_free(d);
}

char *fixture_events_text(const struct input_event *ev, size_t n)
{
	char **words = NULL, *s;

	for (size_t i = 0; i < n; i++) {
		const char *name = libevdev_event_code_get_name(ev[i].type, ev[i].code);
		char *w = ev[i].type == EV_SYN && name ? xstrdup(name)
			  : name                       ? xasprintf("%s:%d", name, ev[i].value)
				 : xasprintf("%u/%u:%d", ev[i].type, ev[i].code, ev[i].value);

		strv_append(&words, w);
		free(w);
	}
	s = words ? strv_join(words, " ") : xstrdup("");
	strv_free(words);
	return s;
}

int fixture_sink_peer = -1;
int fixture_host_peer = -1;

/* VM sinks after the first, by name. */
static struct {
	char *name;
	int peer;
} extra[8];
static size_t n_extra;

int fixture_sink_pair(const char *name, const struct libevdev *caps, struct input_sink **out)
{
	bool host = startswith(name, "vmplug-host-");
	int sv[2], *peer = host ? &fixture_host_peer : &fixture_sink_peer;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	if (!host && *peer >= 0) {
		ck_assert_uint_lt(n_extra, ARRAY_SIZE(extra));
		extra[n_extra].name = xstrdup(name);
		peer = &extra[n_extra++].peer;
	}
	ck_assert_int_eq(host ? *peer : -1, -1);
	*peer = sv[1];
	*out = input_sink_new_fd(name, sv[0], caps);
	return 0;
}

int fixture_peer_of(const char *name)
{
	for (size_t i = 0; i < n_extra; i++)
		if (streq(extra[i].name, name))
			return extra[i].peer;
	ck_abort_msg("no sink %s was made", name);
	return -1;
}

void fixture_peers_close(void)
{
	closep(&fixture_sink_peer);
	closep(&fixture_host_peer);
	for (size_t i = 0; i < n_extra; i++) {
		closep(&extra[i].peer);
		free(extra[i].name);
	}
	n_extra = 0;
}

/* Input sources against real libevdev and libudev on a umockdev testbed:
 * a fake evdev keyboard (ioctl replies written as data, events in evemu
 * format) is found through the udev watcher, opened, grabbed, recorded
 * in the capability cache, and its events arrive as frames on the sinks
 * (socketpairs here: /dev/uinput is not emulated); unplugging releases
 * what it held, replugging opens it again. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <umockdev.h>

#include "daemon/watch.h"
#include "input/cache.h"
#include "input/input-int.h"
#include "input/sink.h"
#include "tests/integration/usbbed.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/log.h"
#include "util/util.h"

#define DATA INPUT_DATA "/umockdev"
#define NODE "/dev/input/event5"
#define SYSPATH                                                                                    \
	"/sys/devices/pci0000:00/0000:00:14.0/usb3/3-10/3-10.3/3-10.3:1.0/0003:05F3:0007.0001/"    \
	"input/input5/event5"
#define LINK "/dev/input/by-id/usb-vmplug_test_keyboard-event-kbd"
/* What the fake keyboard types (kbd.events), as frames on a sink. */
#define TYPED                                                                                      \
	"MSC_SCAN:458756 KEY_A:1 SYN_REPORT | MSC_SCAN:458756 KEY_A:0 SYN_REPORT | "               \
	"KEY_LEFTSHIFT:1 SYN_REPORT | KEY_B:1 SYN_REPORT | KEY_B:0 SYN_REPORT"

/* ------------------------------------------------------------ fake sinks */

/* Frames received so far, as "KEY_A:1 SYN_REPORT" lines. */
static char **frames;

static void drain_sink(void)
{
	struct input_event ev[64];
	ssize_t n;

	while ((n = recv(fixture_sink_peer, ev, sizeof(ev), MSG_DONTWAIT)) > 0) {
		char *s = fixture_events_text(ev, (size_t)n / sizeof(ev[0]));

		strv_append(&frames, s);
		free(s);
	}
}

static char *frames_text(void)
{
	char *s = frames ? strv_join(frames, " | ") : xstrdup("");

	strv_free(frames);
	frames = NULL;
	return s;
}

/* ------------------------------------------------------------ the world */

static char **logged;

static void capture(enum log_level level, const char *msg, void *data)
{
	strv_append(&logged, msg);
	if (getenv("VMPLUG_TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

static bool logged_has(const char *needle)
{
	for (size_t i = 0; logged && logged[i]; i++)
		if (strstr(logged[i], needle))
			return true;
	return false;
}

static void on_usb_add(void *data, struct usb_device *d)
{
	usb_device_free(d);
}

static void on_usb_remove(void *data, const char *syspath)
{
}

static void on_input(void *data, const char *action, struct udev_device *dev)
{
	if (getenv("VMPLUG_TEST_VERBOSE"))
		fprintf(stderr, "udev: %s %s %s\n", action, udev_device_get_syspath(dev),
			udev_device_get_devnode(dev) ? udev_device_get_devnode(dev) : "-");
	input_manager_udev(data, action, dev);
}

static const struct watch_hooks watch_hooks = {
	.usb_add = on_usb_add,
	.usb_remove = on_usb_remove,
	.input = on_input,
};

/* The VMs whose sinks the manager said changed, in order. */
static char **changed;

static void on_changed(void *data, const char *vm)
{
	strv_append(&changed, vm);
}

static const struct input_manager_hooks manager_hooks = { .vm_sinks_changed = on_changed };

struct world {
	UMockdevTestbed *tb;
	char cache[64];
	struct conf *conf;
	struct loop *loop;
	struct input_manager *m;
	struct watch *w;
	input_sink_create_fn create; /* NULL: fixture_sink_pair */
};

/* ------------------------------------------------- sinks with a node */

/* The testbed the next sink's device appears on (world_init sets it). */
static UMockdevTestbed *sink_bed;

#define SINK_NODE "/dev/input/event909"
#define SINK_SYSPATH "/sys/devices/virtual/input/input909/event909"
#define SINK_LINK "/dev/input/by-id/vmplug-pc-kbd"

/* pc's sink as the kernel shows a new uinput device: its input909 and
 * event909 appear in sysfs, its node in /dev; udevd has not seen it yet
 * (no link, no database). Other sinks stay writer-only. The number is
 * one no real host has: umockdev does not redirect chmod and chown, so
 * giving the node to its owner reaches the real /dev. */
static int sink_with_node(const char *name, const struct libevdev *caps, struct input_sink **out)
{
	GError *err = NULL;
	struct stat st;

	fixture_sink_pair(name, caps, out);
	if (!streq(name, "vmplug-pc-kbd"))
		return 0;
	ck_assert_msg(umockdev_testbed_add_from_string(
			  sink_bed,
			  "P: /devices/virtual/input/input909/event909\nN: input/event909\n"
			  "E: DEVNAME=/dev/input/event909\nE: SUBSYSTEM=input\nE: MAJOR=13\n"
			  "E: MINOR=1005\nA: dev=13:1005\n\n"
			  "P: /devices/virtual/input/input909\nE: SUBSYSTEM=input\n"
			  "A: name=vmplug-pc-kbd\n",
			  &err),
		      "%s", err ? err->message : "");
	ck_assert_int_eq(stat(SINK_NODE, &st), 0);
	ck_assert(S_ISCHR(st.st_mode));
	input_sink_set_node(*out, SINK_NODE, st.st_rdev);
	return 0;
}

/* What QEMU would be told to open for pc's sink; NULL when it is not
 * offered. A new string. */
static char *pc_sink_evdev(struct world *w)
{
	struct input_vm_sink *vs;
	size_t n = input_manager_vm_sinks(w->m, "pc", &vs);
	char *evdev = n ? xstrdup(vs[0].evdev) : NULL;

	ck_assert_uint_le(n, 1);
	input_vm_sinks_free(vs, n);
	return evdev;
}

/* Run the loop until the manager says pc's sinks changed (or 5 s). */
static void wait_changed(struct world *w)
{
	for (int i = 0; i < 500 && !strv_contains(changed, "pc"); i++)
		loop_dispatch(w->loop, 10);
	ck_assert_msg(strv_contains(changed, "pc"), "pc's sinks were never said to change");
}

/* What udevd's rules would make: /dev/input/by-id/NAME -> target. */
static void by_id_link(UMockdevTestbed *tb, const char *name, const char *target)
{
	char *root = umockdev_testbed_get_root_dir(tb);
	char *dir = xasprintf("%s/dev/input/by-id", root), *link;

	g_free(root);
	ck_assert_int_eq(mkdir_p(dir, 0755), 0);
	link = xasprintf("%s/%s", dir, name);
	ck_assert_int_eq(symlink(target, link), 0);
	free(link);
	free(dir);
}

/* The testbed, the configuration and the manager, focused on pc; nothing
 * watches udev yet. */
static void world_init(struct world *w, const char *device)
{
	GError *err = NULL;
	char *global;

	w->tb = umockdev_testbed_new();
	sink_bed = w->tb;
	ck_assert_msg(umockdev_testbed_add_from_file(w->tb, DATA "/kbd.umockdev", &err), "%s",
		      err ? err->message : "");
	ck_assert_msg(umockdev_testbed_load_ioctl(w->tb, NODE, DATA "/kbd.ioctl", &err), "%s",
		      err ? err->message : "");
	ck_assert_msg(umockdev_testbed_load_evemu_events(w->tb, NODE, DATA "/kbd.events", &err),
		      "%s", err ? err->message : "");
	/* Enumerated devices have no DEVLINKS without a udev database: the
	 * source follows the link itself, as it does when udevd is absent. */
	by_id_link(w->tb, "usb-vmplug_test_keyboard-event-kbd", "../event5");
	global = xasprintf("[daemon]\ncache-dir = %s\n[input \"kbd\"]\ndevice = %s\n", w->cache,
			   device);
	w->conf = fixture_conf(global, "pc", "[vm]\nqmp-socket = /run/pc.qmp\ninputs = kbd\n",
			       NULL);
	free(global);
	w->loop = loop_new();
	w->m = input_manager_new_with(w->loop, w->conf, &manager_hooks, NULL,
				      w->create ? w->create : fixture_sink_pair);
	ck_assert_int_ge(fixture_sink_peer, 0);
	/* the router sends the keyboard to pc once pc runs and has the focus */
	input_manager_vm_up(w->m, "pc");
	ck_assert_int_eq(input_manager_switch(w->m, "pc"), 0);
}

/* The udev watcher: its coldplug reports event5, and the source opens it. */
static void world_watch(struct world *w)
{
	w->w = watch_new(w->loop, &watch_hooks, w->m);
	ck_assert_ptr_nonnull(w->w);
}

static void world_start(struct world *w, const char *device)
{
	world_init(w, device);
	world_watch(w);
}

static void world_stop(struct world *w)
{
	char *cmd = xasprintf("rm -rf %s", w->cache);

	watch_free(w->w);
	input_manager_free(w->m);
	loop_free(w->loop);
	conf_free(w->conf);
	g_object_unref(w->tb);
	fixture_peers_close();
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	strv_free(frames);
	frames = NULL;
	strv_free(changed);
	changed = NULL;
}

/* Run the loop until the sink received n frames in all (or 5 s). */
static void wait_frames(struct world *w, size_t n)
{
	for (int i = 0; i < 500 && strv_len(frames) < n; i++) {
		loop_dispatch(w->loop, 10);
		drain_sink();
	}
}

static const struct input_source_status *source_status(struct world *w,
						       struct input_source_status **st)
{
	ck_assert_uint_eq(input_manager_sources(w->m, st), 1);
	return *st;
}

static char *slurp(const char *path)
{
	char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	ck_assert_msg(fd >= 0, "cannot read %s", path);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ck_assert_int_ge(n, 0);
	buf[n] = '\0';
	return xstrdup(buf);
}

/* The cache holds exactly what the fake device reports. */
static void assert_cache_is_golden(struct world *w)
{
	char *path = input_cache_path(w->cache, "kbd");
	char *text = slurp(path), *want = slurp(DATA "/kbd-cache.json");

	ck_assert_str_eq(text, want);
	free(text);
	free(want);
	free(path);
}

START_TEST(keyboard_opened_grabbed_cached_and_forwarded)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX" };
	struct input_source_status *st;
	char *text;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	logged = NULL;
	log_set_handler(capture, NULL);
	world_start(&w, LINK);
	ck_assert(umockdev_in_mock_environment());

	wait_frames(&w, 5);
	text = frames_text();
	ck_assert_str_eq(text, TYPED);
	free(text);
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "open");
	ck_assert(st->grabbed);
	ck_assert_str_eq(st->devnode, NODE);
	ck_assert_int_eq(st->caps, INPUT_CAPS_DEVICE);
	ck_assert_uint_eq(st->keys_held, 1); /* Shift */
	free(st);
	ck_assert(logged_has("input kbd: " NODE " (vmplug test keyboard, 05f3:0007) opened and "
			     "grabbed"));
	/* There was no cache: a fallback keyboard was chosen from the path. */
	ck_assert(logged_has("start as a generic keyboard, because its device path ends in "
			     "-event-kbd"));

	assert_cache_is_golden(&w);

	/* Left to the host (the router's panic), then taken back. */
	input_manager_set_grab(w.m, false);
	ck_assert(!input_manager_grabbed(w.m, "kbd"));
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "released");
	ck_assert(!st->grabbed);
	free(st);
	ck_assert(logged_has("input kbd: " NODE " ungrabbed: the host has it"));
	input_manager_set_grab(w.m, true);
	for (int i = 0; i < 400 && !input_manager_grabbed(w.m, "kbd"); i++)
		loop_dispatch(w.loop, 10);
	ck_assert(input_manager_grabbed(w.m, "kbd"));
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "open");
	free(st);
	ck_assert(logged_has("input kbd: " NODE " grabbed again"));

	/* Unplugged with Shift down: the sink gets Shift released. */
	umockdev_testbed_uevent(w.tb, SYSPATH, "remove");
	wait_frames(&w, 1);
	text = frames_text();
	ck_assert_str_eq(text, "KEY_LEFTSHIFT:0 SYN_REPORT");
	free(text);
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "absent");
	ck_assert(!st->grabbed);
	ck_assert_uint_eq(st->keys_held, 0);
	free(st);

	/* Plugged in again: opened and grabbed again. */
	umockdev_testbed_uevent(w.tb, SYSPATH, "add");
	for (int i = 0; i < 300; i++) {
		loop_dispatch(w.loop, 10);
		source_status(&w, &st);
		bool open = streq(st->state, "open");

		free(st);
		if (open)
			break;
	}
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "open");
	ck_assert(st->grabbed);
	free(st);

	log_set_handler(NULL, NULL);
	world_stop(&w);
	strv_free(logged);
}
END_TEST

/* A reload numbers the router's targets anew (alpha comes before pc): the
 * keyboard's frames, opened after it, still reach pc, which has the focus,
 * and never alpha. */
START_TEST(frames_follow_the_focus_across_a_reload)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX" };
	struct conf *next;
	char *global, *text;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	world_init(&w, LINK);
	global = xasprintf("[daemon]\ncache-dir = %s\n[input \"kbd\"]\ndevice = %s\n", w.cache,
			   LINK);
	next = fixture_conf(global, "alpha", "[vm]\nqmp-socket = /run/a.qmp\ninputs = kbd\n", "pc",
			    "[vm]\nqmp-socket = /run/pc.qmp\ninputs = kbd\n", NULL);
	free(global);
	input_manager_set_conf(w.m, next);
	conf_free(w.conf);
	w.conf = next;
	ck_assert_str_eq(input_manager_focus(w.m), "pc");

	world_watch(&w);
	wait_frames(&w, 5);
	text = frames_text();
	ck_assert_str_eq(text, TYPED);
	free(text);
	ck_assert(recv(fixture_peer_of("vmplug-alpha-kbd"), (char[64]){ 0 }, 64, MSG_DONTWAIT) < 0);

	world_stop(&w);
}
END_TEST

/* A cache from an older device: the difference is logged, the sink's
 * missing capabilities named, and the cache rewritten. */
START_TEST(changed_device_updates_the_cache)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX" };
	struct libevdev *old = libevdev_new();
	int delay = 500, period = 30;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	libevdev_set_name(old, "older keyboard");
	libevdev_enable_event_code(old, EV_KEY, KEY_A, NULL);
	libevdev_enable_event_code(old, EV_KEY, KEY_F13, NULL);
	libevdev_enable_event_code(old, EV_REP, REP_DELAY, &delay);
	libevdev_enable_event_code(old, EV_REP, REP_PERIOD, &period);
	ck_assert_int_eq(input_cache_save(w.cache, "kbd", old), 0);
	logged = NULL;
	log_set_handler(capture, NULL);
	/* the plain devnode as device = works too */
	world_start(&w, NODE);
	wait_frames(&w, 5);
	strv_free(frames);
	frames = NULL;

	ck_assert(logged_has("input kbd: " NODE " (vmplug test keyboard) differs from the cached "
			     "capabilities: it adds EV_KEY: KEY_ESC KEY_1"));
	ck_assert(logged_has(", it lacks EV_KEY: KEY_F13; updating "));
	ck_assert(logged_has("input kbd: vm pc: " NODE " has capabilities its sink vmplug-pc-kbd "
			     "lacks (EV_KEY: KEY_ESC KEY_1 "));
	assert_cache_is_golden(&w);

	log_set_handler(NULL, NULL);
	world_stop(&w);
	strv_free(logged);
	libevdev_free(old);
}
END_TEST

/* Another device's events and a configured device that is not there. */
START_TEST(other_devices_are_left_alone)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX" };
	struct input_source_status *st;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	world_start(&w, "/dev/input/by-id/usb-Someone_else-event-mouse");
	for (int i = 0; i < 30; i++)
		loop_dispatch(w.loop, 10);
	source_status(&w, &st);
	ck_assert_str_eq(st->state, "absent");
	ck_assert_ptr_null(st->devnode);
	ck_assert_int_eq(st->caps, INPUT_CAPS_FALLBACK_MOUSE);
	free(st);
	drain_sink();
	ck_assert_uint_eq(strv_len(frames), 0);
	world_stop(&w);
}
END_TEST

/* udevd ran its rules for pc's sink (the link), then reported it: the
 * manager says pc's sinks changed, and QEMU is to open the link. */
static void udev_reports_sink(struct world *w)
{
	char *evdev;

	by_id_link(w->tb, "vmplug-pc-kbd", "../event909");
	umockdev_testbed_uevent(w->tb, SINK_SYSPATH, "add");
	wait_changed(w);
	evdev = pc_sink_evdev(w);
	ck_assert_str_eq(evdev, SINK_LINK);
	free(evdev);
}

/* A new sink goes to QEMU by its stable link, so QEMU is never handed
 * an eventN that a later boot or hotplug may give to another device: the
 * manager offers the sink only once udev has reported it (and so made
 * its link). */
START_TEST(a_sink_is_offered_by_its_link_once_udev_made_it)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX", .create = sink_with_node };
	char *evdev;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	world_init(&w, LINK);
	/* The coldplug finds event909 without udev's database: not yet. */
	world_watch(&w);
	for (int i = 0; i < 10; i++)
		loop_dispatch(w.loop, 0);
	evdev = pc_sink_evdev(&w);
	ck_assert_msg(!evdev, "pc's sink was offered as %s before udev reported it", evdev);
	ck_assert(!strv_contains(changed, "pc"));

	udev_reports_sink(&w);
	world_stop(&w);
}
END_TEST

/* udevd is late to report the sink (busy, or its rules are missing):
 * after a bounded wait QEMU gets the node itself, and the log says why;
 * once the link is there QEMU gets that. */
START_TEST(a_sink_udev_is_late_for_is_offered_by_its_node_until_then)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX", .create = sink_with_node };
	char *evdev;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	logged = NULL;
	log_set_handler(capture, NULL);
	world_init(&w, LINK);
	world_watch(&w);
	ck_assert_ptr_null(pc_sink_evdev(&w));
	input_manager_set_udev_wait(w.m, 1000);
	wait_changed(&w);
	evdev = pc_sink_evdev(&w);
	ck_assert_str_eq(evdev, SINK_NODE);
	free(evdev);
	ck_assert(logged_has("input kbd: vm pc: udev did not report vmplug-pc-kbd (" SINK_NODE
			     ") in time: QEMU gets " SINK_NODE ", not " SINK_LINK));

	/* udevd catches up: QEMU's object is made anew on the link. */
	strv_free(changed);
	changed = NULL;
	udev_reports_sink(&w);
	ck_assert(logged_has("input kbd: vm pc: udev made " SINK_LINK " at last: QEMU gets it in "
			     "place of " SINK_NODE));

	log_set_handler(NULL, NULL);
	world_stop(&w);
	strv_free(logged);
}
END_TEST

/* Without udevd there is no link to wait for: the node at once. */
START_TEST(without_udevd_a_sink_is_offered_by_its_node_at_once)
{
	struct world w = { .cache = "/tmp/vmplug-input-XXXXXX", .create = sink_with_node };
	char *evdev;

	ck_assert_ptr_nonnull(mkdtemp(w.cache));
	world_init(&w, LINK);
	ck_assert_ptr_null(pc_sink_evdev(&w));
	input_manager_udevd(w.m, false);
	ck_assert(strv_contains(changed, "pc"));
	evdev = pc_sink_evdev(&w);
	ck_assert_str_eq(evdev, SINK_NODE);
	free(evdev);
	world_stop(&w);
}
END_TEST

static Suite *input_suite(void)
{
	Suite *s = suite_create("input");
	TCase *tc = tcase_create("umockdev");

	tcase_add_test(tc, keyboard_opened_grabbed_cached_and_forwarded);
	tcase_add_test(tc, changed_device_updates_the_cache);
	tcase_add_test(tc, frames_follow_the_focus_across_a_reload);
	tcase_add_test(tc, other_devices_are_left_alone);
	tcase_add_test(tc, a_sink_is_offered_by_its_link_once_udev_made_it);
	tcase_add_test(tc, a_sink_udev_is_late_for_is_offered_by_its_node_until_then);
	tcase_add_test(tc, without_udevd_a_sink_is_offered_by_its_node_at_once);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	usbbed_reexec(argv);
	log_set_level(getenv("VMPLUG_TEST_VERBOSE") ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	return run_suite(input_suite());
}

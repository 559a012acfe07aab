/* Unit tests for input/sink's writer and the input manager, with
 * socketpairs standing in for uinput descriptors: a SOCK_SEQPACKET peer
 * receives each write() as one message, so "one frame, one write" is
 * checked exactly. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libevdev/libevdev.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/cache.h"
#include "input/input-int.h"
#include "input/sink.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/log.h"
#include "util/util.h"

#define EV(t, c, v)                                                                                \
	{                                                                                          \
		.type = (t), .code = (c), .value = (v)                                             \
	}
#define SYN EV(EV_SYN, SYN_REPORT, 0)

/* One message from the peer as text "KEY_A:1 SYN_REPORT"; "" if none is
 * waiting. */
static char *recv_frame(int peer)
{
	struct input_event ev[256];
	ssize_t n = recv(peer, ev, sizeof(ev), MSG_DONTWAIT);

	if (n <= 0)
		return xstrdup("");
	ck_assert_int_eq(n % (ssize_t)sizeof(ev[0]), 0);
	return fixture_events_text(ev, (size_t)n / sizeof(ev[0]));
}

#define assert_frame(peer, want)                                                                   \
	do {                                                                                       \
		char *got_ = recv_frame(peer);                                                     \
		ck_assert_str_eq(got_, want);                                                      \
		free(got_);                                                                        \
	} while (0)

static struct input_sink *pair_sink(const char *name, const struct libevdev *caps, int *peer)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	*peer = sv[1];
	return input_sink_new_fd(name, sv[0], caps);
}

START_TEST(frame_in_one_write_and_repeats)
{
	struct libevdev *kbd = input_cache_fallback(INPUT_CACHE_KEYBOARD);
	struct libevdev *norep = input_cache_fallback(INPUT_CACHE_KEYBOARD);
	struct input_event down[] = { EV(EV_MSC, MSC_SCAN, 4), EV(EV_KEY, KEY_A, 1), SYN };
	struct input_event rep[] = { EV(EV_KEY, KEY_A, 2), SYN };
	struct input_event up[] = { EV(EV_KEY, KEY_A, 0), SYN };
	struct input_event syn_only[] = { SYN };
	struct input_sink *s;
	int peer;

	s = pair_sink("vmplug-pc-kbd", kbd, &peer);
	ck_assert(input_sink_repeats(s));
	ck_assert_str_eq(input_sink_name(s), "vmplug-pc-kbd");
	ck_assert_str_eq(libevdev_get_name(input_sink_caps(s)), "vmplug-pc-kbd");
	ck_assert_ptr_null(input_sink_devnode(s));
	ck_assert_int_eq(input_sink_write(s, down, ARRAY_SIZE(down)), 0);
	assert_frame(peer, "MSC_SCAN:4 KEY_A:1 SYN_REPORT");
	/* The sink repeats by itself (EV_REP): the source's repeats would double them. */
	ck_assert_int_eq(input_sink_write(s, rep, ARRAY_SIZE(rep)), 0);
	assert_frame(peer, "");
	ck_assert_int_eq(input_sink_write(s, syn_only, 1), 0);
	assert_frame(peer, "");
	ck_assert(input_keys_down(input_sink_keys(s), KEY_A));
	ck_assert_int_eq(input_sink_write(s, up, ARRAY_SIZE(up)), 0);
	assert_frame(peer, "KEY_A:0 SYN_REPORT");
	ck_assert_uint_eq(input_keys_count(input_sink_keys(s)), 0);
	input_sink_free(s);
	close(peer);

	/* Without EV_REP the repeats pass. */
	libevdev_disable_event_type(norep, EV_REP);
	s = pair_sink("vmplug-pc-kbd", norep, &peer);
	ck_assert(!input_sink_repeats(s));
	ck_assert_int_eq(input_sink_write(s, rep, ARRAY_SIZE(rep)), 0);
	assert_frame(peer, "KEY_A:2 SYN_REPORT");
	input_sink_free(s);
	close(peer);
	libevdev_free(norep);
	libevdev_free(kbd);
}
END_TEST

START_TEST(release_all_and_free_release)
{
	struct libevdev *mouse = input_cache_fallback(INPUT_CACHE_MOUSE);
	struct input_event press[] = { EV(EV_KEY, BTN_RIGHT, 1), EV(EV_KEY, BTN_LEFT, 1),
				       EV(EV_REL, REL_X, 5), SYN };
	struct input_sink *s;
	int peer;

	s = pair_sink("vmplug-pc-mouse", mouse, &peer);
	ck_assert_int_eq(input_sink_release_all(s), 0);
	assert_frame(peer, ""); /* nothing down: nothing written */
	ck_assert_int_eq(input_sink_write(s, press, ARRAY_SIZE(press)), 0);
	assert_frame(peer, "BTN_RIGHT:1 BTN_LEFT:1 REL_X:5 SYN_REPORT");
	ck_assert_int_eq(input_sink_release_all(s), 0);
	assert_frame(peer, "BTN_LEFT:0 BTN_RIGHT:0 SYN_REPORT");
	ck_assert_int_eq(input_sink_write(s, press, ARRAY_SIZE(press)), 0);
	assert_frame(peer, "BTN_RIGHT:1 BTN_LEFT:1 REL_X:5 SYN_REPORT");
	/* Freeing a sink releases what it holds first. */
	input_sink_free(s);
	assert_frame(peer, "BTN_LEFT:0 BTN_RIGHT:0 SYN_REPORT");
	close(peer);
	libevdev_free(mouse);
}
END_TEST

START_TEST(write_errors_keep_state)
{
	struct input_event press[] = { EV(EV_KEY, KEY_A, 1), SYN };
	struct input_sink *s;
	int peer;

	s = pair_sink("vmplug-pc-kbd", NULL, &peer);
	close(peer);
	ck_assert_int_eq(input_sink_write(s, press, ARRAY_SIZE(press)), -EPIPE);
	ck_assert_uint_eq(input_keys_count(input_sink_keys(s)), 0);
	input_sink_free(s);
}
END_TEST

/* What the device's readers set comes back on the uinput descriptor:
 * the lock lights are followed, the rest (sounds) ignored. */
START_TEST(lights_set_by_its_readers)
{
	struct input_event caps_on[] = { EV(EV_LED, LED_CAPSL, 1), EV(EV_LED, LED_NUML, 1) };
	struct input_event bell[] = { EV(EV_SND, SND_BELL, 1) };
	struct input_event caps_off[] = { EV(EV_LED, LED_CAPSL, 0) };
	struct input_sink *s;
	unsigned leds = 0;
	int sv[2], peer;

	/* non-blocking, as /dev/uinput is opened */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv),
			 0);
	peer = sv[1];
	s = input_sink_new_fd("vmplug-host-kbd", sv[0], NULL);
	ck_assert_uint_eq(input_sink_leds(s), 0);
	ck_assert_int_eq(input_sink_read_leds(s, &leds), 0); /* nothing there */
	ck_assert_int_eq(write(peer, caps_on, sizeof(caps_on)), sizeof(caps_on));
	ck_assert_int_eq(input_sink_read_leds(s, &leds), 1);
	ck_assert_uint_eq(leds, (1u << LED_CAPSL) | (1u << LED_NUML));
	ck_assert_int_eq(write(peer, bell, sizeof(bell)), sizeof(bell));
	ck_assert_int_eq(input_sink_read_leds(s, &leds), 0);
	ck_assert_int_eq(write(peer, caps_on, sizeof(caps_on)), sizeof(caps_on));
	ck_assert_int_eq(input_sink_read_leds(s, &leds), 0); /* no change */
	ck_assert_int_eq(write(peer, caps_off, sizeof(caps_off)), sizeof(caps_off));
	ck_assert_int_eq(input_sink_read_leds(s, &leds), 1);
	ck_assert_uint_eq(leds, 1u << LED_NUML);
	ck_assert_uint_eq(input_sink_leds(s), 1u << LED_NUML);
	input_sink_free(s);
	close(peer);

	/* A descriptor that cannot be read says so. */
	s = input_sink_new_fd("vmplug-host-kbd", open("/dev/null", O_WRONLY | O_CLOEXEC), NULL);
	ck_assert_int_eq(input_sink_read_leds(s, &leds), -EBADF);
	input_sink_free(s);
}
END_TEST

START_TEST(adopt_refuses_what_is_not_uinput)
{
	struct input_sink *s = NULL;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(input_sink_adopt(sv[0], "vmplug-pc-kbd", NULL, &s), -ENOTTY);
	ck_assert_ptr_null(s);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* The link a sink's name gets is QEMU's way to the sink only when it
 * leads to the sink's own node: anything can call itself vmplug-pc-kbd
 * and own a link of that name. /dev/null stands for the sink's node,
 * /dev/zero for another device. */
START_TEST(a_link_counts_only_when_it_leads_to_the_sink)
{
	char *dir = scratch_new("by-id"), *link, *got;
	struct input_sink *s;
	struct stat st;
	int peer, fd;

	link = xasprintf("%s/vmplug-pc-kbd", dir);
	ck_assert_int_eq(stat("/dev/null", &st), 0);
	s = pair_sink("vmplug-pc-kbd", NULL, &peer);
	ck_assert_int_eq(input_sink_is_node(s, "/dev/null"), -ENODEV);
	ck_assert_ptr_null(input_sink_link(s, dir));
	input_sink_set_node(s, "/dev/null", st.st_rdev);

	/* no link: the node */
	ck_assert_int_eq(input_sink_is_node(s, link), -ENOENT);
	got = input_sink_link(s, dir);
	ck_assert_str_eq(got, "/dev/null");
	free(got);
	/* a link to another device */
	ck_assert_int_eq(symlink("/dev/zero", link), 0);
	ck_assert_int_eq(input_sink_is_node(s, link), 0);
	got = input_sink_link(s, dir);
	ck_assert_str_eq(got, "/dev/null");
	free(got);
	/* a link to the sink's node */
	ck_assert_int_eq(unlink(link), 0);
	ck_assert_int_eq(symlink("/dev/null", link), 0);
	ck_assert_int_eq(input_sink_is_node(s, link), 1);
	got = input_sink_link(s, dir);
	ck_assert_str_eq(got, link);
	free(got);
	/* a file, and a FIFO (looked at, never opened) */
	ck_assert_int_eq(unlink(link), 0);
	fd = open(link, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(input_sink_is_node(s, link), 0);
	ck_assert_int_eq(unlink(link), 0);
	ck_assert_int_eq(mkfifo(link, 0600), 0);
	ck_assert_int_eq(input_sink_is_node(s, link), 0);
	got = input_sink_link(s, dir);
	ck_assert_str_eq(got, "/dev/null");
	free(got);

	scratch_remove(dir);
	free(link);
	input_sink_free(s);
	close(peer);
}
END_TEST

START_TEST(set_owner_needs_a_node)
{
	struct input_sink_owner o = { 0, 0, 0600 };
	struct input_sink *s;
	int peer;

	s = pair_sink("vmplug-pc-kbd", NULL, &peer);
	ck_assert_int_eq(input_sink_set_owner(s, &o), -ENODEV);
	input_sink_free(s);
	close(peer);
}
END_TEST

/* A VM's sink belongs to its QEMU alone: root's (0600) when the VM names
 * nobody, the user's when it names one, its group's (0660) only when it
 * names a group; never a group shared by default. */
START_TEST(a_vm_sink_belongs_to_its_qemu_alone)
{
	struct input_sink_owner o;
	const char *missing = NULL;
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("nogroup");

	ck_assert_ptr_nonnull(pw); /* Debian's base-passwd has both */
	ck_assert_ptr_nonnull(gr);
	ck_assert_int_eq(input_sink_owner_of(NULL, NULL, &o, &missing), 0);
	ck_assert_uint_eq(o.uid, 0);
	ck_assert_uint_eq(o.gid, 0);
	ck_assert_uint_eq(o.mode, 0600);
	ck_assert_int_eq(input_sink_owner_of("nobody", NULL, &o, &missing), 0);
	ck_assert_uint_eq(o.uid, pw->pw_uid);
	ck_assert_uint_eq(o.gid, 0);
	ck_assert_uint_eq(o.mode, 0600);
	ck_assert_int_eq(input_sink_owner_of(NULL, "nogroup", &o, &missing), 0);
	ck_assert_uint_eq(o.uid, 0);
	ck_assert_uint_eq(o.gid, gr->gr_gid);
	ck_assert_uint_eq(o.mode, 0660);
	ck_assert_int_eq(input_sink_owner_of("nobody", "nogroup", &o, &missing), 0);
	ck_assert_uint_eq(o.uid, pw->pw_uid);
	ck_assert_uint_eq(o.gid, gr->gr_gid);
	ck_assert_uint_eq(o.mode, 0660);
	/* a name that does not exist: said, and nothing written */
	o.mode = 0777;
	ck_assert_int_eq(input_sink_owner_of("no-such-user-here", "nogroup", &o, &missing),
			 -ENOENT);
	ck_assert_str_eq(missing, "no-such-user-here");
	ck_assert_int_eq(input_sink_owner_of("nobody", "no-such-group-here", &o, &missing),
			 -ENOENT);
	ck_assert_str_eq(missing, "no-such-group-here");
	ck_assert_uint_eq(o.mode, 0777);
}
END_TEST

/* ----------------------------------------------------------------- manager */

/* Sinks made by the manager, each with its peer, by name. */
static struct made {
	char *name;
	int peer;
	bool fail;
} made[16];
static size_t n_made;
static bool fail_next;

static int fake_create(const char *name, const struct libevdev *caps, struct input_sink **out)
{
	int peer;

	if (fail_next)
		return -ENOENT;
	ck_assert_uint_lt(n_made, ARRAY_SIZE(made));
	*out = pair_sink(name, caps, &peer);
	made[n_made].name = xstrdup(name);
	made[n_made].peer = peer;
	n_made++;
	return 0;
}

static int peer_of(const char *name)
{
	for (size_t i = n_made; i-- > 0;)
		if (streq(made[i].name, name))
			return made[i].peer;
	ck_abort_msg("no sink %s was made", name);
	return -1;
}

static void made_free(void)
{
	for (size_t i = 0; i < n_made; i++) {
		free(made[i].name);
		close(made[i].peer);
	}
	n_made = 0;
	fail_next = false;
}

static char **changed;

static void on_changed(void *data, const char *vm)
{
	strv_append(&changed, vm);
}

static char *changed_text(void)
{
	char *s = changed ? strv_join(changed, " ") : xstrdup("");

	strv_free(changed);
	changed = NULL;
	return s;
}

static void on_focus(void *data, const char *from, const char *to)
{
	char *line = xasprintf("focus %s -> %s", from, to);

	strv_append(&changed, line);
	free(line);
}

static const struct input_manager_hooks hooks = { .vm_sinks_changed = on_changed,
						  .focus = on_focus };

#define GLOBAL(dir)                                                                                \
	"[daemon]\ncache-dir = " dir "\nqemu-group = no-such-group-here\n"                         \
	"[input \"kbd\"]\ndevice = /dev/input/by-id/usb-Test-event-kbd\n"                          \
	"[input \"mouse\"]\ndevice = /dev/input/by-id/usb-Test-event-mouse\ngrab-all = yes\n"

static struct conf *conf_two_vms(void)
{
	return fixture_conf(GLOBAL("/tmp/vmplug-test-no-cache"), "alpha",
			    "[vm]\nqmp-socket = /run/a.qmp\ninputs = kbd, mouse\n", "beta",
			    "[vm]\nqmp-socket = /run/b.qmp\ninputs = kbd\n", NULL);
}

START_TEST(manager_makes_sinks_and_writes_to_them)
{
	struct loop *loop = loop_new();
	struct conf *conf = conf_two_vms();
	struct input_manager *m;
	struct input_event press[] = { EV(EV_KEY, KEY_A, 1), SYN };
	struct input_vm_sink *vs;
	struct input_sink_status *ks;
	struct input_source_status *ss;
	char *text;
	size_t n;

	m = input_manager_new_with(loop, conf, &hooks, NULL, fake_create);
	/* each VM's, and one for the host per source: VMs take input */
	ck_assert_uint_eq(n_made, 5);
	n = input_manager_vm_sinks(m, "alpha", &vs);
	/* writer-only sinks have no node: nothing for QEMU yet */
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(vs);

	n = input_manager_sinks(m, &ks);
	ck_assert_uint_eq(n, 5);
	ck_assert_str_eq(ks[0].name, "vmplug-alpha-kbd");
	ck_assert_str_eq(ks[1].name, "vmplug-beta-kbd");
	ck_assert_str_eq(ks[2].name, "vmplug-host-kbd");
	ck_assert_str_eq(ks[2].vm, "host");
	ck_assert_str_eq(ks[3].name, "vmplug-alpha-mouse");
	ck_assert_str_eq(ks[4].name, "vmplug-host-mouse");
	ck_assert_ptr_null(ks[0].error);
	ck_assert(!ks[0].stored); /* no service manager here */
	free(ks);
	n = input_manager_sources(m, &ss);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ss[0].name, "kbd");
	ck_assert_str_eq(ss[0].state, "absent");
	ck_assert(!ss[0].present);
	ck_assert_int_eq(ss[0].caps, INPUT_CAPS_FALLBACK_KEYBOARD);
	ck_assert_int_eq(ss[1].caps, INPUT_CAPS_FALLBACK_MOUSE);
	free(ss);

	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "alpha", press, ARRAY_SIZE(press)), 0);
	assert_frame(peer_of("vmplug-alpha-kbd"), "KEY_A:1 SYN_REPORT");
	assert_frame(peer_of("vmplug-beta-kbd"), "");
	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "beta", press, ARRAY_SIZE(press)), 0);
	assert_frame(peer_of("vmplug-beta-kbd"), "KEY_A:1 SYN_REPORT");
	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "host", press, ARRAY_SIZE(press)), 0);
	assert_frame(peer_of("vmplug-host-kbd"), "KEY_A:1 SYN_REPORT");
	ck_assert_int_eq(input_manager_sink_write(m, "nope", "alpha", press, ARRAY_SIZE(press)),
			 -ENOENT);
	ck_assert_int_eq(input_manager_sink_write(m, "mouse", "beta", press, 2), -ENOENT);

	/* At exit every sink gets its releases before it closes. */
	input_manager_free(m);
	assert_frame(peer_of("vmplug-alpha-kbd"), "KEY_A:0 SYN_REPORT");
	assert_frame(peer_of("vmplug-beta-kbd"), "KEY_A:0 SYN_REPORT");
	assert_frame(peer_of("vmplug-host-kbd"), "KEY_A:0 SYN_REPORT");
	assert_frame(peer_of("vmplug-alpha-mouse"), "");
	text = changed_text();
	ck_assert_str_eq(text, ""); /* nobody asked before the manager existed */
	free(text);
	conf_free(conf);
	loop_free(loop);
	made_free();
}
END_TEST

START_TEST(reload_keeps_unchanged_sinks)
{
	struct loop *loop = loop_new();
	struct conf *conf = conf_two_vms(), *next;
	struct input_manager *m;
	struct input_event press[] = { EV(EV_KEY, KEY_LEFTCTRL, 1), SYN };
	struct input_sink_status *ks;
	char *text;
	size_t n;

	m = input_manager_new_with(loop, conf, &hooks, NULL, fake_create);
	ck_assert_uint_eq(n_made, 5);
	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "beta", press, 2), 0);
	assert_frame(peer_of("vmplug-beta-kbd"), "KEY_LEFTCTRL:1 SYN_REPORT");
	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "alpha", press, 2), 0);
	assert_frame(peer_of("vmplug-alpha-kbd"), "KEY_LEFTCTRL:1 SYN_REPORT");

	/* beta drops kbd and takes mouse; gamma appears; mouse loses
	 * grab-all (alpha's mouse object must be re-added). */
	next = fixture_conf("[daemon]\ncache-dir = /tmp/vmplug-test-no-cache\n"
			    "[input \"kbd\"]\ndevice = /dev/input/by-id/usb-Test-event-kbd\n"
			    "[input \"mouse\"]\ndevice = /dev/input/by-id/usb-Test-event-mouse\n"
			    "grab-all = no\n",
			    "alpha", "[vm]\nqmp-socket = /run/a.qmp\ninputs = kbd, mouse\n", "beta",
			    "[vm]\nqmp-socket = /run/b.qmp\ninputs = mouse\n", "gamma",
			    "[vm]\nqmp-socket = /run/g.qmp\ninputs = kbd\n", NULL);
	input_manager_set_conf(m, next);
	/* The removed sink released its key before it went. */
	assert_frame(peer_of("vmplug-beta-kbd"), "KEY_LEFTCTRL:0 SYN_REPORT");
	/* alpha's kbd sink is the same one, still holding its key. */
	assert_frame(peer_of("vmplug-alpha-kbd"), "");
	ck_assert_uint_eq(n_made, 7);
	text = changed_text();
	ck_assert_str_eq(text, "gamma beta alpha beta");
	free(text);
	n = input_manager_sinks(m, &ks);
	ck_assert_uint_eq(n, 6);
	ck_assert_str_eq(ks[0].name, "vmplug-alpha-kbd");
	ck_assert_uint_eq(ks[0].keys_held, 1);
	ck_assert_str_eq(ks[1].name, "vmplug-gamma-kbd");
	ck_assert_str_eq(ks[2].name, "vmplug-host-kbd");
	ck_assert_str_eq(ks[3].name, "vmplug-alpha-mouse");
	ck_assert_str_eq(ks[4].name, "vmplug-beta-mouse");
	ck_assert_str_eq(ks[5].name, "vmplug-host-mouse");
	free(ks);

	/* An input no longer configured goes with its sinks. */
	conf_free(conf);
	conf = fixture_conf("[daemon]\ncache-dir = /tmp/vmplug-test-no-cache\n"
			    "[input \"mouse\"]\ndevice = /dev/input/by-id/usb-Test-event-mouse\n",
			    "alpha", "[vm]\nqmp-socket = /run/a.qmp\ninputs = mouse\n", NULL);
	input_manager_set_conf(m, conf);
	assert_frame(peer_of("vmplug-alpha-kbd"), "KEY_LEFTCTRL:0 SYN_REPORT");
	n = input_manager_sinks(m, &ks);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ks[0].name, "vmplug-alpha-mouse");
	ck_assert_str_eq(ks[1].name, "vmplug-host-mouse");
	free(ks);
	text = changed_text();
	ck_assert_str_eq(text, "alpha gamma alpha beta beta"); /* mouse: grab-all again */
	free(text);

	/* No VM takes input any more: the host's sinks go too, releasing first. */
	ck_assert_int_eq(input_manager_sink_write(m, "mouse", "host", press, 2), 0);
	assert_frame(peer_of("vmplug-host-mouse"), "KEY_LEFTCTRL:1 SYN_REPORT");
	conf_free(conf);
	conf = fixture_conf("[daemon]\ncache-dir = /tmp/vmplug-test-no-cache\n"
			    "[input \"mouse\"]\ndevice = /dev/input/by-id/usb-Test-event-mouse\n",
			    "alpha", "[vm]\nqmp-socket = /run/a.qmp\n", NULL);
	input_manager_set_conf(m, conf);
	assert_frame(peer_of("vmplug-host-mouse"), "KEY_LEFTCTRL:0 SYN_REPORT");
	n = input_manager_sinks(m, &ks);
	ck_assert_uint_eq(n, 0);
	free(ks);
	text = changed_text();
	ck_assert_str_eq(text, "alpha"); /* never the host */
	free(text);

	input_manager_free(m);
	conf_free(next);
	conf_free(conf);
	loop_free(loop);
	made_free();
}
END_TEST

/* The manager's router: VMs up and gone and the switch command go in, the
 * focus hook comes out. */
START_TEST(manager_switches_through_its_router)
{
	struct loop *loop = loop_new();
	struct conf *conf = conf_two_vms();
	struct input_manager *m = input_manager_new_with(loop, conf, &hooks, NULL, fake_create);
	char *text;

	ck_assert(input_manager_switching(m));
	ck_assert_str_eq(input_manager_focus(m), "host");
	ck_assert_int_eq(input_manager_switch(m, "alpha"), -EHOSTDOWN);
	ck_assert_int_eq(input_manager_switch(m, "nope"), -ENOENT);
	input_manager_vm_up(m, "alpha");
	ck_assert_int_eq(input_manager_switch(m, "alpha"), 0);
	ck_assert_str_eq(input_manager_focus(m), "alpha");
	input_manager_vm_down(m, "alpha");
	ck_assert_str_eq(input_manager_focus(m), "host");
	ck_assert(!input_manager_released(m));
	text = changed_text();
	ck_assert_str_eq(text, "focus host -> alpha focus alpha -> host");
	free(text);

	input_manager_free(m);
	conf_free(conf);
	loop_free(loop);
	made_free();
}
END_TEST

START_TEST(sinks_that_cannot_be_made_are_shown)
{
	struct loop *loop = loop_new();
	struct conf *conf = conf_two_vms();
	struct input_manager *m;
	struct input_sink_status *ks;
	size_t n;

	fail_next = true;
	m = input_manager_new_with(loop, conf, &hooks, NULL, fake_create);
	n = input_manager_sinks(m, &ks);
	ck_assert_uint_eq(n, 5);
	ck_assert_ptr_null(ks[0].devnode);
	ck_assert_str_eq(ks[0].error,
			 "No such file or directory (no /dev/uinput: modprobe uinput)");
	free(ks);
	ck_assert_int_eq(input_manager_sink_write(m, "kbd", "alpha", NULL, 0), -ENOENT);
	input_manager_free(m);
	conf_free(conf);
	loop_free(loop);
	made_free();
}
END_TEST

static Suite *sink_suite(void)
{
	Suite *s = suite_create("input-sink");
	TCase *tc = tcase_create("sink");
	TCase *mgr = tcase_create("manager");

	tcase_add_test(tc, frame_in_one_write_and_repeats);
	tcase_add_test(tc, release_all_and_free_release);
	tcase_add_test(tc, write_errors_keep_state);
	tcase_add_test(tc, lights_set_by_its_readers);
	tcase_add_test(tc, adopt_refuses_what_is_not_uinput);
	tcase_add_test(tc, set_owner_needs_a_node);
	tcase_add_test(tc, a_vm_sink_belongs_to_its_qemu_alone);
	tcase_add_test(tc, a_link_counts_only_when_it_leads_to_the_sink);
	suite_add_tcase(s, tc);
	tcase_add_test(mgr, manager_makes_sinks_and_writes_to_them);
	tcase_add_test(mgr, manager_switches_through_its_router);
	tcase_add_test(mgr, reload_keeps_unchanged_sinks);
	tcase_add_test(mgr, sinks_that_cannot_be_made_are_shown);
	suite_add_tcase(s, mgr);
	return s;
}

int main(void)
{
	/* A closed peer must give EPIPE, not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_ERROR);
	return run_suite(sink_suite());
}

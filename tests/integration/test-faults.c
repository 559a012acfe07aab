/* Fault injection: vmplugd's reconciler and QMP backend against a QEMU
 * that dies at the worst moments or a QMP peer that misbehaves, next to a
 * second, healthy VM.
 *
 * VM "bad" reaches its real QEMU through a proxy on the test's loop that
 * can kill QEMU (SIGKILL) right after forwarding a device_add or a
 * device_del, or right after forwarding the reply to a device_del (before
 * DEVICE_DELETED), and can play the peer itself: one that hangs, floods
 * events, sends 100 MiB of garbage, sends valid JSON of the wrong shape or
 * closes in the middle of a message. VM "good" talks to its own QEMU
 * directly.
 *
 * Every case checks that "bad" recovers by itself once its QEMU is back
 * (exactly the devices its rules claim, each once), and measures what the
 * fault cost everyone else, against the same figures without a fault:
 * - input forwarding: a fake evdev keyboard on a umockdev testbed (the
 *   program re-runs itself under the umockdev preload) is a source of the
 *   input manager on the same loop, forwarding to "good"'s sink (a
 *   socketpair: there is no /dev/uinput here). A thread types a key every
 *   10 ms into the device node and times each frame until it comes out
 *   of the sink;
 * - the lateness of a 5 ms timer on the loop;
 * - how long "good" takes to attach and detach a device meanwhile.
 * The numbers go to the test log; only generous sanity bounds are
 * asserted, which a loop blocked for seconds (a silent QEMU's 5 s
 * timeout) would break. Leaks and memory errors are left to the ASan and
 * valgrind runs. */
#include "config.h"

#include <errno.h>
#include <linux/input.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <umockdev.h>

#include "backends/backend.h"
#include "reconcile/reconcile.h"
#include "daemon/watch.h"
#include "input/input-int.h"
#include "qmp/qmp-int.h"
#include "tests/integration/check-qemu.h"
#include "tests/integration/usbbed.h"
#include "tests/lib/rcloop.h"
#include "tests/lib/testlib.h"
#include "tests/unit/fixture.h"
#include "util/util.h"

#define WAIT_MS 15000
/* Sanity bounds only, far above the numbers logged, which are what
 * matters: a healthy loop is late by well under a millisecond on an idle
 * machine, but CI machines are shared (and valgrind is slow). What they
 * catch is a loop blocked on a silent QEMU, which would lose the QMP
 * timeout (5 s) at once: each is its base times the suite's wait factor,
 * but never more than 90 % of that timeout. */
#define LATE_BOUND_USEC (2500 * USEC_PER_MSEC)
#define INPUT_BOUND_USEC (2500 * USEC_PER_MSEC)
#define GOOD_BOUND_USEC (4 * USEC_PER_SEC)

static uint64_t bound(uint64_t base)
{
	uint64_t scaled = test_scaled_usec(base), blocked = QMP_DEFAULT_TIMEOUT_USEC * 9 / 10;

	return scaled < blocked ? scaled : blocked;
}

/* The fake keyboard (tests/data/input/umockdev: its sysfs and ioctl
 * replies; no recorded events, the probe types). */
#define KBD_DATA INPUT_DATA "/umockdev"
#define KBD_NODE "/dev/input/event5"
#define KBD_LINK "/dev/input/by-id/usb-vmplug_test_keyboard-event-kbd"

/* ---------------------------------------------------------------- proxy */

enum mode {
	PASS,         /* forward to the real QEMU */
	HANG,         /* greeting and capabilities, then silence */
	FLOOD,        /* forward, and send events as fast as the socket takes them */
	GARBAGE,      /* greeting, then 100 MiB of `garbage` */
	WRONG_SHAPE,  /* handshake, then valid JSON of the wrong shape for every command */
	CLOSE_MIDWAY, /* forward, but cut the first reply to qom-list in half and close */
};

enum kill_when {
	KILL_NEVER,
	KILL_AFTER_COMMAND, /* once `kill_command` went to QEMU */
	KILL_AFTER_REPLY,   /* once QEMU's reply to `kill_command` went to the client */
};

struct conn {
	int fd;
	struct loop_source *src;
	struct qmp_framer *framer;
	char *out;
	size_t out_len;
};

static struct proxy {
	struct loop *loop;
	int listen_fd;
	struct loop_source *listen_src;
	struct conn client, upstream;
	enum mode mode;
	const char *garbage; /* GARBAGE: the pattern, repeated */
	size_t garbage_sent;
	unsigned shape; /* WRONG_SHAPE: the next wrong reply */
	size_t flood_sent;
	enum kill_when kill_when;
	const char *kill_command;
	json_t *kill_id;
	bool killed;
	unsigned connections;
} px;

static struct qemu *bad_qemu, *good_qemu;

static void conn_close(struct conn *c)
{
	loop_source_remove(c->src);
	c->src = NULL;
	closep(&c->fd);
	qmp_framer_free(c->framer);
	c->framer = NULL;
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
}

static void drop_all(void)
{
	conn_close(&px.client);
	conn_close(&px.upstream);
	json_decref(px.kill_id);
	px.kill_id = NULL;
}

static void conn_flush(struct conn *c)
{
	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n <= 0)
			break;
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
}

static void conn_send(struct conn *c, const char *buf, size_t len)
{
	if (c->fd < 0)
		return;
	c->out = xrealloc(c->out, c->out_len + len);
	memcpy(c->out + c->out_len, buf, len);
	c->out_len += len;
	conn_flush(c);
}

static void conn_send_str(struct conn *c, const char *s)
{
	conn_send(c, s, strlen(s));
}

static void kill_qemu(void)
{
	qemu_kill(bad_qemu, SIGKILL);
	px.killed = true;
}

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";

/* Valid JSON, every one of the wrong shape for what it answers. */
static const char *const wrong_shapes[] = {
	"{\"return\": {\"not\": \"an array\"}, \"id\": $ID}\n",
	"{\"return\": [{\"name\": 5, \"type\": [\"child<usb-host>\"]}, 7, null], \"id\": $ID}\n",
	"{\"error\": \"a string\", \"id\": $ID}\n",
	"{\"return\": {}, \"error\": {\"class\": \"X\", \"desc\": \"Y\"}, \"id\": $ID}\n",
	"{\"event\": 42}\n",
	"{\"event\": \"DEVICE_DELETED\", \"data\": [\"vmplug-usbport-1-2\"]}\n",
	"[\"an\", \"array\"]\n",
	"{\"id\": $ID}\n",
	"{\"return\": [], \"id\": \"$ID\"}\n",
	"{\"return\": [], \"id\": -1}\n",
	"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}}}\n",
};

/* Answer one command as the peer itself. */
static void serve(json_t *cmd)
{
	const char *exec = json_string_value(json_object_get(cmd, "execute"));
	char *id = json_dumps(json_object_get(cmd, "id"), JSON_ENCODE_ANY);

	if (exec && streq(exec, "qmp_capabilities")) {
		char *r = xasprintf("{\"return\": {}, \"id\": %s}\n", id ? id : "null");

		conn_send_str(&px.client, r);
		free(r);
	} else if (px.mode == WRONG_SHAPE) {
		const char *tmpl = wrong_shapes[px.shape++ % ARRAY_SIZE(wrong_shapes)];
		char *idtext = id ? id : xstrdup("0");
		char *r = xstrdup(tmpl), *at;

		while ((at = strstr(r, "$ID"))) {
			char *next = xasprintf("%.*s%s%s", (int)(at - r), r, idtext, at + 3);

			free(r);
			r = next;
		}
		conn_send_str(&px.client, r);
		free(r);
		if (idtext != id)
			free(idtext);
	}
	/* HANG, GARBAGE: no answer */
	free(id);
}

static void write_more(void);

/* Everything complete in c's framer, passed to `to` (or served). */
static void forward(struct conn *from, struct conn *to, bool from_client)
{
	for (;;) {
		const char *raw;
		size_t raw_len;
		json_t *j = NULL;
		int r = qmp_framer_next(from->framer, &j, &raw, &raw_len, NULL, 0);

		if (r <= 0) {
			if (r < 0)
				qmp_framer_reset(from->framer);
			return;
		}
		if (from_client && px.mode != PASS && px.mode != FLOOD && px.mode != CLOSE_MIDWAY) {
			serve(j);
			json_decref(j);
			continue;
		}
		if (!from_client && px.mode == CLOSE_MIDWAY &&
		    json_is_array(json_object_get(j, "return"))) {
			conn_send(to, raw, raw_len / 2);
			conn_flush(to);
			json_decref(j);
			drop_all();
			return;
		}
		conn_send(to, raw, raw_len);
		conn_send(to, "\n", 1);
		if (from_client && px.kill_when != KILL_NEVER && !px.killed) {
			const char *exec = json_string_value(json_object_get(j, "execute"));

			if (exec && streq(exec, px.kill_command)) {
				if (px.kill_when == KILL_AFTER_COMMAND) {
					conn_flush(to);
					json_decref(j);
					kill_qemu();
					return;
				}
				json_decref(px.kill_id);
				px.kill_id = json_incref(json_object_get(j, "id"));
			}
		} else if (!from_client && px.kill_id && !px.killed &&
			   json_object_get(j, "return") &&
			   json_equal(json_object_get(j, "id"), px.kill_id)) {
			conn_flush(to);
			json_decref(j);
			kill_qemu();
			return;
		}
		json_decref(j);
	}
}

static void on_conn(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct conn *c = data, *other = c == &px.client ? &px.upstream : &px.client;
	char buf[65536];
	ssize_t n;

	if (revents & EPOLLOUT) {
		if (c == &px.client && (px.mode == FLOOD || px.mode == GARBAGE))
			write_more();
		else
			conn_flush(c);
		if (c->fd < 0)
			return;
	}
	if (!(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		goto events;
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		goto events;
	if (n <= 0) {
		/* one side went away: so does the other, as with a dead QEMU */
		drop_all();
		return;
	}
	qmp_framer_feed(c->framer, buf, (size_t)n);
	forward(c, other, c == &px.client);
	if (c->fd < 0)
		return;
events:
	if (c->fd >= 0)
		loop_source_set_events(
		    c->src,
		    c->out_len || (c == &px.client && (px.mode == FLOOD || px.mode == GARBAGE))
			? EPOLLIN | EPOLLOUT
			: EPOLLIN);
}

static void conn_open(struct conn *c, int fd)
{
	c->fd = fd;
	c->framer = qmp_framer_new(QMP_MAX_MESSAGE);
	c->src = loop_add_fd(px.loop, fd, EPOLLIN, on_conn, c);
}

#define FLOOD_EVENT                                                                                \
	"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESET\", "            \
	"\"data\": {\"guest\": true, \"reason\": \"guest-reset\"}}\r\n"                            \
	"{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-usbport-9-9\", "          \
	"\"path\": \"/machine/peripheral/vmplug-usbport-9-9\"}}\n"                                 \
	"{\"event\": \"SOMETHING_NEW\", \"data\": {\"x\": [1, 2, {\"y\": null}]}}\n"

#define GARBAGE_TOTAL (100u * 1024 * 1024)

/* FLOOD and GARBAGE: keep the client's socket full. */
static void write_more(void)
{
	static char chunk[65536];
	static size_t chunk_len;
	static const char *chunk_of;
	const char *pattern = px.mode == FLOOD ? FLOOD_EVENT : px.garbage;

	conn_flush(&px.client);
	if (px.client.out_len)
		return;
	if (chunk_of != pattern) {
		size_t plen = strlen(pattern);

		for (chunk_len = 0; chunk_len + plen <= sizeof(chunk); chunk_len += plen)
			memcpy(chunk + chunk_len, pattern, plen);
		chunk_of = pattern;
	}
	for (;;) {
		ssize_t n;

		if (px.mode == GARBAGE && px.garbage_sent >= GARBAGE_TOTAL)
			return;
		n = send(px.client.fd, chunk, chunk_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				drop_all();
			return;
		}
		if (px.mode == GARBAGE)
			px.garbage_sent += (size_t)n;
		else
			px.flood_sent += (size_t)n;
		if ((size_t)n < chunk_len) {
			/* keep the stream whole: queue the rest */
			conn_send(&px.client, chunk + n, chunk_len - (size_t)n);
			return;
		}
	}
}

static void on_accept(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ufd;

	if (cfd < 0)
		return;
	drop_all();
	px.connections++;
	conn_open(&px.client, cfd);
	if (px.mode != PASS && px.mode != FLOOD && px.mode != CLOSE_MIDWAY) {
		conn_send_str(&px.client, greeting);
		if (px.mode == GARBAGE) {
			px.garbage_sent = 0;
			write_more();
			loop_source_set_events(px.client.src, EPOLLIN | EPOLLOUT);
		}
		return;
	}
	/* As QEMU: connect to the real one (blocking is fine, it is local). */
	ufd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", bad_qemu->qmp_path);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		closep(&ufd);
		drop_all(); /* QEMU is down: refuse, as its stale socket would */
		return;
	}
	conn_open(&px.upstream, ufd);
	if (px.mode == FLOOD)
		loop_source_set_events(px.client.src, EPOLLIN | EPOLLOUT);
}

static void proxy_start(struct loop *loop, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(&px, 0, sizeof(px));
	px.loop = loop;
	px.client.fd = px.upstream.fd = -1;
	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	px.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(px.listen_fd, 0);
	ck_assert_int_eq(bind(px.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(px.listen_fd, 4), 0);
	px.listen_src = loop_add_fd(loop, px.listen_fd, EPOLLIN, on_accept, NULL);
}

static void proxy_stop(void)
{
	drop_all();
	loop_source_remove(px.listen_src);
	closep(&px.listen_fd);
}

static void set_mode(enum mode m)
{
	px.mode = m;
	/* a new behaviour starts with a new connection */
	drop_all();
}

/* ----------------------------------------------------------------- input */

static UMockdevTestbed *tb;
static struct input_manager *im;
static struct watch *watcher;

static void on_usb_add(void *data, struct usb_device *d)
{
	/* the keyboard's USB parents: the reconciler gets its devices from
	 * fixture_plug() */
	usb_device_free(d);
}

static void on_usb_remove(void *data, const char *syspath)
{
}

static void on_input(void *data, const char *action, struct udev_device *dev)
{
	input_manager_udev(data, action, dev);
}

static const struct watch_hooks watch_hooks = {
	.usb_add = on_usb_add,
	.usb_remove = on_usb_remove,
	.input = on_input,
};

/* The keyboard's node on the testbed, with a by-id link (no udev
 * database here: the source follows the link itself). */
static void keyboard_add(void)
{
	GError *err = NULL;
	char *root, *by_id, *link;

	tb = umockdev_testbed_new();
	ck_assert_msg(umockdev_testbed_add_from_file(tb, KBD_DATA "/kbd.umockdev", &err), "%s",
		      err ? err->message : "");
	ck_assert_msg(umockdev_testbed_load_ioctl(tb, KBD_NODE, KBD_DATA "/kbd.ioctl", &err), "%s",
		      err ? err->message : "");
	root = umockdev_testbed_get_root_dir(tb);
	by_id = xasprintf("%s/dev/input/by-id", root);
	g_free(root);
	ck_assert_int_eq(mkdir_p(by_id, 0755), 0);
	link = xasprintf("%s/usb-vmplug_test_keyboard-event-kbd", by_id);
	ck_assert_int_eq(symlink("../event5", link), 0);
	free(link);
	free(by_id);
}

/* The probe: a thread types into the keyboard's node (a PTY whose other
 * end umockdev gives the test) and times each frame until it leaves the
 * sink, one frame at a time. Frames typed before `since` are not counted:
 * the test's own blocking calls (restarting QEMU, asking its monitor)
 * stop the loop, and are no fault's doing. */
static struct probe {
	pthread_t thread;
	bool running;
	int dev_fd; /* umockdev's, not closed here */
	atomic_bool stop;
	pthread_mutex_t lock;
	uint64_t since;
	uint64_t pending; /* when the frame in flight was typed, 0: none */
	uint64_t max, sum;
	unsigned frames, wrong;
} probe = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *probe_main(void *arg)
{
	int value = 1;

	while (!atomic_load(&probe.stop)) {
		struct input_event ev[2] = {
			{ .type = EV_KEY, .code = KEY_A, .value = value },
			{ .type = EV_SYN, .code = SYN_REPORT, .value = 0 },
		};
		struct input_event got[8];
		uint64_t t0 = now_usec(), t1;
		ssize_t n = 0;

		pthread_mutex_lock(&probe.lock);
		probe.pending = t0;
		pthread_mutex_unlock(&probe.lock);
		if (write(probe.dev_fd, ev, sizeof(ev)) != (ssize_t)sizeof(ev))
			break;
		while (!atomic_load(&probe.stop)) {
			struct pollfd p = { .fd = fixture_sink_peer, .events = POLLIN };

			if (poll(&p, 1, 50) == 1) {
				n = recv(fixture_sink_peer, got, sizeof(got), MSG_DONTWAIT);
				break;
			}
		}
		if (n <= 0)
			break;
		t1 = now_usec();
		pthread_mutex_lock(&probe.lock);
		probe.pending = 0;
		if (t0 >= probe.since) {
			probe.frames++;
			probe.sum += t1 - t0;
			if (t1 - t0 > probe.max)
				probe.max = t1 - t0;
			/* what was typed, and nothing else */
			if (n != (ssize_t)sizeof(ev) || got[0].type != EV_KEY ||
			    got[0].code != KEY_A || got[0].value != value || got[1].type != EV_SYN)
				probe.wrong++;
		}
		pthread_mutex_unlock(&probe.lock);
		value = !value;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	return NULL;
}

static void probe_start(void)
{
	probe.dev_fd = umockdev_testbed_get_dev_fd(tb, KBD_NODE);
	ck_assert_int_ge(probe.dev_fd, 0);
	atomic_store(&probe.stop, false);
	probe.since = now_usec();
	ck_assert_int_eq(pthread_create(&probe.thread, NULL, probe_main, NULL), 0);
	probe.running = true;
}

static void probe_stop(void)
{
	if (!probe.running)
		return;
	atomic_store(&probe.stop, true);
	pthread_join(probe.thread, NULL);
	probe.running = false;
}

static void probe_reset(void)
{
	pthread_mutex_lock(&probe.lock);
	probe.since = now_usec();
	probe.max = probe.sum = 0;
	probe.frames = probe.wrong = 0;
	pthread_mutex_unlock(&probe.lock);
}

/* ------------------------------------------------------------ the daemon */

static char *dir;
static struct loop *loop;
static struct conf *conf;
static struct rcloop *rcl;
static struct reconcile *rc;
static char *bad_sock;

/* What the reconciler said, for waiting. */
static unsigned attached_count[2], detached_count[2], up_count[2];

static int vm_index(const char *name)
{
	return streq(name, "bad") ? 0 : 1;
}

static void on_notify(void *data, const struct reconcile_event *ev)
{
	int i = vm_index(ev->vm);

	if (ev->type == RECONCILE_USB_ATTACHED)
		attached_count[i]++;
	else if (ev->type == RECONCILE_USB_DETACHED)
		detached_count[i]++;
	else if (ev->type == RECONCILE_VM_UP)
		up_count[i]++;
}

/* The loop's punctuality: a 5 ms timer and how late it fires. */
static struct loop_timer *ticker;
static uint64_t tick_due, tick_max_late, tick_sum_late, ticks;

static void on_tick(struct loop_timer *t, void *data)
{
	uint64_t now = now_usec(), late = now > tick_due ? now - tick_due : 0;

	if (late > tick_max_late)
		tick_max_late = late;
	tick_sum_late += late;
	ticks++;
	tick_due = now + 5 * USEC_PER_MSEC;
	loop_timer_arm(t, tick_due);
}

static void ticker_reset(void)
{
	tick_max_late = tick_sum_late = ticks = 0;
	tick_due = now_usec() + 5 * USEC_PER_MSEC;
	loop_timer_arm(ticker, tick_due);
}

static void setup(void)
{
	char *bad_vm, *good_vm, *global;

	signal(SIGPIPE, SIG_IGN);
	dir = scratch_new("faults");
	keyboard_add();
	loop = loop_new();
	bad_qemu = qemu_start(dir, "badqemu", NULL);
	good_qemu = qemu_start(dir, "goodqemu", NULL);
	ck_assert_msg(bad_qemu && good_qemu, "QEMU did not start");
	bad_sock = xasprintf("%s/bad.qmp", dir);
	proxy_start(loop, bad_sock);
	bad_vm = xasprintf("[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n[usb \"p\"]\nport = 1-1\n"
			   "attach-mode = port\n",
			   bad_sock);
	good_vm = xasprintf("[vm]\nqmp-socket = %s\nusb-bus = xhci.0\ninputs = kbd\n"
			    "[usb \"p\"]\nport = 2-1\nattach-mode = port\n",
			    good_qemu->qmp_path);
	global = xasprintf(
	    "[daemon]\ncache-dir = %s/cache\n[input \"kbd\"]\ndevice = " KBD_LINK "\n", dir);
	conf = fixture_conf(global, "bad", bad_vm, "good", good_vm, NULL);
	free(bad_vm);
	free(good_vm);
	free(global);
	memset(attached_count, 0, sizeof(attached_count));
	memset(detached_count, 0, sizeof(detached_count));
	memset(up_count, 0, sizeof(up_count));
	log_capture_start(LOG_LEVEL_INFO);
	ticker = loop_timer_new(loop, on_tick, NULL);
	rcl = rcloop_new(loop, conf, on_notify, NULL);
	rc = rcl->rc;
	/* always armed: it also keeps run_until() polling QEMU */
	ticker_reset();
	/* the keyboard: found by the watcher's coldplug, opened, grabbed */
	im = input_manager_new_with(loop, conf, NULL, NULL, fixture_sink_pair);
	ck_assert_int_ge(fixture_sink_peer, 0);
	/* the router sends the keyboard to good once good runs and has the focus */
	input_manager_vm_up(im, "good");
	ck_assert_int_eq(input_manager_switch(im, "good"), 0);
	watcher = watch_new(loop, &watch_hooks, im);
	ck_assert_ptr_nonnull(watcher);
	for (unsigned i = 0; i < 500 * test_wait_scale() && !input_manager_grabbed(im, "kbd"); i++)
		loop_dispatch(loop, 10);
	ck_assert_msg(input_manager_grabbed(im, "kbd"), "the fake keyboard was not opened");
	probe_start();
}

static void teardown(void)
{
	probe_stop();
	watch_free(watcher);
	input_manager_free(im);
	closep(&fixture_sink_peer);
	closep(&fixture_host_peer);
	g_object_unref(tb);
	rcloop_free(rcl);
	rcl = NULL;
	rc = NULL;
	loop_timer_free(ticker);
	proxy_stop();
	qemu_free(bad_qemu);
	qemu_free(good_qemu);
	loop_free(loop);
	conf_free(conf);
	log_capture_stop();
	free(bad_sock);
	scratch_remove(dir);
}

static void plug(const char *desc)
{
	fixture_plug(rc, desc);
}

static void unplug(const char *desc)
{
	fixture_unplug(rc, desc);
}

/* The vmplug- usb-host devices a QEMU has, sorted, space-separated. */
static char *qemu_devices(struct qemu *q)
{
	json_t *list = qemu_check_return(q, "qom-list",
					 json_pack("{s:s}", "path", "/machine/peripheral"));
	char **ids = NULL, *s;
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));

		if (name && startswith(name, "vmplug-"))
			strv_append(&ids, name);
	}
	json_decref(list);
	for (size_t a = 0; ids && ids[a]; a++)
		for (size_t b = a + 1; ids[b]; b++)
			if (strcmp(ids[a], ids[b]) > 0) {
				char *t = ids[a];

				ids[a] = ids[b];
				ids[b] = t;
			}
	s = strv_join(ids, " ");
	strv_free(ids);
	return s;
}

struct want {
	struct qemu *q;
	const char *devices;
};

static bool has_devices(void *arg)
{
	struct want *w = arg;
	static uint64_t last;
	bool ok;
	char *s;

	/* ask QEMU at most every 20 ms: its monitor is blocking */
	if (now_usec() - last < 20 * USEC_PER_MSEC)
		return false;
	last = now_usec();
	s = qemu_devices(w->q);
	ok = streq(s, w->devices);
	free(s);
	return ok;
}

static void assert_devices(struct qemu *q, const char *devices)
{
	struct want w = { q, devices };

	if (!run_until(loop, has_devices, &w, WAIT_MS)) {
		char *s = qemu_devices(q);

		ck_abort_msg("QEMU has '%s', expected '%s'", s, devices);
	}
}

static bool counter_at_least(void *arg)
{
	unsigned *c = arg;

	return c[0] <= c[1];
}

static void wait_count(unsigned *counter, unsigned want)
{
	unsigned pair[2] = { want, 0 };
	uint64_t end = now_usec() + test_scaled_usec(WAIT_MS * USEC_PER_MSEC);

	while (*counter < want && now_usec() < end)
		loop_dispatch(loop, 100);
	pair[1] = *counter;
	ck_assert_msg(counter_at_least(pair), "waited for %u, got %u", want, *counter);
}

/* How long "good" takes to attach a device and detach it again, now. */
static void measure_good(const char *phase)
{
	uint64_t t0 = now_usec(), t_att, t_det;

	plug("2-1 dev=5 vid=abcd pid=0002");
	wait_count(&attached_count[1], attached_count[1] + 1);
	t_att = now_usec() - t0;
	t0 = now_usec();
	unplug("2-1 dev=5 vid=abcd pid=0002");
	wait_count(&detached_count[1], detached_count[1] + 1);
	t_det = now_usec() - t0;
	printf("# %s: the healthy VM attached a device in %.1f ms, detached it in %.1f ms\n", phase,
	       (double)t_att / USEC_PER_MSEC, (double)t_det / USEC_PER_MSEC);
	fflush(stdout);
	ck_assert_uint_lt(t_att, bound(GOOD_BOUND_USEC));
}

/* What input forwarding took since probe_reset(): the frame still in
 * flight counts with its age so far, so a loop blocked now shows. */
static void report_input(const char *phase)
{
	uint64_t max, sum, pending, now;
	unsigned frames, wrong;

	pthread_mutex_lock(&probe.lock);
	now = now_usec();
	pending = probe.pending >= probe.since && probe.pending ? now - probe.pending : 0;
	max = probe.max > pending ? probe.max : pending;
	sum = probe.sum;
	frames = probe.frames;
	wrong = probe.wrong;
	pthread_mutex_unlock(&probe.lock);
	printf("# %s: input frames took %.2f ms at most from the device to the sink, %.2f ms on "
	       "average (%u frames)\n",
	       phase, (double)max / USEC_PER_MSEC,
	       frames ? (double)sum / frames / USEC_PER_MSEC : 0.0, frames);
	fflush(stdout);
	ck_assert_uint_eq(wrong, 0);
	ck_assert_uint_ge(frames, 1);
	ck_assert_uint_lt(max, bound(INPUT_BOUND_USEC));
}

static void report_ticker(const char *phase)
{
	printf("# %s: the loop's 5 ms timer was late by %.2f ms at most, %.3f ms on average "
	       "(%llu ticks)\n",
	       phase, (double)tick_max_late / USEC_PER_MSEC,
	       ticks ? (double)tick_sum_late / ticks / USEC_PER_MSEC : 0.0,
	       (unsigned long long)ticks);
	fflush(stdout);
	ck_assert_uint_lt(tick_max_late, bound(LATE_BOUND_USEC));
}

/* What the next report_costs() measures starts now. */
static void measure_reset(void)
{
	ticker_reset();
	probe_reset();
}

static void report_costs(const char *phase)
{
	report_input(phase);
	report_ticker(phase);
}

/* Both VMs up, "bad" with two devices, "good" with one. */
static void start_healthy(void)
{
	wait_count(&up_count[0], 1);
	wait_count(&up_count[1], 1);
	plug("1-1.2 dev=2 vid=1234 pid=0001");
	plug("1-1.3 dev=3 vid=1234 pid=0002");
	plug("2-1.1 dev=4 vid=abcd pid=0001");
	assert_devices(bad_qemu, "vmplug-usbport-1-2 vmplug-usbport-1-3");
	assert_devices(good_qemu, "vmplug-usbport-2-4");
	/* what the numbers below compare with */
	measure_reset();
	run_for(loop, 250);
	measure_good("baseline, no fault");
	run_for(loop, 250);
	report_costs("baseline, no fault");
}

/* "bad" misbehaves in mode m for `ms` while the others are measured,
 * then behaves again. */
static void misbehave(enum mode m, unsigned ms, const char *phase)
{
	unsigned conns = px.connections;

	set_mode(m);
	measure_reset();
	/* the client notices the dropped connection and comes back */
	while (px.connections == conns)
		loop_dispatch(loop, 100);
	run_for(loop, ms / 2);
	measure_good(phase);
	run_for(loop, ms / 2);
	report_costs(phase);
	set_mode(PASS);
}

/* After any fault: "bad" gets exactly its devices back, each once. */
static void assert_recovered(void)
{
	assert_devices(bad_qemu, "vmplug-usbport-1-2 vmplug-usbport-1-3");
	assert_devices(good_qemu, "vmplug-usbport-2-4");
}

/* ------------------------------------------------------------- QEMU dies */

static bool killed(void *arg)
{
	return px.killed;
}

static void restart_bad_qemu(void)
{
	ck_assert_int_eq(qemu_restart(bad_qemu), 0);
	px.killed = false;
	px.kill_when = KILL_NEVER;
}

/* QEMU is killed at `when` of `command`, which act(desc) makes vmplugd
 * send; what follows is measured; then QEMU comes back. */
static void kill_qemu_at(enum kill_when when, const char *command, void (*act)(const char *),
			 const char *desc, const char *phase)
{
	start_healthy();
	px.kill_when = when;
	px.kill_command = command;
	act(desc);
	ck_assert(run_until(loop, killed, NULL, WAIT_MS));
	/* from the kill on (the test's own blocking kill is not counted) */
	measure_reset();
	run_for(loop, 300);
	measure_good(phase);
	report_costs(phase);
	restart_bad_qemu();
}

START_TEST(qemu_killed_during_device_add)
{
	kill_qemu_at(KILL_AFTER_COMMAND, "device_add", plug, "1-1.4 dev=6 vid=1234 pid=0003",
		     "QEMU killed during device_add");
	assert_devices(bad_qemu, "vmplug-usbport-1-2 vmplug-usbport-1-3 vmplug-usbport-1-6");
	assert_devices(good_qemu, "vmplug-usbport-2-4");
}
END_TEST

START_TEST(qemu_killed_during_device_del)
{
	kill_qemu_at(KILL_AFTER_COMMAND, "device_del", unplug, "1-1.3 dev=3 vid=1234 pid=0002",
		     "QEMU killed during device_del");
	assert_devices(bad_qemu, "vmplug-usbport-1-2");
	/* and the port works as before */
	plug("1-1.3 dev=7 vid=1234 pid=0002");
	assert_devices(bad_qemu, "vmplug-usbport-1-2 vmplug-usbport-1-7");
}
END_TEST

START_TEST(qemu_killed_between_reply_and_event)
{
	kill_qemu_at(KILL_AFTER_REPLY, "device_del", unplug, "1-1.2 dev=2 vid=1234 pid=0001",
		     "QEMU killed between device_del's reply and DEVICE_DELETED");
	assert_devices(bad_qemu, "vmplug-usbport-1-3");
	plug("1-1.2 dev=8 vid=1234 pid=0001");
	assert_devices(bad_qemu, "vmplug-usbport-1-3 vmplug-usbport-1-8");
}
END_TEST

/* ---------------------------------------------------- misbehaving peers */

START_TEST(peer_hangs)
{
	start_healthy();
	/* long enough for the handshake to time out (5 s) */
	misbehave(HANG, 6000, "peer hangs");
	assert_recovered();
	ck_assert_ptr_nonnull(log_captured_find("did not answer"));
}
END_TEST

START_TEST(peer_floods_events)
{
	unsigned lines_before = log_captured_count_text("RESET");

	start_healthy();
	misbehave(FLOOD, 2000, "peer floods events");
	printf("# peer floods events: %.1f MiB of events sent in 2 s\n",
	       (double)px.flood_sent / (1024 * 1024));
	assert_recovered();
	/* a guest that resets in a loop must not flood the log */
	ck_assert_uint_lt(log_captured_count_text("RESET") - lines_before, 20);
	ck_assert_uint_lt(log_captured_count_text("vmplug-usbport-9-9"), 20);
}
END_TEST

static bool garbage_done(void *arg)
{
	unsigned *conns = arg;

	return px.garbage_sent >= GARBAGE_TOTAL || px.connections > *conns;
}

static void garbage(const char *pattern, const char *phase)
{
	unsigned conns;
	size_t taken;

	start_healthy();
	px.garbage = pattern;
	set_mode(GARBAGE);
	while (px.connections == 0 || px.client.fd < 0)
		loop_dispatch(loop, 100);
	conns = px.connections;
	measure_reset();
	/* until all of it went, or the client hung up and came back */
	ck_assert(run_until(loop, garbage_done, &conns, 10 * WAIT_MS));
	taken = px.garbage_sent;
	measure_good(phase);
	report_costs(phase);
	printf("# %s: %.1f MiB sent before the client %s\n", phase, (double)taken / (1024 * 1024),
	       taken >= GARBAGE_TOTAL ? "had read it all (and stayed)" : "hung up");
	fflush(stdout);
	set_mode(PASS);
	assert_recovered();
}

START_TEST(peer_sends_100_mib_of_binary_garbage)
{
	garbage("\x01\xff\x7f garbage \x00\xfe}}]]", "100 MiB of binary garbage");
}
END_TEST

START_TEST(peer_sends_100_mib_string)
{
	/* one JSON text that never ends: the 1 MiB limit ends it */
	garbage("{\"return\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"a 100 MiB string");
}
END_TEST

START_TEST(peer_sends_100_mib_of_whitespace)
{
	/* valid between messages, so the client reads all of it */
	garbage("                                                  \r\n\t",
		"100 MiB of whitespace");
}
END_TEST

START_TEST(peer_sends_wrong_shapes)
{
	start_healthy();
	misbehave(WRONG_SHAPE, 3000, "valid JSON of the wrong shape");
	/* every wrong reply got its connection dropped */
	ck_assert_uint_ge(px.shape, 3);
	assert_recovered();
}
END_TEST

START_TEST(peer_closes_mid_message)
{
	unsigned conns;

	start_healthy();
	set_mode(CLOSE_MIDWAY);
	conns = px.connections;
	measure_reset();
	while (px.connections < conns + 3)
		loop_dispatch(loop, 100);
	measure_good("peer closes mid-message");
	report_costs("peer closes mid-message");
	set_mode(PASS);
	assert_recovered();
}
END_TEST

static Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("qemu");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, qemu_killed_during_device_add);
	tcase_add_test(tc, qemu_killed_during_device_del);
	tcase_add_test(tc, qemu_killed_between_reply_and_event);
	tcase_add_test(tc, peer_hangs);
	tcase_add_test(tc, peer_floods_events);
	tcase_add_test(tc, peer_sends_100_mib_of_binary_garbage);
	tcase_add_test(tc, peer_sends_100_mib_string);
	tcase_add_test(tc, peer_sends_100_mib_of_whitespace);
	tcase_add_test(tc, peer_sends_wrong_shapes);
	tcase_add_test(tc, peer_closes_mid_message);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	/* the fake keyboard needs the umockdev preload (see usbbed.h) */
	usbbed_reexec(argv);
	if (!qemu_binary()) {
		const char *env = getenv("QEMU_SYSTEM");

		printf("1..0 # SKIP no QEMU to run (QEMU_SYSTEM='%s'; configure looks for "
		       "qemu-system-x86_64)\n",
		       env ? env : "");
		return 0;
	}
	return run_suite(faults_suite());
}

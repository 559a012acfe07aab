/* cores: a fixed, deterministic workload through each pure core, for
 * instruction counts under callgrind (bench/cores-callgrind.sh), where a
 * regression shows without timing noise. The cores:
 *   matcher     usb_owner() (usb/rules.c) for 512 devices against 8 VMs'
 *               rules (vendor/product, serial, port, property, deny by
 *               interface class); one operation = one device judged;
 *   reconciler  (reconcile/, debounced as vmplugd runs it, on null
 *               backends and virtual time) 256 devices on distinct ports
 *               plugged, attached, unplugged and detached, in rounds; one
 *               operation = one event and the work it causes, completed;
 *   reconciler-16, reconciler-2048
 *               the same with 16 or 2,048 devices: what an event costs
 *               must not grow with the devices present;
 *   router      (input/router.c) a focused VM with a keyboard and a gaming
 *               mouse, hotkeys configured; one operation = one frame:
 *     router-mouse     motion (REL_X/REL_Y), buttons, wheel with hi-res;
 *     router-keyboard  keys, a modifier that could begin a chord (held
 *                      back until the next key), MSC_SCAN;
 *   path-mouse, path-keyboard
 *               the user-space path of the same frames through vmplugd
 *               (input/): each event fed to the source's frame as it
 *               comes from libevdev, the frame timed and routed, and the
 *               router's frames written to the sinks (input_sink_write()
 *               to /dev/null: the write(2) itself is the kernel's); one
 *               operation = one frame. Not in it: libevdev_next_event()
 *               and epoll, which need a real evdev device;
 *   timers      (loop/loop.c) 10,000 armed timers (debounces, retries,
 *               waiting requests); one operation = one of them moved to a
 *               new deadline and one loop pass that fires another;
 *   qmp-10, qmp-10000
 *               (qmp/qmp.c) a connected client with 10 or 10,000
 *               commands pending, answered by a peer in this process in
 *               a scrambled order; one operation = one reply written,
 *               read, matched and completed, and one new command sent
 *               and read back by the peer.
 * Each workload runs in a function of its own (run_CORE), the one the
 * callgrind script collects; setup (configuration, devices) is outside.
 * Plain runs print the time per operation too, for what it is worth.
 *
 * Usage: cores [--short] [CORE...] (default: every core; --short: a tenth
 * of the work). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backends/null.h"
#include "conf/conf.h"
#include "reconcile/reconcile.h"
#include "input/frame.h"
#include "input/router.h"
#include "input/sink.h"
#include "loop/loop.h"
#include "qmp/qmp.h"
#include "usb/rules.h"
#include "util/log.h"
#include "util/util.h"

#define VMS 8
#define DEVICES 512
#define RC_DEVICES 256 /* reconciler; reconciler-16 and reconciler-2048 have as many as they say */

static unsigned scale = 10; /* --short: 1 */
static volatile uint64_t sink;

static void die(const char *what)
{
	fprintf(stderr, "cores: %s\n", what);
	exit(1);
}

/* The configuration every core reads: VM i claims vendor 0x1000+i, a
 * serial, a port and a udev property, denies mass storage; a keyboard and
 * a mouse go to vm0 and vm1, with chords for switching. */
static struct conf *make_conf(void)
{
	static const char global[] = "[switch]\ncycle = KEY_LEFTCTRL+KEY_RIGHTCTRL\n"
				     "host = KEY_LEFTCTRL+KEY_LEFTALT+KEY_H\n"
				     "panic = KEY_LEFTCTRL+KEY_LEFTALT+KEY_BACKSPACE\n"
				     "[input \"kbd\"]\ndevice = /dev/input/by-id/kbd\n"
				     "[input \"mouse\"]\ndevice = /dev/input/by-id/mouse\n";
	char dir[] = "/tmp/vmplug-bench-cores-XXXXXX";
	char *path, *cmd, **errors = NULL;
	struct conf *conf = NULL;

	if (!mkdtemp(dir))
		die("mkdtemp failed");
	path = xasprintf("%s/vm.d", dir);
	mkdir_p(path, 0755);
	free(path);
	path = xasprintf("%s/vmplug.conf", dir);
	if (write_file_atomic(path, global, strlen(global), 0644) < 0)
		die("cannot write the configuration");
	free(path);
	for (unsigned i = 0; i < VMS; i++) {
		char *text = xasprintf(
		    "[vm]\nqmp-socket = /run/vm%u.qmp\n%s"
		    "hotkey = KEY_LEFTCTRL+KEY_LEFTALT+KEY_%u\n"
		    "[usb \"vendor\"]\nvendor = %04x\n"
		    "[usb \"stick\"]\nvendor = 0781\nproduct = 5581\nserial = SN%04u\n"
		    "[usb \"port\"]\nport = %u-8\n"
		    "[usb \"model\"]\nproperty = ID_MODEL=Model_%u\n"
		    "[usb-deny \"storage\"]\ninterface-class = 08\n",
		    i,
		    i == 0   ? "inputs = kbd, mouse\n"
		    : i == 1 ? "inputs = kbd\n"
			     : "",
		    i + 1, 0x1000 + i, i, i + 1, i);

		path = xasprintf("%s/vm.d/vm%u.conf", dir, i);
		if (write_file_atomic(path, text, strlen(text), 0644) < 0)
			die("cannot write the configuration");
		free(path);
		free(text);
	}
	if (conf_load(dir, NULL, &conf, &errors) < 0)
		die(errors && errors[0] ? errors[0] : "configuration");
	strv_free(errors);
	cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		die("cleanup failed");
	free(cmd);
	return conf;
}

/* Device k on port BUS-P.Q, 60 to a bus, its devnum new in each round; a mix of
 * claimed (vendor, serial, port, property), denied and unclaimed ones. */
static struct usb_device *make_device(unsigned k, unsigned round)
{
	unsigned bus = 1 + k / 60, p = 1 + (k % 60) / 8, q = 1 + k % 8;
	char *sysname = xasprintf("%u-%u.%u", bus, p, q);
	char *syspath = xasprintf("/sys/devices/pci0000:00/0000:00:14.0/usb%u/%u-%u/%s", bus, bus,
				  p, sysname);
	struct usb_device *d = usb_device_new(syspath, sysname);

	d->bus = bus;
	d->devnum = 2 + k % 60 + round % 2 * 60; /* unique on its bus, new each round */
	d->device_class = 0;
	d->devnode = xasprintf("/dev/bus/usb/%03u/%03u", d->bus, d->devnum);
	switch (k % 8) {
	case 0: /* a vendor some VM claims */
	case 1:
		d->vendor = 0x1000 + (int)(k / 8 % 12); /* 8..11: nobody's */
		d->product = (int)k;
		usb_device_add_if_class(d, 0x03);
		break;
	case 2: /* a stick with a serial */
		d->vendor = 0x0781;
		d->product = 0x5581;
		d->serial = xasprintf("SN%04u", k / 8 % 12);
		usb_device_add_if_class(d, 0x08);
		break;
	case 3: /* claimed by its udev model */
		d->vendor = 0x2000;
		d->product = (int)k;
		usb_device_add_prop(d, "ID_MODEL", k / 8 % 2 ? "Model_3" : "Other");
		usb_device_add_if_class(d, 0xff);
		break;
	default: /* nobody's */
		d->vendor = 0x3000 + (int)(k % 5);
		d->product = (int)k;
		d->serial = xasprintf("X%u", k);
		usb_device_add_prop(d, "ID_MODEL", "Something_else");
		usb_device_add_if_class(d, 0x0e);
		usb_device_add_if_class(d, 0x01);
		break;
	}
	free(sysname);
	free(syspath);
	return d;
}

static uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void report(const char *core, unsigned long ops, const char *what, uint64_t ns)
{
	printf("%-16s %8lu operations  %9.1f ns/op  (%s)\n", core, ops, (double)ns / (double)ops,
	       what);
}

/* ------------------------------------------------------------- matcher */

__attribute__((noinline)) unsigned long run_matcher(const struct conf *conf,
						    struct usb_device *const *devs,
						    unsigned passes);
__attribute__((noinline)) unsigned long run_matcher(const struct conf *conf,
						    struct usb_device *const *devs, unsigned passes)
{
	unsigned long ops = 0;

	for (unsigned p = 0; p < passes; p++)
		for (unsigned k = 0; k < DEVICES; k++) {
			size_t claimers = 0;

			sink += (uintptr_t)usb_owner(conf, devs[k], NULL, &claimers) + claimers;
			ops++;
		}
	return ops;
}

static void bench_matcher(const struct conf *conf)
{
	struct usb_device *devs[DEVICES];
	unsigned long ops;
	uint64_t t0;
	char *what;

	for (unsigned k = 0; k < DEVICES; k++)
		devs[k] = make_device(k, 0);
	t0 = clock_ns();
	ops = run_matcher(conf, devs, 2 * scale);
	what = xasprintf("usb_owner: %u devices x %u passes, %u VMs with 5 rules each", DEVICES,
			 2 * scale, VMS);
	report("matcher", ops, what, clock_ns() - t0);
	free(what);
	for (unsigned k = 0; k < DEVICES; k++)
		usb_device_free(devs[k]);
}

/* ---------------------------------------------------------- reconciler */

static uint64_t vnow = 1000000, scheduled;

static struct backend_vm *create_null(void *data, const struct conf_vm *vm,
				      const struct backend_events *ev, void *evdata)
{
	return backend_null_ops.create(NULL, vm, ev, evdata);
}

static uint64_t rc_now(void *data)
{
	return vnow;
}

static void rc_schedule(void *data, uint64_t deadline)
{
	scheduled = deadline;
}

static const struct reconcile_hooks rc_hooks = {
	.create_backend = create_null,
	.now = rc_now,
	.schedule = rc_schedule,
	.debounce = true,
};

/* What QEMU would do: complete every operation asked of every VM. */
static void settle(const struct conf *conf)
{
	bool progress = true;

	while (progress) {
		progress = false;
		for (size_t i = 0; i < conf->n_vms; i++)
			if (backend_null_complete_all(backend_null_find(conf->vms[i].name)))
				progress = true;
	}
}

/* Virtual time passes; the daemon's timer would run what is due. */
static void advance(struct reconcile *rc, uint64_t usec)
{
	vnow += usec;
	while (scheduled && scheduled <= vnow) {
		scheduled = 0;
		reconcile_tick(rc);
	}
}

__attribute__((noinline)) unsigned long run_reconciler(const struct conf *conf,
						       struct reconcile *rc,
						       struct usb_device ***devs, char **syspaths,
						       unsigned rounds, unsigned n);
__attribute__((noinline)) unsigned long run_reconciler(const struct conf *conf,
						       struct reconcile *rc,
						       struct usb_device ***devs, char **syspaths,
						       unsigned rounds, unsigned n)
{
	unsigned long ops = 0;

	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned k = 0; k < n; k++) {
			reconcile_device_add(rc, devs[r][k]);
			settle(conf);
			advance(rc, 1000);
			ops++;
		}
		for (unsigned k = 0; k < n; k++) {
			reconcile_device_remove(rc, syspaths[k]);
			settle(conf);
			advance(rc, 1000);
			ops++;
		}
		/* Quiet ports are forgotten: the next round is no burst. */
		advance(rc, RECONCILE_FLAP_WINDOW_USEC + 1000000);
	}
	return ops;
}

/* n devices plugged and unplugged in rounds; reported as core. */
static void bench_reconciler(const struct conf *conf, const char *core, unsigned n)
{
	unsigned rounds = (scale + 1) / 2, attached = 0;
	struct usb_device ***devs = xcalloc(rounds, sizeof(*devs));
	struct reconcile *rc = reconcile_new(conf, &rc_hooks, NULL);
	char **syspaths = NULL;
	unsigned long ops;
	uint64_t t0;
	char *what;

	for (size_t i = 0; i < conf->n_vms; i++)
		backend_null_set_up(backend_null_find(conf->vms[i].name), true, NULL);
	settle(conf);
	for (unsigned r = 0; r < rounds; r++) {
		devs[r] = xcalloc(n, sizeof(**devs));
		for (unsigned k = 0; k < n; k++)
			devs[r][k] = make_device(k, r);
	}
	/* The reconciler owns a device once added: its port (the same in
	 * every round) is kept apart to unplug it by. */
	for (unsigned k = 0; k < n; k++)
		strv_append(&syspaths, devs[0][k]->syspath);
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned k = 0; k < n; k++)
			if (usb_owner(conf, devs[r][k], NULL, NULL))
				attached++;
	t0 = clock_ns();
	ops = run_reconciler(conf, rc, devs, syspaths, rounds, n);
	what = xasprintf("%u rounds of %u plugs and %u unplugs on distinct ports, %u attaches, "
			 "%u VMs, null backends",
			 rounds, n, n, attached, VMS);
	report(core, ops, what, clock_ns() - t0);
	free(what);
	for (size_t i = 0; i < conf->n_vms; i++)
		if (backend_null_count(backend_null_find(conf->vms[i].name),
				       BACKEND_NULL_USB_DETACH) == 0 &&
		    i == 0)
			die("reconciler: vm0 detached nothing; the workload is wrong");
	strv_free(syspaths);
	for (unsigned r = 0; r < rounds; r++)
		free(devs[r]);
	free(devs);
	reconcile_free(rc);
}

/* -------------------------------------------------------------- router */

static unsigned long written;

static void rt_write(void *data, size_t source, size_t target, const struct input_event *ev,
		     size_t n)
{
	written += n;
}

static void rt_focus(void *data, const char *from, const char *to)
{
}

static void rt_grab(void *data, bool grab)
{
}

static const struct input_router_hooks rt_hooks = {
	.write = rt_write,
	.focus = rt_focus,
	.grab = rt_grab,
};

struct frame {
	struct input_event ev[6];
	size_t n;
};

#define E(t, c, v)                                                                                 \
	{                                                                                          \
		.type = (t), .code = (c), .value = (v)                                             \
	}
#define SYN E(EV_SYN, SYN_REPORT, 0)

/* A gaming mouse at 8000 Hz: mostly motion, now and then a button or the
 * wheel (hi-res and classic in one frame). */
static const struct frame mouse_frames[] = {
	{ { E(EV_REL, REL_X, 3), E(EV_REL, REL_Y, -2), SYN }, 3 },
	{ { E(EV_REL, REL_X, 1), SYN }, 2 },
	{ { E(EV_REL, REL_X, -4), E(EV_REL, REL_Y, 7), SYN }, 3 },
	{ { E(EV_REL, REL_Y, 1), SYN }, 2 },
	{ { E(EV_KEY, BTN_LEFT, 1), SYN }, 2 },
	{ { E(EV_REL, REL_X, 2), E(EV_REL, REL_Y, 2), SYN }, 3 },
	{ { E(EV_KEY, BTN_LEFT, 0), SYN }, 2 },
	{ { E(EV_REL, REL_WHEEL, 1), E(EV_REL, REL_WHEEL_HI_RES, 120), SYN }, 3 },
};

/* Typing, with shift, and a control key that may begin a chord: held
 * back, then delivered when C shows it is not one. */
static const struct frame kbd_frames[] = {
	{ { E(EV_MSC, MSC_SCAN, 0x70004), E(EV_KEY, KEY_A, 1), SYN }, 3 },
	{ { E(EV_MSC, MSC_SCAN, 0x70004), E(EV_KEY, KEY_A, 0), SYN }, 3 },
	{ { E(EV_KEY, KEY_LEFTSHIFT, 1), SYN }, 2 },
	{ { E(EV_KEY, KEY_B, 1), SYN }, 2 },
	{ { E(EV_KEY, KEY_B, 0), SYN }, 2 },
	{ { E(EV_KEY, KEY_LEFTSHIFT, 0), SYN }, 2 },
	{ { E(EV_KEY, KEY_LEFTCTRL, 1), SYN }, 2 },
	{ { E(EV_KEY, KEY_C, 1), SYN }, 2 },
	{ { E(EV_KEY, KEY_C, 0), SYN }, 2 },
	{ { E(EV_KEY, KEY_LEFTCTRL, 0), SYN }, 2 },
};

__attribute__((noinline)) unsigned long run_router(struct input_router *r, size_t source,
						   const struct frame *f, size_t nf,
						   unsigned long frames);
__attribute__((noinline)) unsigned long run_router(struct input_router *r, size_t source,
						   const struct frame *f, size_t nf,
						   unsigned long frames)
{
	uint64_t now = 5000000;

	for (unsigned long i = 0; i < frames; i++) {
		const struct frame *fr = &f[i % nf];

		now += 125; /* 8000 frames/s */
		input_router_frame(r, source, true, fr->ev, fr->n, now);
	}
	return frames;
}

static void bench_router(const struct conf *conf, const char *core, const char *source,
			 const struct frame *f, size_t nf, const char *what)
{
	struct input_router *r = input_router_new(conf, &rt_hooks, NULL);
	const struct conf_input *in = conf_find_input(conf, source);
	unsigned long ops;
	uint64_t t0;

	input_router_vm_up(r, "vm0");
	if (input_router_switch(r, "vm0") < 0)
		die("router: cannot focus vm0");
	written = 0;
	t0 = clock_ns();
	/* the source's number, as the input manager has it from the configuration */
	ops = run_router(r, (size_t)(in - conf->inputs), f, nf, 3000UL * scale);
	report(core, ops, what, clock_ns() - t0);
	if (!written)
		die("router: nothing was written; the workload is wrong");
	input_router_free(r);
}

/* ---------------------------------------------------------------- path */

/* The sinks of the path core, by target (as the input manager has them). */
static struct input_sink *path_sinks[VMS + 1];

static void path_write(void *data, size_t source, size_t target, const struct input_event *ev,
		       size_t n)
{
	if (target < ARRAY_SIZE(path_sinks) && path_sinks[target] &&
	    input_sink_write(path_sinks[target], ev, n) == 0)
		written += n;
}

static const struct input_router_hooks path_hooks = {
	.write = path_write,
	.focus = rt_focus,
	.grab = rt_grab,
};

__attribute__((noinline)) unsigned long run_path(struct input_router *r, size_t source,
						 struct input_frame *in, const struct frame *f,
						 size_t nf, unsigned long frames);
__attribute__((noinline)) unsigned long run_path(struct input_router *r, size_t source,
						 struct input_frame *in, const struct frame *f,
						 size_t nf, unsigned long frames)
{
	for (unsigned long i = 0; i < frames; i++) {
		const struct frame *fr = &f[i % nf];

		for (size_t k = 0; k < fr->n; k++)
			if (input_frame_feed(in, LIBEVDEV_READ_STATUS_SUCCESS, &fr->ev[k])) {
				input_router_frame(r, source, true, in->ev, in->n, now_usec());
				input_frame_reset(in);
			}
	}
	return frames;
}

static void bench_path(const struct conf *conf, const char *core, const char *source,
		       const struct frame *f, size_t nf, const char *what)
{
	struct input_router *r = input_router_new(conf, &path_hooks, NULL);
	const struct conf_input *in = conf_find_input(conf, source);
	struct input_frame frame = { 0 };
	unsigned long ops;
	uint64_t t0;

	for (size_t t = 0; t < input_router_n_targets(r) && t < ARRAY_SIZE(path_sinks); t++) {
		char *name = xasprintf("vmplug-%s-%s", input_router_target_name(r, t), source);

		path_sinks[t] = input_sink_new_fd(name, open("/dev/null", O_WRONLY | O_CLOEXEC),
						  NULL);
		free(name);
	}
	input_router_vm_up(r, "vm0");
	if (input_router_switch(r, "vm0") < 0)
		die("path: cannot focus vm0");
	written = 0;
	t0 = clock_ns();
	ops = run_path(r, (size_t)(in - conf->inputs), &frame, f, nf, 3000UL * scale);
	report(core, ops, what, clock_ns() - t0);
	if (!written)
		die("path: nothing was written; the workload is wrong");
	input_frame_clear(&frame);
	for (size_t t = 0; t < ARRAY_SIZE(path_sinks); t++) {
		input_sink_free(path_sinks[t]);
		path_sinks[t] = NULL;
	}
	input_router_free(r);
}

/* -------------------------------------------------------------- timers */

#define TIMERS 10000

static void on_bench_timer(struct loop_timer *t, void *data)
{
	(void)t;
	(*(unsigned long *)data)++;
}

__attribute__((noinline)) unsigned long run_timers(struct loop *loop, struct loop_timer **idle,
						   struct loop_timer *due, unsigned long passes);
__attribute__((noinline)) unsigned long run_timers(struct loop *loop, struct loop_timer **idle,
						   struct loop_timer *due, unsigned long passes)
{
	uint64_t later = now_usec() + 3600 * USEC_PER_SEC;

	for (unsigned long i = 0; i < passes; i++) {
		loop_timer_arm(idle[(i * 7919) % TIMERS], later + (i * 104729) % USEC_PER_SEC);
		loop_timer_arm(due, 1); /* long past: fires in this pass */
		if (loop_dispatch(loop, 0) < 1)
			die("timers: the due timer did not fire");
	}
	return passes;
}

static void bench_timers(void)
{
	struct loop *loop = loop_new();
	struct loop_timer **idle = xcalloc(TIMERS, sizeof(*idle));
	unsigned long fired = 0, ops;
	uint64_t later = now_usec() + 3600 * USEC_PER_SEC, t0;
	struct loop_timer *due;

	if (!loop)
		die("timers: no loop");
	for (unsigned i = 0; i < TIMERS; i++) {
		idle[i] = loop_timer_new(loop, on_bench_timer, &fired);
		loop_timer_arm(idle[i], later + (uint64_t)i * 1000);
	}
	due = loop_timer_new(loop, on_bench_timer, &fired);
	t0 = clock_ns();
	ops = run_timers(loop, idle, due, 200UL * scale);
	report("timers", ops, "10,000 armed timers: one re-armed, one fired per pass",
	       clock_ns() - t0);
	if (fired != ops)
		die("timers: a timer fired that was not due");
	for (unsigned i = 0; i < TIMERS; i++)
		loop_timer_free(idle[i]);
	loop_timer_free(due);
	free(idle);
	loop_free(loop);
}

/* ----------------------------------------------------------------- qmp */

static unsigned long qmp_replies;
static bool qmp_up;

static void on_qmp_connected(struct qmp *q, void *data)
{
	qmp_up = true;
}

static void on_qmp_reply(struct qmp *q, const struct qmp_reply *r, void *data)
{
	if (r->err)
		die("qmp: a command failed");
	qmp_replies++;
}

/* Read and discard what the client sent (its commands). */
static void qmp_drain(int fd)
{
	char buf[65536];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Write one reply to `id` and run the loop until the client matched it. */
static void qmp_answer(struct loop *loop, int peer, uint64_t id)
{
	unsigned long before = qmp_replies;
	char reply[64];
	int n = snprintf(reply, sizeof(reply), "{\"return\": {}, \"id\": %llu}\r\n",
			 (unsigned long long)id);

	if (write(peer, reply, (size_t)n) != n)
		die("qmp: cannot write a reply");
	while (qmp_replies == before)
		if (loop_dispatch(loop, 1000) < 0)
			die("qmp: the loop failed");
}

__attribute__((noinline)) unsigned long run_qmp(struct loop *loop, struct qmp *q, int peer,
						uint64_t *pending, size_t n_pending,
						uint64_t *next_id, unsigned long ops);
__attribute__((noinline)) unsigned long run_qmp(struct loop *loop, struct qmp *q, int peer,
						uint64_t *pending, size_t n_pending,
						uint64_t *next_id, unsigned long ops)
{
	for (unsigned long i = 0; i < ops; i++) {
		/* a pending command, anywhere in the sending order */
		size_t k = (size_t)((i * 7919 + 104729) % n_pending);

		qmp_answer(loop, peer, pending[k]);
		if (qmp_command(q, "query-status", NULL, NULL, on_qmp_reply, NULL) < 0)
			die("qmp: cannot send");
		pending[k] = (*next_id)++;
		qmp_drain(peer);
	}
	return ops;
}

static void bench_qmp(const char *core, size_t n_pending)
{
	static const char greeting[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
				       "\"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
				       "\"capabilities\": []}}\r\n";
	static const struct qmp_callbacks cb = { .connected = on_qmp_connected };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/vmplug-bench-qmp-XXXXXX";
	uint64_t *pending = xcalloc(n_pending, sizeof(*pending)), next_id, t0;
	struct loop *loop = loop_new();
	struct qmp_opts opts = { .name = "bench", .timeout_usec = 3600 * USEC_PER_SEC };
	unsigned long ops;
	struct qmp *q;
	char *what;
	int lfd, peer;

	if (!loop || !mkdtemp(dir))
		die("qmp: setup failed");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/qmp.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
		die("qmp: cannot listen");
	opts.socket_path = sa.sun_path;
	qmp_up = false;
	q = qmp_new(loop, &opts, &cb, NULL);
	if (!q)
		die("qmp: qmp_new failed");
	loop_dispatch(loop, 1000); /* the first attempt connects */
	peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (peer < 0 || write(peer, greeting, strlen(greeting)) < 0)
		die("qmp: no connection");
	/* qmp_capabilities is the client's first id, 1 */
	if (write(peer, "{\"return\": {}, \"id\": 1}\r\n", 25) != 25)
		die("qmp: cannot write");
	while (!qmp_up)
		if (loop_dispatch(loop, 1000) < 0)
			die("qmp: no handshake");
	next_id = 2;
	for (size_t k = 0; k < n_pending; k++) {
		if (qmp_command(q, "query-status", NULL, NULL, on_qmp_reply, NULL) < 0)
			die("qmp: cannot send");
		pending[k] = next_id++;
		qmp_drain(peer);
	}
	t0 = clock_ns();
	ops = run_qmp(loop, q, peer, pending, n_pending, &next_id, 500UL * scale);
	what = xasprintf("%zu commands pending, one answered in a scrambled order and one sent",
			 n_pending);
	report(core, ops, what, clock_ns() - t0);
	free(what);
	qmp_free(q);
	close(peer);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
	free(pending);
	loop_free(loop);
}

int main(int argc, char **argv)
{
	static const char *const all[] = { "matcher",         "reconciler",    "router-mouse",
					   "router-keyboard", "timers",        "qmp-10",
					   "qmp-10000",       "reconciler-16", "reconciler-2048",
					   "path-mouse",      "path-keyboard" };
	bool want[ARRAY_SIZE(all)] = { false };
	bool any = false;
	struct conf *conf;

	for (int i = 1; i < argc; i++) {
		bool known = false;

		if (streq(argv[i], "--short")) {
			scale = 1;
			continue;
		}
		for (size_t c = 0; c < ARRAY_SIZE(all); c++)
			if (streq(argv[i], all[c]))
				want[c] = known = any = true;
		if (!known) {
			fprintf(stderr,
				"usage: %s [--short] [matcher|reconciler|router-mouse|"
				"router-keyboard|timers|qmp-10|qmp-10000|reconciler-16|"
				"reconciler-2048|path-mouse|path-keyboard]...\n",
				argv[0]);
			return 2;
		}
	}
	if (!any)
		for (size_t c = 0; c < ARRAY_SIZE(all); c++)
			want[c] = true;
	log_set_level(LOG_LEVEL_ERROR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	conf = make_conf();
	if (want[0])
		bench_matcher(conf);
	if (want[1])
		bench_reconciler(conf, "reconciler", RC_DEVICES);
	if (want[2])
		bench_router(conf, "router-mouse", "mouse", mouse_frames, ARRAY_SIZE(mouse_frames),
			     "input_router_frame: gaming mouse, motion, buttons, wheel");
	if (want[3])
		bench_router(conf, "router-keyboard", "kbd", kbd_frames, ARRAY_SIZE(kbd_frames),
			     "input_router_frame: typing, shift, a control key held back");
	if (want[4])
		bench_timers();
	if (want[5])
		bench_qmp("qmp-10", 10);
	if (want[6])
		bench_qmp("qmp-10000", 10000);
	if (want[7])
		bench_reconciler(conf, "reconciler-16", 16);
	if (want[8])
		bench_reconciler(conf, "reconciler-2048", 2048);
	if (want[9])
		bench_path(conf, "path-mouse", "mouse", mouse_frames, ARRAY_SIZE(mouse_frames),
			   "source frame, router, sink write: gaming mouse");
	if (want[10])
		bench_path(conf, "path-keyboard", "kbd", kbd_frames, ARRAY_SIZE(kbd_frames),
			   "source frame, router, sink write: typing");
	conf_free(conf);
	return 0;
}

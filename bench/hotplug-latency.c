/* Benchmark P1: how soon a plugged USB device works in the VM, and how
 * soon an unplugged one is gone, through vmplugd, against the floor of
 * talking to QEMU directly.
 *
 * Everything runs on a fake USB tree (umockdev, tests/integration/usbbed):
 * the program re-runs itself under the umockdev preload, plugs and
 * unplugs devices in the testbed it owns, and starts a real QEMU (paused,
 * q35, xhci) and the build tree's vmplugd under it, so QEMU really opens
 * each device. All times are CLOCK_REALTIME microseconds, from:
 *   - the testbed's uevents: the moment umockdev starts sending one to
 *     the listening programs (see uevent_time; the plug call goes on
 *     after it: the descriptors file, the device node);
 *   - vmplugd's control socket: USB_ATTACHED (vmplugd has QEMU's reply to
 *     device_add) and USB_DETACHED (vmplugd has seen DEVICE_DELETED);
 *   - QEMU's trace event usb_host_open_success (with -msg timestamp=on):
 *     the moment the device is open and attached (QOM `attached` true);
 *   - the DEVICE_DELETED event on QEMU's second monitor, stamped by QEMU.
 * The floor: the same QEMU and the same kind of device, with this program
 * sending device_add (address mode, as vmplugd does), query-status and
 * device_del itself on QEMU's second monitor, no vmplugd and no udev.
 *
 * Ports rotate (--ports, default 40) so no port changes more than twice
 * within 2 s: a flapping port is what a debounce would hold back, and
 * that is not what this measures.
 *
 * Usage: hotplug-latency [--short] [--plugs N] [--ports N]
 * QEMU comes from $QEMU_SYSTEM (default /usr/bin/qemu-system-x86_64),
 * vmplugd from $VMPLUGD (default: the build tree's). Exit 77 when it
 * cannot run here (no QEMU, no umockdev). */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "tests/integration/usbbed.h"
#include "tests/lib/qemu.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 10000
#define VENDOR 0x1234
#define FLOOR_VENDOR 0x4321
#define PRODUCT 0x5678

struct bench {
	struct usbbed *bed;
	struct qemu *qemu;
	FILE *trace; /* QEMU's stderr, read as it grows */
	char *dir;
};

static NORETURN void fail(const char *fmt, ...) PRINTF_LIKE(1, 2);

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "hotplug-latency: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Device numbers 2..127 in turn; an id comes back only long after its
 * detach completed. */
static unsigned devnum(unsigned i)
{
	return 2 + i % 126;
}

/* When the testbed's last uevent went out. umockdev sends a uevent with
 * one sendmsg() per listening program (a socket $UMOCKDEV_DIR/eventN
 * each), from inside the plug and unplug calls; this program's own
 * sendmsg() stands in front of libc's and notes the first one of each
 * call. (A listener socket of our own with SO_TIMESTAMP would be stamped
 * when its turn came, after vmplugd's or QEMU's, minutes late when the
 * sender is preempted in between.) */
static uint64_t uevent_time;
static bool uevent_armed;

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);

	if (uevent_armed) {
		uevent_time = bench_realtime_usec();
		uevent_armed = false;
	}
	if (!real)
		real = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
	return real(fd, msg, flags);
}

static void uevent_arm(void)
{
	uevent_time = 0;
	uevent_armed = true;
}

static uint64_t uevent_sent(const char *what)
{
	uevent_armed = false;
	if (!uevent_time)
		fail("the testbed sent no uevent for %s", what);
	return uevent_time;
}

/* Plug a device in; returns when the testbed sent its "add". */
static uint64_t plug(struct bench *b, const char *port, unsigned dev, unsigned vendor,
		     uint64_t *call)
{
	struct usbbed_dev d = {
		.port = port, .devnum = dev, .vendor = vendor, .product = PRODUCT, .if_class = 0xff
	};
	uint64_t t0 = bench_realtime_usec();

	uevent_arm();
	usbbed_plug(b->bed, &d);
	if (call)
		*call = bench_realtime_usec() - t0;
	return uevent_sent(port);
}

/* Unplug; returns when the testbed sent the "remove". */
static uint64_t unplug(struct bench *b, const char *port)
{
	uevent_arm();
	usbbed_unplug(b->bed, port);
	return uevent_sent(port);
}

/* The time of QEMU's trace line usb_host_open_success for want_bus and
 * dev, read from where the trace file was; waits up to WAIT_MS. Lines
 * look like "PID@SECONDS.MICROSECONDS:usb_host_open_success dev 1:5". */
static uint64_t opened_at(struct bench *b, unsigned want_bus, unsigned dev)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;
	char line[512];

	for (;;) {
		unsigned long long s, us;
		unsigned bus, addr;
		char *at;

		if (!fgets(line, sizeof(line), b->trace)) {
			if (now_usec() > end)
				return 0;
			clearerr(b->trace);
			usleep(200);
			continue;
		}
		at = strchr(line, '@');
		if (at &&
		    sscanf(at, "@%llu.%llu:usb_host_open_success dev %u:%u", &s, &us, &bus,
			   &addr) == 4 &&
		    bus == want_bus && addr == dev)
			return s * USEC_PER_SEC + us;
	}
}

/* QEMU's timestamp of DEVICE_DELETED for id (other events are dropped). */
static uint64_t deleted_at(struct bench *b, const char *id)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *ev = qemu_next_event(b->qemu, WAIT_MS);
		const char *dev = json_string_value(
		    json_object_get(json_object_get(ev, "data"), "device"));
		uint64_t t = 0;

		if (ev &&
		    streq(json_string_value(json_object_get(ev, "event")) ?: "",
			  "DEVICE_DELETED") &&
		    dev && streq(dev, id))
			t = bench_event_time(ev);
		json_decref(ev);
		if (t || !ev)
			return t;
	}
	return 0;
}

static bool attached_in_qemu(struct bench *b, const char *id)
{
	char *path = xasprintf("/machine/peripheral/%s", id);
	json_t *r = qemu_check_return(b->qemu, "qom-get",
				      json_pack("{s:s,s:s}", "path", path, "property", "attached"));
	bool yes = json_is_true(r);

	json_decref(r);
	free(path);
	return yes;
}

static uint64_t check_call_usec(struct bench *b, const char *cmd, json_t *args)
{
	uint64_t t0 = now_usec();
	json_t *r = qemu_check(b->qemu, cmd, args);
	uint64_t t = now_usec() - t0;

	if (!r || !json_object_get(r, "return")) {
		char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;

		fail("%s: %s", cmd, text ? text : "no answer");
	}
	json_decref(r);
	return t;
}

struct samples {
	uint64_t *f_add, *f_qs, *f_del;       /* the floor */
	uint64_t *reply, *open, *qdel, *vdel; /* through vmplugd */
	uint64_t *plugcall;
};

/* The floor, one cycle: device_add, query-status and device_del sent
 * straight to QEMU, for a device on bus 2 (no rule of vmplugd claims it). */
static void floor_cycle(struct bench *b, unsigned i, unsigned ports, struct samples *s)
{
	char *port = xasprintf("2-%u", 1 + i % ports);
	unsigned dev = devnum(i);
	uint64_t t;

	plug(b, port, dev, FLOOR_VENDOR, NULL);
	s->f_add[i] = check_call_usec(b, "device_add",
				      json_pack("{s:s,s:s,s:s,s:i,s:i}", "driver", "usb-host", "id",
						"floor", "bus", "xhci.0", "hostbus", 2, "hostaddr",
						(int)dev));
	if (!attached_in_qemu(b, "floor"))
		fail("floor: QEMU did not open device 2-%u", dev);
	s->f_qs[i] = check_call_usec(b, "query-status", NULL);
	t = bench_realtime_usec();
	check_call_usec(b, "device_del", json_pack("{s:s}", "id", "floor"));
	s->f_del[i] = deleted_at(b, "floor");
	if (!s->f_del[i])
		fail("floor: no DEVICE_DELETED");
	s->f_del[i] -= t;
	unplug(b, port);
	free(port);
}

/* The next USB event of vmplugd for id: its timestamp, 0 on USB_FAILED
 * or when none came. */
static uint64_t vmplugd_event(struct bench_ctl *ctl, const char *want, const char *id)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *ev = bench_ctl_event(ctl, WAIT_MS);
		uint64_t t = 0;
		bool stop = !ev;

		if (ev && streq(bench_event_str(ev, "id"), id)) {
			if (streq(bench_event_name(ev), want))
				t = bench_event_time(ev);
			stop = streq(bench_event_name(ev), want) ||
			       streq(bench_event_name(ev), "USB_FAILED");
			if (!t)
				fprintf(stderr, "hotplug-latency: %s: %s %s\n", id,
					bench_event_name(ev), bench_event_str(ev, "error"));
		}
		json_decref(ev);
		if (stop)
			return t;
	}
	return 0;
}

/* Lines of path that contain both a and b. */
static unsigned count_lines(const char *path, const char *a, const char *b)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	unsigned n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, a) && strstr(line, b);
	if (f)
		fclose(f);
	return n;
}

/* One plug and unplug through vmplugd, of a device on bus 1 its rule claims. */
static void vmplugd_cycle(struct bench *b, struct bench_ctl *ctl, unsigned i, unsigned ports,
			  struct samples *s)
{
	char *port = xasprintf("1-%u", 1 + i % ports);
	unsigned dev = devnum(i);
	char *id = xasprintf("vmplug-usb-1-%u", dev);
	uint64_t t, tr, to, tq, tv;

	t = plug(b, port, dev, VENDOR, &s->plugcall[i]);
	tr = vmplugd_event(ctl, "USB_ATTACHED", id);
	to = opened_at(b, 1, dev);
	if (!tr || !to)
		fail("%s on %s: %s", id, port, !tr ? "no USB_ATTACHED" : "QEMU never opened it");
	if (!attached_in_qemu(b, id))
		fail("%s: QEMU says attached: false", id);
	if (tr < t || to < t)
		fail("%s: attached before the uevent was sent?", id);
	s->reply[i] = tr - t;
	s->open[i] = to - t;
	t = unplug(b, port);
	tq = deleted_at(b, id);
	tv = vmplugd_event(ctl, "USB_DETACHED", id);
	if (!tq || !tv)
		fail("%s: %s", id, !tq ? "no DEVICE_DELETED" : "no USB_DETACHED");
	s->qdel[i] = tq - t;
	s->vdel[i] = tv - t;
	free(id);
	free(port);
}

static void wait_vm_up(struct bench_ctl *ctl)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *st = bench_ctl_call(ctl, "query-status", NULL);
		json_t *vm = json_array_get(json_object_get(st, "vms"), 0);
		bool up = streq(json_string_value(json_object_get(vm, "state")) ?: "", "running");

		json_decref(st);
		if (up)
			return;
		usleep(10000);
	}
	fail("vmplugd did not reach QEMU");
}

int main(int argc, char **argv)
{
	unsigned n = 200, ports = 40;
	bool back_to_back = false;
	struct bench b = { 0 };
	char *const trace_args[] = { (char *)"-trace", (char *)"usb_host_open_success",
				     (char *)"-msg", (char *)"timestamp=on", NULL };
	/* Its QMP trace (one log line per message) counts the device_adds
	 * QEMU refused because its libusb did not list the device yet. */
	char *const trace_env[] = { (char *)"VMPLUG_QMP_TRACE=1", NULL };
	char *conf, *sock, *log;
	struct bench_ctl *ctl;
	struct samples sm;
	pid_t vmplugd;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			n = 5;
		} else if (streq(argv[i], "--plugs") && i + 1 < argc) {
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--back-to-back")) {
			back_to_back = true;
		} else if (streq(argv[i], "--ports") && i + 1 < argc) {
			ports = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr,
				"usage: %s [--short] [--plugs N] [--ports N] [--back-to-back]\n",
				argv[0]);
			return 2;
		}
	}
	if (!n || !ports || ports > 127) {
		fprintf(stderr, "hotplug-latency: --plugs must be positive, --ports 1 to 127\n");
		return 2;
	}
	if (!getenv("QEMU_SYSTEM"))
		setenv("QEMU_SYSTEM", "/usr/bin/qemu-system-x86_64", 1);
	if (!qemu_binary()) {
		fprintf(stderr, "hotplug-latency: no QEMU at %s\n", getenv("QEMU_SYSTEM"));
		return 77;
	}
	usbbed_reexec(argv);
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);

	b.dir = scratch_new("bench-hotplug");
	b.bed = usbbed_new(2);
	setenv("UMOCKDEV_DIR", usbbed_dir(b.bed), 1);
	b.qemu = qemu_start_args(b.dir, "vm", NULL, trace_args);
	if (!b.qemu)
		fail("QEMU did not start");
	b.trace = fopen(b.qemu->stderr_path, "re");
	if (!b.trace)
		fail("%s: %s", b.qemu->stderr_path, strerror(errno));

	bench_print_machine(stdout);
	{
		json_t *ver = qemu_check_return(b.qemu, "query-version", NULL);
		json_t *q = json_object_get(ver, "qemu");

		printf("QEMU %lld.%lld.%lld (%s), -M q35 -accel tcg -S, on a umockdev USB tree; "
		       "%u plugs over %u ports%s\n",
		       json_integer_value(json_object_get(q, "major")),
		       json_integer_value(json_object_get(q, "minor")),
		       json_integer_value(json_object_get(q, "micro")),
		       json_string_value(json_object_get(ver, "package")) ?: "", n, ports,
		       back_to_back ? ", back to back" : ", each after a floor cycle");
		json_decref(ver);
	}

	sm = (struct samples){
		.f_add = xcalloc(n, sizeof(uint64_t)),
		.f_qs = xcalloc(n, sizeof(uint64_t)),
		.f_del = xcalloc(n, sizeof(uint64_t)),
		.reply = xcalloc(n, sizeof(uint64_t)),
		.open = xcalloc(n, sizeof(uint64_t)),
		.qdel = xcalloc(n, sizeof(uint64_t)),
		.vdel = xcalloc(n, sizeof(uint64_t)),
		.plugcall = xcalloc(n, sizeof(uint64_t)),
	};

	conf = xasprintf("%s/conf", b.dir);
	sock = xasprintf("%s/control.sock", b.dir);
	log = xasprintf("%s/vmplugd.log", b.dir);
	{
		char *vmd = xasprintf("%s/vm.d", conf), *path;

		mkdir_p(vmd, 0755);
		path = xasprintf("%s/vmplug.conf", conf);
		bench_write_file(path, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n",
				 sock, b.dir);
		free(path);
		path = xasprintf("%s/vm.conf", vmd);
		bench_write_file(path,
				 "[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n"
				 "[usb \"bench\"]\nvendor = %04x\nproduct = %04x\n",
				 b.qemu->qmp_path, VENDOR, PRODUCT);
		free(path);
		free(vmd);
	}
	vmplugd = bench_vmplugd_start(conf, sock, log, trace_env);
	if (vmplugd < 0)
		fail("vmplugd did not start");
	ctl = bench_ctl_connect(sock);
	{
		json_t *ok = ctl ? bench_ctl_call(ctl, "subscribe", NULL) : NULL;

		if (!ok)
			fail("cannot subscribe to vmplugd's events");
		json_decref(ok);
	}
	wait_vm_up(ctl);

	if (back_to_back) {
		for (unsigned i = 0; i < n; i++)
			floor_cycle(&b, i, ports, &sm);
		for (unsigned i = 0; i < n; i++)
			vmplugd_cycle(&b, ctl, i, ports, &sm);
	} else {
		for (unsigned i = 0; i < n; i++) {
			floor_cycle(&b, i, ports, &sm);
			vmplugd_cycle(&b, ctl, i, ports, &sm);
		}
	}

	printf("floor: this program talking to QEMU's monitor itself (no udev, no vmplugd)\n");
	bench_report("  query-status round trip", sm.f_qs, n);
	bench_report("  device_add round trip (QEMU opens it)", sm.f_add, n);
	bench_report("  device_del to DEVICE_DELETED", sm.f_del, n);
	printf("through vmplugd, from the testbed's uevent\n");
	bench_report("  plug: device_add reply at vmplugd", sm.reply, n);
	bench_report("  plug: QEMU has it open (attached)", sm.open, n);
	bench_report("  unplug: QEMU's DEVICE_DELETED", sm.qdel, n);
	bench_report("  unplug: vmplugd has DEVICE_DELETED", sm.vdel, n);
	bench_report("  (the testbed's whole plug call)", sm.plugcall, n);
	printf("overhead over the floor (vmplugd path minus the bare command)\n");
	bench_report_diff("  plug: reply - device_add round trip",
			  (double)bench_pct(sm.reply, n, 0.5) - (double)bench_pct(sm.f_add, n, 0.5),
			  (double)bench_pct(sm.reply, n, 0.99) -
			      (double)bench_pct(sm.f_add, n, 0.99));
	bench_report_diff("  unplug: DEVICE_DELETED - bare device_del",
			  (double)bench_pct(sm.qdel, n, 0.5) - (double)bench_pct(sm.f_del, n, 0.5),
			  (double)bench_pct(sm.qdel, n, 0.99) -
			      (double)bench_pct(sm.f_del, n, 0.99));

	printf("device_add refused with \"failed to find host usb device\" (QEMU's libusb had not "
	       "seen it yet; vmplugd retries): %u of %u plugs\n",
	       count_lines(log, "qmp <- {\"id\": ", "failed to find host usb device"), n);

	bench_ctl_free(ctl);
	if (bench_vmplugd_stop(vmplugd) != 0)
		fprintf(stderr, "hotplug-latency: vmplugd did not exit cleanly (see %s)\n", log);
	fclose(b.trace);
	qemu_free(b.qemu);
	usbbed_free(b.bed);
	if (!getenv("BENCH_KEEP"))
		scratch_remove(b.dir);
	free(conf);
	free(sock);
	free(log);
	free(sm.f_add);
	free(sm.f_qs);
	free(sm.f_del);
	free(sm.reply);
	free(sm.open);
	free(sm.plugcall);
	free(sm.qdel);
	free(sm.vdel);
	return 0;
}

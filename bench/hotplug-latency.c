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
 *     the listening programs (bench/testbed.h: the "add" goes out once
 *     the device is complete, descriptors and node, as with a kernel);
 *   - QEMU's trace (-msg timestamp=on): handle_qmp_command (a command
 *     reached QEMU), usb_host_open_success (the device is open: QOM
 *     `attached` is true) and monitor_qmp_respond (QEMU sent its reply);
 *   - vmplugd's control socket: USB_ATTACHED (vmplugd has QEMU's reply to
 *     device_add: attached, as vmplugd reports it) and USB_DETACHED
 *     (vmplugd has seen DEVICE_DELETED);
 *   - the DEVICE_DELETED event on QEMU's second monitor, stamped by QEMU.
 * The floor: the same QEMU and the same kind of device, with this program
 * sending device_add (address mode, as vmplugd does), query-status and
 * device_del itself on QEMU's second monitor, no vmplugd and no udev. Its
 * device_add goes FLOOR_SETTLE_MS after the plug, when QEMU's libusb is
 * done with the uevent: the floor is QEMU's own work, and vmplugd's path
 * (which races libusb, as it must) is measured against it. Each vmplugd
 * cycle follows a floor cycle, so both see the same load of the machine.
 *
 * Ports rotate (--ports, default 40) so no port changes more than twice
 * within 2 s: a flapping port is what a debounce would hold back, and
 * that is not what this measures.
 *
 * Usage: hotplug-latency [--short] [--plugs N] [--ports N] [--back-to-back]
 * (--back-to-back: all floor cycles first, then all through vmplugd.)
 * QEMU comes from $QEMU_SYSTEM (default /usr/bin/qemu-system-x86_64),
 * vmplugd from $VMPLUGD (default: the build tree's). Exit 77 when it
 * cannot run here (no QEMU, no umockdev). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "bench/testbed.h"
#include "tests/integration/usbbed.h"
#include "tests/lib/qemu.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 10000
#define FLOOR_SETTLE_MS 10
#define VENDOR 0x1234
#define FLOOR_VENDOR 0x4321
#define PRODUCT 0x5678

struct bench {
	struct usbbed *bed;
	struct qemu *qemu;
	FILE *trace;     /* QEMU's stderr, read as it grows */
	char line[4096]; /* its line being read */
	bool line_done;
	char *dir;
};

/* Device numbers 2..127 in turn; an id comes back only long after its
 * detach completed. */
static unsigned devnum(unsigned i)
{
	return 2 + i % 126;
}

static uint64_t uevent_sent(const char *what)
{
	uint64_t t = bench_uevent_time();

	if (!t)
		bench_fail("the testbed sent no uevent for %s", what);
	return t;
}

/* Plug a device in; returns when the testbed sent its "add". */
static uint64_t plug(struct bench *b, const char *port, unsigned dev, unsigned vendor,
		     uint64_t *call)
{
	struct usbbed_dev d = {
		.port = port, .devnum = dev, .vendor = vendor, .product = PRODUCT, .if_class = 0xff
	};
	uint64_t t0 = bench_realtime_usec();

	bench_uevent_arm();
	bench_uevent_hold();
	usbbed_plug(b->bed, &d);
	if (call)
		*call = bench_realtime_usec() - t0;
	bench_uevent_release();
	return uevent_sent(port);
}

/* Unplug; returns when the testbed sent the "remove". */
static uint64_t unplug(struct bench *b, const char *port)
{
	bench_uevent_arm();
	usbbed_unplug(b->bed, port);
	return uevent_sent(port);
}

/* The next whole line of QEMU's stderr (a trace line may be read before
 * QEMU has written all of it), waiting until `end`; NULL at the deadline. */
static const char *trace_line(struct bench *b, uint64_t end)
{
	for (;;) {
		size_t len = strlen(b->line);
		char *nl;

		if (b->line_done) {
			b->line[0] = '\0';
			b->line_done = false;
			len = 0;
		}
		if (len + 1 < sizeof(b->line) &&
		    fgets(b->line + len, (int)(sizeof(b->line) - len), b->trace)) {
			nl = strchr(b->line, '\n');
			if (!nl && strlen(b->line) + 1 < sizeof(b->line))
				continue; /* the rest comes later */
			b->line_done = true;
			return b->line;
		}
		if (len + 1 >= sizeof(b->line)) { /* too long to matter: skip it */
			b->line_done = true;
			return b->line;
		}
		if (now_usec() > end)
			return NULL;
		clearerr(b->trace);
		usleep(200);
	}
}

/* A trace line "PID@SECONDS.MICROSECONDS:EVENT ARGS": its time, and
 * *args pointing after "EVENT "; 0 if it is not event. */
static uint64_t trace_event(const char *line, const char *event, const char **args)
{
	const char *at = strchr(line, '@'), *colon;
	unsigned long long s, us;
	size_t n = strlen(event);

	if (!at || sscanf(at, "@%llu.%llu:", &s, &us) != 2 || !(colon = strchr(at, ':')) ||
	    strncmp(colon + 1, event, n) != 0 || colon[1 + n] != ' ')
		return 0;
	*args = colon + 2 + n;
	return s * USEC_PER_SEC + us;
}

/* What QEMU's trace says about vmplugd's device_add of id, for a device
 * at want_bus:dev; CLOCK_REALTIME microseconds. */
struct qemu_side {
	uint64_t cmd;   /* the first device_add for id reached QEMU (handle_qmp_command) */
	uint64_t open;  /* the device is open: attached (usb_host_open_success) */
	uint64_t reply; /* QEMU sent its success reply (monitor_qmp_respond) */
	unsigned tries; /* device_adds for id QEMU got (vmplugd retries refused ones) */
};

/* The JSON after "mon 0x... req: " or "resp: " in a QMP trace line, and
 * the monitor; NULL if it does not parse. */
static json_t *trace_json(const char *args, const char *tag, char mon[64])
{
	const char *j = strstr(args, tag);

	if (!j || sscanf(args, "mon %63s", mon) != 1)
		return NULL;
	return json_loads(j + strlen(tag), JSON_DISABLE_EOF_CHECK, NULL);
}

/* When `execute` for device id reached QEMU (its trace, read on from
 * where it was; waits up to WAIT_MS); 0 if it did not. */
static uint64_t qemu_cmd_at(struct bench *b, const char *execute, const char *id)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC, found = 0;
	const char *line;

	while (!found && (line = trace_line(b, end))) {
		const char *args;
		char m[64];
		json_t *j;
		uint64_t t;

		if ((t = trace_event(line, "handle_qmp_command", &args)) &&
		    (j = trace_json(args, "req: ", m))) {
			const char *dev_id = json_string_value(
			    json_object_get(json_object_get(j, "arguments"), "id"));

			if (streq(json_string_value(json_object_get(j, "execute")) ?: "",
				  execute) &&
			    dev_id && streq(dev_id, id))
				found = t;
			json_decref(j);
		}
	}
	return found;
}

/* Read QEMU's trace from where it was until the device is open and its
 * device_add answered (a refused one is retried by vmplugd: the reply
 * that counts is the success); waits up to WAIT_MS. False if that did
 * not happen. */
static bool qemu_side_of(struct bench *b, unsigned want_bus, unsigned dev, const char *id,
			 struct qemu_side *q)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;
	char mon[64] = "";
	json_int_t cmd_id = -1;
	const char *line;

	*q = (struct qemu_side){ 0 };
	while (!(q->open && q->reply) && (line = trace_line(b, end))) {
		const char *args;
		unsigned bus, addr;
		char m[64];
		json_t *j;
		uint64_t t;

		if ((t = trace_event(line, "usb_host_open_success", &args))) {
			if (sscanf(args, "dev %u:%u", &bus, &addr) == 2 && bus == want_bus &&
			    addr == dev)
				q->open = t;
		} else if ((t = trace_event(line, "handle_qmp_command", &args)) &&
			   (j = trace_json(args, "req: ", m))) {
			const char *dev_id = json_string_value(
			    json_object_get(json_object_get(j, "arguments"), "id"));

			if (streq(json_string_value(json_object_get(j, "execute")) ?: "",
				  "device_add") &&
			    dev_id && streq(dev_id, id) &&
			    json_is_integer(json_object_get(j, "id"))) {
				if (!q->cmd)
					q->cmd = t;
				q->tries++;
				snprintf(mon, sizeof(mon), "%s", m);
				cmd_id = json_integer_value(json_object_get(j, "id"));
			}
			json_decref(j);
		} else if ((t = trace_event(line, "monitor_qmp_respond", &args)) &&
			   (j = trace_json(args, "resp: ", m))) {
			if (*mon && streq(m, mon) && json_is_integer(json_object_get(j, "id")) &&
			    json_integer_value(json_object_get(j, "id")) == cmd_id &&
			    json_object_get(j, "return"))
				q->reply = t;
			json_decref(j);
		}
	}
	return q->open && q->reply;
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

		bench_fail("%s: %s", cmd, text ? text : "no answer");
	}
	json_decref(r);
	return t;
}

struct samples {
	uint64_t *f_add, *f_qs, *f_del;          /* the floor */
	uint64_t *cmd, *open, *reply, *attached; /* through vmplugd: plug */
	uint64_t *del_cmd, *qdel, *vdel;         /* and unplug */
	uint64_t *step_qemu, *step_back;
	unsigned long retries; /* device_adds QEMU refused */
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
	usleep(FLOOR_SETTLE_MS * 1000);
	s->f_add[i] = check_call_usec(b, "device_add",
				      json_pack("{s:s,s:s,s:s,s:i,s:i}", "driver", "usb-host", "id",
						"floor", "bus", "xhci.0", "hostbus", 2, "hostaddr",
						(int)dev));
	if (!attached_in_qemu(b, "floor"))
		bench_fail("floor: QEMU did not open device 2-%u", dev);
	s->f_qs[i] = check_call_usec(b, "query-status", NULL);
	t = bench_realtime_usec();
	check_call_usec(b, "device_del", json_pack("{s:s}", "id", "floor"));
	s->f_del[i] = bench_qemu_deleted_at(b->qemu, "floor", WAIT_MS);
	if (!s->f_del[i])
		bench_fail("floor: no DEVICE_DELETED");
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

/* One plug and unplug through vmplugd, of a device on bus 1 its rule claims. */
static void vmplugd_cycle(struct bench *b, struct bench_ctl *ctl, unsigned i, unsigned ports,
			  struct samples *s)
{
	char *port = xasprintf("1-%u", 1 + i % ports);
	unsigned dev = devnum(i);
	char *id = xasprintf("vmplug-usb-1-%u", dev);
	struct qemu_side q;
	uint64_t t, tv, tq, td;

	t = plug(b, port, dev, VENDOR, &s->plugcall[i]);
	tv = vmplugd_event(ctl, "USB_ATTACHED", id);
	if (!tv)
		bench_fail("%s on %s: no USB_ATTACHED", id, port);
	if (!qemu_side_of(b, 1, dev, id, &q))
		bench_fail("%s on %s: %s", id, port,
			   !q.open ? "QEMU's trace never says it opened it"
				   : "QEMU's trace has no successful reply to its device_add");
	if (!attached_in_qemu(b, id))
		bench_fail("%s: QEMU says attached: false", id);
	if (tv < t || q.cmd < t || q.open < t || q.reply < t)
		bench_fail("%s: attached before the uevent was sent?", id);
	s->cmd[i] = q.cmd - t;
	s->open[i] = q.open - t;
	s->reply[i] = q.reply - t;
	s->attached[i] = tv - t;
	s->retries += q.tries - 1;
	t = unplug(b, port);
	tq = bench_qemu_deleted_at(b->qemu, id, WAIT_MS);
	tv = vmplugd_event(ctl, "USB_DETACHED", id);
	if (!tq || !tv)
		bench_fail("%s: %s", id, !tq ? "no DEVICE_DELETED" : "no USB_DETACHED");
	td = qemu_cmd_at(b, "device_del", id);
	if (!td || td < t || tq < td)
		bench_fail(
		    "%s: QEMU's trace has no device_del between the uevent and DEVICE_DELETED", id);
	s->del_cmd[i] = td - t;
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
	bench_fail("vmplugd did not reach QEMU");
}

int main(int argc, char **argv)
{
	unsigned n = 200, ports = 40;
	bool back_to_back = false;
	struct bench b = { 0 };
	char *const trace_args[] = { (char *)"-trace",
				     (char *)"usb_host_open_success",
				     (char *)"-trace",
				     (char *)"handle_qmp_command",
				     (char *)"-trace",
				     (char *)"monitor_qmp_respond",
				     (char *)"-msg",
				     (char *)"timestamp=on",
				     NULL };
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
	if (!bench_have_qemu("hotplug-latency"))
		return 77;
	bench_testbed_setup(argv);
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);

	b.dir = scratch_new("bench-hotplug");
	b.bed = usbbed_new(2);
	setenv("UMOCKDEV_DIR", usbbed_dir(b.bed), 1);
	bench_fd_pad(40); /* QEMU's uevent socket must not share vmplugd's name */
	b.qemu = qemu_start_args(b.dir, "vm", NULL, trace_args);
	bench_fd_unpad();
	if (!b.qemu)
		bench_fail("QEMU did not start");
	b.trace = fopen(b.qemu->stderr_path, "re");
	if (!b.trace)
		bench_fail("%s: %s", b.qemu->stderr_path, strerror(errno));

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
		.cmd = xcalloc(n, sizeof(uint64_t)),
		.open = xcalloc(n, sizeof(uint64_t)),
		.reply = xcalloc(n, sizeof(uint64_t)),
		.attached = xcalloc(n, sizeof(uint64_t)),
		.del_cmd = xcalloc(n, sizeof(uint64_t)),
		.step_qemu = xcalloc(n, sizeof(uint64_t)),
		.step_back = xcalloc(n, sizeof(uint64_t)),
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
	vmplugd = bench_vmplugd_start(conf, sock, log, NULL);
	if (vmplugd < 0)
		bench_fail("vmplugd did not start");
	ctl = bench_ctl_connect(sock);
	{
		json_t *ok = ctl ? bench_ctl_call(ctl, "subscribe", NULL) : NULL;

		if (!ok)
			bench_fail("cannot subscribe to vmplugd's events");
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

	/* Each plug's steps, before bench_report() sorts the samples. */
	for (unsigned i = 0; i < n; i++) {
		sm.step_qemu[i] = sm.reply[i] - sm.cmd[i];
		sm.step_back[i] = sm.attached[i] > sm.reply[i] ? sm.attached[i] - sm.reply[i] : 0;
	}
	printf("floor: this program talking to QEMU's monitor itself (no udev, no vmplugd)\n");
	bench_report("  query-status round trip", sm.f_qs, n);
	bench_report("  device_add round trip (QEMU opens it)", sm.f_add, n);
	bench_report("  device_del to DEVICE_DELETED", sm.f_del, n);
	printf("through vmplugd, from the testbed's uevent\n");
	bench_report("  plug: QEMU has it open (attached: true)", sm.open, n);
	bench_report("  plug: QEMU replies to device_add", sm.reply, n);
	bench_report("  plug: vmplugd reports USB_ATTACHED", sm.attached, n);
	bench_report("  unplug: QEMU's DEVICE_DELETED", sm.qdel, n);
	bench_report("  unplug: vmplugd has it (USB_DETACHED)", sm.vdel, n);
	printf("overhead over the floor (vmplugd path minus the bare command)\n");
	bench_report_diff(
	    "  plug: USB_ATTACHED - device_add round trip",
	    (double)bench_pct(sm.attached, n, 0.5) - (double)bench_pct(sm.f_add, n, 0.5),
	    (double)bench_pct(sm.attached, n, 0.99) - (double)bench_pct(sm.f_add, n, 0.99));
	bench_report_diff("  unplug: DEVICE_DELETED - bare device_del",
			  (double)bench_pct(sm.qdel, n, 0.5) - (double)bench_pct(sm.f_del, n, 0.5),
			  (double)bench_pct(sm.qdel, n, 0.99) -
			      (double)bench_pct(sm.f_del, n, 0.99));
	printf("where the time goes, step by step (QEMU's trace stamps its side)\n");
	bench_report("  plug: uevent to device_add at QEMU (vmplugd)", sm.cmd, n);
	bench_report("  plug: device_add to QEMU's reply (QEMU)", sm.step_qemu, n);
	bench_report("  plug: QEMU's reply to USB_ATTACHED (vmplugd)", sm.step_back, n);
	bench_report("  unplug: uevent to device_del at QEMU (vmplugd)", sm.del_cmd, n);
	bench_report("  (the testbed's plug call, before its uevent)", sm.plugcall, n);
	printf("uevents the testbed held until a listener had room: %lu\n", bench_uevent_waits());
	printf("device_adds QEMU refused (its libusb had not seen the device yet; vmplugd "
	       "retries): %lu in %u plugs\n",
	       sm.retries, n);

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
	free(sm.cmd);
	free(sm.open);
	free(sm.reply);
	free(sm.attached);
	free(sm.plugcall);
	free(sm.del_cmd);
	free(sm.step_qemu);
	free(sm.step_back);
	free(sm.qdel);
	free(sm.vdel);
	return 0;
}

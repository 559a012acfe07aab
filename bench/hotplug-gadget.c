/* Benchmark P1 on a real kernel (the e2e guest): how soon a USB device
 * plugged in is attached in the VM through vmplugd, and how soon one
 * unplugged is gone, with the configfs gadget keyboard as the device.
 *
 * The e2e scenario 91-bench-hotplug-latency starts a nested QEMU and
 * vmplugd with a rule for the gadget's port; this program plugs the
 * gadget in (writes the UDC's name to GADGET/UDC: the guest kernel
 * enumerates it through dummy_hcd as a real device) and unplugs it (an
 * empty UDC) over and over. All times are CLOCK_REALTIME microseconds,
 * from the write to UDC to:
 *   - udev's "add" / "remove" of the usb_device, as a libudev monitor
 *     here gets it (the kernel's enumeration and udevd's rules);
 *   - vmplugd's USB_ATTACHED (QEMU answered device_add: the device is
 *     attached) and USB_DETACHED (vmplugd has seen DEVICE_DELETED);
 *   - QEMU's DEVICE_DELETED, as QEMU stamps it (its check monitor).
 * The floor: a bare QMP round trip (query-status on the check monitor),
 * a few between two plugs, on the same machine at the same time.
 *
 * The gadget must be attached when it starts (the scenario waits for
 * that). vmplugd holds back a port that changes more than three times
 * within 2 s (a bouncing device, DESIGN.md): each plug waits until the
 * port has been quiet that long (--gap), which is most of a cycle's time.
 *
 * Usage: hotplug-gadget [--plugs N] [--seconds S] [--gap MS]
 *                       GADGET-DIR UDC CONTROL-SOCKET QMP-SOCKET CHECK-SOCKET
 * Stops after N plugs or once S seconds have passed (default 10 plugs,
 * 40 s), whichever comes first. Exit 77 when it cannot run here. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libudev.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "tests/lib/qemu.h"
#include "util/util.h"

#define WAIT_MS 20000
#define FLOOR_CALLS 5

struct rig {
	const char *udc_file; /* GADGET/UDC */
	const char *udc;
	struct bench_ctl *ctl;
	struct qemu *qemu;
	struct udev *udev;
	struct udev_monitor *mon;
};

/* Write the UDC file; returns the time just before the write. */
static uint64_t write_udc(struct rig *r, const char *value)
{
	int fd = open(r->udc_file, O_WRONLY | O_CLOEXEC);
	uint64_t t;
	ssize_t n;

	if (fd < 0)
		bench_fail("%s: %s", r->udc_file, strerror(errno));
	t = bench_realtime_usec();
	n = write(fd, value, strlen(value));
	if (n < 0 || (size_t)n != strlen(value))
		bench_fail("writing \"%s\" to %s: %s", value, r->udc_file,
			   n < 0 ? strerror(errno) : "short write");
	close(fd);
	return t;
}

/* The time udev's event `action` for a usb_device came to this program;
 * 0 if none within WAIT_MS. */
static uint64_t udev_event(struct rig *r, const char *action)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		struct pollfd p = { .fd = udev_monitor_get_fd(r->mon), .events = POLLIN };
		struct udev_device *d;

		if (poll(&p, 1, 100) <= 0)
			continue;
		while ((d = udev_monitor_receive_device(r->mon))) {
			uint64_t t = bench_realtime_usec();
			bool hit = streq(udev_device_get_action(d) ?: "", action);

			udev_device_unref(d);
			if (hit)
				return t;
		}
	}
	return 0;
}

/* vmplugd's next event `want` (USB_ATTACHED, USB_DETACHED): its time, and
 * the device's id in *id when asked; 0 if USB_FAILED or none came. */
static uint64_t vmplugd_event(struct rig *r, const char *want, char **id)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *ev = bench_ctl_event(r->ctl, WAIT_MS);
		const char *name = bench_event_name(ev);
		uint64_t t = 0;

		if (!ev)
			return 0;
		if (streq(name, want)) {
			t = bench_event_time(ev);
			if (id)
				*id = xstrdup(bench_event_str(ev, "id"));
		} else if (streq(name, "USB_FAILED")) {
			fprintf(stderr, "hotplug-gadget: %s: USB_FAILED %s\n",
				bench_event_str(ev, "id"), bench_event_str(ev, "error"));
			json_decref(ev);
			return 0;
		}
		json_decref(ev);
		if (t)
			return t;
	}
	return 0;
}

static uint64_t query_status_usec(struct rig *r)
{
	uint64_t t0 = now_usec();
	json_t *ret = qemu_check_return(r->qemu, "query-status", NULL);
	uint64_t t = now_usec() - t0;

	if (!ret)
		bench_fail("query-status: no answer");
	json_decref(ret);
	return t;
}

static uint64_t since(uint64_t t, uint64_t t0, const char *what)
{
	if (!t)
		bench_fail("no %s", what);
	return t > t0 ? t - t0 : 0;
}

int main(int argc, char **argv)
{
	unsigned max_plugs = 10, seconds = 40, gap_ms = 2200, n = 0, nq = 0;
	const char *pos[5];
	unsigned npos = 0;
	struct rig r = { 0 };
	uint64_t *p_udev, *p_att, *p_udev_att, *u_udev, *u_qdel, *u_vdel, *floor, end;
	char *udc_file, *value;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--plugs") && i + 1 < argc)
			max_plugs = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (streq(argv[i], "--seconds") && i + 1 < argc)
			seconds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (streq(argv[i], "--gap") && i + 1 < argc)
			gap_ms = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (argv[i][0] != '-' && npos < 5)
			pos[npos++] = argv[i];
		else
			npos = 6;
	}
	if (npos != 5 || !max_plugs) {
		fprintf(stderr,
			"usage: %s [--plugs N] [--seconds S] [--gap MS] GADGET-DIR UDC "
			"CONTROL-SOCKET QMP-SOCKET CHECK-SOCKET\n",
			argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	udc_file = xasprintf("%s/UDC", pos[0]);
	r.udc_file = udc_file;
	r.udc = pos[1];
	if (access(udc_file, W_OK) < 0) {
		fprintf(stderr, "hotplug-gadget: %s: %s\n", udc_file, strerror(errno));
		return 77;
	}
	value = xasprintf("%s\n", r.udc);

	r.udev = udev_new();
	r.mon = r.udev ? udev_monitor_new_from_netlink(r.udev, "udev") : NULL;
	if (!r.mon ||
	    udev_monitor_filter_add_match_subsystem_devtype(r.mon, "usb", "usb_device") < 0 ||
	    udev_monitor_enable_receiving(r.mon) < 0)
		bench_fail("cannot watch udev's events");
	r.ctl = bench_ctl_connect(pos[2]);
	{
		json_t *ok = r.ctl ? bench_ctl_call(r.ctl, "subscribe", NULL) : NULL;

		if (!ok)
			bench_fail("cannot subscribe to vmplugd's events on %s", pos[2]);
		json_decref(ok);
	}
	r.qemu = qemu_attach(pos[3], pos[4]);
	if (!r.qemu)
		bench_fail("QEMU does not answer on %s", pos[4]);

	p_udev = xcalloc(max_plugs, sizeof(uint64_t));
	p_att = xcalloc(max_plugs, sizeof(uint64_t));
	p_udev_att = xcalloc(max_plugs, sizeof(uint64_t));
	u_udev = xcalloc(max_plugs, sizeof(uint64_t));
	u_qdel = xcalloc(max_plugs, sizeof(uint64_t));
	u_vdel = xcalloc(max_plugs, sizeof(uint64_t));
	floor = xcalloc((size_t)max_plugs * FLOOR_CALLS, sizeof(uint64_t));

	bench_print_machine(stdout);
	{
		json_t *ver = qemu_check_return(r.qemu, "query-version", NULL);
		json_t *q = json_object_get(ver, "qemu");

		printf("nested QEMU %lld.%lld.%lld (%s); the configfs gadget on %s, through "
		       "vmplugd; at most %u plugs in %u s, %u ms quiet before each\n",
		       json_integer_value(json_object_get(q, "major")),
		       json_integer_value(json_object_get(q, "minor")),
		       json_integer_value(json_object_get(q, "micro")),
		       json_string_value(json_object_get(ver, "package")) ?: "", r.udc, max_plugs,
		       seconds, gap_ms);
		json_decref(ver);
	}

	end = now_usec() + (uint64_t)seconds * USEC_PER_SEC;
	while (n < max_plugs && now_usec() < end) {
		uint64_t t0, tu, tq, tv, ta, quiet;
		char *id = NULL;

		/* Unplug: its id is that of the last USB_DETACHED's device. */
		t0 = write_udc(&r, "\n");
		tu = udev_event(&r, "remove");
		tv = vmplugd_event(&r, "USB_DETACHED", &id);
		if (!tv || !id)
			bench_fail("no USB_DETACHED after unplug %u", n + 1);
		tq = bench_qemu_deleted_at(r.qemu, id, WAIT_MS);
		u_udev[n] = since(tu, t0, "udev remove");
		u_qdel[n] = since(tq, t0, "DEVICE_DELETED");
		u_vdel[n] = since(tv, t0, "USB_DETACHED");
		free(id);
		id = NULL;

		/* The port quiet long enough, with a few bare round trips meanwhile. */
		quiet = tu + gap_ms * USEC_PER_MSEC;
		for (unsigned k = 0; k < FLOOR_CALLS; k++)
			floor[nq++] = query_status_usec(&r);
		while (bench_realtime_usec() < quiet)
			usleep(10000);

		t0 = write_udc(&r, value);
		tu = udev_event(&r, "add");
		ta = vmplugd_event(&r, "USB_ATTACHED", &id);
		p_udev[n] = since(tu, t0, "udev add");
		p_att[n] = since(ta, t0, "USB_ATTACHED");
		p_udev_att[n] = since(ta, tu, "USB_ATTACHED");
		free(id);
		n++;
	}

	printf("floor: a bare QMP round trip (query-status on QEMU's second monitor)\n");
	bench_report("  query-status round trip", floor, nq);
	printf("plug: from the write of the UDC (the gadget binds)\n");
	bench_report("  plug: udev's add", p_udev, n);
	bench_report("  plug: vmplugd reports USB_ATTACHED", p_att, n);
	bench_report("  plug: udev's add to USB_ATTACHED", p_udev_att, n);
	printf("unplug: from the write of an empty UDC (the gadget unbinds)\n");
	bench_report("  unplug: udev's remove", u_udev, n);
	bench_report("  unplug: QEMU's DEVICE_DELETED", u_qdel, n);
	bench_report("  unplug: vmplugd has it (USB_DETACHED)", u_vdel, n);
	printf("%u plugs and unplugs\n", n);

	qemu_free(r.qemu);
	bench_ctl_free(r.ctl);
	udev_monitor_unref(r.mon);
	udev_unref(r.udev);
	free(udc_file);
	free(value);
	free(p_udev);
	free(p_att);
	free(p_udev_att);
	free(u_udev);
	free(u_qdel);
	free(u_vdel);
	free(floor);
	return n ? 0 : 1;
}

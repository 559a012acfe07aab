/* The udev watcher against real libudev on a umockdev testbed: coldplug,
 * hotplug and removal, devices behind hubs, interfaces that arrive after
 * their device, and what it reads from sysfs. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "daemon/watch.h"
#include "tests/integration/usbbed.h"
#include "tests/unit/check-main.h"
#include "util/log.h"
#include "util/util.h"

static char **events;

static void on_add(void *data, struct usb_device *d)
{
	char *s = xasprintf("add %s bus=%u dev=%u id=%04x:%04x class=%02x if=%s%s serial=%s "
			    "udev=%s node=%s",
			    d->sysname, d->bus, d->devnum, d->vendor & 0xffff, d->product & 0xffff,
			    d->device_class & 0xff, usb_device_has_if_class(d, 0x03) ? "03" : "",
			    usb_device_has_if_class(d, 0xff) ? "ff" : "",
			    d->serial ? d->serial : "-", d->serial_udev ? d->serial_udev : "-",
			    d->devnode ? d->devnode : "-");

	strv_append(&events, s);
	free(s);
	usb_device_free(d);
}

static void on_remove(void *data, const char *syspath)
{
	char *s = xasprintf("remove %s", strrchr(syspath, '/') + 1);

	strv_append(&events, s);
	free(s);
}

static const struct watch_hooks hooks = { .usb_add = on_add, .usb_remove = on_remove };

static bool seen(const char *prefix)
{
	for (size_t i = 0; events && events[i]; i++)
		if (startswith(events[i], prefix))
			return true;
	return false;
}

/* Run the loop until an event starting with prefix arrived (or 5 s). */
static bool wait_event(struct loop *loop, const char *prefix)
{
	for (int i = 0; i < 500 && !seen(prefix); i++)
		loop_dispatch(loop, 10);
	return seen(prefix);
}

static void dump(void)
{
	for (size_t i = 0; events && events[i]; i++)
		fprintf(stderr, "  event: %s\n", events[i]);
}

START_TEST(coldplug_hotplug_and_removal)
{
	struct usbbed *bed = usbbed_new(3);
	struct usbbed_dev hub = { "3-10", 2, 0x05e3, 0x0608, NULL, "Hub", 0x09, 0x09 };
	struct usbbed_dev cam = { "3-10.2", 5, 0x046d, 0x0825, "SER0001", "Webcam", 0x00, 0xff };
	struct usbbed_dev kbd = { "3-10.3", 7, 0x04d9, 0x1603, NULL, NULL, 0x00, 0x03 };
	struct loop *loop = loop_new();
	struct watch *w;

	events = NULL;
	usbbed_plug(bed, &hub);
	usbbed_plug(bed, &cam);
	w = watch_new(loop, &hooks, NULL);
	ck_assert_ptr_nonnull(w);
	/* coldplug: the root hubs, the hub and the camera, all reported */
	ck_assert_msg(seen("add usb3 bus=3 dev=1 id=1d6b:0002 class=09"), "no root hub");
	ck_assert(seen("add 3-10 bus=3 dev=2 id=05e3:0608 class=09"));
	ck_assert(seen("add 3-10.2 bus=3 dev=5 id=046d:0825 class=00 if=ff serial=SER0001 "
		       "udev=SER0001 node=/dev/bus/usb/003/005"));
	strv_free(events);
	events = NULL;

	/* hotplug behind the hub */
	usbbed_plug(bed, &kbd);
	ck_assert_msg(wait_event(loop, "add 3-10.3 bus=3 dev=7 id=04d9:1603 class=00 if=03 "
				       "serial=- udev=- node=/dev/bus/usb/003/007"),
		      "no add for 3-10.3");
	/* an interface event refreshes its device */
	strv_free(events);
	events = NULL;
	usbbed_add_interface(bed, "3-10.3", 0x03);
	ck_assert(wait_event(loop, "add 3-10.3 "));

	/* removal: only the syspath is needed */
	usbbed_unplug(bed, "3-10.2");
	ck_assert(wait_event(loop, "remove 3-10.2"));
	if (!seen("remove 3-10.2"))
		dump();
	watch_free(w);
	loop_free(loop);
	usbbed_free(bed);
	strv_free(events);
}
END_TEST

/* Serials as devices send them, read through libudev from sysfs: the
 * raw form (printable) and the form udev's ID_SERIAL_SHORT has. */
START_TEST(awkward_serials)
{
	struct usbbed *bed = usbbed_new(1);
	struct usbbed_dev spaced = { "1-1", 2, 0x1234, 0x0001, " My Serial  01 ", NULL, 0, 0xff };
	struct usbbed_dev odd = { "1-2", 3, 0x1234, 0x0002, "A/B\\x(1)", NULL, 0, 0xff };
	struct usbbed_dev ctrl = { "1-3", 4, 0x1234, 0x0003, "A\001B,C", NULL, 0, 0xff };
	struct loop *loop = loop_new();
	struct watch *w;

	events = NULL;
	w = watch_new(loop, &hooks, NULL);
	ck_assert_ptr_nonnull(w);
	usbbed_plug(bed, &spaced);
	usbbed_plug(bed, &odd);
	usbbed_plug(bed, &ctrl);
	ck_assert(wait_event(loop, "add 1-1 "));
	ck_assert(wait_event(loop, "add 1-2 "));
	ck_assert(wait_event(loop, "add 1-3 "));
	ck_assert_msg(seen("add 1-1 bus=1 dev=2 id=1234:0001 class=00 if=ff serial=My Serial  01 "
			   "udev=My_Serial_01 "),
		      "spaced serial");
	ck_assert(seen("add 1-2 bus=1 dev=3 id=1234:0002 class=00 if=ff serial=A/B\\x(1) "
		       "udev=A_B\\x_1_ "));
	ck_assert(seen("add 1-3 bus=1 dev=4 id=1234:0003 class=00 if=ff serial=A\\x01B,C udev=- "));
	watch_free(w);
	loop_free(loop);
	usbbed_free(bed);
	strv_free(events);
}
END_TEST

START_TEST(without_udevd_the_kernel_source_is_used)
{
	struct usbbed *bed = usbbed_new(1);
	struct loop *loop = loop_new();
	struct watch *w;

	events = NULL;
	w = watch_new(loop, &hooks, NULL);
	ck_assert_ptr_nonnull(w);
	/* no udevd runs in a testbed */
	ck_assert(!watch_uses_udevd(w));
	watch_free(w);
	loop_free(loop);
	usbbed_free(bed);
	strv_free(events);
}
END_TEST

static Suite *watch_suite(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("umockdev");

	tcase_add_test(tc, coldplug_hotplug_and_removal);
	tcase_add_test(tc, awkward_serials);
	tcase_add_test(tc, without_udevd_the_kernel_source_is_used);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	usbbed_reexec(argv);
	log_set_level(LOG_LEVEL_WARNING);
	return run_suite(watch_suite());
}

/* QEMU really attaches a host USB device: a fake one on a umockdev
 * testbed, seen by the real QEMU's libusb through the umockdev preload.
 * And the reconciler over that QEMU, for a device QEMU does not see yet.
 * Run by umockdev-attach.sh, which puts this program (and so QEMU, its
 * child) under the preload. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <umockdev.h>

#include "backends/backend.h"
#include "reconcile/reconcile.h"
#include "tests/integration/check-qemu.h"
#include "tests/lib/rcloop.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "tests/unit/fixture.h"
#include "util/util.h"

#define WAIT_MS 10000

/* An xHCI controller and its root hub usb3... */
static const char controller[] =
    "P: /devices/pci0000:00/0000:00:14.0\n"
    "E: SUBSYSTEM=pci\n"
    "E: DRIVER=xhci_hcd\n"
    "A: vendor=0x8086\\n\n"
    "A: device=0xa36d\\n\n"
    "\n"
    "P: /devices/pci0000:00/0000:00:14.0/usb3\n"
    "N: bus/usb/003/001\n"
    "E: SUBSYSTEM=usb\n"
    "E: DEVTYPE=usb_device\n"
    "E: DRIVER=usb\n"
    "E: BUSNUM=003\n"
    "E: DEVNUM=001\n"
    "E: DEVNAME=/dev/bus/usb/003/001\n"
    "A: busnum=3\\n\n"
    "A: devnum=1\\n\n"
    "A: idVendor=1d6b\\n\n"
    "A: idProduct=0002\\n\n"
    "A: bDeviceClass=09\\n\n"
    "A: bConfigurationValue=1\\n\n"
    "A: speed=480\\n\n"
    "A: devpath=0\\n\n"
    "H: descriptors=12010002090000406B1D020000010000000109021900010100E0000904000001090000000705810304000C\n";
/* ...and a full-speed vendor-class device with one interrupt endpoint on
 * port 2 as device 3:5: the sysfs attributes, descriptors and node QEMU's
 * libusb needs (iProduct 0, so QEMU reads no string descriptor). */
#define DEVICE_SYSPATH "/sys/devices/pci0000:00/0000:00:14.0/usb3/3-2"
static const char device[] =
    "P: /devices/pci0000:00/0000:00:14.0/usb3/3-2\n"
    "N: bus/usb/003/005\n"
    "E: SUBSYSTEM=usb\n"
    "E: DEVTYPE=usb_device\n"
    "E: DRIVER=usb\n"
    "E: BUSNUM=003\n"
    "E: DEVNUM=005\n"
    "E: DEVNAME=/dev/bus/usb/003/005\n"
    "A: busnum=3\\n\n"
    "A: devnum=5\\n\n"
    "A: idVendor=1234\\n\n"
    "A: idProduct=5678\\n\n"
    "A: bDeviceClass=00\\n\n"
    "A: bConfigurationValue=1\\n\n"
    "A: speed=12\\n\n"
    "A: devpath=2\\n\n"
    "H: descriptors=1201000200000040341278560001000000010902190001010080320904000001FF0000000705810308000A\n";

static UMockdevTestbed *tb;
static char *dir;
static struct loop *loop;
static struct qemu *qemu;
static struct conf_vm vm;
static const struct backend_ops *ops;
static struct backend_vm *backend;

static void testbed_add(const char *text)
{
	GError *err = NULL;

	ck_assert_msg(umockdev_testbed_add_from_string(tb, text, &err), "testbed: %s",
		      err ? err->message : "");
}

/* A testbed with the controller (and the device when `plugged`), and a
 * QEMU that sees it. */
static void start_qemu(bool plugged)
{
	tb = umockdev_testbed_new();
	testbed_add(controller);
	if (plugged)
		testbed_add(device);
	/* True only under the preload, and only once a testbed exists. */
	ck_assert(umockdev_in_mock_environment());
	dir = scratch_new("umockdev-attach");
	loop = loop_new();
	/* QEMU inherits LD_PRELOAD and UMOCKDEV_DIR: it sees the testbed. */
	qemu = qemu_start(dir, "vm", NULL);
	ck_assert_msg(qemu != NULL, "QEMU did not start");
}

static void setup(void)
{
	start_qemu(true);
	vm = qemu_conf_vm(qemu, "fake");
	ops = backend_find("qmp");
	rec_reset();
	backend = ops->create(loop, &vm, &rec_backend_events, NULL);
	ck_assert_ptr_nonnull(backend);
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
}

static void teardown(void)
{
	if (backend)
		ops->destroy(backend);
	backend = NULL;
	/* Attached, QEMU spins and floods its stderr: stop it first. */
	qemu_free(qemu);
	qemu = NULL;
	loop_free(loop);
	scratch_remove(dir);
	g_object_unref(tb);
}

/* Has QEMU opened the host device of its usb-host `id`? */
static bool qemu_opened(const char *id)
{
	char *path = xasprintf("/machine/peripheral/%s", id);
	json_t *attached = qemu_check_return(
	    qemu, "qom-get", json_pack("{s:s, s:s}", "path", path, "property", "attached"));
	bool opened = json_is_true(attached);

	json_decref(attached);
	free(path);
	return opened;
}

static void attach(enum conf_attach_mode mode, const char *devnode, struct rec_done *d)
{
	struct backend_usb_dev dev = { .id = "vmplug-usb-3-2",
				       .mode = mode,
				       .bus = 3,
				       .addr = 5,
				       .devnode = devnode,
				       .vendor = 0x1234,
				       .product = 0x5678 };

	memset(d, 0, sizeof(*d));
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, d), 0);
	ck_assert(run_until(loop, rec_done_called, d, WAIT_MS));
}

START_TEST(address_mode_attaches)
{
	const struct backend_item *it;
	struct rec_done d;

	attach(CONF_ATTACH_ADDRESS, NULL, &d);
	ck_assert_msg(d.err == 0, "attach: %s (QEMU's stderr: %s)", d.msg, qemu->stderr_path);

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(ops->list(backend, rec_backend_list, &d), 0);
	ck_assert(run_until(loop, rec_done_called, &d, WAIT_MS));
	ck_assert_int_eq(d.err, 0);
	ck_assert_uint_eq(d.list->n, 1);
	it = &d.list->items[0];
	ck_assert_str_eq(it->id, "vmplug-usb-3-2");
	ck_assert_int_eq(it->bus, 3);
	ck_assert_int_eq(it->addr, 5);
	ck_assert_msg(it->attached, "QEMU did not open the device");
	backend_list_free(d.list);
	ck_assert_msg(qemu_opened("vmplug-usb-3-2"), "QEMU did not open the device");

	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-usb-3-2", rec_backend_done, &d), 0);
	ck_assert(run_until(loop, rec_done_called, &d, WAIT_MS));
	ck_assert_int_eq(d.err, 0);
	ck_assert(qemu_event_seen(qemu, "DEVICE_DELETED", "vmplug-usb-3-2"));
}
END_TEST

/* fd mode opens the node read-write through the same seam, and QEMU gets
 * the descriptor; umockdev cannot emulate usbfs on a descriptor its
 * preload did not open in QEMU, so QEMU refuses it (a known limit). */
START_TEST(fd_mode_passes_the_fake_node)
{
	struct rec_done d;

	attach(CONF_ATTACH_FD, "/dev/bus/usb/003/005", &d);
	ck_assert_int_eq(d.err, -EIO);
	ck_assert_msg(startswith(d.msg, "failed to open host usb device /dev/fdset/"), "%s", d.msg);
}
END_TEST

/* ------------------------------------------------ through the reconciler */

static struct rcloop *rcl;
static struct conf *conf;
static char **rc_events;

/* "up", "attached ID", "failed ID" as the reconciler tells them. */
static void on_rc_event(void *data, const struct reconcile_event *ev)
{
	char *s = NULL;

	if (ev->type == RECONCILE_VM_UP)
		s = xstrdup("up");
	else if (ev->type == RECONCILE_USB_ATTACHED)
		s = xasprintf("attached %s", ev->id);
	else if (ev->type == RECONCILE_USB_FAILED)
		s = xasprintf("failed %s", ev->id);
	if (s)
		strv_append(&rc_events, s);
	free(s);
}

static bool rc_said(void *what)
{
	return strv_contains(rc_events, what);
}

static bool refused(void *data)
{
	return log_captured_find("failed to find host usb device 3:5") != NULL;
}

/* The reconciler, as vmplugd runs it, in front of a QEMU that does not see
 * the device yet. */
static void setup_unplugged(void)
{
	char *text;

	start_qemu(false);
	text = xasprintf("[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n[usb]\nport = 3-2\n",
			 qemu->qmp_path);
	conf = fixture_conf(NULL, "fake", text, NULL);
	free(text);
	rc_events = NULL;
	/* the trace shows every device_add */
	setenv("VMPLUG_QMP_TRACE", "1", 1);
	log_capture_start(LOG_LEVEL_INFO);
	rcl = rcloop_new(loop, conf, on_rc_event, NULL);
	ck_assert(run_until(loop, rc_said, (char *)"up", WAIT_MS));
}

static void teardown_unplugged(void)
{
	rcloop_free(rcl);
	rcl = NULL;
	conf_free(conf);
	strv_free(rc_events);
	log_capture_stop();
	unsetenv("VMPLUG_QMP_TRACE");
	teardown();
}

/* vmplugd can hear of a device before QEMU's libusb has seen it (QEMU
 * says "failed to find host usb device"): it is tried again until QEMU
 * sees it, and attached without a failure being reported. */
START_TEST(attached_once_qemu_sees_it)
{
	fixture_plug(rcl->rc, "3-2 dev=5 vid=1234 pid=5678");
	ck_assert(run_until(loop, refused, NULL, WAIT_MS));
	testbed_add(device);
	umockdev_testbed_uevent(tb, DEVICE_SYSPATH, "add");
	ck_assert_msg(run_until(loop, rc_said, (char *)"attached vmplug-usb-3-5", WAIT_MS),
		      "not attached (QEMU's stderr: %s)", qemu->stderr_path);
	ck_assert(!rc_said((char *)"failed vmplug-usb-3-5"));
	ck_assert_msg(qemu_opened("vmplug-usb-3-5"), "QEMU did not open the device");
	printf("# device_add sent %u times\n",
	       log_captured_count_text("qmp -> {\"execute\":\"device_add\""));
	ck_assert_uint_ge(log_captured_count_text("qmp -> {\"execute\":\"device_add\""), 2);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("umockdev-attach");
	TCase *tc = tcase_create("qemu");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, address_mode_attaches);
	tcase_add_test(tc, fd_mode_passes_the_fake_node);
	suite_add_tcase(s, tc);
	tc = tcase_create("reconciler");
	tcase_add_checked_fixture(tc, setup_unplugged, teardown_unplugged);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, attached_once_qemu_sees_it);
	suite_add_tcase(s, tc);
	return s;
}

QEMU_CHECK_MAIN(suite)

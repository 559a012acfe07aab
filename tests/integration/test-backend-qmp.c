/* The QMP backend against the real QEMU: usb-host in port, address and fd
 * mode, detach through DEVICE_DELETED, input-linux refusals, list after a
 * reconnect, and the VM's life cycle (SIGKILL and restart, quit, events,
 * devices removed behind vmplug's back). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "backends/backend.h"
#include "tests/integration/check-qemu.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "util/util.h"

#define WAIT_MS 10000

static char *dir;
static struct loop *loop;
static struct qemu *qemu;
static struct conf_vm vm;
static const struct backend_ops *ops;
static struct backend_vm *backend;

static void setup(void)
{
	dir = scratch_new("backend-qmp");
	loop = loop_new();
	rec_reset();
	qemu = qemu_start(dir, "vm", NULL);
	ck_assert_msg(qemu != NULL, "QEMU did not start");
	vm = qemu_conf_vm(qemu, "test");
	ops = backend_find("qmp");
	ck_assert_ptr_nonnull(ops);
	/* The trace shows what was sent, for the tests that count commands. */
	setenv("VMPLUG_QMP_TRACE", "1", 1);
	log_capture_start(LOG_LEVEL_INFO);
}

static void teardown(void)
{
	if (backend)
		ops->destroy(backend);
	backend = NULL;
	qemu_free(qemu);
	qemu = NULL;
	loop_free(loop);
	log_capture_stop();
	unsetenv("VMPLUG_QMP_TRACE");
	scratch_remove(dir);
}

static bool up_n(void *n)
{
	return rec_up_n(n) && ops->is_up(backend);
}

static void start_backend(void)
{
	int n = rec.up + 1;

	backend = ops->create(loop, &vm, &rec_backend_events, NULL);
	ck_assert_ptr_nonnull(backend);
	ck_assert(run_until(loop, up_n, &n, WAIT_MS));
}

static void wait_done(struct rec_done *d)
{
	ck_assert_msg(run_until(loop, rec_done_called, d, WAIT_MS), "%s did not complete", d->tag);
}

static int usb_attach(const char *id, enum conf_attach_mode mode, unsigned bus, unsigned addr,
		      const char *port, const char *devnode, struct rec_done *d)
{
	struct backend_usb_dev dev = {
		.id = id, .mode = mode, .bus = bus, .addr = addr, .port = port, .devnode = devnode
	};

	memset(d, 0, sizeof(*d));
	d->tag = "attach";
	return ops->usb_attach(backend, &dev, rec_backend_done, d);
}

static void attach_port(const char *id, const char *port)
{
	struct rec_done d;

	ck_assert_int_eq(usb_attach(id, CONF_ATTACH_PORT, 1, 0, port, NULL, &d), 0);
	wait_done(&d);
	ck_assert_msg(d.err == 0, "attach %s: %s", id, d.msg);
}

static const struct backend_item *find_item(const struct backend_list *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (streq(l->items[i].id, id))
			return &l->items[i];
	return NULL;
}

static void list(struct rec_done *d)
{
	memset(d, 0, sizeof(*d));
	d->tag = "list";
	ck_assert_int_eq(ops->list(backend, rec_backend_list, d), 0);
	wait_done(d);
	ck_assert_int_eq(d->err, 0);
}

START_TEST(connects_and_logs)
{
	start_backend();
	ck_assert_str_eq(ops->name, "qmp");
	ck_assert_ptr_nonnull(log_captured_find("vm test: connected to QEMU "));
	ck_assert_str_eq(rec.order, "up ");
}
END_TEST

START_TEST(usb_port_attach_list_detach)
{
	const struct backend_item *it;
	struct rec_done d, l;

	start_backend();
	attach_port("vmplug-usb-1-2", "2");
	ck_assert(qemu_has_child(qemu, "/machine/peripheral", "vmplug-usb-1-2"));
	list(&l);
	ck_assert_uint_eq(l.list->n, 1);
	it = find_item(l.list, "vmplug-usb-1-2");
	ck_assert_ptr_nonnull(it);
	ck_assert_int_eq(it->kind, BACKEND_ITEM_USB);
	ck_assert_int_eq(it->bus, 1);
	ck_assert_int_eq(it->addr, -1);
	ck_assert_str_eq(it->port, "2");
	ck_assert(!it->attached); /* no such device on this host */
	backend_list_free(l.list);

	memset(&d, 0, sizeof(d));
	d.tag = "detach";
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-usb-1-2", rec_backend_done, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, 0);
	/* It completed only after QEMU said DEVICE_DELETED. */
	ck_assert_ptr_nonnull(log_captured_find("\"event\": \"DEVICE_DELETED\", \"data\": "
						"{\"device\": \"vmplug-usb-1-2\""));
	ck_assert(qemu_event_seen(qemu, "DEVICE_DELETED", "vmplug-usb-1-2"));
	ck_assert(!qemu_has_child(qemu, "/machine/peripheral", "vmplug-usb-1-2"));
	list(&l);
	ck_assert_uint_eq(l.list->n, 0);
	backend_list_free(l.list);

	/* The id is free again; detaching a device that is not there is
	 * success (DeviceNotFound). */
	attach_port("vmplug-usb-1-2", "2");
	memset(&d, 0, sizeof(d));
	d.tag = "detach";
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-never-added", rec_backend_done, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, 0);
	ck_assert_str_eq(rec.order, "up attach:0 list:0 detach:0 list:0 attach:0 detach:0 ");
}
END_TEST

START_TEST(usb_refusals)
{
	struct rec_done d;

	start_backend();
	/* Duplicate id. */
	attach_port("vmplug-dup", "3");
	ck_assert_int_eq(usb_attach("vmplug-dup", CONF_ATTACH_PORT, 1, 0, "4", NULL, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, -EEXIST);
	ck_assert_str_eq(d.msg, "Duplicate device ID 'vmplug-dup'");

	/* Checked before anything is sent. */
	ck_assert_int_eq(usb_attach("dup", CONF_ATTACH_PORT, 1, 0, "4", NULL, &d), -EINVAL);
	ck_assert_int_eq(usb_attach("vmplug-bad id", CONF_ATTACH_PORT, 1, 0, "4", NULL, &d),
			 -EINVAL);
	ck_assert_int_eq(usb_attach("vmplug-x", CONF_ATTACH_PORT, 1, 0, NULL, NULL, &d), -EINVAL);
	ck_assert_int_eq(usb_attach("vmplug-x", CONF_ATTACH_ADDRESS, 1, 0, NULL, NULL, &d),
			 -EINVAL);
	ck_assert_int_eq(usb_attach("vmplug-x", CONF_ATTACH_FD, 1, 5, NULL, NULL, &d), -EINVAL);
	ck_assert_int_eq(ops->usb_detach(backend, "xhci", rec_backend_done, &d), -EINVAL);
	ck_assert_int_eq(ops->input_detach(backend, "kbd", rec_backend_done, &d), -EINVAL);
	/* Hostile strings never reach a QMP message: a hostport that is not
	 * port numbers and dots (usb-host without one takes any device on
	 * the bus), ids with quotes or newlines, an evdev path that is not
	 * UTF-8. */
	{
		static const char *const ports[] = { "1\"", "1\n2", "1.",    ".1", "1..2",
						     "a",   "1 2",  "1\x01", "" };
		static const char *const ids[] = { "vmplug-\"x", "vmplug-x\ny", "vmplug-x\"}",
						   "vmplug-\xc3\xa9" };
		char *longid = xmalloc(4097);
		struct backend_input_dev in = { .id = "vmplug-in-x", .evdev = "/dev/\xff" };

		for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
			ck_assert_int_eq(
			    usb_attach("vmplug-x", CONF_ATTACH_PORT, 1, 0, ports[i], NULL, &d),
			    -EINVAL);
		for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
			ck_assert_int_eq(usb_attach(ids[i], CONF_ATTACH_PORT, 1, 0, "4", NULL, &d),
					 -EINVAL);
			ck_assert_int_eq(ops->usb_detach(backend, ids[i], rec_backend_done, &d),
					 -EINVAL);
		}
		memset(longid, 'a', 4096);
		memcpy(longid, "vmplug-", 7);
		longid[4096] = '\0';
		ck_assert_int_eq(usb_attach(longid, CONF_ATTACH_PORT, 1, 0, "4", NULL, &d),
				 -EINVAL);
		free(longid);
		ck_assert_int_eq(ops->input_attach(backend, &in, rec_backend_done, &d), -EINVAL);
		/* and the connection is still fine */
		attach_port("vmplug-after", "5");
	}
}
END_TEST

START_TEST(usb_address_absent_device_is_enodev)
{
	struct rec_done d;
	unsigned tries;

	start_backend();
	ck_assert_int_eq(usb_attach("vmplug-usb-1-5", CONF_ATTACH_ADDRESS, 1, 5, NULL, NULL, &d),
			 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, -ENODEV);
	ck_assert_str_eq(d.msg, "failed to find host usb device 1:5");
	ck_assert_ptr_nonnull(
	    log_captured_find("\"execute\":\"device_add\",\"arguments\":{"
			      "\"driver\":\"usb-host\",\"id\":\"vmplug-usb-1-5\","
			      "\"hostbus\":1,\"bus\":\"xhci.0\",\"hostaddr\":5}"));
	/* Tried once: trying again is the reconciler's decision. */
	tries = log_captured_count_text("qmp -> {\"execute\":\"device_add\"");
	ck_assert_uint_eq(tries, 1);
	ck_assert(!qemu_has_child(qemu, "/machine/peripheral", "vmplug-usb-1-5"));
}
END_TEST

START_TEST(usb_fd_mode_error_paths_clean_up)
{
	char *node = xasprintf("%s/not-usbfs", dir);
	char *missing = xasprintf("%s/missing", dir);
	json_t *sets, *reply;
	char *text;
	struct rec_done d;
	FILE *f = fopen(node, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	start_backend();
	/* QEMU closes a removed fdset's fds only while the VM runs. */
	reply = qemu_check(qemu, "cont", NULL);
	json_decref(reply);

	ck_assert_int_eq(usb_attach("vmplug-fd", CONF_ATTACH_FD, 3, 5, NULL, missing, &d), -ENOENT);
	ck_assert_int_eq(usb_attach("vmplug-fd", CONF_ATTACH_FD, 3, 5, NULL, node, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, -EIO);
	ck_assert_msg(startswith(d.msg, "failed to open host usb device /dev/fdset/"), "%s", d.msg);
	/* The fd went through add-fd, the device named its fdset. */
	ck_assert_ptr_nonnull(log_captured_find("\"execute\":\"add-fd\",\"arguments\":{\"opaque\":"
						"\"vmplug-fd\"},\"id\":"));
	ck_assert(strstr(log_captured_find("\"execute\":\"add-fd\""), "(with a file descriptor)"));
	ck_assert_ptr_nonnull(log_captured_find("\"hostdevice\":\"/dev/fdset/"));
	/* and the fdset was removed again (remove-fd went out before this). */
	list(&d);
	backend_list_free(d.list);
	sets = qemu_check_return(qemu, "query-fdsets", NULL);
	text = json_dumps(sets, JSON_COMPACT);
	ck_assert_ptr_nonnull(log_captured_find("qmp -> {\"execute\":\"remove-fd\""));
	ck_assert_msg(!strstr(text, "vmplug-fd"), "fdsets: %s", text);
	free(text);
	json_decref(sets);
	free(node);
	free(missing);
}
END_TEST

START_TEST(input_refusals)
{
	struct backend_input_dev dev = { .id = "vmplug-kbd", .evdev = "/nonexistent/event0" };
	struct rec_done d = { .tag = "input" };

	start_backend();
	ck_assert_int_eq(ops->input_attach(backend, &dev, rec_backend_done, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, -EIO);
	ck_assert_str_eq(d.msg, "Could not open '/nonexistent/event0': No such file or directory");

	memset(&d, 0, sizeof(d));
	d.tag = "input";
	dev.evdev = "/dev/null";
	dev.grab_all = true;
	dev.repeat = true;
	dev.grab_toggle = "scrolllock";
	ck_assert_int_eq(ops->input_attach(backend, &dev, rec_backend_done, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, -EIO);
	ck_assert_str_eq(d.msg, "/dev/null: is not an evdev device");
	ck_assert_ptr_nonnull(log_captured_find(
	    "{\"execute\":\"object-add\",\"arguments\":{\"qom-type\":\"input-linux\","
	    "\"id\":\"vmplug-kbd\",\"evdev\":\"/dev/null\",\"grab_all\":true,\"repeat\":true,"
	    "\"grab-toggle\":\"scrolllock\"}"));

	/* Detaching an object that is not there is success. */
	memset(&d, 0, sizeof(d));
	d.tag = "input-detach";
	ck_assert_int_eq(ops->input_detach(backend, "vmplug-kbd", rec_backend_done, &d), 0);
	wait_done(&d);
	ck_assert_int_eq(d.err, 0);
}
END_TEST

START_TEST(list_after_reconnect_is_exactly_ours)
{
	const struct backend_item *it;
	json_t *reply;
	struct rec_done l;

	start_backend();
	attach_port("vmplug-a", "2");
	attach_port("vmplug-b", "10.2");
	/* Added by hand: not vmplug's, or not a usb-host/input-linux. */
	reply = qemu_check(qemu, "device_add",
			   json_pack("{s:s, s:s, s:i, s:s}", "driver", "usb-host", "id", "manual",
				     "hostbus", 1, "hostport", "5"));
	ck_assert_ptr_nonnull(json_object_get(reply, "return"));
	json_decref(reply);
	reply = qemu_check(qemu, "object-add",
			   json_pack("{s:s, s:s, s:i}", "qom-type", "memory-backend-ram", "id",
				     "vmplug-mem", "size", 1048576));
	ck_assert_ptr_nonnull(json_object_get(reply, "return"));
	json_decref(reply);

	/* A new vmplugd: a new backend connects and asks QEMU. */
	ops->destroy(backend);
	backend = NULL;
	start_backend();
	list(&l);
	ck_assert_uint_eq(l.list->n, 2);
	it = find_item(l.list, "vmplug-a");
	ck_assert_ptr_nonnull(it);
	ck_assert_str_eq(it->port, "2");
	ck_assert_int_eq(it->bus, 1);
	it = find_item(l.list, "vmplug-b");
	ck_assert_ptr_nonnull(it);
	ck_assert_str_eq(it->port, "10.2");
	ck_assert_ptr_null(it->evdev);
	backend_list_free(l.list);
}
END_TEST

START_TEST(sigkill_gone_then_up)
{
	struct rec_done d;
	int one = 1, two = 2;

	start_backend();
	/* An attach still waiting for QEMU (stopped: it answers nothing)
	 * when QEMU dies completes first. */
	ck_assert_int_eq(kill(qemu->pid, SIGSTOP), 0);
	ck_assert_int_eq(usb_attach("vmplug-usb-1-7", CONF_ATTACH_ADDRESS, 1, 7, NULL, NULL, &d),
			 0);
	run_for(loop, 100);
	ck_assert(!d.called);
	ck_assert_int_ge(qemu_kill(qemu, SIGKILL), 0);
	ck_assert(run_until(loop, rec_gone_n, &one, WAIT_MS));
	ck_assert(d.called);
	ck_assert_int_eq(d.err, -ENOTCONN);
	ck_assert(!ops->is_up(backend));
	ck_assert_int_eq(ops->list(backend, rec_backend_list, &d), -ENOTCONN);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU gone ("));
	ck_assert_int_eq(qemu_restart(qemu), 0);
	ck_assert(run_until(loop, up_n, &two, WAIT_MS));
	ck_assert_str_eq(rec.order, "up attach:-107 gone up ");
}
END_TEST

START_TEST(lifecycle_events_and_quit)
{
	json_t *reply;
	int one = 1;

	start_backend();
	attach_port("vmplug-c", "3");
	/* Someone else removes vmplug's device. */
	reply = qemu_check(qemu, "device_del", json_pack("{s:s}", "id", "vmplug-c"));
	json_decref(reply);
	ck_assert(run_until(loop, rec_noted, (char *)"item_gone:vmplug-c ", WAIT_MS));
	json_decref(qemu_check(qemu, "cont", NULL));
	json_decref(qemu_check(qemu, "stop", NULL));
	json_decref(qemu_check(qemu, "system_reset", NULL));
	json_decref(qemu_check(qemu, "quit", NULL));
	ck_assert(run_until(loop, rec_gone_n, &one, WAIT_MS));
	ck_assert_msg(strstr(rec.order, "item_gone:vmplug-c "), "%s", rec.order);
	ck_assert_msg(strstr(rec.order, "event:RESUME event:STOP event:RESET event:SHUTDOWN gone "),
		      "%s", rec.order);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU reports SHUTDOWN (host-qmp-quit)"));
	ck_assert_ptr_nonnull(log_captured_find("vm test: vmplug-c was removed from QEMU by "
						"someone else"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("backend-qmp");
	TCase *tc = tcase_create("qemu");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, connects_and_logs);
	tcase_add_test(tc, usb_port_attach_list_detach);
	tcase_add_test(tc, usb_refusals);
	tcase_add_test(tc, usb_address_absent_device_is_enodev);
	tcase_add_test(tc, usb_fd_mode_error_paths_clean_up);
	tcase_add_test(tc, input_refusals);
	tcase_add_test(tc, list_after_reconnect_is_exactly_ours);
	tcase_add_test(tc, sigkill_gone_then_up);
	tcase_add_test(tc, lifecycle_events_and_quit);
	suite_add_tcase(s, tc);
	return s;
}

QEMU_CHECK_MAIN(suite)

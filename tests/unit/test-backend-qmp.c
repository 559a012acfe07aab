/* Unit tests for the QMP backend (backends/qmp.c) against the scripted fake
 * peer: orderings and replies QEMU does not produce on demand. The real
 * QEMU is in tests/integration/test-backend-qmp.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "tests/lib/fake-qmp.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define WAIT_MS 5000

static char *dir;
static struct loop *loop;
static struct conf_vm vm;
static const struct backend_ops *ops;
static struct backend_vm *backend;
static struct fake_peer *peer;
static char order[1024];
static bool destroy_on_done;
static bool destroy_on_gone;

static PRINTF_LIKE(1, 2) void note(const char *fmt, ...)
{
	size_t len = strlen(order);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(order + len, sizeof(order) - len, fmt, ap);
	va_end(ap);
}

static void vm_up(void *data)
{
	note("up ");
}

static void vm_gone(void *data, const char *reason)
{
	note("gone ");
	if (destroy_on_gone) {
		ops->destroy(backend);
		backend = NULL;
	}
}

static void vm_event(void *data, const char *event)
{
	note("event:%s ", event);
}

static void item_gone(void *data, const char *id)
{
	note("item_gone:%s ", id);
}

static const struct backend_events events = {
	.vm_up = vm_up,
	.vm_gone = vm_gone,
	.vm_event = vm_event,
	.item_gone = item_gone,
};

static void on_done(void *data, int err, const char *msg)
{
	note("%s:%d%s%s ", (const char *)data, err, msg ? ":" : "", msg ? msg : "");
	if (destroy_on_done) {
		ops->destroy(backend);
		backend = NULL;
	}
}

static struct backend_list *listed;

static void on_list(void *data, int err, const struct backend_list *list)
{
	note("list:%d ", err);
	if (!err)
		listed = backend_list_copy(list);
}

static void setup(void)
{
	dir = scratch_new("backend-unit");
	loop = loop_new();
	memset(&vm, 0, sizeof(vm));
	vm.name = (char *)"t";
	vm.backend = CONF_BACKEND_QMP;
	vm.qmp_socket = xasprintf("%s/t.qmp", dir);
	ops = backend_find("qmp");
	order[0] = '\0';
	destroy_on_done = destroy_on_gone = false;
	listed = NULL;
	log_capture_start(LOG_LEVEL_INFO);
}

static void teardown(void)
{
	if (backend)
		ops->destroy(backend);
	backend = NULL;
	fake_peer_free(peer);
	peer = NULL;
	backend_list_free(listed);
	loop_free(loop);
	free(vm.qmp_socket);
	log_capture_stop();
	scratch_remove(dir);
}

static bool noted(void *text)
{
	return strstr(order, text) != NULL;
}

static bool peer_done(void *arg)
{
	return fake_peer_done(peer);
}

static void start(const struct fake_step *script)
{
	peer = fake_peer_new(loop, vm.qmp_socket, script);
	backend = ops->create(loop, &vm, &events, NULL);
	ck_assert_ptr_nonnull(backend);
	ck_assert(run_until(loop, noted, (char *)"up ", WAIT_MS));
}

static void attach_port(const char *id, const char *tag)
{
	struct backend_usb_dev dev = { .id = id, .mode = CONF_ATTACH_PORT, .bus = 1, .port = "2" };

	ck_assert_int_eq(ops->usb_attach(backend, &dev, on_done, (void *)tag), 0);
}

START_TEST(deleted_before_the_reply)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "device_del" },
		/* Some devices are gone before device_del returns. */
		{ FAKE_SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-a\", "
			     "\"path\": \"/machine/peripheral/vmplug-a\"}}" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_EXPECT, "query-fdsets" },
		{ FAKE_REPLY, "{\"return\": []}" },
		/* Not vmplug's: ignored; vmplug's, with nobody detaching it: gone. */
		{ FAKE_SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"usb0\"}}"
			     "{\"event\": \"DEVICE_DELETED\", \"data\": {\"path\": \"/x\"}}"
			     "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": 5}}"
			     "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-b\"}}"
			     "{\"event\": \"POWERDOWN\"}{\"event\": \"RESET\", \"data\": {}}" },
		{ FAKE_END },
	};

	start(script);
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-a", on_done, (void *)"detach"), 0);
	ck_assert(run_until(loop, noted, (char *)"event:RESET ", WAIT_MS));
	ck_assert_str_eq(order, "up detach:0 item_gone:vmplug-b event:RESET ");
	ck_assert_ptr_null(fake_peer_error(peer));
}
END_TEST

START_TEST(list_type_checks_and_races)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND, "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
			     "{\"name\": \"vmplug-a\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"vmplug-b\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"usb0\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"vmplug-net\", \"type\": \"child<e1000>\"}, "
			     "{\"name\": 5, \"type\": \"child<usb-host>\"}, 7], \"id\": $2}" },
		/* vmplug-a: hostbus, hostaddr, hostport (of the wrong type), attached */
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": 3}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": 7}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": 5}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": true}" },
		/* vmplug-b went away after qom-list */
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"gone\"}}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"gone\"}}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"gone\"}}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"gone\"}}" },
		{ FAKE_SEND, "{\"return\": [{\"name\": \"vmplug-kbd\", \"type\": "
			     "\"child<input-linux>\"}], \"id\": $3}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": \"/dev/input/event5\"}" },
		{ FAKE_END },
	};
	const struct backend_item *a, *k;

	start(script);
	ck_assert_int_eq(ops->list(backend, on_list, NULL), 0);
	ck_assert(run_until(loop, noted, (char *)"list:", WAIT_MS));
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(order, "up list:0 ");
	ck_assert_uint_eq(listed->n, 2);
	a = &listed->items[0];
	k = &listed->items[1];
	ck_assert_str_eq(a->id, "vmplug-a");
	ck_assert_int_eq(a->kind, BACKEND_ITEM_USB);
	ck_assert_int_eq(a->bus, 3);
	ck_assert_int_eq(a->addr, 7);
	ck_assert_ptr_null(a->port);
	ck_assert(a->attached);
	ck_assert_str_eq(k->id, "vmplug-kbd");
	ck_assert_int_eq(k->kind, BACKEND_ITEM_INPUT);
	ck_assert_str_eq(k->evdev, "/dev/input/event5");
}
END_TEST

START_TEST(list_fails_on_other_errors)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND,
		  "{\"return\": [{\"name\": \"vmplug-a\", \"type\": \"child<usb-host>\"}], "
		  "\"id\": $2}{\"return\": [], \"id\": $3}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": 1}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": \"\"}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": false}" },
		{ FAKE_END },
	};

	start(script);
	ck_assert_int_eq(ops->list(backend, on_list, NULL), 0);
	ck_assert(run_until(loop, noted, (char *)"list:", WAIT_MS));
	ck_assert_str_eq(order, "up list:-5 ");
	ck_assert_ptr_null(listed);
}
END_TEST

START_TEST(fd_mode_bad_add_fd_reply)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT_FD, "add-fd" },
		{ FAKE_REPLY, "{\"return\": {\"fd\": 3}}" },
		{ FAKE_EXPECT, "query-fdsets" },
		{ FAKE_REPLY,
		  "{\"return\": [{\"fdset-id\": 4, \"fds\": [{\"fd\": 3, \"opaque\": "
		  "\"vmplug-fd\"}]}, {\"fdset-id\": 5, \"fds\": [{\"fd\": 9, \"opaque\": "
		  "\"vmplug-other\"}]}, {\"fdset-id\": \"6\", \"fds\": []}, 1]}" },
		{ FAKE_EXPECT, "remove-fd" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_END },
	};
	char *node = xasprintf("%s/node", dir);
	struct backend_usb_dev dev = {
		.id = "vmplug-fd", .mode = CONF_ATTACH_FD, .bus = 3, .addr = 5, .devnode = node
	};
	FILE *f = fopen(node, "w");

	ck_assert_ptr_nonnull(f);
	fclose(f);
	start(script);
	ck_assert_int_eq(ops->usb_attach(backend, &dev, on_done, (void *)"attach"), 0);
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	ck_assert_str_eq(order, "up attach:-71 ");
	ck_assert_ptr_null(fake_peer_error(peer));
	/* Only the fdset whose fd carries this id is removed. */
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(fake_peer_last(peer), "arguments"), "fdset-id")),
			 4);
	free(node);
}
END_TEST

START_TEST(pending_fail_before_gone)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_EXPECT, "device_del" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_CLOSE },
		{ FAKE_END },
	};

	start(script);
	attach_port("vmplug-a", "attach");
	/* This detach waits for DEVICE_DELETED when the VM goes. */
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-b", on_done, (void *)"detach"), 0);
	ck_assert(run_until(loop, noted, (char *)"gone ", WAIT_MS));
	ck_assert_str_eq(order, "up attach:-107 detach:-107 gone ");
	ck_assert(!ops->is_up(backend));
	ck_assert_ptr_nonnull(log_captured_find("vm t: QEMU gone (EOF)"));
	{
		struct backend_usb_dev dev = {
			.id = "vmplug-c", .mode = CONF_ATTACH_PORT, .bus = 1, .port = "2"
		};

		ck_assert_int_eq(ops->usb_attach(backend, &dev, on_done, NULL), -ENOTCONN);
	}
}
END_TEST

START_TEST(destroy_from_callbacks)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_SEND, "{\"return\": {}, \"id\": $2}{\"return\": {}, \"id\": $3}" },
		{ FAKE_END },
	};
	static const struct fake_step closing[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_CLOSE },
		{ FAKE_END },
	};

	/* From a completion: the other one is cancelled without a call. */
	start(script);
	attach_port("vmplug-a", "a");
	attach_port("vmplug-b", "b");
	destroy_on_done = true;
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(order, "up a:0 ");
	fake_peer_free(peer);

	/* From vm_gone. */
	order[0] = '\0';
	destroy_on_done = false;
	destroy_on_gone = true;
	start(closing);
	attach_port("vmplug-a", "a");
	ck_assert(run_until(loop, noted, (char *)"gone ", WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(order, "up a:-107 gone ");
}
END_TEST

START_TEST(not_for_this_backend)
{
	vm.backend = CONF_BACKEND_LIBVIRT;
	ck_assert_ptr_null(ops->create(loop, &vm, &events, NULL));
	ck_assert_int_eq(errno, EINVAL);
	vm.backend = CONF_BACKEND_QMP;
	free(vm.qmp_socket);
	vm.qmp_socket = xstrdup("relative.qmp");
	ck_assert_ptr_null(ops->create(loop, &vm, &events, NULL));
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(log_captured_find("vm t: cannot use QMP socket relative.qmp"));
	ops->destroy(NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("backend-qmp");
	TCase *tc = tcase_create("fake peer");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, deleted_before_the_reply);
	tcase_add_test(tc, list_type_checks_and_races);
	tcase_add_test(tc, list_fails_on_other_errors);
	tcase_add_test(tc, fd_mode_bad_add_fd_reply);
	tcase_add_test(tc, pending_fail_before_gone);
	tcase_add_test(tc, destroy_from_callbacks);
	tcase_add_test(tc, not_for_this_backend);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

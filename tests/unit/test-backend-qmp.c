/* Unit tests for the QMP backend (backends/qmp.c) against the scripted fake
 * peer: orderings and replies QEMU does not produce on demand. The real
 * QEMU is in tests/integration/test-backend-qmp.c. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/qmp-int.h"
#include "tests/lib/fake-qmp.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define WAIT_MS 5000

/* A connection, and the VM's state as the backend asks for it: running.
 * query-status is the connection's second command ($2). */
#define FAKE_UP                                                                                    \
	{ FAKE_HANDSHAKE }, { FAKE_EXPECT, "query-status" },                                       \
	{                                                                                          \
		FAKE_REPLY, "{\"return\": {\"status\": \"running\", \"running\": true}}"           \
	}

static char *dir;
static struct loop *loop;
static struct conf_vm vm;
static const struct backend_ops *ops;
static struct backend_vm *backend;
static struct fake_peer *peer;
static bool destroy_on_done;
static bool destroy_on_gone;
static struct rec_done dones[8];
static size_t n_dones;

/* A fresh completion record noting "tag:ERR ". */
static struct rec_done *done(const char *tag)
{
	struct rec_done *d = &dones[n_dones++];

	ck_assert_uint_le(n_dones, ARRAY_SIZE(dones));
	memset(d, 0, sizeof(*d));
	d->tag = tag;
	return d;
}

static void destroy_after(const char *token)
{
	bool completion = !startswith(token, "up ") && !startswith(token, "gone ");

	if ((destroy_on_done && completion) || (destroy_on_gone && streq(token, "gone "))) {
		ops->destroy(backend);
		backend = NULL;
	}
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
	rec_reset();
	rec.after = destroy_after;
	destroy_on_done = destroy_on_gone = false;
	n_dones = 0;
	log_capture_start(LOG_LEVEL_INFO);
}

static void teardown(void)
{
	if (backend)
		ops->destroy(backend);
	backend = NULL;
	fake_peer_free(peer);
	peer = NULL;
	for (size_t i = 0; i < n_dones; i++)
		backend_list_free(dones[i].list);
	loop_free(loop);
	free(vm.qmp_socket);
	log_capture_stop();
	backend_qmp_set_delete_timeout(0);
	backend_qmp_set_loading_poll(0);
	scratch_remove(dir);
}

static bool peer_done(void *arg)
{
	return fake_peer_done(peer);
}

static void start(const struct fake_step *script)
{
	peer = fake_peer_new(loop, vm.qmp_socket, script);
	backend = ops->create(loop, &vm, &rec_backend_events, NULL);
	ck_assert_ptr_nonnull(backend);
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
}

static void attach_port(const char *id, const char *tag)
{
	struct backend_usb_dev dev = { .id = id, .mode = CONF_ATTACH_PORT, .bus = 1, .port = "2" };

	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, done(tag)), 0);
}

START_TEST(deleted_before_the_reply)
{
	static const struct fake_step script[] = {
		FAKE_UP,
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
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-a", rec_backend_done, done("detach")), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"event:RESET ", WAIT_MS));
	ck_assert_str_eq(rec.order, "up detach:0 item_gone:vmplug-b event:RESET ");
	ck_assert_ptr_null(fake_peer_error(peer));
}
END_TEST

static bool down_n(void *arg)
{
	return rec.down >= *(int *)arg;
}

/* A VM that is not up says why, for the status: once per reason, not at
 * every retry. */
START_TEST(down_says_why_once)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_END },
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int one = 1, two = 2, fd;

	backend = ops->create(loop, &vm, &rec_backend_events, NULL);
	ck_assert_ptr_nonnull(backend);
	ck_assert(run_until(loop, down_n, &one, WAIT_MS));
	ck_assert_int_eq(rec.down, 1);
	ck_assert_msg(startswith(rec.down_why, "QEMU is not running: ") &&
			  strstr(rec.down_why, "/t.qmp does not exist"),
		      "%s", rec.down_why);

	/* A stale socket (QEMU killed): a new reason, told once however
	 * often the retries are refused. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vm.qmp_socket);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	ck_assert(run_until(loop, down_n, &two, WAIT_MS));
	run_for(loop, 300); /* several retries (50 ms doubling) */
	ck_assert_int_eq(rec.down, 2);
	ck_assert_msg(startswith(rec.down_why, "cannot connect to ") &&
			  strstr(rec.down_why, "/t.qmp: "),
		      "%s", rec.down_why);
	ck_assert_str_eq(rec.order, "");

	unlink(vm.qmp_socket);
	peer = fake_peer_new(loop, vm.qmp_socket, script);
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	ck_assert_int_eq(rec.down, 2);
}
END_TEST

START_TEST(list_type_checks_and_races)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND, "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}, "
			     "{\"name\": \"vmplug-a\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"vmplug-b\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"usb0\", \"type\": \"child<usb-host>\"}, "
			     "{\"name\": \"vmplug-net\", \"type\": \"child<e1000>\"}, "
			     "{\"name\": 5, \"type\": \"child<usb-host>\"}, 7], \"id\": $3}" },
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
			     "\"child<input-linux>\"}], \"id\": $4}" },
		{ FAKE_EXPECT, "qom-get" },
		{ FAKE_REPLY, "{\"return\": \"/dev/input/event5\"}" },
		{ FAKE_END },
	};
	struct rec_done *l = done("list");
	const struct backend_item *a, *k;

	start(script);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"list:", WAIT_MS));
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(rec.order, "up list:0 ");
	ck_assert_uint_eq(l->list->n, 2);
	a = &l->list->items[0];
	k = &l->list->items[1];
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

/* A compromised QEMU lists as many vmplug- usb-host objects as fit in a
 * QMP message (18,000): the backend takes BACKEND_LIST_MAX of them, asks
 * for no property of the rest, and says so once: a second list running
 * at the same time, of 300, says nothing more. */
static const int huge_lists[2] = { 18000, 300 };

START_TEST(huge_list_is_capped_and_logged_once)
{
	struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND, NULL },
		{ FAKE_SEND, "{\"return\": [], \"id\": $4}" },
		{ FAKE_SEND, NULL },
		{ FAKE_SEND, "{\"return\": [], \"id\": $6}" },
		{ FAKE_ANSWER, "{\"return\": 1}" },
		{ FAKE_END },
	};
	struct rec_done *l1 = done("l1"), *l2 = done("l2");
	char *huge[2];

	for (int h = 0; h < 2; h++) {
		size_t cap = (size_t)huge_lists[h] * 64, len;

		huge[h] = xmalloc(cap);
		len = (size_t)snprintf(huge[h], cap, "{\"id\": $%d, \"return\": [", 3 + 2 * h);
		for (int i = 0; i < huge_lists[h]; i++)
			len += (size_t)snprintf(
			    huge[h] + len, cap - len,
			    "%s{\"name\":\"vmplug-%d\",\"type\":\"child<usb-host>\"}", i ? "," : "",
			    i);
		snprintf(huge[h] + len, cap - len, "]}");
		ck_assert_uint_lt(strlen(huge[h]), QMP_MAX_MESSAGE);
		script[7 + 2 * h].arg = huge[h];
	}
	start(script);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l1), 0);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l2), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"l2:", WAIT_MS));
	ck_assert(run_until(loop, rec_noted, (char *)"l1:", WAIT_MS));
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_int_eq(l1->err, 0);
	ck_assert_int_eq(l2->err, 0);
	ck_assert_uint_eq(l1->list->n, BACKEND_LIST_MAX);
	ck_assert_uint_eq(l2->list->n, BACKEND_LIST_MAX);
	ck_assert_str_eq(l1->list->items[BACKEND_LIST_MAX - 1].id, "vmplug-255");
	/* four properties of each item taken, none of the rest */
	ck_assert_uint_eq(fake_peer_answered(peer), 2 * 4 * BACKEND_LIST_MAX);
	ck_assert_uint_eq(log_captured_count_text("lists more than 256 of vmplug's objects"), 1);
	ck_assert_ptr_nonnull(
	    log_captured_find("vm t: QEMU lists more than 256 of vmplug's objects (17744 more in "
			      "/machine/peripheral); ignoring those"));
	ck_assert_int_eq(fake_peer_connections(peer), 1);
	for (int h = 0; h < 2; h++)
		free(huge[h]);
}
END_TEST

/* QEMU makes /objects (and, without a machine, has no peripherals) only
 * once something is in it: DeviceNotFound there is an empty list. */
START_TEST(list_of_containers_not_made_yet)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND, "{\"return\": [{\"name\": \"type\", \"type\": \"string\"}], "
			     "\"id\": $3}{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": "
			     "\"Device '/objects' not found\"}, \"id\": $4}" },
		{ FAKE_END },
	};
	struct rec_done *l = done("list");

	start(script);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"list:", WAIT_MS));
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(rec.order, "up list:0 ");
	ck_assert_uint_eq(l->list->n, 0);
}
END_TEST

START_TEST(list_fails_on_other_errors)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND,
		  "{\"return\": [{\"name\": \"vmplug-a\", \"type\": \"child<usb-host>\"}], "
		  "\"id\": $3}{\"return\": [], \"id\": $4}" },
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
	struct rec_done *l = done("list");

	start(script);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"list:", WAIT_MS));
	ck_assert_str_eq(rec.order, "up list:-5 ");
	ck_assert_ptr_null(l->list);
}
END_TEST

START_TEST(fd_mode_bad_add_fd_reply)
{
	static const struct fake_step script[] = {
		FAKE_UP,
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
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, done("attach")), 0);
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	ck_assert_str_eq(rec.order, "up attach:-71 ");
	ck_assert_ptr_null(fake_peer_error(peer));
	/* Only the fdset whose fd carries this id is removed. */
	ck_assert_int_eq(json_integer_value(json_object_get(
			     json_object_get(fake_peer_last(peer), "arguments"), "fdset-id")),
			 4);
	free(node);
}
END_TEST

/* QEMU refuses the remove-fd after a detach (the fdset went meanwhile):
 * the detach still succeeded, the log says which fdset QEMU kept and
 * why, and the connection carries on. */
START_TEST(remove_fd_refused)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "device_del" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-a\", "
			     "\"path\": \"/machine/peripheral/vmplug-a\"}}" },
		{ FAKE_EXPECT, "query-fdsets" },
		{ FAKE_REPLY, "{\"return\": [{\"fdset-id\": 4, \"fds\": [{\"fd\": 3, \"opaque\": "
			      "\"vmplug-a\"}]}]}" },
		{ FAKE_EXPECT, "remove-fd" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"File "
			      "descriptor named 'fdset-id:4' not found\"}}" },
		/* the next detach is answered as usual */
		{ FAKE_EXPECT, "device_del" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_SEND,
		  "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-b\"}}" },
		{ FAKE_EXPECT, "query-fdsets" },
		{ FAKE_REPLY, "{\"return\": []}" },
		{ FAKE_END },
	};

	start(script);
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-a", rec_backend_done, done("detach")), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"detach:", WAIT_MS));
	ck_assert(run_until(loop, log_captured_has, (char *)"refused", WAIT_MS));
	ck_assert_ptr_nonnull(log_captured_find("vm t: QEMU refused to remove fdset 4 of vmplug-a: "
						"File descriptor named 'fdset-id:4' not found"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 1);
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-b", rec_backend_done, done("again")), 0);
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	ck_assert(run_until(loop, rec_noted, (char *)"again:", WAIT_MS));
	ck_assert_str_eq(rec.order, "up detach:0 again:0 ");
	ck_assert_ptr_null(fake_peer_error(peer));
}
END_TEST

START_TEST(pending_fail_before_gone)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_EXPECT, "device_del" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_CLOSE },
		{ FAKE_END },
	};

	struct backend_usb_dev dev = {
		.id = "vmplug-c", .mode = CONF_ATTACH_PORT, .bus = 1, .port = "2"
	};

	start(script);
	attach_port("vmplug-a", "attach");
	/* This detach waits for DEVICE_DELETED when the VM goes. */
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-b", rec_backend_done, done("detach")), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
	ck_assert_str_eq(rec.order, "up attach:-107 detach:-107 gone ");
	ck_assert(!ops->is_up(backend));
	ck_assert_ptr_nonnull(log_captured_find("vm t: QEMU gone (EOF)"));
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, done(NULL)), -ENOTCONN);
}
END_TEST

/* QEMU answers device_del but never sends DEVICE_DELETED (a guest that
 * ignores the unplug request): the detach fails with -ETIMEDOUT once the
 * wait is over, not earlier, and a DEVICE_DELETED that comes later is
 * reported as the device leaving. */
START_TEST(detach_times_out_without_device_deleted)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "device_del" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_PAUSE },
		{ FAKE_SEND, "{\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"vmplug-a\", "
			     "\"path\": \"/machine/peripheral/vmplug-a\"}}" },
		{ FAKE_END },
	};
	struct rec_done *d;
	uint64_t started;

	backend_qmp_set_delete_timeout(300 * USEC_PER_MSEC);
	start(script);
	started = now_usec();
	d = done("detach");
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-a", rec_backend_done, d), 0);
	ck_assert(run_until(loop, rec_done_called, d, WAIT_MS));
	ck_assert_uint_ge(now_usec() - started, 300 * USEC_PER_MSEC);
	ck_assert_int_eq(d->err, -ETIMEDOUT);
	ck_assert_str_eq(d->msg, "no DEVICE_DELETED from QEMU");
	ck_assert_ptr_nonnull(
	    log_captured_find("vm t: QEMU sent no DEVICE_DELETED for vmplug-a within 0.3 s"));
	ck_assert(ops->is_up(backend));
	fake_peer_resume(peer);
	ck_assert(run_until(loop, rec_noted, (char *)"item_gone:vmplug-a ", WAIT_MS));
	ck_assert_str_eq(rec.order, "up detach:-110 item_gone:vmplug-a ");
	ck_assert_ptr_null(fake_peer_error(peer));
}
END_TEST

START_TEST(destroy_from_callbacks)
{
	static const struct fake_step script[] = {
		FAKE_UP,
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_EXPECT, "device_add" },
		{ FAKE_SEND, "{\"return\": {}, \"id\": $3}{\"return\": {}, \"id\": $4}" },
		{ FAKE_END },
	};
	static const struct fake_step closing[] = {
		FAKE_UP,
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
	ck_assert_str_eq(rec.order, "up a:0 ");
	fake_peer_free(peer);

	/* From vm_gone. */
	rec.order[0] = '\0';
	destroy_on_done = false;
	destroy_on_gone = true;
	start(closing);
	attach_port("vmplug-a", "a");
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(rec.order, "up a:-107 gone ");
}
END_TEST

/* QEMU is loading the VM (-incoming): the VM is up only once it has, and
 * says meanwhile why it is not; a query-status QEMU refuses does not keep
 * it down. */
START_TEST(up_once_loaded)
{
	static const char *const inmigrate = "{\"return\": {\"status\": \"inmigrate\"}}";
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, inmigrate },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, inmigrate },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"return\": {\"status\": \"prelaunch\"}}" },
		{ FAKE_CLOSE },
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no\"}}" },
		{ FAKE_END },
	};

	backend_qmp_set_loading_poll(10 * USEC_PER_MSEC);
	start(script);
	ck_assert_int_eq(rec.down, 1);
	ck_assert_str_eq(rec.down_why, "QEMU is loading a saved or incoming VM");
	ck_assert_uint_eq(log_captured_count_text("loading a saved or incoming VM"), 1);
	ck_assert_ptr_nonnull(log_captured_find("vm t: QEMU has loaded the VM"));

	/* the peer drops the connection and takes the next */
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	ck_assert(run_until(loop, rec_noted, (char *)"gone up ", WAIT_MS));
	ck_assert_str_eq(rec.order, "up gone up ");
	ck_assert(ops->is_up(backend));
	ck_assert_ptr_null(fake_peer_error(peer));
}
END_TEST

/* While QEMU loads the VM, MIGRATION and RESUME ask again at once (with
 * no poll within the test's time), one query-status at a time. */
START_TEST(loaded_on_events)
{
	static const char *const inmigrate = "{\"return\": {\"status\": \"inmigrate\"}}";
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, inmigrate },
		{ FAKE_SEND, "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}}"
			     "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}" },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, inmigrate },
		{ FAKE_SEND, "{\"event\": \"RESUME\"}" },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"return\": {\"status\": \"running\", \"running\": true}}" },
		/* the next command is the caller's: no query-status left over */
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_EXPECT, "qom-list" },
		{ FAKE_SEND, "{\"return\": [], \"id\": $5}{\"return\": [], \"id\": $6}" },
		{ FAKE_END },
	};
	struct rec_done *l = done("list");

	backend_qmp_set_loading_poll(3600 * USEC_PER_SEC);
	start(script);
	ck_assert_str_eq(rec.down_why, "QEMU is loading a saved or incoming VM");
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"list:", WAIT_MS));
	ck_assert_int_eq(l->err, 0);
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(rec.order, "event:RESUME up list:0 ");
}
END_TEST

START_TEST(not_for_this_backend)
{
	vm.backend = CONF_BACKEND_LIBVIRT;
	ck_assert_ptr_null(ops->create(loop, &vm, &rec_backend_events, NULL));
	ck_assert_int_eq(errno, EINVAL);
	vm.backend = CONF_BACKEND_QMP;
	free(vm.qmp_socket);
	vm.qmp_socket = xstrdup("relative.qmp");
	ck_assert_ptr_null(ops->create(loop, &vm, &rec_backend_events, NULL));
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
	tcase_add_test(tc, down_says_why_once);
	tcase_add_test(tc, list_type_checks_and_races);
	tcase_add_test(tc, huge_list_is_capped_and_logged_once);
	tcase_add_test(tc, list_of_containers_not_made_yet);
	tcase_add_test(tc, list_fails_on_other_errors);
	tcase_add_test(tc, fd_mode_bad_add_fd_reply);
	tcase_add_test(tc, remove_fd_refused);
	tcase_add_test(tc, pending_fail_before_gone);
	tcase_add_test(tc, detach_times_out_without_device_deleted);
	tcase_add_test(tc, destroy_from_callbacks);
	tcase_add_test(tc, up_once_loaded);
	tcase_add_test(tc, loaded_on_events);
	tcase_add_test(tc, not_for_this_backend);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

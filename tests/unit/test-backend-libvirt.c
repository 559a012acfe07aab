/* Unit tests for the libvirt backend's threads (backends/libvirt.c): its
 * worker, libvirt's event loop thread and the eventfd that brings
 * results to vmplug's loop. Against libvirt's own test driver (in this
 * process, no daemon: test:///default, whose domains the test starts and
 * stops through a connection of its own, and test:///FILE) and against
 * sockets that are not libvirtd (nothing there, or a peer that never
 * answers). A real libvirtd is in tests/libvirt.sh. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/entities.h>

#include "backends/backend.h"
#include "backends/libvirt-int.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define WAIT_MS 5000

static char *dir;
static struct loop *loop;
static struct conf_vm vm;
static const struct backend_ops *ops;
static struct backend_vm *backend;
static virConnectPtr admin; /* the test's own connection to test:///default */
static struct rec_done dones[8];
static size_t n_dones;
static bool destroy_on_up;

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
	if (destroy_on_up && streq(token, "up ")) {
		ops->destroy(backend);
		backend = NULL;
	}
}

static void quiet(void *data, virErrorPtr err)
{
}

static void setup(void)
{
	dir = scratch_new("backend-libvirt");
	loop = loop_new();
	memset(&vm, 0, sizeof(vm));
	vm.name = (char *)"t";
	vm.backend = CONF_BACKEND_LIBVIRT;
	vm.uri = (char *)"test:///default";
	vm.domain = (char *)"t";
	ops = &backend_libvirt_ops;
	ck_assert_ptr_nonnull(ops);
	rec_reset();
	rec.after = destroy_after;
	destroy_on_up = false;
	n_dones = 0;
	log_capture_start(LOG_LEVEL_INFO);
	virSetErrorFunc(NULL, quiet);
	admin = virConnectOpen("test:///default");
	ck_assert_ptr_nonnull(admin);
}

static void teardown(void)
{
	ops->destroy(backend);
	backend = NULL;
	virConnectClose(admin);
	for (size_t i = 0; i < n_dones; i++)
		backend_list_free(dones[i].list);
	loop_free(loop);
	log_capture_stop();
	scratch_remove(dir);
}

static void start(void)
{
	backend = ops->create(loop, &vm, &rec_backend_events, NULL);
	ck_assert_ptr_nonnull(backend);
}

/* A transient domain of the test driver, running (or paused). */
static virDomainPtr start_domain(const char *name, const char *devices, bool paused)
{
	virDomainPtr dom;
	xmlChar *escaped;
	char *xml;

	escaped = xmlEncodeSpecialChars(NULL, (const xmlChar *)name);
	xml = xasprintf("<domain type='test'><name>%s</name><memory>65536</memory>"
			"<os><type>hvm</type></os><devices>%s</devices></domain>",
			(const char *)escaped, devices ? devices : "");
	xmlFree(escaped);
	dom = virDomainCreateXML(admin, xml, 0);
	ck_assert_msg(dom, "cannot start domain: %s", virGetLastErrorMessage());
	/* The test driver has no VIR_DOMAIN_START_PAUSED. */
	ck_assert(!paused || virDomainSuspend(dom) == 0);
	free(xml);
	return dom;
}

static void stop_domain(virDomainPtr dom)
{
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	virDomainFree(dom);
}

static const char *const our_devices =
    "<hostdev mode='subsystem' type='usb' managed='no'>"
    "<source><address bus='3' device='5'/></source><alias name='ua-vmplug-usb-3-5'/></hostdev>"
    "<hostdev mode='subsystem' type='usb' managed='no'>"
    "<source><address bus='3' device='6'/></source><alias name='ua-mine'/></hostdev>"
    "<input type='evdev'><source dev='/dev/input/by-id/vmplug-t-kbd'/></input>";

START_TEST(lifecycle_events)
{
	virDomainPtr dom;
	int two = 2;

	start();
	/* Not defined: down, said once, and no storm of retries or logs. */
	run_for(loop, 300);
	ck_assert_str_eq(rec.order, "");
	ck_assert(!ops->is_up(backend));
	ck_assert_uint_eq(log_captured_count_text("domain t is not defined"), 1);
	/* ... and told to the owner once, for the status */
	ck_assert_int_eq(rec.down, 1);
	ck_assert_str_eq(rec.down_why, "domain t is not defined");
	dom = start_domain("t", NULL, true);
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	ck_assert(ops->is_up(backend));
	ck_assert_int_eq(virDomainResume(dom), 0);
	ck_assert(run_until(loop, rec_noted, (char *)"event:RESUME ", WAIT_MS));
	stop_domain(dom);
	ck_assert(run_until(loop, rec_gone_n, &(int){ 1 }, WAIT_MS));
	ck_assert(!ops->is_up(backend));
	/* Started again: up again (a new QEMU, nothing attached). */
	dom = start_domain("t", NULL, false);
	ck_assert(run_until(loop, rec_up_n, &two, WAIT_MS));
	stop_domain(dom);
	ck_assert(run_until(loop, rec_gone_n, &two, WAIT_MS));
	ck_assert_str_eq(rec.order, "up event:STOP event:RESUME gone up gone ");
	/* Other domains are none of its business. */
	dom = start_domain("other", NULL, false);
	stop_domain(dom);
	run_for(loop, 200);
	ck_assert_str_eq(rec.order, "up event:STOP event:RESUME gone up gone ");
}
END_TEST

START_TEST(running_at_start_and_list)
{
	virDomainPtr dom = start_domain("t", our_devices, false);
	struct rec_done *l = done("list");
	const struct backend_list *got;

	start();
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	ck_assert_int_eq(ops->list(backend, rec_backend_list, l), 0);
	ck_assert(run_until(loop, rec_done_called, l, WAIT_MS));
	ck_assert_int_eq(l->err, 0);
	got = l->list;
	/* The user's hostdev (ua-mine) is not vmplug's; libvirt writes
	 * inputs before hostdevs. */
	ck_assert_uint_eq(got->n, 2);
	ck_assert_int_eq(got->items[0].kind, BACKEND_ITEM_INPUT);
	ck_assert_str_eq(got->items[0].id, "vmplug-in-kbd");
	ck_assert_str_eq(got->items[0].evdev, "/dev/input/by-id/vmplug-t-kbd");
	ck_assert_int_eq(got->items[1].kind, BACKEND_ITEM_USB);
	ck_assert_str_eq(got->items[1].id, "vmplug-usb-3-5");
	ck_assert_int_eq(got->items[1].bus, 3);
	ck_assert_int_eq(got->items[1].addr, 5);
	ck_assert(got->items[1].attached);
	stop_domain(dom);
}
END_TEST

START_TEST(refusals_carry_libvirts_words)
{
	virDomainPtr dom = start_domain("t", our_devices, false);
	struct backend_usb_dev dev = {
		.id = "vmplug-usb-1-2", .mode = CONF_ATTACH_FD, .bus = 1, .addr = 2, .devnode = "/x"
	};
	struct rec_done *a = done("attach"), *d = done("detach"), *g = done("gone");

	start();
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	/* The test driver cannot hot-plug: its message comes back as is. */
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, a), 0);
	ck_assert(run_until(loop, rec_done_called, a, WAIT_MS));
	ck_assert_int_eq(a->err, -EIO);
	ck_assert_ptr_nonnull(strstr(a->msg, "virDomainAttachDeviceFlags"));
	ck_assert_uint_eq(log_captured_count_text("attach-mode fd: libvirt attaches by bus and "
						  "device number"),
			  1);
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-usb-3-5", rec_backend_done, d), 0);
	ck_assert(run_until(loop, rec_done_called, d, WAIT_MS));
	ck_assert_int_eq(d->err, -EIO);
	ck_assert_ptr_nonnull(strstr(d->msg, "virDomainDetachDeviceFlags"));
	/* A device the domain does not have is detached already. */
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-usb-9-9", rec_backend_done, g), 0);
	ck_assert(run_until(loop, rec_done_called, g, WAIT_MS));
	ck_assert_int_eq(g->err, 0);
	/* Ids that cannot be a libvirt alias never reach libvirt. */
	dev.id = "vmplug-usb-1'2";
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, NULL), -EINVAL);
	ck_assert_int_eq(ops->usb_detach(backend, "mine", rec_backend_done, NULL), -EINVAL);
	ck_assert_int_eq(ops->usb_detach(backend, "vmplug-a<b", rec_backend_done, NULL), -EINVAL);
	ck_assert_ptr_null(ops->input_attach);
	stop_domain(dom);
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
	ck_assert_int_eq(ops->usb_attach(backend, &dev, rec_backend_done, NULL), -ENOTCONN);
	ck_assert_int_eq(ops->list(backend, rec_backend_list, NULL), -ENOTCONN);
}
END_TEST

START_TEST(hostile_domain_name)
{
	char *name = xmalloc(4096 + 32);
	virDomainPtr dom;
	size_t n;

	strcpy(name, "a'b\"c<d>&e;\tf ");
	n = strlen(name);
	memset(name + n, 'x', 4096);
	name[n + 4096] = '\0';
	vm.domain = name;
	start();
	dom = start_domain(name, our_devices, false);
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	stop_domain(dom);
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
	ops->destroy(backend);
	backend = NULL;
	free(name);
}
END_TEST

START_TEST(destroy_from_vm_up)
{
	virDomainPtr dom = start_domain("t", NULL, false);

	destroy_on_up = true;
	start();
	ck_assert(run_until(loop, rec_noted, (char *)"up ", WAIT_MS));
	ck_assert_ptr_null(backend);
	stop_domain(dom);
	run_for(loop, 100);
	ck_assert_str_eq(rec.order, "up ");
}
END_TEST

START_TEST(no_libvirtd_is_quiet)
{
	char *uri = xasprintf("qemu:///system?socket=%s/none.sock", dir);

	vm.uri = uri;
	start();
	/* Retried with backoff (100 ms doubling), said once. */
	run_for(loop, 1500);
	ck_assert_str_eq(rec.order, "");
	ck_assert_uint_eq(log_captured_count_text("cannot connect to"), 1);
	/* the owner hears why once, not at every retry */
	ck_assert_int_eq(rec.down, 1);
	ck_assert_msg(startswith(rec.down_why, "cannot connect to qemu:///system?socket=") &&
			  strstr(rec.down_why, "none.sock"),
		      "%s", rec.down_why);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 0);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 0);
	ops->destroy(backend);
	backend = NULL;
	free(uri);
}
END_TEST

static int ticks, goal;

static void on_tick(struct loop_timer *t, void *data)
{
	ticks++;
}

static bool ticked(void *arg)
{
	return ticks >= goal;
}

/* A peer that accepts and never says a word: the worker hangs in
 * virConnectOpen, and nothing on the loop notices. */
START_TEST(hung_libvirtd_never_blocks_the_loop)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = xasprintf("%s/hung.sock", dir);
	char *uri = xasprintf("qemu:///system?socket=%s", path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd = -1;
	struct loop_timer *t;
	uint64_t t0;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	vm.uri = uri;
	start();
	cfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(cfd, 0);
	/* The loop keeps its timers while the worker waits. */
	t = loop_timer_new(loop, on_tick, NULL);
	ticks = 0;
	for (goal = 1; goal <= 5; goal++) {
		loop_timer_arm_in(t, 20 * USEC_PER_MSEC);
		ck_assert(run_until(loop, ticked, NULL, WAIT_MS));
	}
	ck_assert(!ops->is_up(backend));
	/* destroy() does not wait for the stuck worker. */
	t0 = now_usec();
	ops->destroy(backend);
	backend = NULL;
	ck_assert_uint_lt(now_usec() - t0, test_scaled_usec(USEC_PER_SEC));
	loop_timer_free(t);
	/* The peer goes away: the worker's call fails and it finishes. */
	closep(&cfd);
	closep(&lfd);
	free(uri);
	free(path);
}
END_TEST

/* Backends come and go (reloads): every worker is joined, nothing leaks. */
START_TEST(many_backends)
{
	char *uri = xasprintf("qemu:///system?socket=%s/none.sock", dir);
	struct backend_vm *b[8];

	vm.uri = uri;
	for (int round = 0; round < 5; round++) {
		for (size_t i = 0; i < ARRAY_SIZE(b); i++) {
			b[i] = ops->create(loop, &vm, &rec_backend_events, NULL);
			ck_assert_ptr_nonnull(b[i]);
		}
		run_for(loop, 20);
		for (size_t i = 0; i < ARRAY_SIZE(b); i++)
			ops->destroy(b[i]);
	}
	ck_assert_str_eq(rec.order, "");
	free(uri);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("backend-libvirt");
	TCase *tc = tcase_create("test-driver");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, lifecycle_events);
	tcase_add_test(tc, running_at_start_and_list);
	tcase_add_test(tc, refusals_carry_libvirts_words);
	tcase_add_test(tc, hostile_domain_name);
	tcase_add_test(tc, destroy_from_vm_up);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("no-libvirtd");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, no_libvirtd_is_quiet);
	tcase_add_test(tc, hung_libvirtd_never_blocks_the_loop);
	tcase_add_test(tc, many_backends);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

/* The part every backend shares (backends/base.c), through the null
 * backend: each operation completes once and in order, the VM going
 * fails what is pending before vm_gone, and a callback may destroy the
 * backend at any of those points (ASan and valgrind watch the memory). */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "backends/null.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static struct backend_vm *backend;
static struct backend_null *null;
static char order[512];
static bool destroy_in_done, destroy_in_gone;

/* "TAG:ERR " for a completion, TAG alone (with its space) for an event. */
static void note(const char *tag, int err, bool completion)
{
	size_t len = strlen(order);

	if (completion)
		snprintf(order + len, sizeof(order) - len, "%s:%d ", tag, err);
	else
		snprintf(order + len, sizeof(order) - len, "%s ", tag);
}

static void destroy(void)
{
	backend_null_ops.destroy(backend);
	backend = NULL;
	null = NULL;
}

static void on_done(void *data, int err, const char *msg)
{
	note(data, err, true);
	if (destroy_in_done)
		destroy();
}

static void on_list(void *data, int err, const struct backend_list *list)
{
	note(data, err, true);
	ck_assert(err ? list == NULL : list != NULL);
	if (destroy_in_done)
		destroy();
}

static void on_up(void *data)
{
	note("up", 0, false);
}

static void on_gone(void *data, const char *reason)
{
	note("gone", 0, false);
	if (destroy_in_gone)
		destroy();
}

static void on_item_gone(void *data, const char *id)
{
	note("item_gone", 0, false);
}

static const struct backend_events events = {
	.vm_up = on_up,
	.vm_gone = on_gone,
	.item_gone = on_item_gone,
};

static void setup(void)
{
	struct conf_vm vm = { .name = (char *)"t" };

	order[0] = '\0';
	destroy_in_done = destroy_in_gone = false;
	backend = backend_null_ops.create(NULL, &vm, &events, NULL);
	null = backend_null_from(backend);
	backend_null_set_up(null, true, NULL);
}

static void teardown(void)
{
	if (backend)
		destroy();
	ck_assert_ptr_null(backend_null_last());
}

static void attach(const char *tag)
{
	struct backend_usb_dev dev = {
		.id = tag, .mode = CONF_ATTACH_ADDRESS, .bus = 1, .addr = 2
	};

	ck_assert_int_eq(backend->ops->usb_attach(backend, &dev, on_done, (void *)tag), 0);
}

START_TEST(completes_once_in_order_and_fails_all_before_gone)
{
	attach("a");
	ck_assert_int_eq(backend->ops->usb_detach(backend, "b", on_done, (void *)"b"), 0);
	ck_assert_int_eq(backend->ops->list(backend, on_list, (void *)"c"), 0);
	ck_assert_str_eq(order, "up ");
	ck_assert(backend_null_complete(null, 0, NULL));
	ck_assert_str_eq(order, "up a:0 ");
	backend_null_set_up(null, false, "QEMU exited");
	ck_assert_str_eq(order, "up a:0 b:-107 c:-107 gone ");
	ck_assert(!backend_null_complete(null, 0, NULL));
	ck_assert_int_eq(backend->ops->usb_detach(backend, "d", on_done, (void *)"d"), -ENOTCONN);
}
END_TEST

START_TEST(destroy_from_a_completion)
{
	attach("a");
	attach("b");
	destroy_in_done = true;
	ck_assert(backend_null_complete(null, 0, NULL));
	/* b is dropped without a call */
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(order, "up a:0 ");
}
END_TEST

START_TEST(destroy_from_the_first_failure)
{
	attach("a");
	attach("b");
	destroy_in_done = true;
	backend_null_set_up(null, false, "QEMU exited");
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(order, "up a:-107 ");
}
END_TEST

START_TEST(destroy_from_vm_gone)
{
	attach("a");
	destroy_in_gone = true;
	backend_null_set_up(null, false, "QEMU exited");
	ck_assert_ptr_null(backend);
	ck_assert_str_eq(order, "up a:-107 gone ");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("backend-base");
	TCase *tc = tcase_create("null");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, completes_once_in_order_and_fails_all_before_gone);
	tcase_add_test(tc, destroy_from_a_completion);
	tcase_add_test(tc, destroy_from_the_first_failure);
	tcase_add_test(tc, destroy_from_vm_gone);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

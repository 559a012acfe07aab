/* Scenario tests for the reconciler on virtual time: host USB events in,
 * operations on in-memory (null) backends out. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/null.h"
#include "reconcile/reconcile.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/log.h"
#include "util/util.h"

static uint64_t vnow;
static uint64_t scheduled;
static char **events;
static struct reconcile *rc;
static struct conf *conf;

/* The VM whose backend cannot be created (NULL: none), and the socket
 * the last backend was created for. */
static const char *refuse_create;
static char *created_for;

static struct backend_vm *create_null(void *data, const struct conf_vm *vm,
				      const struct backend_events *ev, void *evdata)
{
	if (refuse_create && streq(vm->name, refuse_create)) {
		errno = EMFILE;
		return NULL;
	}
	free(created_for);
	created_for = vm->qmp_socket ? xstrdup(vm->qmp_socket) : NULL;
	return backend_null_ops.create(NULL, vm, ev, evdata);
}

static uint64_t clock_now(void *data)
{
	return vnow;
}

static void on_schedule(void *data, uint64_t deadline)
{
	scheduled = deadline;
}

static void on_notify(void *data, const struct reconcile_event *ev)
{
	static const char *const names[] = {
		[RECONCILE_VM_UP] = "up",
		[RECONCILE_VM_GONE] = "gone",
		[RECONCILE_USB_ATTACHED] = "attached",
		[RECONCILE_USB_DETACHED] = "detached",
		[RECONCILE_USB_FAILED] = "failed",
		[RECONCILE_INPUT_ATTACHED] = "input-attached",
		[RECONCILE_INPUT_DETACHED] = "input-detached",
		[RECONCILE_INPUT_FAILED] = "input-failed",
	};
	char *s;

	if (ev->id)
		s = xasprintf("%s %s %s%s", names[ev->type], ev->vm, ev->id,
			      ev->final ? " final" : "");
	else
		s = xasprintf("%s %s", names[ev->type], ev->vm);
	strv_append(&events, s);
	free(s);
}

/* The input sinks each VM has, as the input manager would say: "VM ID
 * EVDEV [kept]" lines, set by the tests. */
static char **sinks;

static size_t vm_inputs(void *data, const char *vm, struct reconcile_input **out)
{
	size_t n = 0;

	*out = NULL;
	for (size_t i = 0; sinks && sinks[i]; i++) {
		char **w = strv_split(sinks[i], " ");

		if (streq(w[0], vm)) {
			*out = xrealloc(*out, (n + 1) * sizeof(**out));
			(*out)[n++] = (struct reconcile_input){
				.id = xstrdup(w[1]),
				.evdev = xstrdup(w[2]),
				.grab_all = true,
				.keep_existing = w[3] && streq(w[3], "kept"),
			};
		}
		strv_free(w);
	}
	return n;
}

static const struct reconcile_hooks hooks = {
	.create_backend = create_null,
	.now = clock_now,
	.schedule = on_schedule,
	.notify = on_notify,
	.vm_inputs = vm_inputs,
};

static void start_with(struct conf *c, const struct reconcile_hooks *h)
{
	vnow = 1000000;
	scheduled = 0;
	log_set_level(LOG_LEVEL_WARNING);
	events = NULL;
	conf = c;
	rc = reconcile_new(conf, h, NULL);
}

static void start(struct conf *c)
{
	start_with(c, &hooks);
}

/* As vmplugd runs it: flapping ports are debounced. */
static void start_debounced(struct conf *c)
{
	static struct reconcile_hooks h;

	h = hooks;
	h.debounce = true;
	start_with(c, &h);
}

static void stop(void)
{
	strv_free(sinks);
	sinks = NULL;
	reconcile_free(rc);
	conf_free(conf);
	strv_free(events);
	free(created_for);
	created_for = NULL;
	refuse_create = NULL;
	ck_assert_ptr_null(backend_null_last());
}

static struct backend_null *vm(const char *name)
{
	struct backend_null *n = backend_null_find(name);

	ck_assert_msg(n != NULL, "no backend for %s", name);
	return n;
}

/* Let every backend finish what it was asked to do, repeatedly, since
 * completions start new work. */
static void settle(void)
{
	bool progress = true;

	while (progress) {
		progress = false;
		for (size_t i = 0; i < conf->n_vms; i++) {
			struct backend_null *n = backend_null_find(conf->vms[i].name);

			if (n && backend_null_complete_all(n))
				progress = true;
		}
	}
}

static void up(const char *name)
{
	backend_null_set_up(vm(name), true, NULL);
	settle();
}

static void plug(const char *desc)
{
	fixture_plug(rc, desc);
}

static void unplug(const char *desc)
{
	fixture_unplug(rc, desc);
}

/* Move virtual time on and run what is due, as the daemon's timer would. */
static void advance(uint64_t usec)
{
	vnow += usec;
	while (scheduled && scheduled <= vnow) {
		scheduled = 0; /* a timer that fired is disarmed */
		reconcile_tick(rc);
	}
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids a VM has now, sorted and space-separated ("" for none). */
static char *items(const char *name)
{
	const struct backend_list *l = backend_null_items(vm(name));
	char **ids = NULL, *s;

	for (size_t i = 0; i < l->n; i++)
		strv_append(&ids, l->items[i].id);
	if (ids)
		qsort(ids, strv_len(ids), sizeof(char *), cmp);
	s = strv_join(ids, " ");
	strv_free(ids);
	return s;
}

/* expr, a string the caller frees, is expected. */
#define assert_made_str(expr, expected)                                                            \
	do {                                                                                       \
		char *_s = (expr);                                                                 \
		ck_assert_str_eq(_s, expected);                                                    \
		free(_s);                                                                          \
	} while (0)
#define assert_items(name, expected) assert_made_str(items(name), expected)

static unsigned count(const char *name, enum backend_null_op op)
{
	return backend_null_count(vm(name), op);
}

static bool logged(const char *event)
{
	return strv_contains(events, event);
}

#define PC "[vm]\nqmp-socket = /run/pc.qmp\n[usb \"desk\"]\nport = 3-10\n"
#define CAM "3-10.2 dev=5 vid=046d pid=0825"

/* The id names the host device instance and the attach mode. */
START_TEST(usb_ids_name_the_device_and_the_mode)
{
	static const struct {
		enum conf_attach_mode mode;
		unsigned bus, devnum;
		const char *id;
	} cases[] = {
		{ CONF_ATTACH_ADDRESS, 3, 5, "vmplug-usb-3-5" },
		{ CONF_ATTACH_FD, 3, 5, "vmplug-usbfd-3-5" },
		{ CONF_ATTACH_PORT, 3, 5, "vmplug-usbport-3-5" },
		{ CONF_ATTACH_ADDRESS, 10, 127, "vmplug-usb-10-127" },
		{ CONF_ATTACH_PORT, 4294967295u, 0, "vmplug-usbport-4294967295-0" },
	};
	struct usb_device *dev = fixture_usb(CAM);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *id;

		dev->bus = cases[i].bus;
		dev->devnum = cases[i].devnum;
		id = reconcile_usb_id(dev, cases[i].mode);
		ck_assert_str_eq(id, cases[i].id);
		free(id);
	}
	usb_device_free(dev);
}
END_TEST

START_TEST(coldplug_then_vm_up)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	plug(CAM);
	/* The VM is not up: nothing to do yet. */
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 0);
	up("pc");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_LIST), 1);
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert(logged("up pc"));
	ck_assert(logged("attached pc vmplug-usb-3-5"));
	stop();
}
END_TEST

START_TEST(plug_and_unplug)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	plug("1-1 dev=2 vid=046d pid=0825"); /* not on the VM's port */
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	unplug(CAM);
	ck_assert_uint_eq(backend_null_pending(vm("pc")), 1);
	settle();
	assert_items("pc", "");
	ck_assert(logged("detached pc vmplug-usb-3-5"));
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 1);
	stop();
}
END_TEST

START_TEST(replug_with_new_device_number)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	unplug(CAM);
	plug("3-10.2 dev=6 vid=046d pid=0825");
	settle();
	assert_items("pc", "vmplug-usb-3-6");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 1);
	stop();
}
END_TEST

START_TEST(one_event_never_attaches_twice)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	/* change events and a repeated add while device_add is in flight */
	plug(CAM);
	plug(CAM " if=03");
	reconcile_tick(rc);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	settle();
	plug(CAM);
	settle();
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	assert_items("pc", "vmplug-usb-3-5");
	stop();
}
END_TEST

START_TEST(an_id_is_reused_only_after_its_detach_completed)
{
	const char *id;

	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	unplug(CAM);
	/* the device number wrapped round to the same value before the
	 * detach was confirmed */
	plug(CAM);
	ck_assert_uint_eq(backend_null_pending(vm("pc")), 1);
	ck_assert_int_eq(backend_null_pending_op(vm("pc"), 0, &id), BACKEND_NULL_USB_DETACH);
	ck_assert_str_eq(id, "vmplug-usb-3-5");
	backend_null_complete(vm("pc"), 0, NULL);
	/* now it may be attached again */
	ck_assert_int_eq(backend_null_pending_op(vm("pc"), 0, &id), BACKEND_NULL_USB_ATTACH);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	stop();
}
END_TEST

START_TEST(reset_storm_converges)
{
	char desc[64];

	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	for (unsigned dev = 2; dev < 102; dev++) {
		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev % 127 + 1);
		plug(desc);
		/* the backend answers only every third event */
		if (dev % 3 == 0)
			backend_null_complete(vm("pc"), 0, NULL);
		unplug(desc);
	}
	plug("3-10.2 dev=50 vid=046d pid=0825");
	settle();
	assert_items("pc", "vmplug-usb-3-50");
	/* every attach was balanced by a detach, but the last one */
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH),
			  count("pc", BACKEND_NULL_USB_DETACH) + 1);
	stop();
}
END_TEST

START_TEST(qemu_restart_reattaches)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	backend_null_set_up(vm("pc"), false, "QEMU exited");
	ck_assert(logged("gone pc"));
	assert_items("pc", "");
	up("pc");
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	stop();
}
END_TEST

START_TEST(vm_gone_during_attach)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	backend_null_set_up(vm("pc"), false, "connection lost");
	ck_assert(!logged("failed pc vmplug-usb-3-5"));
	up("pc");
	assert_items("pc", "vmplug-usb-3-5");
	stop();
}
END_TEST

START_TEST(daemon_restart_learns_from_the_vm)
{
	struct backend_item ours = { .kind = BACKEND_ITEM_USB,
				     .id = (char *)"vmplug-usb-3-5",
				     .bus = 3,
				     .addr = 5,
				     .attached = true };
	struct backend_item stale = {
		.kind = BACKEND_ITEM_USB, .id = (char *)"vmplug-usb-3-9", .bus = 3, .addr = 9
	};
	struct backend_item users = {
		.kind = BACKEND_ITEM_USB, .id = (char *)"my-webcam", .bus = 3, .addr = 7
	};

	start(fixture_conf(NULL, "pc", PC, NULL));
	plug(CAM);
	plug("3-10.3 dev=7 vid=1234 pid=5678");
	/* what QEMU still has from the previous vmplugd */
	backend_null_add_item(vm("pc"), &ours);
	backend_null_add_item(vm("pc"), &stale);
	backend_null_add_item(vm("pc"), &users);
	up("pc");
	/* 3-5 is there already: not attached twice; 3-9's device is gone:
	 * detached; the user's own device is left alone, and 3-7 (claimed,
	 * present) attached */
	assert_items("pc", "my-webcam vmplug-usb-3-5 vmplug-usb-3-7");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 1);
	stop();
}
END_TEST

START_TEST(attach_failures_are_retried_then_reported)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	for (int i = 1; i <= RECONCILE_ATTACH_TRIES; i++) {
		ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), (unsigned)i);
		backend_null_complete(vm("pc"), -EIO, "failed to find host usb device 3:5");
		if (i < RECONCILE_ATTACH_TRIES) {
			/* backoff doubles: 1 s, 2 s, 4 s */
			ck_assert_uint_eq(scheduled,
					  vnow + (RECONCILE_ATTACH_RETRY_USEC << (i - 1)));
			advance(RECONCILE_ATTACH_RETRY_USEC << (i - 1));
		}
	}
	ck_assert(logged("failed pc vmplug-usb-3-5 final"));
	ck_assert_uint_eq(scheduled, 0);
	advance(3600 * USEC_PER_SEC);
	plug(CAM); /* a change event does not restart the tries */
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), RECONCILE_ATTACH_TRIES);
	/* a replug does */
	unplug(CAM);
	plug("3-10.2 dev=6 vid=046d pid=0825");
	settle();
	assert_items("pc", "vmplug-usb-3-6");
	stop();
}
END_TEST

/* Only the libusb race is tried again at its quick pace: any other
 * refusal waits a second, so a device that cannot be opened and leaves
 * soon after (a flapping port) costs one device_add, not one per 100 ms. */
START_TEST(other_refusals_wait_a_second)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	backend_null_complete(vm("pc"), -EIO, "failed to open host usb device 3:5");
	ck_assert_uint_eq(scheduled, vnow + USEC_PER_SEC);
	advance(USEC_PER_SEC / 2);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	unplug(CAM);
	advance(10 * USEC_PER_SEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	assert_items("pc", "");
	stop();
}
END_TEST

/* QEMU refuses a device its libusb has not seen yet (-ENODEV): tried
 * again at once and soon, without a warning or an event for the first
 * failures, as one policy with every other failure. */
START_TEST(a_device_qemu_does_not_see_yet_is_retried_quietly)
{
	static const char *const refusal = "failed to find host usb device 3:5";

	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	log_capture_start(LOG_LEVEL_DEBUG);
	plug(CAM);
	for (unsigned i = 1; i <= RECONCILE_ATTACH_QUIET; i++) {
		ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), i);
		backend_null_complete(vm("pc"), -ENODEV, refusal);
		ck_assert_uint_eq(scheduled, vnow + (RECONCILE_ATTACH_RACE_USEC << (i - 1)));
		advance(RECONCILE_ATTACH_RACE_USEC << (i - 1));
	}
	ck_assert(!logged("failed pc vmplug-usb-3-5"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 0);
	ck_assert_uint_eq(log_captured_count_text(refusal), RECONCILE_ATTACH_QUIET);
	/* it still is not there 1.5 s after the plug: now it is said */
	backend_null_complete(vm("pc"), -ENODEV, refusal);
	ck_assert(logged("failed pc vmplug-usb-3-5"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 1);
	ck_assert_uint_eq(scheduled, vnow + RECONCILE_ATTACH_RETRY_USEC);
	advance(RECONCILE_ATTACH_RETRY_USEC);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert(logged("attached pc vmplug-usb-3-5"));
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), RECONCILE_ATTACH_QUIET + 2);
	log_capture_stop();
	stop();
}
END_TEST

/* The VM's items as `vmplugctl status` shows them, one "ID STATE
 * FAILURES ERROR" line each, joined by '|' ("" for none). */
static void collect_status(void *data, const struct reconcile_item_info *info)
{
	char ***out = data;
	char *line = xasprintf("%s %s %u %s", info->id, reconcile_item_state_name(info->state),
			       info->failures, info->error ? info->error : "-");

	strv_append(out, line);
	free(line);
}

static char *item_status(const char *name)
{
	char **lines = NULL, *s;

	reconcile_vm_items(rc, name, collect_status, &lines);
	s = strv_join(lines, "|");
	strv_free(lines);
	return s;
}

#define assert_status(name, expected) assert_made_str(item_status(name), expected)

/* The usual race: the first device_add comes before QEMU's libusb has
 * seen the device, the quick retry 100 ms later succeeds. The user sees
 * the device attached, and no warning, no failure event. */
START_TEST(a_device_qemu_sees_on_the_quick_retry_is_attached_without_a_word)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	log_capture_start(LOG_LEVEL_INFO);
	plug(CAM);
	backend_null_complete(vm("pc"), -ENODEV, "failed to find host usb device 3:5");
	assert_items("pc", "");
	assert_status("pc", "vmplug-usb-3-5 retrying 1 failed to find host usb device 3:5");
	ck_assert_uint_eq(scheduled, vnow + RECONCILE_ATTACH_RACE_USEC);
	advance(RECONCILE_ATTACH_RACE_USEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	assert_status("pc", "vmplug-usb-3-5 attached 0 -");
	ck_assert_str_eq(events[strv_len(events) - 1], "attached pc vmplug-usb-3-5");
	ck_assert(!logged("failed pc vmplug-usb-3-5"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 0);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 0);
	ck_assert_uint_eq(log_captured_count_text("vmplug-usb-3-5: attached"), 1);
	ck_assert_uint_eq(scheduled, 0);
	log_capture_stop();
	stop();
}
END_TEST

/* A detach that fails (QEMU never confirmed it) is tried again after 1 s,
 * 2 s and 4 s, then left as it is until a reload gives it new tries; the
 * log says each failure with QEMU's reason, and that it gave up, and the
 * status shows the device still attached with the reason and the count. */
START_TEST(detach_failures_are_retried_then_left)
{
	static const char *const why = "no DEVICE_DELETED from QEMU";

	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	log_capture_start(LOG_LEVEL_INFO);
	unplug(CAM);
	for (unsigned i = 1; i <= 4; i++) {
		ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), i);
		backend_null_complete(vm("pc"), -ETIMEDOUT, why);
		ck_assert_uint_eq(log_captured_count_text("detach failed, will retry: no "
							  "DEVICE_DELETED from QEMU"),
				  i < 4 ? i : 3);
		if (i < 4) {
			ck_assert_uint_eq(scheduled, vnow + (USEC_PER_SEC << (i - 1)));
			advance(USEC_PER_SEC << (i - 1));
		}
	}
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 3);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 1);
	ck_assert_ptr_nonnull(log_captured_find("vm pc: usb 3-10.2 046d:0825 vmplug-usb-3-5: "
						"detach failed, "
						"giving up: no DEVICE_DELETED from QEMU"));
	assert_status("pc", "vmplug-usb-3-5 attached 4 no DEVICE_DELETED from QEMU");
	ck_assert_uint_eq(scheduled, 0);
	advance(3600 * USEC_PER_SEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 4);
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert(!logged("detached pc vmplug-usb-3-5"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 1);
	reconcile_set_conf(rc, conf);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 5);
	settle();
	assert_items("pc", "");
	assert_status("pc", "");
	ck_assert(logged("detached pc vmplug-usb-3-5"));
	log_capture_stop();
	stop();
}
END_TEST

/* A detach the backend refuses at once (it cannot send the command) is
 * a failed detach like the others: the log names the refusal, the status
 * keeps the device attached with the reason, and it is tried again after
 * 1 s without waiting for another event. */
START_TEST(a_detach_refused_at_once_is_reported_and_tried_again)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	log_capture_start(LOG_LEVEL_INFO);
	backend_null_refuse_next(vm("pc"), -ENOBUFS);
	unplug(CAM);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 0);
	ck_assert_uint_eq(backend_null_pending(vm("pc")), 0);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 1);
	ck_assert_ptr_nonnull(log_captured_find("vm pc: usb 3-10.2 046d:0825 vmplug-usb-3-5: "
						"detach failed, will retry: No buffer space "
						"available"));
	assert_items("pc", "vmplug-usb-3-5");
	assert_status("pc", "vmplug-usb-3-5 attached 1 No buffer space available");
	ck_assert(!logged("detached pc vmplug-usb-3-5"));
	ck_assert_uint_eq(scheduled, vnow + USEC_PER_SEC);
	advance(USEC_PER_SEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 1);
	settle();
	assert_items("pc", "");
	ck_assert(logged("detached pc vmplug-usb-3-5"));
	log_capture_stop();
	stop();
}
END_TEST

/* A compromised QEMU can report a vmplug- usb-host object naming any host
 * device: VM a, which claims nothing, says it holds the camera b's rules
 * claim, and refuses every detach. While a's detach is being tried b
 * waits (a QEMU that really holds a device must let go first); once it
 * has given up, what a reports no longer keeps the device from b. */
START_TEST(a_lying_vm_cannot_keep_a_device_from_its_owner)
{
	const struct backend_item lie = { .kind = BACKEND_ITEM_USB,
					  .id = (char *)"vmplug-usb-3-5",
					  .bus = 3,
					  .addr = 5,
					  .attached = true };
	const char *id;

	start(fixture_conf(NULL, "a", "[vm]\nqmp-socket = /run/a.qmp\n", "b", PC, NULL));
	plug(CAM);
	backend_null_add_item(vm("a"), &lie);
	backend_null_set_up(vm("a"), true, NULL);
	backend_null_complete(vm("a"), 0, NULL); /* the list, with the lie */
	backend_null_set_up(vm("b"), true, NULL);
	backend_null_complete(vm("b"), 0, NULL); /* the list */
	for (unsigned i = 1; i <= RECONCILE_DETACH_TRIES; i++) {
		ck_assert_int_eq(backend_null_pending_op(vm("a"), 0, &id), BACKEND_NULL_USB_DETACH);
		ck_assert_str_eq(id, "vmplug-usb-3-5");
		/* b does not take it while a's detach may still succeed */
		ck_assert_uint_eq(count("b", BACKEND_NULL_USB_ATTACH), 0);
		backend_null_complete(vm("a"), -EIO, "refused");
		if (i < RECONCILE_DETACH_TRIES)
			advance(USEC_PER_SEC << (i - 1));
	}
	ck_assert_uint_eq(count("a", BACKEND_NULL_USB_DETACH), RECONCILE_DETACH_TRIES);
	ck_assert_uint_eq(backend_null_pending(vm("b")), 1);
	ck_assert_int_eq(backend_null_pending_op(vm("b"), 0, &id), BACKEND_NULL_USB_ATTACH);
	ck_assert_str_eq(id, "vmplug-usb-3-5");
	settle();
	assert_items("b", "vmplug-usb-3-5");
	ck_assert(logged("attached b vmplug-usb-3-5"));
	/* Nothing undoes it: not time, not another event for the device. */
	advance(3600 * USEC_PER_SEC);
	settle();
	assert_items("b", "vmplug-usb-3-5");
	ck_assert_uint_eq(count("b", BACKEND_NULL_USB_DETACH), 0);
	ck_assert_uint_eq(count("a", BACKEND_NULL_USB_DETACH), RECONCILE_DETACH_TRIES);
	stop();
}
END_TEST

START_TEST(conflicting_claims_go_to_the_first_vm)
{
	start(fixture_conf(NULL, "b", PC, "a",
			   "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nvendor = 046d\n", NULL));
	up("a");
	up("b");
	plug(CAM);
	settle();
	assert_items("a", "vmplug-usb-3-5");
	assert_items("b", "");
	stop();
}
END_TEST

/* A conflict is said once: not again for events, passes, VMs coming and
 * going, overrides, nor for the same device replugged on its port (a
 * flapping device would repeat it forever); a reload judges anew. */
START_TEST(conflict_logged_once)
{
	static const char *const claimed = "claimed by VMs a, b; it goes to a";
	struct usb_device *cam = fixture_usb(CAM);
	struct conf *next;

	start_debounced(fixture_conf(
	    NULL, "b", PC, "a", "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nvendor = 046d\n", NULL));
	log_capture_start(LOG_LEVEL_WARNING);
	up("a");
	up("b");
	plug(CAM);
	settle();
	ck_assert_uint_eq(log_captured_count_text(claimed), 1);
	ck_assert_ptr_nonnull(log_captured_find("usb 3-10.2 046d:0825: claimed by VMs a, b"));
	/* the same device again (a "change" event), other devices, passes */
	plug(CAM);
	plug("3-10.3 dev=7 vid=1234 pid=0001");
	unplug("3-10.3 dev=7 vid=1234 pid=0001");
	advance(10 * USEC_PER_SEC);
	settle();
	/* the VMs going and coming back */
	backend_null_set_up(vm("a"), false, "QEMU exited");
	backend_null_set_up(vm("b"), false, "QEMU exited");
	up("b");
	up("a");
	/* overrides */
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "a", RECONCILE_OVERRIDE_DETACH), 0);
	settle();
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, NULL, RECONCILE_OVERRIDE_NONE), 0);
	settle();
	ck_assert_uint_eq(log_captured_count_text(claimed), 1);
	/* replugged, reset (new device numbers), flapping */
	for (unsigned dev = 6; dev < 40; dev++) {
		char *d = xasprintf("3-10.2 dev=%u vid=046d pid=0825", dev);

		unplug(d);
		plug(d);
		settle();
		advance(50 * USEC_PER_MSEC);
		free(d);
	}
	advance(5 * USEC_PER_SEC);
	settle();
	assert_items("a", "vmplug-usb-3-39");
	assert_items("b", "");
	ck_assert_uint_eq(log_captured_count_text(claimed), 1);
	/* a reload judges every device again: said once more */
	next = fixture_conf(NULL, "b", PC, "a",
			    "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nvendor = 046d\n", NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	settle();
	plug("3-10.2 dev=39 vid=046d pid=0825");
	settle();
	ck_assert_uint_eq(log_captured_count_text(claimed), 2);
	log_capture_stop();
	usb_device_free(cam);
	stop();
}
END_TEST

START_TEST(hubs_are_never_attached)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug("3-10 dev=3 vid=05e3 pid=0608 class=09");
	plug("3-10.4 dev=4 vid=05e3 pid=0608 class=09");
	plug("3-10.4.1 dev=8 vid=046d pid=c077");
	settle();
	assert_items("pc", "vmplug-usb-3-8");
	stop();
}
END_TEST

START_TEST(removed_behind_our_back_is_attached_again)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	backend_null_remove_item(vm("pc"), "vmplug-usb-3-5");
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	stop();
}
END_TEST

START_TEST(reload_detaches_unclaimed_and_attaches_claimed)
{
	struct conf *next;

	start(fixture_conf(NULL, "pc", PC, "old",
			   "[vm]\nqmp-socket = /run/old.qmp\n[usb]\nport = 1-1\n", NULL));
	up("pc");
	up("old");
	plug(CAM);
	plug("2-1 dev=3 vid=1234 pid=0001");
	plug("1-1 dev=2 vid=abcd pid=0001");
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	assert_items("old", "vmplug-usb-1-2");

	/* pc now claims 2-1 instead of 3-10; "old" is gone; "new" appears */
	next = fixture_conf(NULL, "pc", "[vm]\nqmp-socket = /run/pc.qmp\n[usb]\nport = 2-1\n",
			    "new", "[vm]\nqmp-socket = /run/new.qmp\n[usb]\nport = 3-10\n", NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	ck_assert_ptr_nonnull(backend_null_find("new"));
	/* old is retiring: it detaches its device before it goes */
	ck_assert_uint_eq(backend_null_pending(backend_null_find("old")), 1);
	backend_null_complete_all(backend_null_find("old"));
	settle();
	reconcile_tick(rc); /* retired VMs are freed from the timer */
	ck_assert_ptr_null(backend_null_find("old"));
	assert_items("pc", "vmplug-usb-2-3");
	up("new");
	assert_items("new", "vmplug-usb-3-5");
	stop();
}
END_TEST

/* A VM whose backend cannot be created: the log and the status say why,
 * the other VMs carry on, and a reload tries again. */
START_TEST(a_backend_that_cannot_be_created_is_reported_and_retried_on_reload)
{
	enum reconcile_vm_state st;
	const char *err;

	log_capture_start(LOG_LEVEL_INFO);
	refuse_create = "pc";
	start(fixture_conf(NULL, "pc", PC, "tv",
			   "[vm]\nqmp-socket = /run/tv.qmp\n[usb]\nport = 1-1\n", NULL));
	ck_assert_ptr_nonnull(
	    log_captured_find("vm pc: cannot start the qmp backend: Too many open files"));
	ck_assert_ptr_null(backend_null_find("pc"));
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(reconcile_vm_state_name(st), "down");
	ck_assert_str_eq(err, "Too many open files");
	/* the other VM works, and a device for pc waits */
	up("tv");
	plug(CAM);
	plug("1-1 dev=2 vid=abcd pid=0001");
	settle();
	assert_items("tv", "vmplug-usb-1-2");
	assert_status("pc", "");
	/* a reload with the same configuration tries again */
	refuse_create = NULL;
	reconcile_set_conf(rc, conf);
	up("pc");
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(reconcile_vm_state_name(st), "running");
	log_capture_stop();
	stop();
}
END_TEST

/* A reload that changes a connected VM's QMP socket: the old connection
 * is dropped with what it knew, the new socket is used, and the devices
 * the VM claims are attached there. */
START_TEST(a_reload_that_moves_the_socket_reconnects_and_the_devices_follow)
{
	struct conf *next;
	enum reconcile_vm_state st;
	const char *err;

	start(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert_str_eq(created_for, "/run/pc.qmp");
	log_capture_start(LOG_LEVEL_INFO);
	next = fixture_conf(NULL, "pc", "[vm]\nqmp-socket = /run/pc2.qmp\n[usb]\nport = 3-10\n",
			    NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	ck_assert_ptr_nonnull(log_captured_find("vm pc: how to reach it changed; reconnecting"));
	ck_assert_str_eq(created_for, "/run/pc2.qmp");
	/* the VM's only backend is the new one (the old one had the device),
	 * and until it is up the VM is down with nothing known */
	assert_items("pc", "");
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(reconcile_vm_state_name(st), "down");
	assert_status("pc", "");
	up("pc");
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	ck_assert_str_eq(events[strv_len(events) - 1], "attached pc vmplug-usb-3-5");
	log_capture_stop();
	stop();
}
END_TEST

START_TEST(device_moving_between_vms_waits_for_the_detach)
{
	struct conf *next;
	const char *id;

	start(fixture_conf(NULL, "a", PC, "b", "[vm]\nqmp-socket = /run/b.qmp\n", NULL));
	up("a");
	up("b");
	plug(CAM);
	settle();
	next = fixture_conf(
	    NULL, "a", "[vm]\nqmp-socket = /run/pc.qmp\n", "b",
	    "[vm]\nqmp-socket = /run/b.qmp\n[usb]\nport = 3-10\nattach-mode = port\n", NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	ck_assert_int_eq(backend_null_pending_op(vm("a"), 0, &id), BACKEND_NULL_USB_DETACH);
	/* b does not grab the device while a still holds it */
	ck_assert_uint_eq(backend_null_pending(vm("b")), 0);
	backend_null_complete(vm("a"), 0, NULL);
	ck_assert_int_eq(backend_null_pending_op(vm("b"), 0, &id), BACKEND_NULL_USB_ATTACH);
	ck_assert_str_eq(id, "vmplug-usbport-3-5");
	settle();
	assert_items("a", "");
	assert_items("b", "vmplug-usbport-3-5");
	stop();
}
END_TEST

/* The syspath of the device desc describes (the caller frees it). */
static char *syspath_of(const char *desc)
{
	struct usb_device *d = fixture_usb(desc);
	char *s = xstrdup(d->syspath);

	usb_device_free(d);
	return s;
}

static void count_device(void *data, const struct reconcile_device_info *info)
{
	(*(size_t *)data)++;
}

/* The device index keeps a device whose address another device still
 * had (a missed remove) and hands it the address when that one goes. */
START_TEST(a_missed_remove_hands_the_address_on)
{
	start(fixture_conf(NULL, "pc", PC "attach-mode = port\n", NULL));
	up("pc");
	plug(CAM);
	settle();
	/* the number comes round on another port before the old remove came */
	plug("3-10.3 dev=5 vid=1234 pid=5678");
	settle();
	char *other = syspath_of("3-10.3 dev=5 vid=1234 pid=5678");
	size_t n = 0;

	unplug(CAM);
	settle();
	ck_assert_ptr_nonnull(reconcile_find_device(rc, other));
	free(other);
	assert_items("pc", "vmplug-usbport-3-5");
	ck_assert_str_eq(backend_null_items(vm("pc"))->items[0].port, "10.3");
	unplug("3-10.3 dev=5 vid=1234 pid=5678");
	settle();
	assert_items("pc", "");
	ck_assert_uint_eq(reconcile_devices(rc, count_device, &n), 0);
	stop();
}
END_TEST

/* A device's owner, and so the VM whose pass attaches it, follows
 * reloads that drop its VM and bring it back, and manual overrides. */
START_TEST(devices_follow_their_owner_across_reloads_and_overrides)
{
	const char *a = "[vm]\nqmp-socket = /run/a.qmp\n[usb]\nport = 3-10\n";
	const char *b = "[vm]\nqmp-socket = /run/b.qmp\n";
	struct conf *next;

	start(fixture_conf(NULL, "a", a, "b", b, NULL));
	up("b");
	plug(CAM);
	plug("3-10.3 dev=6 vid=1234 pid=5678");
	/* a is down: dropped at once with the devices it owned */
	next = fixture_conf(NULL, "b", b, NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	ck_assert(!reconcile_vm_info(rc, "a", NULL, NULL));
	/* back, and now b's */
	next = fixture_conf(NULL, "a", "[vm]\nqmp-socket = /run/a.qmp\n", "b",
			    "[vm]\nqmp-socket = /run/b.qmp\n[usb]\nport = 3-10\n", NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	settle();
	assert_items("b", "vmplug-usb-3-5 vmplug-usb-3-6");
	/* one goes to a by hand: b lets it go first */
	char *cam = syspath_of(CAM);

	up("a");
	ck_assert_int_eq(reconcile_override(rc, cam, "a", RECONCILE_OVERRIDE_ATTACH), 0);
	free(cam);
	settle();
	assert_items("a", "vmplug-usb-3-5");
	assert_items("b", "vmplug-usb-3-6");
	/* and goes when it leaves */
	unplug(CAM);
	settle();
	assert_items("a", "");
	assert_items("b", "vmplug-usb-3-6");
	stop();
}
END_TEST

START_TEST(list_failure_is_retried)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	plug(CAM);
	backend_null_set_up(vm("pc"), true, NULL);
	backend_null_complete(vm("pc"), -ETIMEDOUT, NULL);
	ck_assert_uint_eq(scheduled, vnow + RECONCILE_LIST_RETRY_USEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 0);
	advance(RECONCILE_LIST_RETRY_USEC);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_LIST), 2);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	stop();
}
END_TEST

static void collect(void *data, const struct reconcile_item_info *info)
{
	char ***out = data;
	char *line = xasprintf("%s %s %s", info->id, reconcile_item_state_name(info->state),
			       info->dev ? info->dev->sysname : "-");

	strv_append(out, line);
	free(line);
}

START_TEST(status_queries)
{
	enum reconcile_vm_state st;
	const char *err;
	char **lines = NULL;
	size_t n_up, n_usb;

	start(fixture_conf(NULL, "pc", PC, "tv", "[vm]\nqmp-socket = /run/tv.qmp\n", NULL));
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(reconcile_vm_state_name(st), "down");
	reconcile_counts(rc, &n_up, &n_usb);
	ck_assert_uint_eq(n_up, 0);
	ck_assert_uint_eq(n_usb, 0);
	ck_assert(!reconcile_vm_info(rc, "nope", &st, &err));
	up("pc");
	plug(CAM);
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(reconcile_vm_state_name(st), "running");
	ck_assert_uint_eq(reconcile_vm_items(rc, "pc", collect, &lines), 1);
	ck_assert_str_eq(lines[0], "vmplug-usb-3-5 attaching 3-10.2");
	strv_free(lines);
	lines = NULL;
	settle();
	reconcile_vm_items(rc, "pc", collect, &lines);
	ck_assert_str_eq(lines[0], "vmplug-usb-3-5 attached 3-10.2");
	strv_free(lines);
	reconcile_counts(rc, &n_up, &n_usb);
	ck_assert_uint_eq(n_up, 1);
	ck_assert_uint_eq(n_usb, 1);
	backend_null_set_up(vm("pc"), false, "QEMU exited");
	ck_assert(reconcile_vm_info(rc, "pc", &st, &err));
	ck_assert_str_eq(err, "QEMU exited");
	stop();
}
END_TEST

START_TEST(manual_overrides_last_until_the_device_leaves_or_a_reload)
{
	struct usb_device *cam = fixture_usb(CAM);
	struct conf *next;

	start(fixture_conf(NULL, "pc", PC, "other", "[vm]\nqmp-socket = /run/o.qmp\n", NULL));
	up("pc");
	up("other");
	plug(CAM);
	plug("3-10 dev=3 vid=05e3 pid=0608 class=09");
	settle();
	/* detach from pc, although its rule claims the device */
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "pc", RECONCILE_OVERRIDE_DETACH), 0);
	settle();
	assert_items("pc", "");
	/* give it to a VM with no rule for it */
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "other", RECONCILE_OVERRIDE_ATTACH),
			 0);
	settle();
	assert_items("other", "vmplug-usb-3-5");
	assert_items("pc", "");
	/* errors: unknown device, unknown VM, a hub */
	ck_assert_int_eq(reconcile_override(rc, "/sys/nope", "pc", RECONCILE_OVERRIDE_ATTACH),
			 -ENOENT);
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "nope", RECONCILE_OVERRIDE_ATTACH),
			 -ESRCH);
	ck_assert_int_eq(reconcile_override(rc, "/sys/devices/pci0000:00/0000:00:14.0/usb3/3-10",
					    "pc", RECONCILE_OVERRIDE_ATTACH),
			 -EINVAL);
	/* a reload ends the override: the rules decide again */
	next = fixture_conf(NULL, "pc", PC, "other", "[vm]\nqmp-socket = /run/o.qmp\n", NULL);
	reconcile_set_conf(rc, next);
	conf_free(conf);
	conf = next;
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	assert_items("other", "");
	/* and so does the device leaving */
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "pc", RECONCILE_OVERRIDE_DETACH), 0);
	settle();
	unplug(CAM);
	plug("3-10.2 dev=6 vid=046d pid=0825");
	settle();
	assert_items("pc", "vmplug-usb-3-6");
	usb_device_free(cam);
	stop();
}
END_TEST

START_TEST(no_request_attaches_against_a_deny_rule)
{
	struct usb_device *cam = fixture_usb(CAM);

	start(fixture_conf(NULL, "pc", PC, "vault",
			   "[vm]\nqmp-socket = /run/v.qmp\n[usb-deny \"cam\"]\nvendor = 046d\n",
			   NULL));
	up("pc");
	up("vault");
	plug(CAM);
	settle();
	assert_items("pc", "vmplug-usb-3-5");
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "vault", RECONCILE_OVERRIDE_ATTACH),
			 -EPERM);
	settle();
	assert_items("vault", "");
	/* refused, it changed nothing: pc keeps the device its rule claims */
	assert_items("pc", "vmplug-usb-3-5");
	/* keeping it from the denying VM is no override of the rule */
	ck_assert_int_eq(reconcile_override(rc, cam->syspath, "vault", RECONCILE_OVERRIDE_DETACH),
			 0);
	usb_device_free(cam);
	stop();
}
END_TEST

START_TEST(a_device_number_come_round_on_another_port_is_attached_anew)
{
	const struct backend_list *l;

	start(fixture_conf(NULL, "pc", PC "attach-mode = port\n", NULL));
	up("pc");
	plug(CAM);
	/* pulled out while device_add is in flight, and the bus hands the
	 * same number to a device on another of the VM's ports (a storm of
	 * plugs goes round all 127 numbers within seconds) */
	unplug(CAM);
	plug("3-10.3 dev=5 vid=1234 pid=5678");
	settle();
	assert_items("pc", "vmplug-usbport-3-5");
	l = backend_null_items(vm("pc"));
	ck_assert_str_eq(l->items[0].port, "10.3");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_DETACH), 1);
	stop();
}
END_TEST

#define VM_ON(port) "[vm]\nqmp-socket = /run/" port ".qmp\n[usb \"p\"]\nport = " port "\n"

/* Passes run for a device's event and completions, at most `most` per step. */
static void assert_passes_per_step(size_t most)
{
	size_t before = reconcile_vm_passes(rc);

	plug("3-4.1 dev=9 vid=1234 pid=5678");
	ck_assert_uint_le(reconcile_vm_passes(rc) - before, most);
	before = reconcile_vm_passes(rc);
	backend_null_complete(vm("d"), 0, NULL);
	ck_assert_uint_le(reconcile_vm_passes(rc) - before, most);
	before = reconcile_vm_passes(rc);
	unplug("3-4.1 dev=9 vid=1234 pid=5678");
	ck_assert_uint_le(reconcile_vm_passes(rc) - before, most);
	before = reconcile_vm_passes(rc);
	backend_null_complete(vm("d"), 0, NULL);
	ck_assert_uint_le(reconcile_vm_passes(rc) - before, most);
}

START_TEST(a_device_event_passes_only_the_vms_it_concerns)
{
	/* Each pass of a VM looks at every device: with V VMs and D devices,
	 * passing every VM on every uevent made a storm cost V x D per event. */
	start(fixture_conf(NULL, "a", VM_ON("3-1"), "b", VM_ON("3-2"), "c", VM_ON("3-3"), "d",
			   VM_ON("3-4"), "e", VM_ON("3-5"), "f", VM_ON("3-6"), "g", VM_ON("3-7"),
			   "h", VM_ON("3-8"), NULL));
	for (const char *n = "abcdefgh"; *n; n++) {
		char name[2] = { *n, 0 };

		up(name);
	}
	plug("3-1.1 dev=2 vid=1234 pid=5678");
	plug("3-8.1 dev=3 vid=1234 pid=5678");
	settle();
	assert_passes_per_step(1);
	assert_items("d", "");
	ck_assert_uint_eq(count("d", BACKEND_NULL_USB_ATTACH), 1);
	ck_assert_uint_eq(count("d", BACKEND_NULL_USB_DETACH), 1);
	assert_items("a", "vmplug-usb-3-2");
	assert_items("h", "vmplug-usb-3-3");
	stop();
}
END_TEST

START_TEST(input_objects_follow_the_sinks)
{
	start(fixture_conf(NULL, "pc", PC, NULL));
	strv_append(&sinks, "pc vmplug-in-kbd /dev/input/by-id/vmplug-pc-kbd");
	strv_append(&sinks, "pc vmplug-in-mouse /dev/input/by-id/vmplug-pc-mouse");
	up("pc");
	assert_items("pc", "vmplug-in-kbd vmplug-in-mouse");
	ck_assert(logged("input-attached pc vmplug-in-kbd"));
	ck_assert_str_eq(backend_null_items(vm("pc"))->items[0].evdev,
			 "/dev/input/by-id/vmplug-pc-kbd");
	/* QEMU restarted: added again */
	backend_null_set_up(vm("pc"), false, "QEMU exited");
	up("pc");
	assert_items("pc", "vmplug-in-kbd vmplug-in-mouse");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_ATTACH), 4);
	/* a sink that changed (a new node) is replaced in QEMU */
	reconcile_inputs_changed(rc, "pc");
	settle();
	assert_items("pc", "vmplug-in-kbd vmplug-in-mouse");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_DETACH), 2);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_ATTACH), 6);
	/* a sink that went away (reload): its object goes too */
	strv_free(sinks);
	sinks = NULL;
	strv_append(&sinks, "pc vmplug-in-kbd /dev/input/by-id/vmplug-pc-kbd");
	reconcile_set_conf(rc, conf);
	settle();
	assert_items("pc", "vmplug-in-kbd");
	stop();
}
END_TEST

START_TEST(inherited_input_objects_are_replaced_unless_their_node_survived)
{
	struct backend_item stale = { .kind = BACKEND_ITEM_INPUT,
				      .id = (char *)"vmplug-in-kbd",
				      .evdev = (char *)"/dev/input/by-id/vmplug-pc-kbd",
				      .bus = -1,
				      .addr = -1 };
	struct backend_item kept = stale;

	/* a new vmplugd made a new node: QEMU's object holds the dead one */
	start(fixture_conf(NULL, "pc", PC, NULL));
	strv_append(&sinks, "pc vmplug-in-kbd /dev/input/by-id/vmplug-pc-kbd");
	backend_null_add_item(vm("pc"), &stale);
	up("pc");
	assert_items("pc", "vmplug-in-kbd");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_DETACH), 1);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_ATTACH), 1);
	stop();

	/* the node came back from the fd store: the object still works */
	start(fixture_conf(NULL, "pc", PC, NULL));
	strv_append(&sinks, "pc vmplug-in-kbd /dev/input/by-id/vmplug-pc-kbd kept");
	backend_null_add_item(vm("pc"), &kept);
	up("pc");
	assert_items("pc", "vmplug-in-kbd");
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_DETACH), 0);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_INPUT_ATTACH), 0);
	stop();
}
END_TEST

/* ------------------------------------------------------------- debounce */

#define MSEC USEC_PER_MSEC

/* "3-10.2 dev=N ..." for the flapping device. */
static void plug_dev(unsigned dev)
{
	char desc[64];

	snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev);
	plug(desc);
}

static void unplug_cam(void)
{
	unplug(CAM);
}

/* The operations every backend was asked for so far. */
static unsigned ops(const char *name)
{
	return count(name, BACKEND_NULL_USB_ATTACH) + count(name, BACKEND_NULL_USB_DETACH);
}

START_TEST(debounce_plug_and_one_replug_act_at_once)
{
	start_debounced(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug(CAM);
	/* no settle delay for a device that is simply plugged in */
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 1);
	ck_assert_uint_eq(scheduled, 0);
	settle();
	/* nor for one replug (a device reset, a quick replug by hand) */
	unplug_cam();
	plug_dev(6);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	settle();
	assert_items("pc", "vmplug-usb-3-6");
	/* a second replug right away is flapping */
	unplug("3-10.2 dev=6 vid=046d pid=0825");
	plug_dev(7);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	advance(RECONCILE_SETTLE_USEC);
	settle();
	assert_items("pc", "vmplug-usb-3-7");
	/* after a quiet window the count starts again */
	advance(RECONCILE_FLAP_WINDOW_USEC + 1);
	unplug("3-10.2 dev=7 vid=046d pid=0825");
	plug_dev(8);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 4);
	settle();
	assert_items("pc", "vmplug-usb-3-8");
	stop();
}
END_TEST

START_TEST(debounce_flapping_port_waits_until_quiet)
{
	uint64_t t0;

	start_debounced(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug_dev(2); /* change 1 */
	settle();
	unplug("3-10.2 dev=2 vid=046d pid=0825");
	plug_dev(3); /* change 3: still at once */
	settle();
	unplug("3-10.2 dev=3 vid=046d pid=0825");
	settle();
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	/* change 5: held back for the base settle delay */
	t0 = vnow;
	plug_dev(4);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	ck_assert_uint_eq(scheduled, t0 + RECONCILE_SETTLE_USEC);
	advance(RECONCILE_SETTLE_USEC - 1);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 2);
	advance(1);
	ck_assert_uint_eq(count("pc", BACKEND_NULL_USB_ATTACH), 3);
	settle();
	assert_items("pc", "vmplug-usb-3-4");
	/* every further replug of the burst doubles the delay, up to the cap */
	for (unsigned i = 0, dev = 5; i < 6; i++, dev++) {
		uint64_t want = RECONCILE_SETTLE_USEC << (i + 1);
		char desc[64];

		if (want > RECONCILE_SETTLE_MAX_USEC)
			want = RECONCILE_SETTLE_MAX_USEC;
		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev - 1);
		unplug(desc);
		settle();
		plug_dev(dev);
		ck_assert_uint_eq(scheduled, vnow + want);
		advance(want);
		settle();
		snprintf(desc, sizeof(desc), "vmplug-usb-3-%u", dev);
		assert_items("pc", desc);
	}
	stop();
}
END_TEST

START_TEST(debounce_coalesces_pairs_while_settling)
{
	start_debounced(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	for (unsigned dev = 2; dev < 4; dev++) {
		plug_dev(dev);
		settle();
		unplug(dev == 2 ? "3-10.2 dev=2 vid=046d pid=0825"
				: "3-10.2 dev=3 vid=046d pid=0825");
		settle();
	}
	ck_assert_uint_eq(ops("pc"), 4);
	/* from here on, an add and its remove inside the settle delay cost
	 * nothing at all */
	for (unsigned dev = 4; dev < 100; dev++) {
		char desc[64];

		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev);
		plug(desc);
		advance(10 * MSEC);
		unplug(desc);
		advance(10 * MSEC);
	}
	ck_assert_uint_eq(ops("pc"), 4);
	assert_items("pc", "");
	stop();
}
END_TEST

/* 10 000 replugs of one port (a KVM switch or a USB reset loop), a new
 * device number each time, every 0 to 3 ms, the backend answering as
 * fast as it can or not at all for a while: the VM is asked for a
 * handful of operations, and ends with the last device. */
START_TEST(debounce_storm_of_10000_replugs_is_bounded)
{
	uint64_t t0 = 0, spent;
	unsigned dev = 2, seed = 12345;
	char desc[64], want[32];

	start_debounced(fixture_conf(NULL, "pc", PC, "other",
				     "[vm]\nqmp-socket = /run/o.qmp\n[usb]\nport = 1-1\n", NULL));
	up("pc");
	up("other");
	t0 = now_usec();
	for (unsigned i = 0; i < 10000; i++) {
		seed = seed * 1103515245 + 12345;
		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev);
		unplug(desc);
		dev = dev % 126 + 2;
		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev);
		plug(desc);
		/* interfaces and change events of the same device */
		plug(desc);
		advance((seed >> 16) % 3 * MSEC);
		/* QEMU answers at once for the first half, then hangs */
		if (i < 5000)
			settle();
		if (i == 7000) {
			/* meanwhile, another VM's device is attached at once */
			plug("1-1 dev=9 vid=abcd pid=0001");
			ck_assert_uint_eq(count("other", BACKEND_NULL_USB_ATTACH), 1);
		}
	}
	spent = now_usec() - t0;
	settle();
	ck_assert_uint_le(ops("pc"), 4);
	advance(RECONCILE_SETTLE_MAX_USEC);
	settle();
	snprintf(want, sizeof(want), "vmplug-usb-3-%u", dev);
	assert_items("pc", want);
	assert_items("other", "vmplug-usb-1-9");
	ck_assert_uint_le(ops("pc"), 5);
	printf("# storm: 10000 replugs: %u attach(es), %u detach(es) for the flapping device; "
	       "%.1f us of CPU per replug in the reconciler\n",
	       count("pc", BACKEND_NULL_USB_ATTACH), count("pc", BACKEND_NULL_USB_DETACH),
	       (double)spent / 10000);
	fflush(stdout);
	stop();
}
END_TEST

/* A device that resets every 1.5 s for a minute: it is attached a few
 * times while the delay grows, then left alone until it calms down. */
START_TEST(debounce_slow_flapper_is_left_alone_until_it_calms_down)
{
	unsigned dev = 2;
	char desc[64];

	start_debounced(fixture_conf(NULL, "pc", PC, NULL));
	up("pc");
	plug_dev(dev);
	settle();
	for (unsigned i = 0; i < 40; i++) {
		advance(1500 * MSEC);
		settle();
		snprintf(desc, sizeof(desc), "3-10.2 dev=%u vid=046d pid=0825", dev);
		unplug(desc);
		settle();
		dev++;
		plug_dev(dev);
		settle();
	}
	ck_assert_uint_le(count("pc", BACKEND_NULL_USB_ATTACH), 6);
	advance(RECONCILE_SETTLE_MAX_USEC);
	settle();
	snprintf(desc, sizeof(desc), "vmplug-usb-3-%u", dev);
	assert_items("pc", desc);
	stop();
}
END_TEST

/* With debounce, a QEMU restart or a vmplugd restart is no flapping. */
START_TEST(debounce_leaves_restarts_alone)
{
	start_debounced(fixture_conf(NULL, "pc", PC, NULL));
	plug(CAM);
	up("pc");
	assert_items("pc", "vmplug-usb-3-5");
	for (int i = 0; i < 10; i++) {
		backend_null_set_up(vm("pc"), false, "QEMU exited");
		up("pc");
		assert_items("pc", "vmplug-usb-3-5");
	}
	ck_assert_uint_eq(scheduled, 0);
	stop();
}
END_TEST

static Suite *reconcile_suite(void)
{
	Suite *s = suite_create("reconcile");
	TCase *tc = tcase_create("scenarios");

	tcase_add_test(tc, usb_ids_name_the_device_and_the_mode);
	tcase_add_test(tc, coldplug_then_vm_up);
	tcase_add_test(tc, plug_and_unplug);
	tcase_add_test(tc, replug_with_new_device_number);
	tcase_add_test(tc, a_device_number_come_round_on_another_port_is_attached_anew);
	tcase_add_test(tc, a_device_event_passes_only_the_vms_it_concerns);
	tcase_add_test(tc, one_event_never_attaches_twice);
	tcase_add_test(tc, an_id_is_reused_only_after_its_detach_completed);
	tcase_add_test(tc, reset_storm_converges);
	tcase_add_test(tc, qemu_restart_reattaches);
	tcase_add_test(tc, vm_gone_during_attach);
	tcase_add_test(tc, daemon_restart_learns_from_the_vm);
	tcase_add_test(tc, attach_failures_are_retried_then_reported);
	tcase_add_test(tc, other_refusals_wait_a_second);
	tcase_add_test(tc, a_device_qemu_does_not_see_yet_is_retried_quietly);
	tcase_add_test(tc, a_device_qemu_sees_on_the_quick_retry_is_attached_without_a_word);
	tcase_add_test(tc, detach_failures_are_retried_then_left);
	tcase_add_test(tc, a_lying_vm_cannot_keep_a_device_from_its_owner);
	tcase_add_test(tc, a_detach_refused_at_once_is_reported_and_tried_again);
	tcase_add_test(tc, conflicting_claims_go_to_the_first_vm);
	tcase_add_test(tc, conflict_logged_once);
	tcase_add_test(tc, hubs_are_never_attached);
	tcase_add_test(tc, removed_behind_our_back_is_attached_again);
	tcase_add_test(tc, reload_detaches_unclaimed_and_attaches_claimed);
	tcase_add_test(tc, device_moving_between_vms_waits_for_the_detach);
	tcase_add_test(tc, a_missed_remove_hands_the_address_on);
	tcase_add_test(tc, devices_follow_their_owner_across_reloads_and_overrides);
	tcase_add_test(tc, list_failure_is_retried);
	tcase_add_test(tc, a_backend_that_cannot_be_created_is_reported_and_retried_on_reload);
	tcase_add_test(tc, a_reload_that_moves_the_socket_reconnects_and_the_devices_follow);
	tcase_add_test(tc, status_queries);
	tcase_add_test(tc, manual_overrides_last_until_the_device_leaves_or_a_reload);
	tcase_add_test(tc, no_request_attaches_against_a_deny_rule);
	tcase_add_test(tc, input_objects_follow_the_sinks);
	tcase_add_test(tc, inherited_input_objects_are_replaced_unless_their_node_survived);
	suite_add_tcase(s, tc);
	tc = tcase_create("debounce");
	tcase_add_test(tc, debounce_plug_and_one_replug_act_at_once);
	tcase_add_test(tc, debounce_flapping_port_waits_until_quiet);
	tcase_add_test(tc, debounce_coalesces_pairs_while_settling);
	tcase_add_test(tc, debounce_storm_of_10000_replugs_is_bounded);
	tcase_add_test(tc, debounce_slow_flapper_is_left_alone_until_it_calms_down);
	tcase_add_test(tc, debounce_leaves_restarts_alone);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(reconcile_suite)

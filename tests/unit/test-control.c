/* Unit tests for control/ on its own: a real socket and a real client,
 * and a daemon that is nothing but the struct control_ops below. What a
 * command answers comes from the ops, what it asks for goes to them, and
 * requests waiting for the reconciler or identify are answered by what
 * the daemon pushes. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/control.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/util.h"

/* ------------------------------------------------------------ the daemon */

struct fake {
	struct conf *conf;
	struct control_status status;
	struct control_vm vm;     /* every VM's */
	struct control_item item; /* the one item, when has_item */
	bool has_item;
	struct usb_device *devs[2]; /* present */
	char *override_vm;          /* the last override's */
	bool override_attach;
	int override_r;
	int reloads;
	char *switched_to;
};

static const struct conf *f_conf(void *data)
{
	return ((struct fake *)data)->conf;
}

static void f_status(void *data, struct control_status *out)
{
	*out = ((struct fake *)data)->status;
}

static void f_vm(void *data, const char *vm, struct control_vm *out)
{
	*out = ((struct fake *)data)->vm;
}

static void f_vm_items(void *data, const char *vm, control_item_fn fn, void *ctx)
{
	struct fake *f = data;

	if (f->has_item)
		fn(ctx, &f->item);
}

static void f_devices(void *data, control_device_fn fn, void *ctx)
{
	struct fake *f = data;

	for (size_t i = 0; i < ARRAY_SIZE(f->devs); i++)
		if (f->devs[i])
			fn(ctx, &(struct control_device){ .dev = f->devs[i] });
}

static char *f_usb_id(void *data, const struct usb_device *dev)
{
	return xasprintf("id-%u-%u", dev->bus, dev->devnum);
}

static int f_override(void *data, const struct usb_device *dev, const char *vm, bool attach)
{
	struct fake *f = data;

	free(f->override_vm);
	f->override_vm = xstrdup(vm);
	f->override_attach = attach;
	return f->override_r;
}

static int f_reload(void *data, char ***errors)
{
	struct fake *f = data;

	f->reloads++;
	*errors = NULL;
	strv_append(errors, "vm.d/a.conf:3: unknown key 'bogus' in [vm]");
	return -EINVAL;
}

static int f_switch(void *data, const char *target, char **why)
{
	struct fake *f = data;

	if (streq(target, "nowhere")) {
		*why = xstrdup("no VM named 'nowhere'");
		return -ENOENT;
	}
	free(f->switched_to);
	f->switched_to = xstrdup(target);
	f->status.focus = f->switched_to;
	return 0;
}

static const struct control_ops fake_ops = {
	.conf = f_conf,
	.status = f_status,
	.vm = f_vm,
	.vm_items = f_vm_items,
	.devices = f_devices,
	.usb_id = f_usb_id,
	.override = f_override,
	.reload = f_reload,
	.focus_switch = f_switch,
};

/* ------------------------------------------------------------ the bench */

struct bench {
	struct loop *loop;
	struct control *c;
	char *dir;
	char *path;
	struct fake f;
};

struct client {
	struct bench *b;
	int fd;
	char buf[65536];
	size_t len;
};

static void bench_init(struct bench *b)
{
	memset(b, 0, sizeof(*b));
	b->loop = loop_new();
	ck_assert_ptr_nonnull(b->loop);
	b->dir = scratch_new("control");
	b->path = xasprintf("%s/control.sock", b->dir);
	b->f.conf = fixture_conf(NULL, "pc", "[vm]\nqmp-socket = /run/pc.qmp\n", NULL);
	b->f.status = (struct control_status){
		.config_dir = "/etc/x", .udevd = true, .switching = true, .focus = "host"
	};
	b->f.vm = (struct control_vm){ .state = "running", .ready = true };
	b->f.devs[0] = fixture_usb("3-1 dev=7 vid=046d pid=0825 name=Webcam");
	b->f.devs[1] = fixture_usb("3-2 dev=8 vid=05e3 pid=0608 class=09 name=Hub");
	b->c = control_new(b->loop, b->path, NULL, &fake_ops, &b->f);
	ck_assert_ptr_nonnull(b->c);
}

static void bench_fini(struct bench *b)
{
	control_free(b->c);
	conf_free(b->f.conf);
	for (size_t i = 0; i < ARRAY_SIZE(b->f.devs); i++)
		usb_device_free(b->f.devs[i]);
	free(b->f.override_vm);
	free(b->f.switched_to);
	loop_free(b->loop);
	free(b->path);
	scratch_remove(b->dir);
}

static bool has_line(void *arg)
{
	struct client *cl = arg;
	ssize_t n;

	if (memchr(cl->buf, '\n', cl->len))
		return true;
	n = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len, MSG_DONTWAIT);
	if (n > 0)
		cl->len += (size_t)n;
	return memchr(cl->buf, '\n', cl->len) != NULL;
}

/* The next line from vmplugd, parsed; NULL if none came. */
static json_t *next(struct client *cl, unsigned ms)
{
	char *nl;
	json_t *obj;

	if (!run_until(cl->b->loop, has_line, cl, ms))
		return NULL;
	nl = memchr(cl->buf, '\n', cl->len);
	obj = json_loadb(cl->buf, (size_t)(nl - cl->buf), 0, NULL);
	ck_assert_ptr_nonnull(obj);
	cl->len -= (size_t)(nl + 1 - cl->buf);
	memmove(cl->buf, nl + 1, cl->len);
	return obj;
}

/* Connect and read the greeting. */
static void client_open(struct client *cl, struct bench *b)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	json_t *greeting;

	cl->b = b;
	cl->len = 0;
	strcpy(addr.sun_path, b->path);
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(cl->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	greeting = next(cl, 2000);
	ck_assert_ptr_nonnull(greeting);
	ck_assert_str_eq(
	    json_string_value(json_object_get(json_object_get(greeting, "vmplug"), "version")),
	    PACKAGE_VERSION);
	json_decref(greeting);
}

static void send_line(struct client *cl, const char *line)
{
	ck_assert_int_eq(write_all(cl->fd, line, strlen(line)), 0);
	ck_assert_int_eq(write_all(cl->fd, "\n", 1), 0);
}

/* Send a request and wait for its answer. */
static json_t *call(struct client *cl, const char *line)
{
	json_t *r;

	send_line(cl, line);
	r = next(cl, 2000);
	ck_assert_msg(r != NULL, "no answer to %s", line);
	return r;
}

/* A string at a path of keys in obj ("return", "vms", ...), NULL ends. */
static const char *str_at(json_t *obj, ...) __attribute__((sentinel));
static const char *str_at(json_t *obj, ...)
{
	va_list ap;
	const char *key;

	va_start(ap, obj);
	while ((key = va_arg(ap, const char *)))
		obj = json_is_array(obj) ? json_array_get(obj, strtoul(key, NULL, 10))
					 : json_object_get(obj, key);
	va_end(ap);
	return json_string_value(obj);
}

/* ------------------------------------------------------------ the tests */

START_TEST(status_comes_from_the_ops)
{
	struct bench b;
	struct client cl;
	json_t *r;

	bench_init(&b);
	b.f.item = (struct control_item){ .id = "vmplug-usb-3-7",
					  .state = "attaching",
					  .busy = true,
					  .bus = 3,
					  .devnum = 7,
					  .dev = b.f.devs[0] };
	b.f.has_item = true;
	client_open(&cl, &b);
	r = call(&cl, "{\"execute\": \"query-status\", \"id\": 1}");
	ck_assert_str_eq(str_at(r, "return", "config-dir", NULL), "/etc/x");
	ck_assert_str_eq(str_at(r, "return", "udev", NULL), "udevd");
	ck_assert_str_eq(str_at(r, "return", "focus", NULL), "host");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "name", NULL), "pc");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "state", NULL), "running");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "usb", "0", "state", NULL), "attaching");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "usb", "0", "device", "port", NULL),
			 "3-1");
	ck_assert_int_eq(
	    json_integer_value(json_object_get(
		json_array_get(json_object_get(json_object_get(r, "return"), "vms"), 0),
		"pending")),
	    1);
	json_decref(r);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

START_TEST(attach_waits_for_the_reconciler)
{
	struct bench b;
	struct client cl, mon;
	json_t *r;

	bench_init(&b);
	client_open(&cl, &b);
	client_open(&mon, &b);
	r = call(&mon, "{\"execute\": \"subscribe\"}");
	json_decref(r);
	send_line(&cl, "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
		       "\"046d:0825\"}, \"id\": 9}");
	ck_assert_ptr_null(next(&cl, 200)); /* not before the reconciler says so */
	ck_assert_str_eq(b.f.override_vm, "pc");
	ck_assert(b.f.override_attach);
	/* another device's attach answers nothing */
	control_reconciled(b.c, &(struct control_event){
				    .change = CONTROL_USB_ATTACHED, .vm = "pc", .id = "id-3-99" });
	ck_assert_ptr_null(next(&cl, 100));
	control_reconciled(b.c, &(struct control_event){ .change = CONTROL_USB_ATTACHED,
							 .vm = "pc",
							 .id = "id-3-7",
							 .dev = b.f.devs[0] });
	r = next(&cl, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(str_at(r, "return", "state", NULL), "attached");
	ck_assert_str_eq(str_at(r, "return", "id", NULL), "id-3-7");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 9);
	json_decref(r);
	/* both changes reached the subscriber, in order */
	r = next(&mon, 2000);
	ck_assert_str_eq(str_at(r, "event", NULL), CONTROL_EVENT_USB_ATTACHED);
	ck_assert_str_eq(str_at(r, "data", "id", NULL), "id-3-99");
	json_decref(r);
	r = next(&mon, 2000);
	ck_assert_str_eq(str_at(r, "data", "device", "port", NULL), "3-1");
	json_decref(r);
	close(cl.fd);
	close(mon.fd);
	bench_fini(&b);
}
END_TEST

START_TEST(attach_answers_at_once_when_it_can)
{
	struct bench b;
	struct client cl;
	json_t *r;

	bench_init(&b);
	client_open(&cl, &b);
	b.f.vm.ready = false;
	r = call(&cl, "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
		      "\"3-1\"}}");
	ck_assert_str_eq(str_at(r, "return", "state", NULL), "waiting for the VM");
	json_decref(r);
	b.f.override_r = -EINVAL;
	r = call(&cl, "{\"execute\": \"detach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
		      "\"3-2\"}}");
	ck_assert_str_eq(str_at(r, "error", "desc", NULL),
			 "3-2 is a hub: hubs are never attached; attach the devices behind it");
	ck_assert(!b.f.override_attach);
	json_decref(r);
	r = call(&cl, "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"nope\", \"device\": "
		      "\"3-1\"}}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "VMNotFound");
	json_decref(r);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

/* A client that goes away while it waits takes its waiters with it: the
 * answer that comes later goes nowhere (ASan and valgrind watch). */
START_TEST(a_client_that_goes_takes_its_waiters)
{
	struct bench b;
	struct client cl, other;
	json_t *r;

	bench_init(&b);
	client_open(&cl, &b);
	send_line(&cl, "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
		       "\"3-1\"}}");
	send_line(&cl, "{\"execute\": \"identify\"}");
	ck_assert_ptr_null(next(&cl, 200));
	close(cl.fd);
	run_for(b.loop, 100);
	control_reconciled(b.c, &(struct control_event){
				    .change = CONTROL_USB_ATTACHED, .vm = "pc", .id = "id-3-7" });
	control_identify_usb(b.c, b.f.devs[0]);
	client_open(&other, &b); /* the server goes on */
	r = call(&other, "{\"execute\": \"query-usb\"}");
	ck_assert_str_eq(str_at(r, "return", "devices", "1", "port", NULL), "3-2");
	json_decref(r);
	close(other.fd);
	bench_fini(&b);
}
END_TEST

START_TEST(identify_answers_the_next_device)
{
	struct bench b;
	struct client cl;
	struct usb_device *dev = fixture_usb("3-4 dev=9 vid=0781 pid=5581 serial=4C53 name=Ultra");
	json_t *r;

	bench_init(&b);
	client_open(&cl, &b);
	send_line(&cl, "{\"execute\": \"identify\", \"arguments\": {\"timeout\": 5}}");
	ck_assert_ptr_null(next(&cl, 100));
	control_identify_usb(b.c, dev);
	r = next(&cl, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(str_at(r, "return", "kind", NULL), "usb");
	ck_assert_msg(
	    strstr(str_at(r, "return", "suggestion", NULL), "[usb \"ultra\"]\nport = 3-4\n"), "%s",
	    str_at(r, "return", "suggestion", NULL));
	ck_assert(strstr(str_at(r, "return", "suggestion", NULL), "# serial = 4C53\n"));
	json_decref(r);
	usb_device_free(dev);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

START_TEST(reload_and_switch_go_to_the_ops)
{
	struct bench b;
	struct client cl;
	json_t *r;

	bench_init(&b);
	client_open(&cl, &b);
	r = call(&cl, "{\"execute\": \"reload\"}");
	ck_assert_int_eq(b.f.reloads, 1);
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "ConfigError");
	ck_assert(strstr(str_at(r, "error", "desc", NULL), "vm.d/a.conf:3: unknown key"));
	json_decref(r);
	r = call(&cl, "{\"execute\": \"switch\", \"arguments\": {\"target\": \"pc\"}}");
	ck_assert_str_eq(str_at(r, "return", "from", NULL), "host");
	ck_assert_str_eq(str_at(r, "return", "to", NULL), "pc");
	json_decref(r);
	r = call(&cl, "{\"execute\": \"switch\", \"arguments\": {\"target\": \"nowhere\"}}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "VMNotFound");
	json_decref(r);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, status_comes_from_the_ops);
	tcase_add_test(tc, attach_waits_for_the_reconciler);
	tcase_add_test(tc, attach_answers_at_once_when_it_can);
	tcase_add_test(tc, a_client_that_goes_takes_its_waiters);
	tcase_add_test(tc, identify_answers_the_next_device);
	tcase_add_test(tc, reload_and_switch_go_to_the_ops);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(control_suite)

/* Unit tests for control/ on its own: a real socket and a real client,
 * and a daemon that is nothing but the struct control_ops below. What a
 * command answers comes from the ops, what it asks for goes to them, and
 * requests waiting for the reconciler or identify are answered by what
 * the daemon pushes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "control/control-int.h"
#include "control/control.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "usb/rules.h"
#include "util/log.h"
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
	const char *reload_error; /* NULL: the default one */
	const char *switch_why;   /* NULL: the default refusal */
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
	strv_append(errors, f->reload_error ? f->reload_error
					    : "vm.d/a.conf:3: unknown key 'bogus' in [vm]");
	return -EINVAL;
}

static int f_switch(void *data, const char *target, char **why)
{
	struct fake *f = data;

	if (streq(target, "nowhere")) {
		*why = xstrdup(f->switch_why ? f->switch_why : "no VM named 'nowhere'");
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
	/* by udev's ID_PATH, the bus-numbered form as the alternative */
	ck_assert_msg(strstr(str_at(r, "return", "suggestion", NULL),
			     "[usb \"ultra\"]\nport = pci-0000:00:14.0-usb-0:4\n"
			     "# or by bus number, as sysfs names it: port = 3-4\n"),
		      "%s", str_at(r, "return", "suggestion", NULL));
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

/* A client that sends requests and never reads the answers is dropped
 * once 4 MiB wait for it (SECURITY.md), and the log says which one; the
 * others go on. */
START_TEST(a_client_that_does_not_read_is_dropped)
{
	static const char req[] = "{\"execute\": \"query-usb\"}\n";
	struct bench b;
	struct client cl, other;
	char batch[64 * sizeof(req)];
	size_t sent = 0;
	bool dropped = false;
	json_t *r;

	bench_init(&b);
	log_capture_start(LOG_LEVEL_WARNING);
	client_open(&cl, &b);
	client_open(&other, &b);
	for (size_t i = 0; i < 64; i++)
		memcpy(batch + i * (sizeof(req) - 1), req, sizeof(req) - 1);
	/* bounded by what was sent, not by time: 4 MiB of answers and the
	 * socket buffers take far fewer than 100 MiB of requests */
	for (size_t round = 0; !dropped && sent < 100 * 1024 * 1024 && round < 1000000; round++) {
		ssize_t n = send(cl.fd, batch, 64 * (sizeof(req) - 1), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else
			ck_assert_msg(errno == EAGAIN || errno == EPIPE, "send: %s",
				      strerror(errno));
		while (loop_dispatch(b.loop, 0) > 0)
			;
		struct pollfd pfd = { .fd = cl.fd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP))
			dropped = true;
	}
	ck_assert_msg(dropped, "still connected after %zu bytes of requests", sent);
	{
		char *said = xasprintf("control: client pid %d does not read its replies; "
				       "disconnecting it",
				       (int)getpid());

		ck_assert_uint_eq(log_captured_count_text(said), 1);
		free(said);
	}
	r = call(&other, "{\"execute\": \"query-usb\", \"id\": 1}");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	close(cl.fd);
	close(other.fd);
	bench_fini(&b);
	log_capture_stop();
}
END_TEST

/* Text vmplugd is handed, by the configuration, QEMU, libvirt, the
 * kernel or a device, may hold bytes that are not UTF-8 and control
 * characters: every reply and event still goes out, as valid JSON with
 * the request's id, the bad bytes as \xNN, and vmplugd goes on. */
#define BAD "\xff\xfe\x1b[31m\xc3"
START_TEST(hostile_text_never_breaks_a_reply)
{
	struct bench b;
	struct client cl, mon;
	struct usb_device *dev = fixture_usb("3-4 dev=9 vid=0781 pid=5581 name=Ultra" BAD);
	json_t *r;

	/* the bytes as they are, not as the watcher would have escaped them */
	dev->serial = xstrdup("S" BAD);
	bench_init(&b);
	b.f.reload_error = "vm.d/a.conf:3: unknown key '" BAD "' in [vm]";
	b.f.switch_why = "refused: " BAD;
	b.f.status.config_dir = "/etc/" BAD;
	b.f.vm.last_error = "libvirt: " BAD;
	b.f.item = (struct control_item){ .id = "vmplug-usb-3-7",
					  .state = "retrying",
					  .bus = 3,
					  .devnum = 7,
					  .dev = b.f.devs[0],
					  .error = "QEMU: " BAD };
	b.f.has_item = true;
	free(b.f.devs[0]->serial);
	b.f.devs[0]->serial = xstrdup(BAD);
	client_open(&cl, &b);
	client_open(&mon, &b);
	json_decref(call(&mon, "{\"execute\": \"subscribe\"}"));

	r = call(&cl, "{\"execute\": \"reload\", \"id\": 1}");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 1);
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "ConfigError");
	ck_assert_msg(strstr(str_at(r, "error", "desc", NULL), "unknown key '\\xff\\xfe"), "%s",
		      str_at(r, "error", "desc", NULL));
	json_decref(r);
	r = call(&cl, "{\"execute\": \"query-status\", \"id\": 2}");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 2);
	ck_assert_str_eq(str_at(r, "return", "config-dir", NULL), "/etc/\\xff\\xfe\x1b[31m\\xc3");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "last-error", NULL),
			 "libvirt: \\xff\\xfe\x1b[31m\\xc3");
	ck_assert_str_eq(str_at(r, "return", "vms", "0", "usb", "0", "error", NULL),
			 "QEMU: \\xff\\xfe\x1b[31m\\xc3");
	json_decref(r);
	r = call(&cl, "{\"execute\": \"query-usb\", \"id\": 3}");
	ck_assert_str_eq(str_at(r, "return", "devices", "0", "serial", NULL),
			 "\\xff\\xfe\x1b[31m\\xc3");
	json_decref(r);
	r = call(&cl,
		 "{\"execute\": \"explain\", \"arguments\": {\"device\": \"3-1\"}, \"id\": 4}");
	ck_assert_str_eq(str_at(r, "return", "devices", "0", "device", "port", NULL), "3-1");
	json_decref(r);
	r = call(&cl, "{\"execute\": \"switch\", \"arguments\": {\"target\": \"nowhere\"}, "
		      "\"id\": 5}");
	ck_assert_str_eq(str_at(r, "error", "desc", NULL), "refused: \\xff\\xfe\x1b[31m\\xc3");
	json_decref(r);
	/* an attach that fails with QEMU's words */
	b.f.has_item = false;
	send_line(&cl, "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
		       "\"3-1\"}, \"id\": 6}");
	ck_assert_ptr_null(next(&cl, 100));
	control_reconciled(b.c, &(struct control_event){ .change = CONTROL_USB_FAILED,
							 .vm = "pc",
							 .id = "id-3-7",
							 .dev = b.f.devs[0],
							 .msg = "QEMU: " BAD });
	r = next(&cl, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 6);
	ck_assert(strstr(str_at(r, "error", "desc", NULL), "attach failed: QEMU: \\xff"));
	json_decref(r);
	r = next(&mon, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(str_at(r, "data", "error", NULL), "QEMU: \\xff\\xfe\x1b[31m\\xc3");
	ck_assert_str_eq(str_at(r, "data", "device", "serial", NULL), "\\xff\\xfe\x1b[31m\\xc3");
	json_decref(r);
	control_reconciled(b.c, &(struct control_event){
				    .change = CONTROL_VM_GONE, .vm = "pc", .msg = "gone: " BAD });
	r = next(&mon, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(str_at(r, "data", "reason", NULL), "gone: \\xff\\xfe\x1b[31m\\xc3");
	json_decref(r);
	/* identify: a device that names itself with such bytes */
	send_line(&cl, "{\"execute\": \"identify\", \"id\": 7}");
	ck_assert_ptr_null(next(&cl, 100));
	control_identify_usb(b.c, dev);
	r = next(&cl, 4000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 7);
	/* (a serial with an escape character in it cannot be matched by a
	 * line of vmplug.conf: identify says so instead of writing it) */
	ck_assert_msg(strstr(str_at(r, "return", "suggestion", NULL),
			     "# (serial \"S\\xff\\xfe\\x1b[31m\\xc3\" cannot be written"),
		      "%s", str_at(r, "return", "suggestion", NULL));
	json_decref(r);
	/* and the server goes on */
	r = call(&cl, "{\"execute\": \"query-usb\", \"id\": 8}");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 8);
	json_decref(r);
	usb_device_free(dev);
	close(cl.fd);
	close(mon.fd);
	bench_fini(&b);
}
END_TEST

/* ------------------------------------------------------------ identify */

/* What devices call themselves, meant to break out of a comment, start a
 * section, cut a value short or drive the terminal. */
static const char *const hostile_names[] = {
	"Evil\n[vm]\nqmp-socket = /tmp/evil.qmp",
	"Evil\r\n[input \"evil\"]\ndevice = /dev/input/event0",
	"x # y",
	"x ; y",
	"#start",
	";start",
	" lead",
	"trail ",
	"=eq",
	"[usb \"evil\"]",
	"quote\" ]",
	"\x1b]0;pwned\x07\x1b[2J",
	"\xc2\x85next line \xc2\x9b"
	"2J",
	"\xff\xfe not UTF-8",
	"a\\x0ab",
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	"Logitech Webcam C270",
};

/* A string as vmplugd reads it from sysfs (daemon/watch.c): trimmed,
 * control characters and bytes that are not UTF-8 escaped. */
static char *as_read(const char *s)
{
	char *copy = xstrdup(s), *out = xstrdup_printable(strstrip(copy));

	free(copy);
	return out;
}

/* The text with the identity rule's lines uncommented, as a user who
 * prefers it would: from "# Or by identity" on. */
static char *identity_rule(const char *text)
{
	const char *p = strstr(text, "# Or by identity");
	char **lines, *out;
	char **kept = NULL;

	ck_assert_ptr_nonnull(p);
	lines = strv_split(p, "\n");
	for (size_t i = 0; lines[i]; i++)
		if (startswith(lines[i], "# [usb") || startswith(lines[i], "# vendor =") ||
		    startswith(lines[i], "# product =") || startswith(lines[i], "# serial ="))
			strv_append(&kept, lines[i] + 2);
	out = strv_join(kept, "\n");
	strv_free(kept);
	strv_free(lines);
	return out;
}

/* VM file text: a [vm] section, then text. 0 and *out, or the errors. */
static struct conf *load_vm_file(const char *text)
{
	char *vm = xasprintf("[vm]\nqmp-socket = /run/vm.qmp\n%s\n", text);
	struct conf *conf = NULL;
	char **errors = NULL;
	int r = conf_load_text("", 0, vm, strlen(vm), &conf, &errors);

	ck_assert_msg(r == 0, "identify's text does not load:\n%s\nfirst error: %s", vm,
		      errors && errors[0] ? errors[0] : "?");
	strv_free(errors);
	free(vm);
	return conf;
}

/* Whatever a USB device calls itself, what identify suggests reads back
 * as exactly the port rule it shows, and its identity rule, uncommented,
 * matches that device (without the serial when the serial cannot be
 * written). Strings as vmplugd reads them, and raw. */
START_TEST(identify_usb_text_reads_back_as_shown)
{
	for (size_t i = 0; i < 2 * ARRAY_SIZE(hostile_names); i++) {
		const char *raw = hostile_names[i / 2];
		struct usb_device *d = fixture_usb("3-10.2 dev=5 vid=046d pid=0825");
		struct conf *conf;
		const struct conf_usb_rule *r;
		const char *missed = NULL;
		char *text, *identity;

		d->serial = i % 2 ? as_read(raw) : xstrdup(raw);
		d->product_name = i % 2 ? as_read(raw) : xstrdup(raw);
		d->manufacturer = xstrdup(raw);
		text = control_identify_usb_text(d);
		conf = load_vm_file(text);
		ck_assert_uint_eq(conf->n_vms, 1);
		ck_assert_msg(conf->vms[0].n_rules == 1, "%zu rules from:\n%s",
			      conf->vms[0].n_rules, text);
		r = &conf->vms[0].rules[0];
		ck_assert(!r->deny);
		ck_assert_str_eq(r->port, "pci-0000:00:14.0-usb-0:10.2");
		ck_assert(usb_rule_matches(r, d, NULL));
		ck_assert_int_eq(r->vendor, -1);
		ck_assert_ptr_null(r->serial);
		ck_assert_uint_eq(r->n_props, 0);
		conf_free(conf);

		identity = identity_rule(text);
		conf = load_vm_file(identity);
		ck_assert_uint_eq(conf->vms[0].n_rules, 1);
		r = &conf->vms[0].rules[0];
		ck_assert_ptr_null(r->port);
		ck_assert_int_eq(r->vendor, 0x046d);
		ck_assert_msg(usb_rule_matches(r, d, &missed),
			      "the identity rule misses the device on %s:\n%s", missed, identity);
		if (i % 2 && conf_line_writable("serial", d->serial))
			ck_assert_str_eq(r->serial, d->serial);
		conf_free(conf);
		free(identity);
		free(text);
		usb_device_free(d);
	}
}
END_TEST

/* The same for an input device: its name, whatever it is, stays in a
 * comment, and the [input] section names its by-id link, or its event
 * node when the link cannot be written. */
START_TEST(identify_input_text_reads_back_as_shown)
{
	static const char *const links[] = {
		"/dev/input/by-id/usb-Evil_#1-event-kbd",
		"/dev/input/by-id/usb-a;b-event-kbd",
		"/dev/input/by-id/usb-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-event-kbd",
		NULL,
	};

	for (size_t i = 0; i < ARRAY_SIZE(hostile_names); i++) {
		for (size_t j = 0; j < ARRAY_SIZE(links); j++) {
			const char *link = links[j];
			char *text = control_identify_input_text("/dev/input/event7", link,
								 hostile_names[i], true, false);
			struct conf *conf = NULL;
			char **errors = NULL;
			int r = conf_load_text(text, strlen(text), NULL, 0, &conf, &errors);

			ck_assert_msg(r == 0, "identify's text does not load:\n%s\nfirst error: %s",
				      text, errors && errors[0] ? errors[0] : "?");
			ck_assert_uint_eq(conf->n_inputs, 1);
			ck_assert_str_eq(conf->inputs[0].name, "kbd");
			ck_assert_str_eq(conf->inputs[0].device,
					 link && strlen(link) < 100 ? link : "/dev/input/event7");
			ck_assert_uint_eq(conf->n_vms, 0);
			strv_free(errors);
			conf_free(conf);
			free(text);
		}
	}
}
END_TEST

/* ------------------------------------------------------------ bounds */

/* A client of c on a socketpair, as if it had connected with cred; the
 * greeting (or the refusal) is left to read. */
static void client_as(struct client *cl, struct bench *b, uid_t uid, gid_t gid)
{
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	cl->b = b;
	cl->len = 0;
	cl->fd = sv[0];
	control_client_add(b->c, sv[1], &(struct ucred){ .pid = getpid(), .uid = uid, .gid = gid });
}

/* The error class of the next line, or NULL; the line is dropped. */
static char *next_error_class(struct client *cl)
{
	json_t *r = next(cl, 2000);
	char *cls;

	ck_assert_ptr_nonnull(r);
	cls = str_at(r, "error", "class", NULL) ? xstrdup(str_at(r, "error", "class", NULL)) : NULL;
	json_decref(r);
	return cls;
}

/* Is the client's connection closed by vmplugd (EOF after what is queued)? */
static bool closed_by_server(void *arg)
{
	struct client *cl = arg;
	char buf[4096];
	ssize_t n;

	while ((n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return n == 0;
}

/* Plug-time questions are bounded: one past CONTROL_MAX_QUESTIONS drops
 * the oldest (said to subscribers, and to whoever answers it late); a
 * device already asked about is not asked again while it is open. */
START_TEST(questions_are_bounded)
{
	struct usb_device *devs[CONTROL_MAX_QUESTIONS + 1];
	struct client cl;
	struct bench b;
	json_t *r;
	size_t events = 0, dropped = 0;

	bench_init(&b);
	client_open(&cl, &b);
	json_decref(call(&cl, "{\"execute\": \"subscribe\"}"));
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++) {
		char *desc = xasprintf("3-%zu dev=%zu vid=abcd pid=0001", i + 1, i + 2);

		devs[i] = fixture_usb(desc);
		free(desc);
		control_unclaimed(b.c, devs[i]);
	}
	control_unclaimed(b.c, devs[5]); /* open already: not asked again */
	while ((r = next(&cl, 200))) {
		const char *ev = str_at(r, "event", NULL);

		events += ev && streq(ev, CONTROL_EVENT_USB_UNCLAIMED);
		if (ev && streq(ev, CONTROL_EVENT_USB_UNCLAIMED_CLOSED)) {
			ck_assert_str_eq(str_at(r, "data", "outcome", NULL), "dropped");
			ck_assert_int_eq(json_integer_value(json_object_get(
					     json_object_get(r, "data"), "question")),
					 1);
			dropped++;
		}
		json_decref(r);
	}
	ck_assert_uint_eq(events, CONTROL_MAX_QUESTIONS + 1);
	ck_assert_uint_eq(dropped, 1);
	r = call(&cl, "{\"execute\": \"answer\", \"arguments\": {\"question\": 1, "
		      "\"action\": \"keep-on-host\"}}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "QuestionClosed");
	json_decref(r);
	r = call(&cl, "{\"execute\": \"answer\", \"arguments\": {\"question\": 99, "
		      "\"action\": \"keep-on-host\"}}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "QuestionNotFound");
	json_decref(r);
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++)
		usb_device_free(devs[i]);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

/* Requests that answer later are bounded per client and in all: past
 * either bound, a request gets TooManyRequests at once, with its id, and
 * changes nothing; answered ones make room again. */
START_TEST(waiting_requests_are_bounded)
{
	enum { N = CONTROL_MAX_WAITING / CONTROL_MAX_WAITING_PER_CLIENT + 1 };
	struct client *cl = xcalloc(N, sizeof(*cl)); /* 64 KiB each: not on the stack */
	struct bench b;
	struct usb_device *dev = fixture_usb("3-4 dev=9 vid=0781 pid=5581 name=Ultra");
	char *cls;
	json_t *r;

	bench_init(&b);
	for (size_t i = 0; i < N; i++)
		client_open(&cl[i], &b);
	for (int i = 0; i < CONTROL_MAX_WAITING_PER_CLIENT; i++)
		send_line(&cl[0], "{\"execute\": \"identify\"}");
	ck_assert_ptr_null(next(&cl[0], 200));
	r = call(&cl[0], "{\"execute\": \"identify\", \"id\": 17}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "TooManyRequests");
	ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), 17);
	json_decref(r);
	r = call(&cl[0], "{\"execute\": \"attach\", \"arguments\": {\"vm\": \"pc\", \"device\": "
			 "\"3-1\"}}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "TooManyRequests");
	ck_assert_ptr_null(b.f.override_vm); /* refused before anything changed */
	json_decref(r);
	/* the other clients fill the overall bound; the last one is refused */
	for (size_t i = 1; i + 1 < N; i++)
		for (int k = 0; k < CONTROL_MAX_WAITING_PER_CLIENT; k++)
			send_line(&cl[i], "{\"execute\": \"identify\"}");
	run_for(b.loop, 200);
	r = call(&cl[N - 1], "{\"execute\": \"identify\"}");
	ck_assert_str_eq(str_at(r, "error", "class", NULL), "TooManyRequests");
	json_decref(r);
	/* a device answers every waiter, which makes room again */
	control_identify_usb(b.c, dev);
	for (size_t i = 0; i + 1 < N; i++)
		for (int k = 0; k < CONTROL_MAX_WAITING_PER_CLIENT; k++) {
			cls = next_error_class(&cl[i]);
			ck_assert_ptr_null(cls);
		}
	send_line(&cl[N - 1], "{\"execute\": \"identify\"}");
	ck_assert_ptr_null(next(&cl[N - 1], 200)); /* it waits now */
	for (size_t i = 0; i < N; i++)
		close(cl[i].fd);
	free(cl);
	usb_device_free(dev);
	bench_fini(&b);
}
END_TEST

/* At most CONTROL_MAX_CLIENTS clients at once: one more is told so and
 * closed; root is never turned away, and a client that leaves makes room. */
START_TEST(clients_are_bounded)
{
	struct client *cl = xcalloc(CONTROL_MAX_CLIENTS, sizeof(*cl)), extra, admin;
	struct bench b;
	char *cls;
	json_t *r;

	bench_init(&b);
	control_free(b.c);
	b.c = control_new(b.loop, b.path, "root", &fake_ops, &b.f); /* members: gid 0 */
	ck_assert_ptr_nonnull(b.c);
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		client_as(&cl[i], &b, 1000, 0);
		r = next(&cl[i], 2000);
		ck_assert_ptr_nonnull(json_object_get(r, "vmplug")); /* greeted */
		json_decref(r);
	}
	client_as(&extra, &b, 1000, 0);
	cls = next_error_class(&extra);
	ck_assert_str_eq(cls, "TooManyClients");
	free(cls);
	ck_assert(run_until(b.loop, closed_by_server, &extra, 2000));
	close(extra.fd);
	client_as(&admin, &b, 0, 0);
	r = next(&admin, 2000);
	ck_assert_ptr_nonnull(json_object_get(r, "vmplug"));
	json_decref(r);
	/* one leaves (and root's stays): the next one is served */
	close(cl[0].fd);
	close(admin.fd);
	run_for(b.loop, 100);
	client_as(&cl[0], &b, 1000, 0);
	r = next(&cl[0], 2000);
	ck_assert_ptr_nonnull(json_object_get(r, "vmplug"));
	json_decref(r);
	for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++)
		close(cl[i].fd);
	free(cl);
	bench_fini(&b);
}
END_TEST

/* A client refused by its credentials is never heard, even while its
 * refusal is still queued (its socket full): what it sends is not run. */
START_TEST(a_refused_client_is_not_heard)
{
	struct bench b;
	int sv[2];
	char junk[4096] = { 0 };

	bench_init(&b);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	/* vmplugd's side cannot send: the refusal waits in its buffer */
	while (send(sv[1], junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		;
	control_client_add(b.c, sv[1],
			   &(struct ucred){ .pid = getpid(), .uid = 1000, .gid = 1000 });
	ck_assert_int_eq(write_all(sv[0], "{\"execute\": \"reload\"}\n", 22), 0);
	run_for(b.loop, 200);
	ck_assert_int_eq(b.f.reloads, 0);
	close(sv[0]);
	run_for(b.loop, 100);
	bench_fini(&b);
}
END_TEST

/* accept() out of file descriptors does not spin the loop: the listening
 * socket rests, and the client waiting in the queue is served once fds
 * are free again. */
START_TEST(accept_out_of_fds_does_not_spin)
{
	struct bench b;
	struct client cl;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct rlimit old, low;
	int fill[512], n = 0, passes = 0;
	json_t *r;

	bench_init(&b);
	strcpy(addr.sun_path, b.path);
	cl.b = &b;
	cl.len = 0;
	cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_eq(connect(cl.fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)cl.fd + ARRAY_SIZE(fill) / 2;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < (int)ARRAY_SIZE(fill) && (fill[n] = dup(0)) >= 0)
		n++;
	ck_assert_int_eq(errno, EMFILE);
	/* a second of passes that each wait 20 ms for something to do: a loop
	 * that spins runs one for every accept that fails */
	for (int i = 0; i < 40; i++)
		if (loop_dispatch(b.loop, 20) > 0)
			passes++;
	ck_assert_msg(passes <= 4, "%d passes with work in 40 (the loop spins)", passes);
	while (n > 0)
		close(fill[--n]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	/* valgrind keeps the lowered limit as its own (its fds sit above it),
	 * so the client can be served only outside it */
	if (getenv("VMPLUG_VALGRIND") && streq(getenv("VMPLUG_VALGRIND"), "1")) {
		close(cl.fd);
		bench_fini(&b);
		return;
	}
	r = next(&cl, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_ptr_nonnull(json_object_get(r, "vmplug"));
	json_decref(r);
	close(cl.fd);
	bench_fini(&b);
}
END_TEST

static char *logged_text;

static void log_discard(enum log_level level, const char *msg, void *data)
{
}

static void log_capture(enum log_level level, const char *msg, void *data)
{
	char *more = xasprintf("%s%s\n", logged_text ? logged_text : "", msg);

	free(logged_text);
	logged_text = more;
}

/* Whatever sits at the configured path and is not a socket (a file, a
 * directory, a link to a file) is refused and left as it was. */
START_TEST(a_non_socket_at_the_path_is_left_alone)
{
	static const char *const kinds[] = { "a regular file", "a directory", "a symbolic link" };
	struct loop *loop = loop_new();
	char *dir = scratch_new("control"), *path = xasprintf("%s/control.sock", dir);
	char *target = xasprintf("%s/target", dir), *want, buf[64];
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, "precious", 8), 0);
	close(fd);
	log_set_handler(log_capture, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (i == 0)
			ck_assert_int_eq(link(target, path), 0);
		else if (i == 1)
			ck_assert_int_eq(mkdir(path, 0755), 0);
		else
			ck_assert_int_eq(symlink(target, path), 0);
		errno = 0;
		ck_assert_ptr_null(control_new(loop, path, NULL, &fake_ops, NULL));
		ck_assert_int_eq(errno, EEXIST);
		want = xasprintf("control: %s is %s, not a socket: refusing to replace it", path,
				 kinds[i]);
		ck_assert_msg(logged_text && strstr(logged_text, want), "logged: %s",
			      logged_text ? logged_text : "");
		free(want);
		ck_assert_int_eq(lstat(path, &st), 0);
		ck_assert(i == 0   ? S_ISREG(st.st_mode)
			  : i == 1 ? S_ISDIR(st.st_mode)
				   : S_ISLNK(st.st_mode));
		if (i == 1)
			ck_assert_int_eq(rmdir(path), 0);
		else
			ck_assert_int_eq(unlink(path), 0);
	}
	log_set_handler(NULL, NULL);
	free(logged_text);
	logged_text = NULL;
	fd = open(target, O_RDONLY | O_CLOEXEC);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(n, 8);
	ck_assert(memcmp(buf, "precious", 8) == 0);

	/* A socket file left behind by a vmplugd that died is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	{
		struct sockaddr_un addr = { .sun_family = AF_UNIX };

		snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	}
	close(fd);
	struct control *c = control_new(loop, path, NULL, &fake_ops, NULL);

	ck_assert_ptr_nonnull(c);
	/* At exit, what replaced our socket meanwhile stays. */
	ck_assert_int_eq(rename(target, path), 0);
	control_free(c);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));

	free(target);
	free(path);
	scratch_remove(dir);
	loop_free(loop);
}
END_TEST

/* Another user connecting as fast as it can while the socket is made
 * never gets in: the socket is 0600 (root's, no group here) before it
 * listens. The daemon's umask is whatever it was started with: here 0. */
START_TEST(nobody_connects_before_the_mode_is_set)
{
	struct loop *loop = loop_new();
	char *dir = scratch_new("control"), *path = xasprintf("%s/control.sock", dir);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old = umask(0);
	int status, tries = 0;
	pid_t pid;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	log_set_handler(log_discard, NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		for (;;) {
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
				_exit(1);
			close(fd);
		}
	}
	for (int i = 0; i < 1000; i++) {
		struct control *c = control_new(loop, path, NULL, &fake_ops, NULL);

		ck_assert_ptr_nonnull(c);
		control_free(c);
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		tries++;
	}
	umask(old);
	log_set_handler(NULL, NULL);
	if (tries == 1000) {
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	}
	ck_assert_msg(WIFSIGNALED(status), "the other user %s after %d sockets",
		      WIFEXITED(status) && WEXITSTATUS(status) == 1 ? "connected" : "failed",
		      tries);
	free(path);
	scratch_remove(dir);
	loop_free(loop);
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
	tcase_add_test(tc, hostile_text_never_breaks_a_reply);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	/* some 7000 answers built under ASan, on a busy machine */
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_client_that_does_not_read_is_dropped);
	tcase_add_test(tc, waiting_requests_are_bounded);
	tcase_add_test(tc, questions_are_bounded);
	tcase_add_test(tc, clients_are_bounded);
	tcase_add_test(tc, a_refused_client_is_not_heard);
	tcase_add_test(tc, accept_out_of_fds_does_not_spin);
	suite_add_tcase(s, tc);
	tc = tcase_create("socket");
	tcase_add_test(tc, a_non_socket_at_the_path_is_left_alone);
	tcase_add_test_if(tc, nobody_connects_before_the_mode_is_set, geteuid() == 0,
			  "needs root to be another user");
	suite_add_tcase(s, tc);
	tc = tcase_create("identify");
	tcase_add_test(tc, identify_usb_text_reads_back_as_shown);
	tcase_add_test(tc, identify_input_text_reads_back_as_shown);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(control_suite)

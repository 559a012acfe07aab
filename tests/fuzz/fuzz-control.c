/* Fuzz target: the control socket, whole. The input is a configuration,
 * what a USB device and the daemon's peers say, and what a client sends,
 * separated by NUL bytes:
 *
 *     VMPLUG.CONF \0 VM.CONF \0 SERIAL \n PRODUCT \n TEXT \0 REQUESTS
 *
 * The configuration is loaded as reload would load it: its errors are
 * what `reload` answers, and when it loads it is the running one. The
 * device (with that serial and product name) is the one present host
 * device; TEXT stands for what QEMU, libvirt and the kernel say (a VM's
 * last error, an item's error, a refused switch, the reconciler's
 * messages, one more reload error). REQUESTS go, line by line, to a real
 * control server on the loop through a client on a socketpair; the
 * requests that wait are then answered by the reconciler's changes and a
 * device plugged in. Every line the server sends must be a JSON object,
 * and each request line is also checked against the parser alone. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "control/control-int.h"
#include "tests/fuzz/fuzz.h"
#include "util/log.h"
#include "util/util.h"

/* ---------------------------------------------------------- the daemon */

struct daemon {
	struct conf *conf; /* the running configuration */
	char **errors;     /* what reload answers; NULL: it succeeds */
	struct usb_device *dev;
	const char *text; /* what a peer said */
};

static const struct conf *d_conf(void *data)
{
	return ((struct daemon *)data)->conf;
}

static void d_status(void *data, struct control_status *out)
{
	struct daemon *d = data;

	*out = (struct control_status){
		.config_dir = d->text, .udevd = true, .switching = true, .focus = "host"
	};
}

static void d_vm(void *data, const char *vm, struct control_vm *out)
{
	struct daemon *d = data;

	*out = (struct control_vm){
		.state = "running", .ready = true, .up = true, .last_error = d->text
	};
}

static void d_vm_items(void *data, const char *vm, control_item_fn fn, void *ctx)
{
	struct daemon *d = data;

	fn(ctx, &(struct control_item){ .id = "vmplug-usb-1-2",
					.state = "retrying",
					.bus = d->dev->bus,
					.devnum = d->dev->devnum,
					.dev = d->dev,
					.error = d->text,
					.failures = 1 });
	fn(ctx, &(struct control_item){
		    .id = "vmplug-in-kbd", .state = "missing", .input = true, .error = d->text });
}

static void d_devices(void *data, control_device_fn fn, void *ctx)
{
	struct daemon *d = data;

	fn(ctx, &(struct control_device){ .dev = d->dev });
}

static char *d_usb_id(void *data, const struct usb_device *dev)
{
	return xasprintf("vmplug-usb-%u-%u", dev->bus, dev->devnum);
}

static int d_override(void *data, const struct usb_device *dev, const char *vm, bool attach)
{
	return 0;
}

static int d_reload(void *data, char ***errors)
{
	struct daemon *d = data;

	*errors = strv_copy(d->errors);
	return d->errors ? -EINVAL : 0;
}

static int d_switch(void *data, const char *target, char **why)
{
	struct daemon *d = data;

	*why = xasprintf("cannot switch to %s: %s", target, d->text);
	return -EINVAL;
}

static int d_remember(void *data, const struct usb_device *dev, const char *vm,
		      const char *description, unsigned *id, char **why)
{
	struct daemon *d = data;

	if (d->errors) {
		*why = xasprintf("cannot remember: %s", d->text);
		return -EINVAL;
	}
	*id = 1;
	return 0;
}

static int d_forget(void *data, unsigned id, char **why)
{
	struct daemon *d = data;

	*why = xasprintf("no answer %u: %s", id, d->text);
	return -ENOENT;
}

static const struct control_ops ops = {
	.conf = d_conf,
	.status = d_status,
	.vm = d_vm,
	.vm_items = d_vm_items,
	.devices = d_devices,
	.usb_id = d_usb_id,
	.override = d_override,
	.reload = d_reload,
	.focus_switch = d_switch,
	.remember = d_remember,
	.forget = d_forget,
};

/* ------------------------------------------------------------ the input */

/* The next part of the input, up to sep (or its end); *p moves past it. */
static char *part(const char **p, const char *end, char sep)
{
	const char *stop = memchr(*p, sep, (size_t)(end - *p));
	char *s = xstrndup(*p, (size_t)((stop ? stop : end) - *p));

	*p = stop ? stop + 1 : end;
	return s;
}

/* The request parser alone, on each line as the server cuts them. */
static void check_parser(const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct control_request rq;
		char *error = NULL;

		if (len <= CONTROL_MAX_REQUEST) {
			if (control_request_parse(p, len, &rq, &error) == 0) {
				if (!rq.command || (rq.args && !json_is_object(rq.args)) || error)
					abort();
			} else if (!error || rq.command) {
				abort();
			}
			free(error);
			control_request_clear(&rq);
		}
		p += len + 1;
	}
}

/* ----------------------------------------------------------- the server */

static struct loop *loop;
static struct control *server;
static struct daemon daemon_;
static char *sock_dir, *sock_path;

static void cleanup(void)
{
	control_free(server);
	loop_free(loop);
	unlink(sock_path);
	rmdir(sock_dir);
	free(sock_path);
	free(sock_dir);
}

/* One loop and one server for every input, as vmplugd has. */
static void setup(void)
{
	char tmpl[] = "/tmp/fuzz-control-XXXXXX";

	log_set_level(LOG_LEVEL_ERROR);
	loop = loop_new();
	if (!loop || !mkdtemp(tmpl))
		abort();
	sock_dir = xstrdup(tmpl);
	sock_path = xasprintf("%s/control.sock", sock_dir);
	server = control_new(loop, sock_path, NULL, &ops, &daemon_);
	if (!server)
		abort();
	atexit(cleanup);
}

struct peer {
	int fd;
	char *in; /* what the server sent, not yet checked */
	size_t len;
};

/* Run the loop until it has nothing more to do at once, reading what
 * the server sends; every complete line must be a JSON object. */
static void pump(struct peer *p)
{
	for (int idle = 0; idle < 2;) {
		char buf[65536];
		ssize_t n;
		int ran = loop_dispatch(loop, 0);

		while ((n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			p->in = xrealloc(p->in, p->len + (size_t)n);
			memcpy(p->in + p->len, buf, (size_t)n);
			p->len += (size_t)n;
			ran++;
		}
		idle = ran > 0 ? 0 : idle + 1;
	}
	for (char *nl; (nl = memchr(p->in, '\n', p->len));) {
		size_t len = (size_t)(nl - p->in);
		json_t *obj = json_loadb(p->in, len, 0, NULL);

		if (!json_is_object(obj))
			abort();
		json_decref(obj);
		p->len -= len + 1;
		memmove(p->in, nl + 1, p->len);
	}
}

/* Send the requests, a socket buffer at a time. */
static void send_requests(struct peer *p, const char *req, size_t len)
{
	while (len > 0) {
		ssize_t n = send(p->fd, req, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN)
			break;
		if (n > 0) {
			req += n;
			len -= (size_t)n;
		}
		pump(p);
	}
	pump(p);
}

/* What the reconciler reports about vm: it answers the attach and detach
 * requests that wait, and goes to subscribers. */
static void reconciler_says(const char *vm)
{
	static const enum control_change changes[] = {
		CONTROL_USB_FAILED,     CONTROL_USB_ATTACHED,   CONTROL_USB_DETACHED,
		CONTROL_INPUT_ATTACHED, CONTROL_INPUT_FAILED,   CONTROL_VM_UP,
		CONTROL_VM_GONE,        CONTROL_INPUT_DETACHED,
	};

	for (size_t i = 0; i < ARRAY_SIZE(changes); i++)
		control_reconciled(server, &(struct control_event){ .change = changes[i],
								    .vm = vm,
								    .id = "vmplug-usb-1-2",
								    .dev = daemon_.dev,
								    .msg = daemon_.text,
								    .final = i % 2 });
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *global = part(&p, end, '\0'), *vm = part(&p, end, '\0');
	char *strings = part(&p, end, '\0');
	const char *q = strings, *qend = strings + strlen(strings);
	char *serial = part(&q, qend, '\n'), *product = part(&q, qend, '\n');
	char *text = part(&q, qend, '\0');
	struct ucred root = { .pid = 1, .uid = 0, .gid = 0 };
	struct peer peer = { .fd = -1 };
	struct conf *conf = NULL;
	char **errors = NULL, **none = NULL;
	int fds[2];

	check_parser(p, end);
	if (!loop)
		setup();
	/* the configuration as reload reads it */
	if (conf_load_text(global, strlen(global), vm, strlen(vm), &conf, &errors) < 0) {
		strv_append(&errors, text);
		daemon_.errors = errors;
		static const char base[] = "[vm]\nqmp-socket = /run/vm.qmp\n";

		conf_load_text("", 0, base, strlen(base), &conf, &none);
		strv_free(none);
	} else {
		strv_free(errors);
		errors = NULL;
	}
	if (!conf)
		abort();
	daemon_.conf = conf;
	daemon_.text = text;
	daemon_.dev = usb_device_new("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1", "1-1");
	daemon_.dev->bus = 1;
	daemon_.dev->devnum = 2;
	daemon_.dev->vendor = 0x046d;
	daemon_.dev->product = 0x0825;
	daemon_.dev->serial = *serial ? xstrdup(serial) : NULL;
	daemon_.dev->product_name = *product ? xstrdup(product) : NULL;
	daemon_.dev->manufacturer = *text ? xstrdup(text) : NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
		abort();
	peer.fd = fds[1];
	control_client_add(server, fds[0], &root);
	/* a plug-time question the requests may answer (as question 1, 2...) */
	control_unclaimed(server, daemon_.dev);
	send_requests(&peer, p, (size_t)(end - p));
	for (size_t i = 0; i < conf->n_vms; i++)
		reconciler_says(conf->vms[i].name);
	control_identify_usb(server, daemon_.dev);
	control_unclaimed_gone(server, daemon_.dev->syspath);
	control_emit(server, CONTROL_EVENT_INPUT_FOCUS,
		     json_pack("{s:o,s:s}", "from", control_json_str(text), "to", "host"));
	pump(&peer);
	close(peer.fd);
	pump(&peer); /* the server sees the client go, and frees it */

	free(peer.in);
	usb_device_free(daemon_.dev);
	conf_free(conf);
	strv_free(errors);
	daemon_ = (struct daemon){ 0 };
	free(global);
	free(vm);
	free(strings);
	free(serial);
	free(product);
	free(text);
	return 0;
}

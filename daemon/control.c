/* The control socket: QMP-shaped JSON for vmplugctl (see control.h). */
#include "config.h"

#include "daemon/control.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/control-int.h"
#include "daemon/daemon.h"
#include "daemon/focus.h"
#include "usb/rules.h"
#include "usb/suggest.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

/* A client that does not read its events is dropped past this. */
#define MAX_OUTPUT (4 * 1024 * 1024)
#define WAIT_USEC (20 * USEC_PER_SEC)

struct client {
	struct list link;
	struct control *c;
	int fd;
	struct loop_source *src;
	char *in;
	size_t in_len;
	bool discarding; /* skipping the rest of an oversized request */
	char *out;
	size_t out_len;
	bool subscribed;
	bool closing; /* close once the output is flushed */
	bool dead;    /* closed; freed by the reaper, never inside a callback chain */
	uid_t uid;
	pid_t pid;
};

enum waiter_kind {
	WAIT_ATTACH,
	WAIT_DETACH,
	WAIT_IDENTIFY,
};

/* A request whose answer comes later (attach, detach, identify). */
struct waiter {
	struct list link;
	struct control *c;
	struct client *client;
	json_t *id;
	enum waiter_kind kind;
	char *vm;
	char *usb_id;
	char *port;
	struct loop_timer *timer;
	/* identify: a USB keyboard or mouse found, waiting briefly for its
	 * input node so both sections come in one answer */
	json_t *found;
	char *found_syspath;
};

struct control {
	struct daemon *d;
	int fd;
	struct loop_source *src;
	char *path;
	char *group;
	gid_t gid;
	bool have_gid;
	struct list clients;
	struct list waiters;
	struct loop_timer *reaper;
};

/* ----------------------------------------------------------------- output */

static void waiter_free(struct waiter *w)
{
	list_remove(&w->link);
	loop_timer_free(w->timer);
	json_decref(w->id);
	free(w->vm);
	free(w->usb_id);
	free(w->port);
	json_decref(w->found);
	free(w->found_syspath);
	free(w);
}

/* Close now, free later: the client may be in use further up the stack. */
static void client_close(struct client *cl)
{
	struct waiter *w, *tmp;

	if (cl->dead)
		return;
	cl->dead = true;
	list_for_each_safe(w, tmp, &cl->c->waiters, link)
		if (w->client == cl)
			waiter_free(w);
	loop_source_remove(cl->src);
	cl->src = NULL;
	closep(&cl->fd);
	loop_timer_arm_in(cl->c->reaper, 0);
}

static void flush(struct client *cl)
{
	while (cl->out_len > 0) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			client_close(cl);
			return;
		}
		memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
		cl->out_len -= (size_t)n;
	}
	if (cl->out_len == 0 && cl->closing) {
		client_close(cl);
		return;
	}
	loop_source_set_events(cl->src, cl->out_len ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* Queue one JSON object as a line; takes obj. */
static void send_json(struct client *cl, json_t *obj)
{
	char *text;
	size_t len;

	if (cl->dead || cl->closing) {
		json_decref(obj);
		return;
	}
	text = json_dumps(obj, JSON_COMPACT);
	len = strlen(text);
	json_decref(obj);
	if (cl->out_len + len + 1 > MAX_OUTPUT) {
		log_warning("control: client pid %d does not read its replies; disconnecting it",
			    (int)cl->pid);
		free(text);
		client_close(cl);
		return;
	}
	cl->out = xrealloc(cl->out, cl->out_len + len + 1);
	memcpy(cl->out + cl->out_len, text, len);
	cl->out[cl->out_len + len] = '\n';
	cl->out_len += len + 1;
	free(text);
	flush(cl);
}

static void reply(struct client *cl, json_t *id, json_t *ret)
{
	json_t *obj = json_pack("{s:o}", "return", ret ? ret : json_object());

	if (id)
		json_object_set(obj, "id", id);
	send_json(cl, obj);
}

static void reply_error(struct client *cl, json_t *id, const char *cls, const char *fmt, ...)
    PRINTF_LIKE(4, 5);

static void reply_error(struct client *cl, json_t *id, const char *cls, const char *fmt, ...)
{
	va_list ap;
	char *desc;
	json_t *obj;

	va_start(ap, fmt);
	if (vasprintf(&desc, fmt, ap) < 0)
		abort();
	va_end(ap);
	obj = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);
	if (id)
		json_object_set(obj, "id", id);
	free(desc);
	send_json(cl, obj);
}

static json_t *timestamp(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return json_pack("{s:I,s:I}", "seconds", (json_int_t)ts.tv_sec, "microseconds",
			 (json_int_t)(ts.tv_nsec / 1000));
}

void control_emit(struct control *c, const char *event, json_t *data)
{
	struct client *cl, *tmp;

	if (!c) {
		json_decref(data);
		return;
	}
	list_for_each_safe(cl, tmp, &c->clients, link) {
		json_t *obj;

		if (!cl->subscribed || cl->closing)
			continue;
		obj = json_pack("{s:s,s:O,s:o}", "event", event, "data", data ? data : json_null(),
				"timestamp", timestamp());
		send_json(cl, obj);
	}
	json_decref(data);
}

/* ---------------------------------------------------------- descriptions */

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *hex4(int v)
{
	char buf[8];

	if (v < 0)
		return json_null();
	snprintf(buf, sizeof(buf), "%04x", v & 0xffff);
	return json_string(buf);
}

static json_t *usb_json(const struct usb_device *d)
{
	return json_pack("{s:s,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:b}", "port", d->sysname, "bus",
			 (int)d->bus, "devnum", (int)d->devnum, "vendor", hex4(d->vendor),
			 "product", hex4(d->product), "serial", str_or_null(d->serial),
			 "manufacturer", str_or_null(d->manufacturer), "product-name",
			 str_or_null(d->product_name), "hub", usb_device_is_hub(d));
}

struct items_ctx {
	json_t *usb;
	json_t *inputs;
	int pending;
};

static void add_item(void *data, const struct reconcile_item_info *info)
{
	struct items_ctx *ctx = data;
	json_t *o = json_pack("{s:s,s:s,s:o,s:i}", "id", info->id, "state",
			      reconcile_item_state_name(info->state), "error",
			      str_or_null(info->error), "failures", (int)info->failures);

	if (info->state == RECONCILE_ITEM_ATTACHING || info->state == RECONCILE_ITEM_DETACHING)
		ctx->pending++;
	if (info->input) {
		json_array_append_new(ctx->inputs, o);
		return;
	}
	json_object_set_new(o, "bus", json_integer(info->bus));
	json_object_set_new(o, "devnum", json_integer(info->devnum));
	json_object_set_new(o, "device", info->dev ? usb_json(info->dev) : json_null());
	json_array_append_new(ctx->usb, o);
}

/* A backend that cannot add input objects (libvirt) has the VM's sinks
 * in the VM's own definition, and lists the ones there: name each
 * configured sink a running VM lacks. The link is the one
 * data/60-vmplug.rules makes for the sink vmplug-VM-SOURCE. */
static void add_missing_inputs(const struct conf_vm *vm, json_t *inputs)
{
	const struct backend_ops *ops = backend_for_vm(vm);

	if (!ops || ops->input_attach)
		return;
	for (size_t i = 0; vm->inputs && vm->inputs[i]; i++) {
		char *id = xasprintf(BACKEND_ID_PREFIX "in-%s", vm->inputs[i]), *why;
		bool found = false;
		size_t j;
		json_t *o;

		json_array_foreach(inputs, j, o)
			found |= streq(json_string_value(json_object_get(o, "id")), id);
		if (!found) {
			why = xasprintf("not in the VM's definition: add <input type='evdev'> with "
					"<source dev='/dev/input/by-id/vmplug-%s-%s'/>",
					vm->name, vm->inputs[i]);
			json_array_append_new(inputs,
					      json_pack("{s:s,s:s,s:s,s:i}", "id", id, "state",
							"missing", "error", why, "failures", 0));
			free(why);
		}
		free(id);
	}
}

static json_t *vm_json(struct control *c, const struct conf_vm *vm)
{
	struct items_ctx ctx = { json_array(), json_array(), 0 };
	enum reconcile_vm_state state = RECONCILE_VM_DOWN;
	const char *err = NULL;

	reconcile_vm_info(c->d->rc, vm->name, &state, &err);
	reconcile_vm_items(c->d->rc, vm->name, add_item, &ctx);
	if (state == RECONCILE_VM_READY)
		add_missing_inputs(vm, ctx.inputs);
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:i}", "name", vm->name, "backend",
			 conf_backend_name(vm->backend), "target",
			 vm->backend == CONF_BACKEND_QMP ? vm->qmp_socket : vm->uri, "state",
			 reconcile_vm_state_name(state), "last-error", str_or_null(err), "usb",
			 ctx.usb, "inputs", ctx.inputs, "pending", ctx.pending);
}

/* ------------------------------------------------------------- devices */

struct match_ctx {
	const char *port;
	int vendor, product;
	const char *serial;
	const struct usb_device **found;
	size_t n;
};

static void match_device(void *data, const struct reconcile_device_info *info)
{
	struct match_ctx *m = data;
	const struct usb_device *d = info->dev;

	if (m->port ? !streq(m->port, d->sysname)
		    : (d->vendor != m->vendor || d->product != m->product ||
		       (m->serial && (!d->serial || !streq(d->serial, m->serial)))))
		return;
	m->found = xrealloc(m->found, (m->n + 1) * sizeof(*m->found));
	m->found[m->n++] = d;
}

/* DEVICE is a port path ("3-10.2"), VID:PID or VID:PID:SERIAL. On
 * success *found is an array of the present devices it names. */
static int resolve_device(struct control *c, const char *spec, const struct usb_device ***found,
			  size_t *n, char **why)
{
	struct match_ctx m = { .vendor = -1, .product = -1 };
	unsigned long v;
	char **parts = NULL;
	int r = 0;

	if (strchr(spec, ':')) {
		parts = strv_split(spec, ":");
		if (strv_len(parts) < 2 || strv_len(parts) > 3 ||
		    parse_uint(parts[0], 16, 0xffff, &v) < 0) {
			r = -EINVAL;
			goto out;
		}
		m.vendor = (int)v;
		if (parse_uint(parts[1], 16, 0xffff, &v) < 0) {
			r = -EINVAL;
			goto out;
		}
		m.product = (int)v;
		m.serial = parts[2];
	} else if (strchr(spec, '-')) {
		m.port = spec;
	} else {
		r = -EINVAL;
		goto out;
	}
	reconcile_devices(c->d->rc, match_device, &m);
	if (m.n == 0)
		r = -ENOENT;
out:
	if (r == -EINVAL)
		*why = xasprintf("'%s' is not a device: give a port path (3-10.2), VID:PID or "
				 "VID:PID:SERIAL",
				 spec);
	else if (r == -ENOENT)
		*why = xasprintf("no USB device matches '%s' (see: vmplugctl usb)", spec);
	if (r < 0) {
		free(m.found);
	} else {
		*found = m.found;
		*n = m.n;
	}
	strv_free(parts);
	return r;
}

/* Exactly one device; the error text otherwise. */
static const struct usb_device *resolve_one(struct control *c, const char *spec, char **why)
{
	const struct usb_device **found = NULL, *d;
	size_t n = 0;

	if (resolve_device(c, spec, &found, &n, why) < 0)
		return NULL;
	if (n > 1) {
		char **ports = NULL, *joined;

		for (size_t i = 0; i < n; i++)
			strv_append(&ports, found[i]->sysname);
		joined = strv_join(ports, ", ");
		*why = xasprintf("'%s' matches %zu devices (%s); give the port", spec, n, joined);
		free(joined);
		strv_free(ports);
		free(found);
		return NULL;
	}
	d = found[0];
	free(found);
	return d;
}

struct attached_ctx {
	const struct usb_device *dev;
	const char *vm;
	json_t *out;
};

static void find_attached(void *data, const struct reconcile_item_info *info)
{
	struct attached_ctx *a = data;

	if (info->input || info->bus != a->dev->bus || info->devnum != a->dev->devnum)
		return;
	json_array_append_new(a->out, json_pack("{s:s,s:s,s:s}", "vm", a->vm, "id", info->id,
						"state", reconcile_item_state_name(info->state)));
}

static void add_device(void *data, const struct reconcile_device_info *info)
{
	struct control *c = ((void **)data)[0];
	json_t *list = ((void **)data)[1];
	json_t *o = usb_json(info->dev), *claimed = json_array(), *denied = json_array();
	struct attached_ctx a = { info->dev, NULL, json_array() };

	for (size_t i = 0; i < c->d->conf->n_vms; i++) {
		const struct conf_vm *vm = &c->d->conf->vms[i];

		switch (usb_vm_verdict(vm, info->dev, NULL)) {
		case USB_VERDICT_CLAIM:
			json_array_append_new(claimed, json_string(vm->name));
			break;
		case USB_VERDICT_DENIED:
			json_array_append_new(denied, json_string(vm->name));
			break;
		case USB_VERDICT_NONE:
			break;
		}
		a.vm = vm->name;
		reconcile_vm_items(c->d->rc, vm->name, find_attached, &a);
	}
	json_object_set_new(o, "owner", info->owner ? json_string(info->owner->name) : json_null());
	json_object_set_new(o, "rule", info->rule ? json_string(info->rule->name) : json_null());
	json_object_set_new(o, "mode", json_string(conf_attach_mode_name(info->mode)));
	json_object_set_new(o, "claimed-by", claimed);
	json_object_set_new(o, "denied-by", denied);
	json_object_set_new(o, "attached", a.out);
	json_object_set_new(
	    o, "override",
	    info->override == RECONCILE_OVERRIDE_NONE
		? json_null()
		: json_pack("{s:s,s:s}", "action",
			    info->override == RECONCILE_OVERRIDE_ATTACH ? "attach" : "detach", "vm",
			    info->override_vm));
	json_array_append_new(list, o);
}

static int cmp_port(const void *a, const void *b)
{
	const char *pa = json_string_value(json_object_get(*(json_t *const *)a, "port"));
	const char *pb = json_string_value(json_object_get(*(json_t *const *)b, "port"));

	return strverscmp(pa, pb);
}

static json_t *sorted(json_t *array)
{
	size_t n = json_array_size(array);
	json_t **items = xcalloc(n, sizeof(json_t *)), *out = json_array();

	for (size_t i = 0; i < n; i++)
		items[i] = json_array_get(array, i);
	qsort(items, n, sizeof(json_t *), cmp_port);
	for (size_t i = 0; i < n; i++)
		json_array_append(out, items[i]);
	free(items);
	json_decref(array);
	return out;
}

/* ------------------------------------------------------------- commands */

struct request {
	struct control *c;
	struct client *cl;
	json_t *id;
	json_t *args;
};

static bool arg_string(struct request *rq, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(rq->args, key);

	if (!v && !required) {
		*out = NULL;
		return true;
	}
	if (!v || !json_is_string(v)) {
		reply_error(rq->cl, rq->id, "GenericError",
			    v ? "argument '%s' must be a string" : "argument '%s' is missing", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

static void cmd_query_status(struct request *rq)
{
	struct control *c = rq->c;
	json_t *vms = json_array();

	for (size_t i = 0; i < c->d->conf->n_vms; i++)
		json_array_append_new(vms, vm_json(c, &c->d->conf->vms[i]));
	reply(rq->cl, rq->id,
	      json_pack("{s:s,s:s,s:s,s:o,s:o,s:b}", "version", PACKAGE_VERSION, "config-dir",
			c->d->opts.confdir, "udev",
			c->d->watch && watch_uses_udevd(c->d->watch) ? "udevd" : "kernel", "vms",
			vms, "focus",
			focus_switching(c->d->focus) ? json_string(focus_target(c->d->focus))
						     : json_null(),
			"input-released", focus_released(c->d->focus)));
}

static void cmd_query_usb(struct request *rq)
{
	json_t *list = json_array();
	void *ctx[2] = { rq->c, list };

	reconcile_devices(rq->c->d->rc, add_device, ctx);
	reply(rq->cl, rq->id, json_pack("{s:o}", "devices", sorted(list)));
}

static json_t *explain_one(struct control *c, const struct usb_device *d)
{
	const struct conf *conf = c->d->conf;
	const struct conf_usb_rule *rule;
	size_t claimers;
	const struct conf_vm *owner = usb_owner(conf, d, &rule, &claimers);
	json_t *vms = json_array();

	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];
		json_t *rules = json_array();
		static const char *const verdicts[] = {
			[USB_VERDICT_NONE] = "no match",
			[USB_VERDICT_CLAIM] = "claims",
			[USB_VERDICT_DENIED] = "denied",
		};

		for (size_t j = 0; j < vm->n_rules; j++) {
			const char *missed = NULL;
			bool ok = usb_rule_matches(&vm->rules[j], d, &missed);

			json_array_append_new(
			    rules, json_pack("{s:s,s:b,s:b,s:o}", "rule", vm->rules[j].name, "deny",
					     vm->rules[j].deny, "matched", ok, "missed",
					     str_or_null(ok ? NULL : missed)));
		}
		json_array_append_new(vms, json_pack("{s:s,s:s,s:o}", "vm", vm->name, "verdict",
						     verdicts[usb_vm_verdict(vm, d, NULL)], "rules",
						     rules));
	}
	return json_pack("{s:o,s:o,s:o,s:i,s:o}", "device", usb_json(d), "owner",
			 owner ? json_string(owner->name) : json_null(), "rule",
			 rule ? json_string(rule->name) : json_null(), "claimers", (int)claimers,
			 "vms", vms);
}

static void cmd_explain(struct request *rq)
{
	const struct usb_device **found = NULL;
	const char *spec;
	char *why = NULL;
	json_t *list;
	size_t n = 0;

	if (!arg_string(rq, "device", true, &spec))
		return;
	if (resolve_device(rq->c, spec, &found, &n, &why) < 0) {
		reply_error(rq->cl, rq->id, "DeviceNotFound", "%s", why);
		free(why);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, explain_one(rq->c, found[i]));
	free(found);
	reply(rq->cl, rq->id, json_pack("{s:o}", "devices", list));
}

static void log_request(struct request *rq, const char *what)
{
	log_info("control: uid %u pid %d: %s", (unsigned)rq->cl->uid, (int)rq->cl->pid, what);
}

static void on_waiter_timeout(struct loop_timer *t, void *data)
{
	struct waiter *w = data;

	/* Off the list first: answering may close the client, which frees
	 * the waiters still on it. */
	list_remove(&w->link);

	if (w->kind == WAIT_IDENTIFY && w->found)
		reply(w->client, w->id, json_incref(w->found)); /* its input node did not come */
	else if (w->kind == WAIT_IDENTIFY)
		reply_error(w->client, w->id, "Timeout",
			    "nothing was plugged in within the time given");
	else
		reply_error(w->client, w->id, "Timeout",
			    "vm %s: %s did not complete in %llu s; see: vmplugctl status", w->vm,
			    w->kind == WAIT_ATTACH ? "attach" : "detach",
			    (unsigned long long)(WAIT_USEC / USEC_PER_SEC));
	waiter_free(w);
}

static struct waiter *waiter_new(struct request *rq, enum waiter_kind kind, uint64_t usec)
{
	struct waiter *w = xnew(struct waiter);

	w->c = rq->c;
	w->client = rq->cl;
	w->id = rq->id ? json_incref(rq->id) : NULL;
	w->kind = kind;
	w->timer = loop_timer_new(rq->c->d->loop, on_waiter_timeout, w);
	loop_timer_arm_in(w->timer, usec);
	list_insert_tail(&rq->c->waiters, &w->link);
	return w;
}

struct state_ctx {
	const struct usb_device *dev;
	const char *id;
	enum reconcile_item_state state;
	const char *error;
	bool found;
};

static void find_state(void *data, const struct reconcile_item_info *info)
{
	struct state_ctx *s = data;

	if (info->input || info->bus != s->dev->bus || info->devnum != s->dev->devnum)
		return;
	s->id = info->id;
	s->state = info->state;
	s->error = info->error;
	s->found = true;
}

static void attach_or_detach(struct request *rq, bool attach)
{
	struct control *c = rq->c;
	const struct usb_device *d;
	const char *vm, *spec;
	char *why = NULL, *what;
	struct state_ctx st = { 0 };
	enum reconcile_vm_state vm_state;
	struct waiter *w;
	int r;

	if (!arg_string(rq, "vm", true, &vm) || !arg_string(rq, "device", true, &spec))
		return;
	if (!conf_find_vm(c->d->conf, vm)) {
		reply_error(rq->cl, rq->id, "VMNotFound",
			    "no VM named '%s' (see: vmplugctl status)", vm);
		return;
	}
	d = resolve_one(c, spec, &why);
	if (!d) {
		reply_error(rq->cl, rq->id, "DeviceNotFound", "%s", why);
		free(why);
		return;
	}
	what = xasprintf("%s %s %s", attach ? "attach" : "detach", vm, d->sysname);
	log_request(rq, what);
	free(what);
	r = reconcile_override(c->d->rc, d->syspath, vm,
			       attach ? RECONCILE_OVERRIDE_ATTACH : RECONCILE_OVERRIDE_DETACH);
	if (r == -EINVAL) {
		reply_error(rq->cl, rq->id, "GenericError",
			    "%s is a hub: hubs are never attached; attach the devices behind it",
			    d->sysname);
		return;
	}
	reconcile_vm_info(c->d->rc, vm, &vm_state, NULL);
	st.dev = d;
	reconcile_vm_items(c->d->rc, vm, find_state, &st);
	if (vm_state != RECONCILE_VM_READY) {
		reply(rq->cl, rq->id,
		      json_pack("{s:s,s:s,s:s}", "vm", vm, "port", d->sysname, "state",
				attach ? "waiting for the VM" : "detached"));
		return;
	}
	if (attach ? st.found && st.state == RECONCILE_ITEM_ATTACHED : !st.found) {
		reply(rq->cl, rq->id,
		      json_pack("{s:s,s:s,s:s}", "vm", vm, "port", d->sysname, "state",
				attach ? "attached" : "detached"));
		return;
	}
	if (attach && st.found && st.state == RECONCILE_ITEM_FAILED) {
		reply_error(rq->cl, rq->id, "GenericError", "vm %s: attaching %s failed: %s", vm,
			    d->sysname, st.error ? st.error : "unknown error");
		return;
	}
	w = waiter_new(rq, attach ? WAIT_ATTACH : WAIT_DETACH, WAIT_USEC);
	w->vm = xstrdup(vm);
	w->port = xstrdup(d->sysname);
	/* no item yet: the device waits for another VM to let go of it */
	w->usb_id = st.found ? xstrdup(st.id) : reconcile_usb_id(d, CONF_ATTACH_ADDRESS);
}

static void cmd_attach(struct request *rq)
{
	attach_or_detach(rq, true);
}

static void cmd_detach(struct request *rq)
{
	attach_or_detach(rq, false);
}

static void cmd_reload(struct request *rq)
{
	char **errors = NULL, *joined;

	log_request(rq, "reload");
	if (daemon_reload(rq->c->d, &errors) == 0) {
		reply(rq->cl, rq->id,
		      json_pack("{s:i,s:i}", "vms", (int)rq->c->d->conf->n_vms, "inputs",
				(int)rq->c->d->conf->n_inputs));
	} else {
		joined = strv_join(errors, "\n");
		reply_error(rq->cl, rq->id, "ConfigError",
			    "the configuration has %zu error(s); the running one is kept:\n%s",
			    strv_len(errors), joined);
		free(joined);
	}
	strv_free(errors);
}

static void cmd_switch(struct request *rq)
{
	const char *target;
	char *from, *why = NULL, *what;
	int r;

	if (!arg_string(rq, "target", true, &target))
		return;
	what = xasprintf("switch %s", target);
	log_request(rq, what);
	free(what);
	from = xstrdup(focus_target(rq->c->d->focus));
	r = focus_switch(rq->c->d->focus, target, &why);
	if (r < 0)
		reply_error(rq->cl, rq->id, r == -ENOENT ? "VMNotFound" : "GenericError", "%s",
			    why);
	else
		reply(rq->cl, rq->id,
		      json_pack("{s:s,s:s}", "from", from, "to", focus_target(rq->c->d->focus)));
	free(why);
	free(from);
}

static void cmd_subscribe(struct request *rq)
{
	rq->cl->subscribed = true;
	reply(rq->cl, rq->id, NULL);
}

static void cmd_identify(struct request *rq)
{
	json_t *t = json_object_get(rq->args, "timeout");
	json_int_t secs = 30;

	if (t &&
	    (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 3600)) {
		reply_error(rq->cl, rq->id, "GenericError",
			    "argument 'timeout' must be a number of seconds from 1 to 3600");
		return;
	}
	if (t)
		secs = json_integer_value(t);
	waiter_new(rq, WAIT_IDENTIFY, (uint64_t)secs * USEC_PER_SEC);
}

static const struct command {
	const char *name;
	void (*fn)(struct request *rq);
} commands[] = {
	{ "query-status", cmd_query_status },
	{ "query-usb", cmd_query_usb },
	{ "explain", cmd_explain },
	{ "attach", cmd_attach },
	{ "detach", cmd_detach },
	{ "reload", cmd_reload },
	{ "switch", cmd_switch },
	{ "subscribe", cmd_subscribe },
	{ "identify", cmd_identify },
};

int control_request_parse(const char *line, size_t len, struct control_request *out, char **error)
{
	json_error_t jerr;
	json_t *req, *exec, *args;

	memset(out, 0, sizeof(*out));
	req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		*error = xasprintf("invalid JSON: %s (column %d)", jerr.text, jerr.column);
		return -EINVAL;
	}
	out->root = req;
	if (!json_is_object(req)) {
		*error = xstrdup("a request must be a JSON object");
		return -EINVAL;
	}
	out->id = json_object_get(req, "id");
	exec = json_object_get(req, "execute");
	if (!json_is_string(exec)) {
		*error = xstrdup("a request needs \"execute\": \"COMMAND\" (a string)");
		return -EINVAL;
	}
	args = json_object_get(req, "arguments");
	if (args && !json_is_object(args)) {
		*error = xstrdup("\"arguments\" must be an object");
		return -EINVAL;
	}
	out->command = json_string_value(exec);
	out->args = args;
	return 0;
}

void control_request_clear(struct control_request *rq)
{
	json_decref(rq->root);
	memset(rq, 0, sizeof(*rq));
}

static void handle_line(struct client *cl, const char *line, size_t len)
{
	struct control_request req;
	struct request rq = { .c = cl->c, .cl = cl };
	char *error = NULL;

	if (control_request_parse(line, len, &req, &error) < 0) {
		reply_error(cl, req.id, "GenericError", "%s", error);
		free(error);
		control_request_clear(&req);
		return;
	}
	rq.id = req.id;
	rq.args = req.args ? req.args : json_object();
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (streq(commands[i].name, req.command)) {
			commands[i].fn(&rq);
			goto out;
		}
	}
	reply_error(cl, req.id, "CommandNotFound", "The command %s has not been found",
		    req.command);
out:
	if (!req.args)
		json_decref(rq.args);
	control_request_clear(&req);
}

/* ------------------------------------------------------------- clients */

static void client_free(struct client *cl)
{
	client_close(cl);
	list_remove(&cl->link);
	free(cl->in);
	free(cl->out);
	free(cl);
}

static void on_reap(struct loop_timer *t, void *data)
{
	struct control *c = data;
	struct client *cl, *tmp;

	list_for_each_safe(cl, tmp, &c->clients, link)
		if (cl->dead)
			client_free(cl);
}

/* Handle every complete line in the buffer. */
static void process_input(struct client *cl)
{
	size_t start = 0;

	while (!cl->dead) {
		char *nl = memchr(cl->in + start, '\n', cl->in_len - start);
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (cl->in + start));
		if (cl->discarding) {
			cl->discarding = false;
		} else if (len > CONTROL_MAX_REQUEST) {
			reply_error(cl, NULL, "GenericError",
				    "request too large: over %d bytes; it is ignored",
				    CONTROL_MAX_REQUEST);
		} else {
			size_t l = len;

			while (l && (cl->in[start + l - 1] == '\r'))
				l--;
			if (l)
				handle_line(cl, cl->in + start, l);
		}
		start += len + 1;
	}
	memmove(cl->in, cl->in + start, cl->in_len - start);
	cl->in_len -= start;
	if (cl->in_len > CONTROL_MAX_REQUEST) {
		if (!cl->discarding)
			reply_error(cl, NULL, "GenericError",
				    "request too large: over %d bytes; it is ignored",
				    CONTROL_MAX_REQUEST);
		cl->discarding = true;
		cl->in_len = 0;
	}
}

static void on_client(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct client *cl = data;
	char buf[8192];
	ssize_t n;

	if (revents & EPOLLOUT) {
		flush(cl);
		if (cl->dead || !(revents & EPOLLIN))
			return;
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_close(cl);
		return;
	}
	if (n < 0)
		return;
	cl->in = xrealloc(cl->in, cl->in_len + (size_t)n + 1);
	memcpy(cl->in + cl->in_len, buf, (size_t)n);
	cl->in_len += (size_t)n;
	process_input(cl);
}

/* Is gid among the peer's supplementary groups as they were when it
 * connected (SO_PEERGROUPS)? -ENOPROTOOPT on kernels before 4.13. */
static int peer_in_group(int fd, gid_t gid)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *groups = NULL;
	int r = 0;

	for (;;) {
		socklen_t cap = len;

		groups = xrealloc(groups, cap);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			break;
		if (errno != ERANGE || len <= cap) {
			r = -errno;
			goto out;
		}
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == gid)
			r = 1;
out:
	free(groups);
	return r;
}

/* root, or a member of the control group (primary or supplementary). */
static bool allowed(struct control *c, int fd, const struct ucred *cred)
{
	char *path, *line = NULL;
	size_t cap = 0;
	bool ok = false;
	FILE *f;
	int r;

	if (cred->uid == 0)
		return true;
	if (!c->have_gid)
		return false;
	if (cred->gid == c->gid)
		return true;
	/* The groups the peer had when it connected: /proc/PID would show
	 * whatever process has that pid by the time it is read. */
	r = peer_in_group(fd, c->gid);
	if (r >= 0)
		return r == 1;
	path = xasprintf("/proc/%d/status", (int)cred->pid);
	f = fopen(path, "re");
	free(path);
	if (!f)
		return false;
	while (!ok && getline(&line, &cap, f) > 0) {
		char **groups;

		if (!startswith(line, "Groups:"))
			continue;
		groups = strv_split(line + 7, " \t\n");
		for (size_t i = 0; groups[i] && !ok; i++) {
			unsigned long g;

			ok = parse_uint(groups[i], 10, ~0UL, &g) == 0 && g == c->gid;
		}
		strv_free(groups);
	}
	free(line);
	fclose(f);
	return ok;
}

static void on_accept(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 5);
	struct control *c = data;
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	struct client *cl;
	int cfd;

	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
	cl = xnew(struct client);
	cl->c = c;
	cl->fd = cfd;
	cl->uid = cred.uid;
	cl->pid = cred.pid;
	list_insert_tail(&c->clients, &cl->link);
	cl->src = loop_add_fd(c->d->loop, cfd, EPOLLIN, on_client, cl);
	if (!cl->src) {
		client_close(cl);
		return;
	}
	if (!allowed(c, cfd, &cred)) {
		log_ratelimited(&rl, LOG_LEVEL_WARNING,
				"control: refused uid %u pid %d: not root and not in group %s",
				(unsigned)cred.uid, (int)cred.pid, c->group ? c->group : "(none)");
		reply_error(cl, NULL, "PermissionDenied",
			    "uid %u may not use vmplugd: only root%s%s may", (unsigned)cred.uid,
			    c->group ? " and members of group " : "", c->group ? c->group : "");
		cl->closing = true;
		flush(cl);
		return;
	}
	send_json(cl, json_pack("{s:{s:s}}", "vmplug", "version", PACKAGE_VERSION));
}

/* ---------------------------------------------------- daemon callbacks */

void control_reconcile_event(struct control *c, const struct reconcile_event *ev)
{
	struct waiter *w, *tmp;
	struct list done;
	json_t *data = json_pack("{s:s}", "vm", ev->vm);
	const char *name = NULL;

	if (!c) {
		json_decref(data);
		return;
	}
	if (ev->id)
		json_object_set_new(data, "id", json_string(ev->id));
	if (ev->dev)
		json_object_set_new(data, "device", usb_json(ev->dev));
	switch (ev->type) {
	case RECONCILE_VM_UP:
		name = "VM_UP";
		break;
	case RECONCILE_VM_GONE:
		name = "VM_GONE";
		json_object_set_new(data, "reason", str_or_null(ev->msg));
		break;
	case RECONCILE_USB_ATTACHED:
		name = "USB_ATTACHED";
		break;
	case RECONCILE_USB_DETACHED:
		name = "USB_DETACHED";
		break;
	case RECONCILE_USB_FAILED:
	case RECONCILE_INPUT_FAILED:
		name = ev->type == RECONCILE_USB_FAILED ? "USB_FAILED" : "INPUT_FAILED";
		json_object_set_new(data, "error", str_or_null(ev->msg));
		json_object_set_new(data, "final", json_boolean(ev->final));
		break;
	case RECONCILE_INPUT_ATTACHED:
		name = "INPUT_ATTACHED";
		break;
	case RECONCILE_INPUT_DETACHED:
		name = "INPUT_DETACHED";
		break;
	}
	list_init(&done);
	list_for_each_safe(w, tmp, &c->waiters, link) {
		bool gone = ev->type == RECONCILE_VM_GONE;

		if (w->kind == WAIT_IDENTIFY || !streq(w->vm, ev->vm) ||
		    (!gone && (!ev->id || !streq(w->usb_id, ev->id))))
			continue;
		if (gone ||
		    (w->kind == WAIT_ATTACH &&
		     (ev->type == RECONCILE_USB_ATTACHED || ev->type == RECONCILE_USB_FAILED)) ||
		    (w->kind == WAIT_DETACH && ev->type == RECONCILE_USB_DETACHED)) {
			list_remove(&w->link);
			list_insert_tail(&done, &w->link);
		}
	}
	/* Answered off the list: an answer may close a client, which frees
	 * the waiters still on the list. */
	list_for_each_safe(w, tmp, &done, link) {
		bool gone = ev->type == RECONCILE_VM_GONE;

		if (w->kind == WAIT_ATTACH && ev->type == RECONCILE_USB_ATTACHED)
			reply(w->client, w->id,
			      json_pack("{s:s,s:s,s:s,s:s}", "vm", w->vm, "port", w->port, "id",
					w->usb_id, "state", "attached"));
		else if (w->kind == WAIT_DETACH && ev->type == RECONCILE_USB_DETACHED)
			reply(w->client, w->id,
			      json_pack("{s:s,s:s,s:s,s:s}", "vm", w->vm, "port", w->port, "id",
					w->usb_id, "state", "detached"));
		else if (w->kind == WAIT_ATTACH && ev->type == RECONCILE_USB_FAILED)
			reply_error(w->client, w->id, "GenericError", "vm %s: attach failed: %s%s",
				    w->vm, ev->msg ? ev->msg : "unknown error",
				    ev->final ? "" : " (vmplugd keeps trying)");
		else if (gone)
			reply_error(w->client, w->id, "GenericError", "vm %s went away: %s", w->vm,
				    ev->msg ? ev->msg : "");
		waiter_free(w);
	}
	control_emit(c, name, data);
}

/* Answer the identify waiters that have found nothing yet (with ret), or,
 * for an input node, those waiting for the input node of the USB device
 * at usb_syspath (with both). Takes ret. */
static void identified(struct control *c, json_t *ret, const char *usb_syspath)
{
	struct waiter *w, *tmp;
	struct list done;

	list_init(&done);
	list_for_each_safe(w, tmp, &c->waiters, link) {
		if (w->kind != WAIT_IDENTIFY)
			continue;
		if (w->found &&
		    !(usb_syspath && w->found_syspath && streq(usb_syspath, w->found_syspath)))
			continue;
		list_remove(&w->link);
		list_insert_tail(&done, &w->link);
	}
	list_for_each_safe(w, tmp, &done, link) {
		json_t *answer = json_deep_copy(ret);

		if (w->found) {
			/* the USB device's answer, with its input node's section added */
			char *both = xasprintf(
			    "%s\n%s", json_string_value(json_object_get(w->found, "suggestion")),
			    json_string_value(json_object_get(ret, "suggestion")));

			json_decref(answer);
			answer = json_deep_copy(w->found);
			json_object_set(answer, "input", ret);
			json_object_set_new(answer, "suggestion", json_string(both));
			free(both);
		}
		reply(w->client, w->id, answer);
		waiter_free(w);
	}
	json_decref(ret);
}

/* How long identify waits for the input node of a USB keyboard or mouse. */
#define INPUT_NODE_WAIT_USEC (2 * USEC_PER_SEC)

void control_usb_plugged(struct control *c, const struct usb_device *dev)
{
	struct waiter *w;
	json_t *ret;
	char *text;

	if (!c || usb_device_is_root_hub(dev))
		return;
	text = usb_suggest_rule(dev);
	ret = json_pack("{s:s,s:o,s:s}", "kind", "usb", "device", usb_json(dev), "suggestion",
			text);
	free(text);
	if (!usb_device_has_if_class(dev, USB_CLASS_HID)) {
		identified(c, ret, NULL);
		return;
	}
	/* A keyboard or mouse: its input node follows in a moment, and the
	 * user probably wants an [input] section for it as well. */
	list_for_each(w, &c->waiters, link) {
		if (w->kind != WAIT_IDENTIFY || w->found)
			continue;
		w->found = json_incref(ret);
		w->found_syspath = xstrdup(dev->syspath);
		loop_timer_arm_in(w->timer, INPUT_NODE_WAIT_USEC);
	}
	json_decref(ret);
}

void control_input_plugged(struct control *c, const char *devnode, const char *by_id,
			   const char *name, bool keyboard, bool mouse, const char *usb_syspath)
{
	const char *path = by_id ? by_id : devnode;
	const char *section = keyboard ? "kbd" : mouse ? "mouse" : "input";
	char *text;

	if (!c)
		return;
	text = xasprintf("# %s: for vmplug.conf%s\n"
			 "[input \"%s\"]\n"
			 "device = %s\n"
			 "# and in each VM file that should get it: inputs = %s\n",
			 name ? name : devnode,
			 by_id ? ""
			       : "\n# No /dev/input/by-id link: this path may change on replug.",
			 section, path, section);
	identified(c,
		   json_pack("{s:s,s:s,s:o,s:o,s:s}", "kind", "input", "devnode", devnode, "by-id",
			     str_or_null(by_id), "name", str_or_null(name), "suggestion", text),
		   usb_syspath);
	free(text);
}

/* -------------------------------------------------------------- set-up */

static int listen_on(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, probe;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	/* A socket file left by a vmplugd that died is replaced; one that
	 * answers belongs to a running vmplugd. */
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0) {
		int r = connect(probe, (struct sockaddr *)&addr, sizeof(addr));

		close(probe);
		if (r == 0)
			return -EADDRINUSE;
	}
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 16) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

struct control *control_new(struct daemon *d, const char *path, const char *group)
{
	struct control *c = xnew(struct control);
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int r;

	c->d = d;
	c->fd = -1;
	c->path = xstrdup(path);
	c->group = group ? xstrdup(group) : NULL;
	c->reaper = loop_timer_new(d->loop, on_reap, c);
	list_init(&c->clients);
	list_init(&c->waiters);
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir, 0755);
	}
	free(dir);
	r = listen_on(path);
	if (r < 0) {
		control_free(c);
		errno = -r;
		return NULL;
	}
	c->fd = r;
	if (group) {
		struct group *g = getgrnam(group);

		if (g) {
			c->gid = g->gr_gid;
			c->have_gid = true;
		} else {
			log_warning("control: group '%s' (control-group) does not exist; only root "
				    "may use %s",
				    group, path);
		}
	}
	if (chmod(path, c->have_gid ? 0660 : 0600) < 0 ||
	    (c->have_gid && chown(path, 0, c->gid) < 0 && geteuid() == 0))
		log_warning("control: cannot set the owner and mode of %s: %s", path,
			    strerror(errno));
	c->src = loop_add_fd(d->loop, c->fd, EPOLLIN, on_accept, c);
	if (!c->src) {
		r = errno;
		control_free(c);
		errno = r;
		return NULL;
	}
	log_info("control: listening on %s", path);
	return c;
}

void control_free(struct control *c)
{
	struct client *cl, *tmp;

	if (!c)
		return;
	list_for_each_safe(cl, tmp, &c->clients, link)
		client_free(cl);
	loop_timer_free(c->reaper);
	loop_source_remove(c->src);
	if (c->fd >= 0) {
		closep(&c->fd);
		unlink(c->path);
	}
	free(c->path);
	free(c->group);
	free(c);
}

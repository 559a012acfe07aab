/* The control socket's commands (status, usb, explain, attach, detach,
 * reload, switch, subscribe) and the reconciler's changes turned into
 * answers and events; identify is in identify.c. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "control/control-int.h"
#include "usb/rules.h"
#include "util/log.h"

/* How long attach and detach wait for the reconciler. */
#define WAIT_USEC (20 * USEC_PER_SEC)

/* ---------------------------------------------------------- descriptions */

json_t *control_json_str(const char *s)
{
	char *valid;
	json_t *j;

	if (!s)
		return json_null();
	valid = xstrescape(s, STR_ESCAPE_INVALID);
	j = json_string(valid);
	free(valid);
	return j;
}

/* v in `digits` hex digits ("046d", "03"), or null for an id or class
 * the device does not have (-1). */
static json_t *hex(int v, int digits)
{
	char buf[8];

	if (v < 0)
		return json_null();
	snprintf(buf, sizeof(buf), "%0*x", digits, v & 0xffff);
	return json_string(buf);
}

json_t *control_json_usb(const struct usb_device *d)
{
	char *id_path = usb_device_id_path(d);
	json_t *o = json_pack(
	    "{s:o,s:i,s:i,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "port", control_json_str(d->sysname),
	    "bus", (int)d->bus, "devnum", (int)d->devnum, "vendor", hex(d->vendor, 4), "product",
	    hex(d->product, 4), "serial", control_json_str(d->serial), "serial-udev",
	    control_json_str(d->serial_udev), "manufacturer", control_json_str(d->manufacturer),
	    "product-name", control_json_str(d->product_name), "hub", usb_device_is_hub(d));

	json_object_set_new(o, "id-path", control_json_str(id_path));
	free(id_path);
	return o;
}

struct items_ctx {
	json_t *usb;
	json_t *inputs;
	json_t *remotes;
	int pending;
};

/* One item of a VM into status: its USB devices and its inputs apart. */
static void add_item(void *data, const struct control_item *it)
{
	struct items_ctx *ctx = data;
	json_t *o = json_pack("{s:o,s:o,s:o,s:i}", "id", control_json_str(it->id), "state",
			      control_json_str(it->state), "error", control_json_str(it->error),
			      "failures", (int)it->failures);

	if (it->busy)
		ctx->pending++;
	if (it->input) {
		json_array_append_new(ctx->inputs, o);
		return;
	}
	if (it->remote) {
		json_object_set_new(o, "listen", control_json_str(it->listen));
		json_array_append_new(ctx->remotes, o);
		return;
	}
	json_object_set_new(o, "bus", json_integer(it->bus));
	json_object_set_new(o, "devnum", json_integer(it->devnum));
	json_object_set_new(o, "device", it->dev ? control_json_usb(it->dev) : json_null());
	json_array_append_new(ctx->usb, o);
}

/* A VM in status: how it is reached, its state and what it holds. */
static json_t *vm_json(struct control *c, const struct conf_vm *vm)
{
	struct items_ctx ctx = { json_array(), json_array(), json_array(), 0 };
	struct control_vm st = { 0 };

	c->ops->vm(c->data, vm->name, &st);
	c->ops->vm_items(c->data, vm->name, add_item, &ctx);
	return json_pack(
	    "{s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:i}", "name", control_json_str(vm->name), "backend",
	    conf_backend_name(vm->backend), "target",
	    control_json_str(vm->backend == CONF_BACKEND_QMP ? vm->qmp_socket : vm->uri), "state",
	    control_json_str(st.state), "last-error", control_json_str(st.last_error), "usb",
	    ctx.usb, "inputs", ctx.inputs, "remotes", ctx.remotes, "pending", ctx.pending);
}

/* ------------------------------------------------------------- devices */

struct match_ctx {
	const char *port;
	const char *id_path;
	int vendor, product;
	const char *serial;
	const struct usb_device **found;
	size_t n;
};

/* Collect the device when it is the one the user named. */
static void match_device(void *data, const struct control_device *info)
{
	struct match_ctx *m = data;
	const struct usb_device *d = info->dev;

	if (m->id_path) {
		char *id = usb_device_id_path(d);
		bool same = id && streq(id, m->id_path);

		free(id);
		if (!same)
			return;
	} else if (m->port ? !streq(m->port, d->sysname)
			   : (d->vendor != m->vendor || d->product != m->product ||
			      (m->serial && !usb_device_serial_is(d, m->serial))))
		return;
	m->found = xrealloc(m->found, (m->n + 1) * sizeof(*m->found));
	m->found[m->n++] = d;
}

/* DEVICE is a port path ("3-10.2"), its ID_PATH, VID:PID or VID:PID:SERIAL. On
 * success *found is an array of the present devices it names. */
static int resolve_device(struct control *c, const char *spec, const struct usb_device ***found,
			  size_t *n, char **why)
{
	struct match_ctx m = { .vendor = -1, .product = -1 };
	unsigned long v;
	char **parts = NULL;
	int r = 0;

	if (isalpha((unsigned char)spec[0]) && strstr(spec, "-usb-")) {
		m.id_path = spec;
	} else if (strchr(spec, ':')) {
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
	c->ops->devices(c->data, match_device, &m);
	if (m.n == 0)
		r = -ENOENT;
out:
	if (r == -EINVAL)
		*why = xasprintf("'%s' is not a device: give a port path (3-10.2), VID:PID or "
				 "VID:PID:SERIAL, or udev's ID_PATH",
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

/* Note where the device is attached (or attaching, detaching...). */
static void find_attached(void *data, const struct control_item *it)
{
	struct attached_ctx *a = data;

	if (it->input || it->bus != a->dev->bus || it->devnum != a->dev->devnum)
		return;
	json_array_append_new(a->out, json_pack("{s:o,s:o,s:o}", "vm", control_json_str(a->vm),
						"id", control_json_str(it->id), "state",
						control_json_str(it->state)));
}

struct devices_ctx {
	struct control *c;
	json_t *list;
	const struct usb_device **only; /* with their details; NULL: every device */
	size_t n_only;
};

/* What else a rule can match on: classes, udev properties and tags. */
static void add_details(json_t *o, const struct usb_device *d)
{
	json_t *ifs = json_array(), *props = json_array(), *tags = json_array();

	for (size_t i = 0; i < d->n_if_classes; i++)
		json_array_append_new(ifs, hex(d->if_classes[i], 2));
	for (size_t i = 0; d->props && d->props[i]; i++)
		json_array_append_new(props, control_json_str(d->props[i]));
	for (size_t i = 0; d->tags && d->tags[i]; i++)
		json_array_append_new(tags, control_json_str(d->tags[i]));
	json_object_set_new(o, "device-class", hex(d->device_class, 2));
	json_object_set_new(o, "interface-classes", ifs);
	json_object_set_new(o, "properties", props);
	json_object_set_new(o, "tags", tags);
}

/* One device in `usb`: who claims and denies it, who gets it and where it is. */
static void add_device(void *data, const struct control_device *info)
{
	struct devices_ctx *ctx = data;
	struct control *c = ctx->c;
	const struct conf *conf = c->ops->conf(c->data);
	json_t *o, *claimed, *denied;
	struct attached_ctx a = { info->dev, NULL, NULL };
	size_t i;

	for (i = 0; i < ctx->n_only && ctx->only[i] != info->dev; i++)
		;
	if (ctx->only && i == ctx->n_only)
		return;
	o = control_json_usb(info->dev);
	claimed = json_array();
	denied = json_array();
	a.out = json_array();
	if (ctx->only)
		add_details(o, info->dev);

	for (i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];

		switch (usb_vm_verdict(vm, info->dev, NULL)) {
		case USB_VERDICT_CLAIM:
			json_array_append_new(claimed, control_json_str(vm->name));
			break;
		case USB_VERDICT_DENIED:
			json_array_append_new(denied, control_json_str(vm->name));
			break;
		case USB_VERDICT_NONE:
			break;
		}
		a.vm = vm->name;
		c->ops->vm_items(c->data, vm->name, find_attached, &a);
	}
	json_object_set_new(o, "owner", control_json_str(info->owner ? info->owner->name : NULL));
	json_object_set_new(o, "rule", control_json_str(info->rule ? info->rule->name : NULL));
	json_object_set_new(o, "mode", json_string(conf_attach_mode_name(info->mode)));
	json_object_set_new(o, "claimed-by", claimed);
	json_object_set_new(o, "denied-by", denied);
	json_object_set_new(o, "attached", a.out);
	json_object_set_new(o, "override",
			    info->override
				? json_pack("{s:o,s:o}", "action", control_json_str(info->override),
					    "vm", control_json_str(info->override_vm))
				: json_null());
	json_array_append_new(ctx->list, o);
}

/* qsort() order of devices: by port, 1-2 before 1-10. */
static int cmp_port(const void *a, const void *b)
{
	const char *pa = json_string_value(json_object_get(*(json_t *const *)a, "port"));
	const char *pb = json_string_value(json_object_get(*(json_t *const *)b, "port"));

	return strverscmp(pa, pb);
}

/* The devices of array in port order; takes array. */
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

/* The string argument key in *out (NULL when absent and not required);
 * false once the client is told what is wrong with it. */
static bool arg_string(const struct control_call *call, const char *key, bool required,
		       const char **out)
{
	json_t *v = json_object_get(call->args, key);

	if (!v && !required) {
		*out = NULL;
		return true;
	}
	if (!v || !json_is_string(v)) {
		control_reply_error(
		    call->cl, call->id, "GenericError",
		    v ? "argument '%s' must be a string" : "argument '%s' is missing", key);
		return false;
	}
	*out = json_string_value(v);
	return true;
}

/* query-status: the daemon, each VM and what it holds, and the focus. */
static void cmd_query_status(const struct control_call *call)
{
	struct control *c = call->c;
	const struct conf *conf = c->ops->conf(c->data);
	struct control_status st = { 0 };
	json_t *vms = json_array();

	for (size_t i = 0; i < conf->n_vms; i++)
		json_array_append_new(vms, vm_json(c, &conf->vms[i]));
	c->ops->status(c->data, &st);
	control_reply(call->cl, call->id,
		      json_pack("{s:s,s:o,s:s,s:o,s:o,s:b}", "version", PACKAGE_VERSION,
				"config-dir", control_json_str(st.config_dir), "udev",
				st.udevd ? "udevd" : "kernel", "vms", vms, "focus",
				control_json_str(st.switching ? st.focus : NULL), "input-released",
				st.input_released));
}

/* query-usb: every present device, who claims it and where it is; with
 * "device", the devices it names, with everything a rule can match on. */
static void cmd_query_usb(const struct control_call *call)
{
	struct devices_ctx ctx = { call->c, NULL, NULL, 0 };
	const char *spec;
	char *why = NULL;

	if (!arg_string(call, "device", false, &spec))
		return;
	if (spec && resolve_device(call->c, spec, &ctx.only, &ctx.n_only, &why) < 0) {
		control_reply_error(call->cl, call->id, "DeviceNotFound", "%s", why);
		free(why);
		return;
	}
	ctx.list = json_array();
	call->c->ops->devices(call->c->data, add_device, &ctx);
	free(ctx.only);
	control_reply(call->cl, call->id, json_pack("{s:o}", "devices", sorted(ctx.list)));
}

/* One key of a rule into explain's "keys". */
static void add_key(void *data, const char *key, const char *value, bool matched)
{
	json_array_append_new(
	    data, json_pack("{s:s,s:s,s:b}", "key", key, "value", value, "matched", matched));
}

/* explain for one device: every VM's verdict, every rule's match or the
 * key that missed, and who gets it. */
static json_t *explain_one(struct control *c, const struct usb_device *d)
{
	const struct conf *conf = c->ops->conf(c->data);
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
			json_t *keys = json_array();

			usb_rule_explain(&vm->rules[j], d, add_key, keys);
			json_array_append_new(
			    rules, json_pack("{s:o,s:b,s:b,s:o,s:o}", "rule",
					     control_json_str(vm->rules[j].name), "deny",
					     vm->rules[j].deny, "matched", ok, "missed",
					     control_json_str(ok ? NULL : missed), "keys", keys));
		}
		const struct conf_usb_rule *why = NULL;
		enum usb_verdict v = usb_vm_verdict(vm, d, &why);
		json_t *o = json_pack("{s:o,s:s,s:o}", "vm", control_json_str(vm->name), "verdict",
				      verdicts[v], "rules", rules);

		/* a deny rule holds against every request: say which and where */
		if (v == USB_VERDICT_DENIED)
			json_object_set_new(o, "deny-rule",
					    json_pack("{s:o,s:o,s:i}", "rule",
						      control_json_str(why->name), "file",
						      control_json_str(why->origin.file), "line",
						      why->origin.line));
		json_array_append_new(vms, o);
	}
	return json_pack("{s:o,s:o,s:o,s:i,s:o}", "device", control_json_usb(d), "owner",
			 control_json_str(owner ? owner->name : NULL), "rule",
			 control_json_str(rule ? rule->name : NULL), "claimers", (int)claimers,
			 "vms", vms);
}

/* explain DEVICE: every matching device's verdicts, rule by rule. */
static void cmd_explain(const struct control_call *call)
{
	const struct usb_device **found = NULL;
	const char *spec;
	char *why = NULL;
	json_t *list;
	size_t n = 0;

	if (!arg_string(call, "device", true, &spec))
		return;
	if (resolve_device(call->c, spec, &found, &n, &why) < 0) {
		control_reply_error(call->cl, call->id, "DeviceNotFound", "%s", why);
		free(why);
		return;
	}
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, explain_one(call->c, found[i]));
	free(found);
	control_reply(call->cl, call->id, json_pack("{s:o}", "devices", list));
}

struct state_ctx {
	const struct usb_device *dev;
	const struct control_item *item; /* a copy of the device's item in *copy */
	struct control_item copy;
};

/* Find the VM's item for the device. */
static void find_state(void *data, const struct control_item *it)
{
	struct state_ctx *s = data;

	if (it->input || it->bus != s->dev->bus || it->devnum != s->dev->devnum)
		return;
	s->copy = *it;
	s->item = &s->copy;
}

/* An attach or detach waited 20 s for the reconciler in vain. */
static void wait_expired(struct control_waiter *w)
{
	control_reply_error(w->client, w->id, "Timeout",
			    "vm %s: %s did not complete in %llu s; see: vmplugctl status", w->vm,
			    w->kind == CONTROL_WAIT_ATTACH ? "attach" : "detach",
			    (unsigned long long)(WAIT_USEC / USEC_PER_SEC));
}

/* An attach refused because a [usb-deny] rule of vm matches d: said to
 * the client and logged, naming the rule and where it is written. */
static void reply_denied(const struct control_call *call, const struct conf_vm *vm,
			 const struct usb_device *d)
{
	const struct conf_usb_rule *rule = NULL;

	usb_vm_verdict(vm, d, &rule);
	log_warning("control: uid %u pid %d: attach %s %s refused: denied by [usb-deny \"%s\"] "
		    "at %s:%d",
		    (unsigned)call->cl->uid, (int)call->cl->pid, vm->name, d->sysname, rule->name,
		    rule->origin.file, rule->origin.line);
	control_reply_error(call->cl, call->id, "DeviceDenied",
			    "vm %s: %s is denied by [usb-deny \"%s\"] at %s:%d; no request can "
			    "attach it, only a change to the configuration",
			    vm->name, d->sysname, rule->name, rule->origin.file, rule->origin.line);
}

/* attach and detach: the override, then an answer at once when the VM
 * is down or already as asked, else when the reconciler reports it. */
static void attach_or_detach(const struct control_call *call, bool attach)
{
	struct control *c = call->c;
	const struct usb_device *d;
	const char *vm, *spec;
	char *why = NULL;

	if (!arg_string(call, "vm", true, &vm) || !arg_string(call, "device", true, &spec))
		return;
	/* before anything is changed: a request refused changes nothing */
	if (!control_may_wait(call))
		return;
	if (!conf_find_vm(c->ops->conf(c->data), vm)) {
		control_reply_error(call->cl, call->id, "VMNotFound",
				    "no VM named '%s' (see: vmplugctl status)", vm);
		return;
	}
	d = resolve_one(c, spec, &why);
	if (!d) {
		control_reply_error(call->cl, call->id, "DeviceNotFound", "%s", why);
		free(why);
		return;
	}
	control_attach_device(call, vm, d, attach);
}

int control_attach_device(const struct control_call *call, const char *vm,
			  const struct usb_device *d, bool attach)
{
	struct control *c = call->c;
	char *what;
	struct state_ctx st = { 0 };
	struct control_vm vm_state = { 0 };
	struct control_waiter *w;
	int r;

	what = xasprintf("%s %s %s", attach ? "attach" : "detach", vm, d->sysname);
	control_log_request(call, what);
	free(what);
	r = c->ops->override(c->data, d, vm, attach);
	if (r == -EPERM) {
		reply_denied(call, conf_find_vm(c->ops->conf(c->data), vm), d);
		return r;
	}
	if (r == -EINVAL) {
		control_reply_error(
		    call->cl, call->id, "GenericError",
		    "%s is a hub: hubs are never attached; attach the devices behind it",
		    d->sysname);
		return r;
	}
	c->ops->vm(c->data, vm, &vm_state);
	st.dev = d;
	c->ops->vm_items(c->data, vm, find_state, &st);
	if (!vm_state.ready) {
		control_reply(call->cl, call->id,
			      json_pack("{s:o,s:o,s:s}", "vm", control_json_str(vm), "port",
					control_json_str(d->sysname), "state",
					attach ? "waiting for the VM" : "detached"));
		return 0;
	}
	if (attach ? st.item && st.item->attached : !st.item) {
		control_reply(call->cl, call->id,
			      json_pack("{s:o,s:o,s:s}", "vm", control_json_str(vm), "port",
					control_json_str(d->sysname), "state",
					attach ? "attached" : "detached"));
		return 0;
	}
	if (attach && st.item && st.item->failed) {
		control_reply_error(call->cl, call->id, "GenericError",
				    "vm %s: attaching %s failed: %s", vm, d->sysname,
				    st.item->error ? st.item->error : "unknown error");
		return -EIO;
	}
	w = control_waiter_new(call, attach ? CONTROL_WAIT_ATTACH : CONTROL_WAIT_DETACH, WAIT_USEC,
			       wait_expired);
	w->vm = xstrdup(vm);
	w->port = xstrdup(d->sysname);
	/* no item yet: the device waits for another VM to let go of it */
	w->usb_id = st.item ? xstrdup(st.item->id) : c->ops->usb_id(c->data, d);
	return 0;
}

static void cmd_attach(const struct control_call *call)
{
	attach_or_detach(call, true);
}

static void cmd_detach(const struct control_call *call)
{
	attach_or_detach(call, false);
}

/* reload: re-read the configuration, or list its errors. */
static void cmd_reload(const struct control_call *call)
{
	struct control *c = call->c;
	char **errors = NULL, *joined;

	control_log_request(call, "reload");
	if (c->ops->reload(c->data, &errors) == 0) {
		const struct conf *conf = c->ops->conf(c->data);

		control_reply(
		    call->cl, call->id,
		    json_pack("{s:i,s:i}", "vms", (int)conf->n_vms, "inputs", (int)conf->n_inputs));
	} else {
		joined = strv_join(errors, "\n");
		control_reply_error(
		    call->cl, call->id, "ConfigError",
		    "the configuration has %zu error(s); the running one is kept:\n%s",
		    strv_len(errors), joined);
		free(joined);
	}
	strv_free(errors);
}

/* switch TARGET: move the focus, answering where from and to. */
static void cmd_switch(const struct control_call *call)
{
	struct control *c = call->c;
	struct control_status st = { 0 };
	const char *target;
	char *from, *why = NULL, *what;
	int r;

	if (!arg_string(call, "target", true, &target))
		return;
	what = xasprintf("switch %s", target);
	control_log_request(call, what);
	free(what);
	c->ops->status(c->data, &st);
	from = xstrdup(st.focus);
	r = c->ops->focus_switch(c->data, target, &why);
	c->ops->status(c->data, &st);
	if (r < 0)
		control_reply_error(call->cl, call->id,
				    r == -ENOENT ? "VMNotFound" : "GenericError", "%s", why);
	else
		control_reply(call->cl, call->id,
			      json_pack("{s:o,s:o}", "from", control_json_str(from), "to",
					control_json_str(st.focus)));
	free(why);
	free(from);
}

/* subscribe: this client gets the events from now on. */
static void cmd_subscribe(const struct control_call *call)
{
	call->cl->subscribed = true;
	control_reply(call->cl, call->id, NULL);
}

static const struct command {
	const char *name;
	void (*fn)(const struct control_call *call);
} commands[] = {
	{ CONTROL_CMD_QUERY_STATUS, cmd_query_status },
	{ CONTROL_CMD_QUERY_USB, cmd_query_usb },
	{ CONTROL_CMD_EXPLAIN, cmd_explain },
	{ CONTROL_CMD_ATTACH, cmd_attach },
	{ CONTROL_CMD_DETACH, cmd_detach },
	{ CONTROL_CMD_RELOAD, cmd_reload },
	{ CONTROL_CMD_SWITCH, cmd_switch },
	{ CONTROL_CMD_SUBSCRIBE, cmd_subscribe },
	{ CONTROL_CMD_IDENTIFY, control_cmd_identify },
	{ CONTROL_CMD_ANSWER, control_cmd_answer },
	{ CONTROL_CMD_QUERY_REMEMBERED, control_cmd_query_remembered },
	{ CONTROL_CMD_FORGET, control_cmd_forget },
};

bool control_command_run(const struct control_call *call, const char *command)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (streq(commands[i].name, command)) {
			commands[i].fn(call);
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------ the reconciler */

static const char *const change_events[] = {
	[CONTROL_VM_UP] = CONTROL_EVENT_VM_UP,
	[CONTROL_VM_GONE] = CONTROL_EVENT_VM_GONE,
	[CONTROL_USB_ATTACHED] = CONTROL_EVENT_USB_ATTACHED,
	[CONTROL_USB_DETACHED] = CONTROL_EVENT_USB_DETACHED,
	[CONTROL_USB_FAILED] = CONTROL_EVENT_USB_FAILED,
	[CONTROL_INPUT_ATTACHED] = CONTROL_EVENT_INPUT_ATTACHED,
	[CONTROL_INPUT_DETACHED] = CONTROL_EVENT_INPUT_DETACHED,
	[CONTROL_INPUT_FAILED] = CONTROL_EVENT_INPUT_FAILED,
	[CONTROL_REMOTE_ADDED] = CONTROL_EVENT_REMOTE_ADDED,
	[CONTROL_REMOTE_REMOVED] = CONTROL_EVENT_REMOTE_REMOVED,
	[CONTROL_REMOTE_FAILED] = CONTROL_EVENT_REMOTE_FAILED,
};

/* Does the change answer w: the VM went away, or its device's attach or
 * detach completed (an attach also when it failed)? */
static bool answers(const struct control_waiter *w, const struct control_event *ev)
{
	if (w->kind == CONTROL_WAIT_IDENTIFY || !streq(w->vm, ev->vm))
		return false;
	if (ev->change == CONTROL_VM_GONE)
		return true;
	if (!ev->id || !streq(w->usb_id, ev->id))
		return false;
	if (w->kind == CONTROL_WAIT_ATTACH)
		return ev->change == CONTROL_USB_ATTACHED || ev->change == CONTROL_USB_FAILED;
	return ev->change == CONTROL_USB_DETACHED;
}

/* Answer the attach or detach w with what the change says. */
static void answer(struct control_waiter *w, const struct control_event *ev)
{
	if (w->kind == CONTROL_WAIT_ATTACH && ev->change == CONTROL_USB_ATTACHED)
		control_reply(w->client, w->id,
			      json_pack("{s:o,s:o,s:o,s:s}", "vm", control_json_str(w->vm), "port",
					control_json_str(w->port), "id",
					control_json_str(w->usb_id), "state", "attached"));
	else if (w->kind == CONTROL_WAIT_DETACH && ev->change == CONTROL_USB_DETACHED)
		control_reply(w->client, w->id,
			      json_pack("{s:o,s:o,s:o,s:s}", "vm", control_json_str(w->vm), "port",
					control_json_str(w->port), "id",
					control_json_str(w->usb_id), "state", "detached"));
	else if (w->kind == CONTROL_WAIT_ATTACH && ev->change == CONTROL_USB_FAILED)
		control_reply_error(w->client, w->id, "GenericError", "vm %s: attach failed: %s%s",
				    w->vm, ev->msg ? ev->msg : "unknown error",
				    ev->final ? "" : " (vmplugd keeps trying)");
	else if (ev->change == CONTROL_VM_GONE)
		control_reply_error(w->client, w->id, "GenericError", "vm %s went away: %s", w->vm,
				    ev->msg ? ev->msg : "");
}

void control_reconciled(struct control *c, const struct control_event *ev)
{
	struct control_waiter *w, *tmp;
	struct list done;
	json_t *data;

	if (!c)
		return;
	data = json_pack("{s:o}", "vm", control_json_str(ev->vm));
	if (ev->id)
		json_object_set_new(data, "id", control_json_str(ev->id));
	if (ev->dev)
		json_object_set_new(data, "device", control_json_usb(ev->dev));
	if (ev->change == CONTROL_VM_GONE)
		json_object_set_new(data, "reason", control_json_str(ev->msg));
	if (ev->change == CONTROL_USB_FAILED || ev->change == CONTROL_INPUT_FAILED ||
	    ev->change == CONTROL_REMOTE_FAILED) {
		json_object_set_new(data, "error", control_json_str(ev->msg));
		json_object_set_new(data, "final", json_boolean(ev->final));
	}
	list_init(&done);
	list_for_each_safe(w, tmp, &c->waiters, link) {
		if (answers(w, ev)) {
			list_remove(&w->link);
			list_insert_tail(&done, &w->link);
		}
	}
	/* Answered off the list: an answer may close a client, which frees
	 * the waiters still on the list. */
	list_for_each_safe(w, tmp, &done, link) {
		answer(w, ev);
		control_waiter_free(w);
	}
	control_emit(c, change_events[ev->change], data);
}

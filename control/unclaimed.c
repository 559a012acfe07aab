/* Plug-time questions: a device no rule claims, plugged in while a VM
 * runs, is announced to subscribers (USB_UNCLAIMED), and the first
 * control client to answer decides where it goes (attach to a VM once,
 * or keep it on the host), optionally remembered; the remembered answers
 * are listed and forgotten here too. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "control/control-int.h"
#include "usb/rules.h"
#include "util/log.h"

/* An open question: which device, by identity (the syspath, not a
 * pointer: the device may go at any time). */
struct question {
	struct list link;
	unsigned number;
	char *syspath;
	char *port;
};

/* The device as a person knows it: "Logitech USB Receiver", else its
 * ids; a new string, device text escaped. */
static char *device_name(const struct usb_device *d)
{
	char *m = d->manufacturer ? xstrescape(d->manufacturer, STR_ESCAPE_INVALID) : NULL;
	char *p = d->product_name ? xstrescape(d->product_name, STR_ESCAPE_INVALID) : NULL;
	char *name;

	if (p && m && !startswith(p, m))
		name = xasprintf("%s %s", m, p);
	else if (p || m)
		name = xstrdup(p ? p : m);
	else
		name = xasprintf("USB device %04x:%04x", d->vendor & 0xffff, d->product & 0xffff);
	free(m);
	free(p);
	return name;
}

static struct question *find_open(struct control *c, unsigned number, const char *syspath)
{
	struct question *q;

	list_for_each(q, &c->questions, link)
		if (syspath ? streq(q->syspath, syspath) : q->number == number)
			return q;
	return NULL;
}

static const struct control_closed *find_closed(const struct control *c, unsigned number)
{
	for (size_t i = 0; i < CONTROL_CLOSED_KEPT; i++)
		if (c->closed[i].question == number && c->closed[i].outcome)
			return &c->closed[i];
	return NULL;
}

/* Settle q: kept for late answers, said to subscribers, freed. */
static void close_question(struct control *c, struct question *q, const char *outcome,
			   const char *vm, const struct control_client *by, unsigned remembered)
{
	struct control_closed *slot = &c->closed[c->closed_next];

	c->closed_next = (c->closed_next + 1) % CONTROL_CLOSED_KEPT;
	free(slot->port);
	free(slot->outcome);
	free(slot->by);
	slot->question = q->number;
	slot->port = xstrdup(q->port);
	slot->outcome = vm ? xasprintf("%s %s", outcome, vm) : xstrdup(outcome);
	slot->by = by ? xasprintf("uid %u pid %d", (unsigned)by->uid, (int)by->pid) : NULL;
	control_emit(c, CONTROL_EVENT_USB_UNCLAIMED_CLOSED,
		     json_pack("{s:i,s:o,s:s,s:o,s:o}", "question", (int)q->number, "port",
			       control_json_str(q->port), "outcome", outcome, "vm",
			       control_json_str(vm), "remembered",
			       remembered ? json_integer(remembered) : json_null()));
	list_remove(&q->link);
	c->n_questions--;
	free(q->syspath);
	free(q->port);
	free(q);
}

void control_unclaimed(struct control *c, const struct usb_device *dev)
{
	const struct conf *conf;
	struct question *q;
	json_t *vms, *data, *dj;
	char *name;

	if (!c || find_open(c, 0, dev->syspath))
		return;
	if (c->n_questions >= CONTROL_MAX_QUESTIONS)
		close_question(c, container_of(c->questions.next, struct question, link), "dropped",
			       NULL, NULL, 0);
	q = xnew(struct question);
	/* numbers are never reused while vmplugd runs: an answer meant for
	 * one plug never settles the next */
	q->number = ++c->last_question;
	q->syspath = xstrdup(dev->syspath);
	q->port = xstrdup(dev->sysname);
	list_insert_tail(&c->questions, &q->link);
	c->n_questions++;

	conf = c->ops->conf(c->data);
	vms = json_array();
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct control_vm st = { 0 };

		c->ops->vm(c->data, conf->vms[i].name, &st);
		if (st.up)
			json_array_append_new(vms, control_json_str(conf->vms[i].name));
	}
	name = device_name(dev);
	log_info("usb %s (%04x:%04x, %s): no VM claims it; question %u to control clients",
		 dev->sysname, dev->vendor & 0xffff, dev->product & 0xffff, name, q->number);
	dj = control_json_usb(dev);
	data = json_pack("{s:i,s:o,s:O,s:O,s:o,s:o,s:o}", "question", (int)q->number, "port",
			 control_json_str(dev->sysname), "vendor", json_object_get(dj, "vendor"),
			 "product", json_object_get(dj, "product"), "name", control_json_str(name),
			 "device", dj, "vms", vms);
	free(name);
	control_emit(c, CONTROL_EVENT_USB_UNCLAIMED, data);
}

void control_unclaimed_gone(struct control *c, const char *syspath)
{
	struct question *q = c ? find_open(c, 0, syspath) : NULL;

	if (q)
		close_question(c, q, "unplugged", NULL, NULL, 0);
}

void control_unclaimed_free_all(struct control *c)
{
	struct question *q, *tmp;

	list_for_each_safe(q, tmp, &c->questions, link) {
		list_remove(&q->link);
		free(q->syspath);
		free(q->port);
		free(q);
	}
	for (size_t i = 0; c->closed && i < CONTROL_CLOSED_KEPT; i++) {
		free(c->closed[i].port);
		free(c->closed[i].outcome);
		free(c->closed[i].by);
	}
	free(c->closed);
}

struct find_ctx {
	const char *syspath;
	const struct usb_device *dev;
};

static void find_dev(void *data, const struct control_device *info)
{
	struct find_ctx *f = data;

	if (streq(info->dev->syspath, f->syspath))
		f->dev = info->dev;
}

/* The present device at syspath, NULL if gone. */
static const struct usb_device *present(struct control *c, const char *syspath)
{
	struct find_ctx f = { syspath, NULL };

	c->ops->devices(c->data, find_dev, &f);
	return f.dev;
}

/* A positive integer argument key; false once the client is told. */
static bool arg_number(const struct control_call *call, const char *key, unsigned *out)
{
	json_t *v = json_object_get(call->args, key);

	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 0x7fffffff) {
		control_reply_error(call->cl, call->id, "GenericError",
				    "argument '%s' must be a positive number", key);
		return false;
	}
	*out = (unsigned)json_integer_value(v);
	return true;
}

/* The question asked for, open; else the client is told why not. */
static struct question *open_question(const struct control_call *call, unsigned number)
{
	struct question *q = find_open(call->c, number, NULL);
	const struct control_closed *done;

	if (q)
		return q;
	done = find_closed(call->c, number);
	if (!done && (number > call->c->last_question))
		control_reply_error(call->cl, call->id, "QuestionNotFound",
				    "no question %u has been asked", number);
	else if (!done)
		control_reply_error(call->cl, call->id, "QuestionClosed",
				    "question %u was settled long ago", number);
	else if (streq(done->outcome, "unplugged"))
		control_reply_error(call->cl, call->id, "DeviceGone",
				    "question %u: the device at %s was unplugged before the answer",
				    number, done->port);
	else if (streq(done->outcome, "dropped"))
		control_reply_error(call->cl, call->id, "QuestionClosed",
				    "question %u was dropped: %d newer questions were open", number,
				    CONTROL_MAX_QUESTIONS);
	else
		control_reply_error(call->cl, call->id, "AlreadyAnswered",
				    "question %u was answered already: %s (by %s)", number,
				    done->outcome, done->by ? done->by : "vmplugd");
	return NULL;
}

void control_cmd_answer(const struct control_call *call)
{
	struct control *c = call->c;
	json_t *rem = json_object_get(call->args, "remember");
	const char *action, *vm = NULL;
	const struct usb_device *d;
	const struct conf_vm *cvm = NULL;
	const struct conf_usb_rule *deny = NULL;
	struct question *q;
	unsigned number, remembered = 0;
	char *why = NULL, *what, *name;
	int r;

	if (!arg_number(call, "question", &number))
		return;
	action = json_string_value(json_object_get(call->args, "action"));
	if (!action || (!streq(action, "attach") && !streq(action, "keep-on-host"))) {
		control_reply_error(call->cl, call->id, "GenericError",
				    "argument 'action' must be \"attach\" or \"keep-on-host\"");
		return;
	}
	if (rem && !json_is_boolean(rem)) {
		control_reply_error(call->cl, call->id, "GenericError",
				    "argument 'remember' must be true or false");
		return;
	}
	if (streq(action, "attach")) {
		vm = json_string_value(json_object_get(call->args, "vm"));
		if (!vm) {
			control_reply_error(
			    call->cl, call->id, "GenericError",
			    "argument 'vm' (a string) is missing: attach to which VM?");
			return;
		}
		/* an attach may wait for the reconciler: bounded like attach */
		if (!control_may_wait(call))
			return;
	}
	q = open_question(call, number);
	if (!q)
		return;
	d = present(c, q->syspath);
	if (!d) { /* its removal is on its way */
		control_reply_error(call->cl, call->id, "DeviceGone",
				    "question %u: the device at %s was unplugged before the answer",
				    number, q->port);
		return;
	}
	if (vm) {
		cvm = conf_find_vm(c->ops->conf(c->data), vm);
		if (!cvm) {
			control_reply_error(call->cl, call->id, "VMNotFound",
					    "no VM named '%s' (see: vmplugctl status)", vm);
			return;
		}
		/* a deny rule written since the question was asked still wins */
		if (usb_vm_verdict(cvm, d, &deny) == USB_VERDICT_DENIED) {
			control_reply_error(call->cl, call->id, "DeviceDenied",
					    "vm %s: %s is denied by [usb-deny \"%s\"] at %s:%d", vm,
					    d->sysname, deny->name, deny->origin.file,
					    deny->origin.line);
			return;
		}
	}
	what = xasprintf("answer %u (%s): %s%s%s%s", number, q->port, action, vm ? " " : "",
			 vm ? vm : "", json_is_true(rem) ? ", remembered" : "");
	control_log_request(call, what);
	free(what);
	if (json_is_true(rem)) {
		name = device_name(d);
		r = c->ops->remember ? c->ops->remember(c->data, d, vm, name, &remembered, &why)
				     : -ENOTSUP;
		if (r == -ENOTSUP)
			why = xstrdup("this vmplugd keeps no remembered answers");
		free(name);
		if (r < 0) {
			control_reply_error(call->cl, call->id, "StateError",
					    "cannot remember the answer: %s", why);
			free(why);
			return;
		}
		/* the configuration was re-read: look the device up again */
		d = present(c, q->syspath);
	}
	close_question(c, q, action, vm, call->cl, remembered);
	if (!d) {
		control_reply_error(call->cl, call->id, "DeviceGone",
				    "question %u: the device was unplugged", number);
		return;
	}
	if (vm) {
		control_attach_device(call, vm, d, true);
		return;
	}
	control_reply(call->cl, call->id,
		      json_pack("{s:i,s:o,s:s,s:o}", "question", (int)number, "port",
				control_json_str(d->sysname), "state", "on host", "remembered",
				remembered ? json_integer(remembered) : json_null()));
}

/* json for a hex id of a rule, or null (-1). */
static json_t *rule_hex(int v)
{
	char buf[8];

	if (v < 0)
		return json_null();
	snprintf(buf, sizeof(buf), "%04x", v & 0xffff);
	return json_string(buf);
}

void control_cmd_query_remembered(const struct control_call *call)
{
	const struct conf *conf = call->c->ops->conf(call->c->data);
	json_t *list = json_array();

	for (size_t i = 0; i < conf->n_remembered; i++) {
		const struct conf_remembered *m = &conf->remembered[i];

		json_array_append_new(
		    list,
		    json_pack(
			"{s:i,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "id", (int)m->id, "action",
			m->vm ? "attach" : "keep-on-host", "vm", control_json_str(m->vm), "vendor",
			rule_hex(m->rule.vendor), "product", rule_hex(m->rule.product), "serial",
			control_json_str(m->rule.serial), "port", control_json_str(m->rule.port),
			"description", control_json_str(m->description), "added",
			control_json_str(m->added), "active", !m->vm || conf_find_vm(conf, m->vm)));
	}
	control_reply(call->cl, call->id, json_pack("{s:o}", "remembered", list));
}

void control_cmd_forget(const struct control_call *call)
{
	struct control *c = call->c;
	unsigned id;
	char *why = NULL, *what;
	int r;

	if (!arg_number(call, "id", &id))
		return;
	what = xasprintf("forget %u", id);
	control_log_request(call, what);
	free(what);
	r = c->ops->forget ? c->ops->forget(c->data, id, &why) : -ENOTSUP;
	if (r == -ENOTSUP)
		why = xstrdup("this vmplugd keeps no remembered answers");
	if (r < 0) {
		control_reply_error(call->cl, call->id, r == -ENOENT ? "NotFound" : "StateError",
				    "%s", why);
		free(why);
		return;
	}
	control_reply(call->cl, call->id, json_pack("{s:i}", "id", (int)id));
}

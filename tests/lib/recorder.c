/* Test recorders for the QMP client and backends (see recorder.h). */
#include "config.h"

#include "tests/lib/recorder.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct recorder rec;

void rec_reset(void)
{
	memset(&rec, 0, sizeof(rec));
}

void rec_note(const char *fmt, ...)
{
	size_t len = strlen(rec.order);
	char *token = rec.order + len;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(token, sizeof(rec.order) - len, fmt, ap);
	va_end(ap);
	if (rec.after)
		rec.after(token);
}

bool rec_noted(void *text)
{
	return strstr(rec.order, text) != NULL;
}

bool rec_up_n(void *n)
{
	return rec.up >= *(int *)n;
}

bool rec_gone_n(void *n)
{
	return rec.gone >= *(int *)n;
}

static void gone(const char *reason)
{
	rec.gone++;
	snprintf(rec.reason, sizeof(rec.reason), "%s", reason);
	rec_note("gone ");
}

static void up(void)
{
	rec.up++;
	rec_note("up ");
}

static void qmp_connected(struct qmp *q, void *data)
{
	up();
}

static void qmp_disconnected(struct qmp *q, const char *reason, void *data)
{
	gone(reason);
}

static void qmp_event(struct qmp *q, const char *event, json_t *data, void *udata)
{
	rec_note("ev:%s%s ", event, data ? "+data" : "");
}

const struct qmp_callbacks rec_qmp_callbacks = {
	.connected = qmp_connected,
	.disconnected = qmp_disconnected,
	.event = qmp_event,
};

void rec_qmp_reply(struct qmp *q, const struct qmp_reply *r, void *data)
{
	struct rec_reply *p = data;

	if (p->done)
		abort(); /* exactly once */
	p->done = true;
	p->err = r->err;
	if (r->ret) {
		char *text = json_dumps(r->ret, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(p->ret, sizeof(p->ret), "%s", text);
		free(text);
	}
	if (r->err == -EREMOTEIO)
		snprintf(p->desc, sizeof(p->desc), "%s: %s", r->error_class, r->error_desc);
	if (p->tag)
		rec_note("%s:%lld ", p->tag,
			 r->err                    ? (long long)r->err
			 : json_is_integer(r->ret) ? (long long)json_integer_value(r->ret)
						   : -1LL);
}

bool rec_reply_done(void *reply)
{
	return ((struct rec_reply *)reply)->done;
}

static void vm_up(void *data)
{
	up();
}

static void vm_gone(void *data, const char *reason)
{
	gone(reason);
}

static void vm_down(void *data, const char *why)
{
	rec.down++;
	snprintf(rec.down_why, sizeof(rec.down_why), "%s", why);
}

static void vm_event(void *data, const char *event)
{
	rec_note("event:%s ", event);
}

static void item_gone(void *data, const char *id)
{
	rec_note("item_gone:%s ", id);
}

const struct backend_events rec_backend_events = {
	.vm_up = vm_up,
	.vm_gone = vm_gone,
	.vm_down = vm_down,
	.vm_event = vm_event,
	.item_gone = item_gone,
};

void rec_backend_done(void *done, int err, const char *msg)
{
	struct rec_done *d = done;

	if (d->called)
		abort(); /* exactly once */
	d->called = true;
	d->err = err;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
	if (d->tag)
		rec_note("%s:%d ", d->tag, err);
}

void rec_backend_list(void *done, int err, const struct backend_list *list)
{
	struct rec_done *d = done;

	if (!err)
		d->list = backend_list_copy(list);
	rec_backend_done(d, err, NULL);
}

bool rec_done_called(void *done)
{
	return ((struct rec_done *)done)->called;
}

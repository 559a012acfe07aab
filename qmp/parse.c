/* QMP framing and message shapes: bytes in, checked messages out (see qmp-int.h). */
#include "config.h"

#include "qmp/qmp-int.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

struct qmp_framer {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	/* The message being scanned: where it starts and how far it was
	 * scanned, with the scanner's state at that point. */
	bool in_message;
	size_t start;
	size_t pos;
	unsigned depth;
	bool in_string;
	bool escape;
};

struct qmp_framer *qmp_framer_new(size_t max)
{
	struct qmp_framer *f = xnew(struct qmp_framer);

	f->max = max;
	return f;
}

void qmp_framer_free(struct qmp_framer *f)
{
	if (!f)
		return;
	free(f->buf);
	free(f);
}

void qmp_framer_reset(struct qmp_framer *f)
{
	f->len = f->start = f->pos = 0;
	f->depth = 0;
	f->in_message = f->in_string = f->escape = false;
}

/* Drop the bytes before f->start, so the buffer only holds what is
 * unread. Once per feed, not once per message: a read of many small
 * messages must not move the rest of the buffer for each of them. */
static void compact(struct qmp_framer *f)
{
	if (f->start == 0)
		return;
	memmove(f->buf, f->buf + f->start, f->len - f->start);
	f->len -= f->start;
	f->pos -= f->start;
	f->start = 0;
}

void qmp_framer_feed(struct qmp_framer *f, const void *data, size_t len)
{
	compact(f);
	if (f->len + len > f->cap) {
		size_t cap = f->cap ? f->cap : 4096;

		while (cap < f->len + len)
			cap *= 2;
		f->buf = xrealloc(f->buf, cap);
		f->cap = cap;
	}
	memcpy(f->buf + f->len, data, len);
	f->len += len;
}

size_t qmp_framer_pending(const struct qmp_framer *f)
{
	return f->len - f->start;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Advance the scanner; true when the message that started at f->start
 * ends at f->pos - 1. */
static bool scan(struct qmp_framer *f)
{
	while (f->pos < f->len) {
		char c = f->buf[f->pos++];

		if (f->in_string) {
			if (f->escape)
				f->escape = false;
			else if (c == '\\')
				f->escape = true;
			else if (c == '"')
				f->in_string = false;
		} else if (c == '"') {
			f->in_string = true;
		} else if (c == '{' || c == '[') {
			f->depth++;
		} else if (c == '}' || c == ']') {
			if (--f->depth == 0)
				return true;
		}
	}
	return false;
}

int qmp_framer_next(struct qmp_framer *f, json_t **out, const char **raw, size_t *raw_len,
		    char *error, size_t error_size)
{
	json_error_t jerr;
	size_t len;
	json_t *j;

	if (!f->in_message) {
		size_t i = f->start;

		while (i < f->len && is_space(f->buf[i]))
			i++;
		if (i == f->len) {
			/* all read: start again at the front, for free */
			f->len = f->start = f->pos = 0;
			return 0;
		}
		f->start = f->pos = i;
		if (f->buf[i] != '{' && f->buf[i] != '[') {
			if (raw) {
				*raw = f->buf + i;
				*raw_len = f->len - i;
			}
			if (error)
				snprintf(error, error_size, "'%c' where a JSON object should start",
					 f->buf[i]);
			return -EPROTO;
		}
		f->in_message = true;
		f->depth = 0;
		f->in_string = f->escape = false;
	}
	if (!scan(f)) {
		if (f->pos - f->start > f->max)
			return -EMSGSIZE;
		return 0;
	}
	len = f->pos - f->start;
	if (len > f->max)
		return -EMSGSIZE;
	f->in_message = false;
	if (raw) {
		*raw = f->buf + f->start;
		*raw_len = len;
	}
	j = json_loadb(f->buf + f->start, len, 0, &jerr);
	f->start = f->pos;
	if (!j) {
		if (error)
			snprintf(error, error_size, "%s at byte %d", jerr.text, jerr.position);
		return -EPROTO;
	}
	*out = j;
	return 1;
}

/* A QEMU version number: a non-negative int. */
static bool version_part(json_t *qemu, const char *key, int *out)
{
	json_t *v = json_object_get(qemu, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT_MAX)
		return false;
	*out = (int)json_integer_value(v);
	return true;
}

static int parse_greeting(json_t *qmp, struct qmp_msg *m, const char **why)
{
	json_t *version = json_object_get(qmp, "version");
	json_t *qemu = json_object_get(version, "qemu");
	json_t *package = json_object_get(version, "package");
	json_t *caps = json_object_get(qmp, "capabilities");

	*why = "greeting without an object \"QMP\".\"version\".\"qemu\"";
	if (!json_is_object(qmp) || !json_is_object(version) || !json_is_object(qemu))
		return -EPROTO;
	*why = "greeting with a version that is not three non-negative integers";
	if (!version_part(qemu, "major", &m->version.major) ||
	    !version_part(qemu, "minor", &m->version.minor) ||
	    !version_part(qemu, "micro", &m->version.micro))
		return -EPROTO;
	*why = "greeting with a \"package\" that is not a string";
	if (package && !json_is_string(package))
		return -EPROTO;
	m->version.package = package ? json_string_value(package) : "";
	*why = "greeting with \"capabilities\" that is not an array";
	if (caps && !json_is_array(caps))
		return -EPROTO;
	m->type = QMP_MSG_GREETING;
	return 0;
}

int qmp_msg_parse(json_t *msg, struct qmp_msg *out, const char **why)
{
	struct qmp_msg m = { 0 };
	const char *reason = NULL;
	json_t *v, *cls, *desc;
	int r = -EPROTO;

	if (!json_is_object(msg)) {
		reason = "a message that is not a JSON object";
		goto out;
	}
	m.id = json_object_get(msg, "id");
	if ((v = json_object_get(msg, "QMP"))) {
		r = parse_greeting(v, &m, &reason);
		goto out;
	}
	if ((v = json_object_get(msg, "event"))) {
		m.data = json_object_get(msg, "data");
		reason = "an event whose name is not a string";
		if (!json_is_string(v))
			goto out;
		reason = "an event whose \"data\" is not an object";
		if (m.data && !json_is_object(m.data))
			goto out;
		m.type = QMP_MSG_EVENT;
		m.event = json_string_value(v);
		m.id = NULL;
		r = 0;
		goto out;
	}
	v = json_object_get(msg, "error");
	m.ret = json_object_get(msg, "return");
	if (v && m.ret) {
		reason = "a reply with both \"return\" and \"error\"";
		goto out;
	}
	if (m.ret) {
		m.type = QMP_MSG_RETURN;
		r = 0;
		goto out;
	}
	if (!v) {
		reason = "a message that is no greeting, reply or event";
		goto out;
	}
	cls = json_object_get(v, "class");
	desc = json_object_get(v, "desc");
	if (!json_is_object(v) || !json_is_string(cls) || !json_is_string(desc)) {
		reason = "an error without string \"class\" and \"desc\"";
		goto out;
	}
	m.type = QMP_MSG_ERROR;
	m.error_class = json_string_value(cls);
	m.error_desc = json_string_value(desc);
	r = 0;
out:
	if (r == 0)
		*out = m;
	else if (why)
		*why = reason;
	return r;
}

int qmp_msg_id(const struct qmp_msg *m, uint64_t *out)
{
	if (!json_is_integer(m->id) || json_integer_value(m->id) < 0)
		return -ENOENT;
	*out = (uint64_t)json_integer_value(m->id);
	return 0;
}

json_t *qmp_build_command(const char *command, json_t *args, uint64_t id)
{
	json_t *msg = json_object();

	json_object_set_new(msg, "execute", json_string(command));
	if (args)
		json_object_set_new(msg, "arguments", args);
	json_object_set_new(msg, "id", json_integer((json_int_t)id));
	return msg;
}

/* QMP internals that tests reach: the framer that cuts a byte stream into
 * JSON messages and the parser that checks a message's shape (both pure:
 * no fds, no loop), and the client's reconnect schedule. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "qmp/qmp.h"

/* Cuts a stream into top-level JSON texts without parsing them: it tracks
 * brace/bracket depth outside strings, so it needs no newlines between
 * messages and handles any split across reads. */
struct qmp_framer;

/* A framer that refuses messages longer than `max` bytes. */
struct qmp_framer *qmp_framer_new(size_t max);
/* NULL is a no-op. */
void qmp_framer_free(struct qmp_framer *f);
/* Forget everything buffered (a new connection). */
void qmp_framer_reset(struct qmp_framer *f);
/* Append bytes read from the peer. */
void qmp_framer_feed(struct qmp_framer *f, const void *data, size_t len);
/* Bytes buffered and not yet returned as messages (whitespace included). */
size_t qmp_framer_pending(const struct qmp_framer *f);
/* Take the next complete message: 1 with *out (a new reference) and, if
 * raw is not NULL, *raw and *raw_len pointing at its text (valid until the
 * next call); 0 when more bytes are needed; -EMSGSIZE when the message
 * grows past the limit; -EPROTO when the stream does not start a JSON
 * object or array, or the text is not valid JSON (then *raw and *raw_len, if
 * given, point at the offending text and `error`, if not NULL, says what
 * jansson found). After an error the framer must be reset. */
int qmp_framer_next(struct qmp_framer *f, json_t **out, const char **raw, size_t *raw_len,
		    char *error, size_t error_size);

enum qmp_msg_type {
	QMP_MSG_GREETING,
	QMP_MSG_RETURN,
	QMP_MSG_ERROR,
	QMP_MSG_EVENT,
};

/* A message whose shape has been checked. Every pointer is borrowed from
 * the json_t it was parsed from. */
struct qmp_msg {
	enum qmp_msg_type type;
	json_t *id; /* RETURN/ERROR: the echoed id, NULL when absent */
	json_t *ret;
	const char *error_class;
	const char *error_desc;
	const char *event;
	json_t *data; /* EVENT: NULL when absent */
	struct qmp_version version;
};

/* Classify and type-check one message. Unknown keys are ignored. 0, or
 * -EPROTO with `why` (may be NULL) set to a static description. */
int qmp_msg_parse(json_t *msg, struct qmp_msg *out, const char **why);

/* {"execute": command, "arguments": args, "id": id}; args is stolen and
 * may be NULL. */
json_t *qmp_build_command(const char *command, json_t *args, uint64_t id);

/* The id a reply carries as a number; 0 and *out, or -ENOENT when it is
 * absent or not a non-negative integer. */
int qmp_msg_id(const struct qmp_msg *m, uint64_t *out);

/* The reconnect attempt the client has scheduled: the delay it was
 * scheduled with (µs), and its deadline on CLOCK_MONOTONIC (µs) in
 * *deadline when not NULL. 0 when none is scheduled (connected, connecting,
 * or waiting for inotify to report the socket). */
uint64_t qmp_retry_delay(const struct qmp *q, uint64_t *deadline);

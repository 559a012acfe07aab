/* Control socket internals that tests reach: the request parser, pure
 * (no sockets, no daemon), for the fuzz target (tests/fuzz/fuzz-control.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>

/* One request: {"execute": COMMAND, "arguments": {...}, "id": ANY}. */
struct control_request {
	json_t *root;        /* the parsed request, owning what follows */
	json_t *id;          /* borrowed, NULL if none */
	const char *command; /* borrowed */
	json_t *args;        /* borrowed, NULL if none */
};

/* Parse one request line (len bytes, no newline). 0 and *out; or -EINVAL
 * with *error (a new string: what to tell the client) and out->id set
 * when the request had one. Free *out with control_request_clear() in
 * both cases. */
int control_request_parse(const char *line, size_t len, struct control_request *out, char **error);
void control_request_clear(struct control_request *rq);

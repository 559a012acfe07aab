/* What the QMP client or a backend reported, for tests: every callback
 * appends a token to one string ("up ", "gone ", "ev:STOP ", "a:0 "), so
 * a test checks the order of everything it saw in one assertion. One
 * recorder per test program (tests drive one client or backend at a time). */
#pragma once

#include <stdbool.h>

#include "backends/backend.h"
#include "qmp/qmp.h"
#include "util/util.h"

struct recorder {
	char order[2048];
	int up;   /* connected() / vm_up() calls */
	int gone; /* disconnected() / vm_gone() calls */
	char reason[256];
	/* vm_down() calls, and the last reason given (not in `order`) */
	int down;
	char down_why[512];
	/* Called after each token (with it), e.g. to free from a callback. */
	void (*after)(const char *token);
};

extern struct recorder rec;

/* Forget everything, hook included. */
void rec_reset(void);
void rec_note(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* For run_until(): the order contains `text` / up or gone at least *n times. */
bool rec_noted(void *text);
bool rec_up_n(void *n);
bool rec_gone_n(void *n);

/* The QMP client's callbacks: "up ", "gone ", "ev:NAME " ("ev:NAME+data "
 * when the event has data). */
extern const struct qmp_callbacks rec_qmp_callbacks;

/* One command's completion (the data of rec_qmp_reply); with a tag it
 * notes "TAG:RESULT " (the error, or an integer return, else -1). */
struct rec_reply {
	const char *tag;
	bool done;
	int err;
	char ret[512];  /* the return value as compact JSON, keys sorted */
	char desc[256]; /* "Class: desc" of an error reply */
};
void rec_qmp_reply(struct qmp *q, const struct qmp_reply *r, void *data);
bool rec_reply_done(void *reply);

/* A backend's events: "up ", "gone ", "event:NAME ", "item_gone:ID "
 * (vm_down is counted in rec.down instead). */
extern const struct backend_events rec_backend_events;

/* One backend operation's completion (the data of rec_backend_done or
 * rec_backend_list); with a tag it notes "TAG:ERR ". */
struct rec_done {
	const char *tag;
	bool called;
	int err;
	char msg[256];
	struct backend_list *list; /* list(): a copy the test frees */
};
void rec_backend_done(void *done, int err, const char *msg);
void rec_backend_list(void *done, int err, const struct backend_list *list);
bool rec_done_called(void *done);

/* Control socket internals: what the server (server.c), the commands
 * (commands.c) and identify (identify.c) share, and the request parser,
 * pure (no sockets, no daemon), for the fuzz target
 * (tests/fuzz/fuzz-control.c). */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "control/control.h"
#include "util/list.h"
#include "util/util.h"

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

/* ---------------------------------------------------------------- server */

/* How many closed questions are kept for late answers. */
#define CONTROL_CLOSED_KEPT 64

/* A question closed: its number, and why, for whoever answers late. */
struct control_closed {
	unsigned question;
	char *port;
	char *outcome; /* what the USB_UNCLAIMED_CLOSED event said */
	char *by;      /* who answered: "uid U pid P", or NULL */
};

struct control {
	struct loop *loop;
	const struct control_ops *ops;
	void *data; /* for ops */
	int fd;
	struct loop_source *src;
	char *path;
	struct stat bound; /* the socket file made at path (removed at exit only if still it) */
	char *group;
	gid_t gid;
	bool have_gid;
	struct list clients;
	size_t n_clients; /* open ones: closed ones wait for the reaper */
	struct list waiters;
	size_t n_waiting;
	struct loop_timer *reaper;
	/* accept() ran out of fds: the listening socket rests a moment
	 * instead of waking the loop again and again */
	struct loop_timer *accept_pause;
	/* plug-time questions (unclaimed.c): the open ones, oldest first,
	 * and the last ones closed, so a late answer is told why */
	struct list questions;
	size_t n_questions;
	unsigned last_question;
	struct control_closed *closed; /* a ring of CONTROL_CLOSED_KEPT */
	size_t closed_next;
};

/* A connected client. */
struct control_client {
	struct list link;
	struct control *c;
	int fd;
	struct loop_source *src;
	char *in;
	size_t in_len;
	bool discarding; /* skipping the rest of an oversized request */
	char *out;
	size_t out_len, out_cap;
	bool subscribed;
	bool closing;     /* close once the output is flushed */
	bool dead;        /* closed; freed by the reaper, never inside a callback chain */
	size_t n_waiting; /* its requests on c->waiters */
	uid_t uid;
	pid_t pid;
};

/* A request being run: the client, the request's id and its arguments
 * (an object, empty when the request had none), all borrowed. */
struct control_call {
	struct control *c;
	struct control_client *cl;
	json_t *id;
	json_t *args;
};

enum control_wait {
	CONTROL_WAIT_ATTACH,
	CONTROL_WAIT_DETACH,
	CONTROL_WAIT_IDENTIFY,
};

/* A request whose answer comes later (attach, detach, identify). It is
 * freed when answered, when its time is up, or when its client goes. */
struct control_waiter {
	struct list link;
	struct control *c;
	struct control_client *client;
	json_t *id;
	enum control_wait kind;
	struct loop_timer *timer;
	/* Its time is up: answer (it is off the list already and freed after). */
	void (*expired)(struct control_waiter *w);
	/* attach and detach */
	char *vm;
	char *usb_id;
	char *port;
	/* identify: a USB keyboard or mouse found, waiting briefly for its
	 * input node so both sections come in one answer */
	json_t *found;
	char *found_syspath;
};

/* A client on fd (taken; non-blocking), whose peer had the credentials
 * cred when it connected: greeted when it may use vmplugd, else told why
 * not and closed. The listening socket's accepts come here, and the fuzz
 * target's socketpairs (tests/fuzz/fuzz-control.c). */
void control_client_add(struct control *c, int fd, const struct ucred *cred);

/* Answer {"return": ret} (takes ret; NULL: {}), with the request's id. */
void control_reply(struct control_client *cl, json_t *id, json_t *ret);
/* Answer {"error": {"class": cls, "desc": ...}}, with the request's id. */
void control_reply_error(struct control_client *cl, json_t *id, const char *cls, const char *fmt,
			 ...) PRINTF_LIKE(4, 5);
/* Log a state-changing request with the peer's uid and pid. */
void control_log_request(const struct control_call *call, const char *what);

/* May call's request wait for its answer? If not (CONTROL_MAX_WAITING*),
 * it has been answered with a TooManyRequests error. Commands that may
 * answer later ask before they do anything. */
bool control_may_wait(const struct control_call *call);
/* A waiter for call, answered by `expired` after usec unless answered
 * before; on c->waiters. */
struct control_waiter *control_waiter_new(const struct control_call *call, enum control_wait kind,
					  uint64_t usec, void (*expired)(struct control_waiter *w));
/* Off the list, and freed. */
void control_waiter_free(struct control_waiter *w);

/* -------------------------------------------------------------- commands */

/* attach and detach of d, an argument-checked request (commands.c):
 * answered (at once or when the reconciler reports). 0 when accepted;
 * -errno when refused, the client told why. */
int control_attach_device(const struct control_call *call, const char *vm,
			  const struct usb_device *d, bool attach);
/* The plug-time commands (unclaimed.c). */
void control_cmd_answer(const struct control_call *call);
void control_cmd_query_remembered(const struct control_call *call);
void control_cmd_forget(const struct control_call *call);
/* Close every question: control is going away. */
void control_unclaimed_free_all(struct control *c);

/* Run the command call names (commands.c); false when there is none. */
bool control_command_run(const struct control_call *call, const char *command);
/* The identify command (identify.c). */
void control_cmd_identify(const struct control_call *call);
/* What identify suggests for a USB device, and for an input device (its
 * event node, its /dev/input/by-id link or NULL, the name it gives
 * itself or NULL, and what udev says it is): configuration text to
 * paste, which reads back as the sections it shows whatever the device
 * calls itself. New strings. */
char *control_identify_usb_text(const struct usb_device *d);
char *control_identify_input_text(const char *devnode, const char *by_id, const char *name,
				  bool keyboard, bool mouse);

/* JSON shared by the commands, the events and identify (commands.c). */
json_t *control_json_str(const char *s); /* a string, or null */
json_t *control_json_usb(const struct usb_device *d);

/* vmplug-agent: asks the desktop's user, through desktop notifications,
 * where a USB device no VM claims goes (vmplugd's USB_UNCLAIMED events),
 * and sends the answer back; optionally says where input focus went. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "conf/conf.h"
#include "control/protocol.h"
#include "util/list.h"
#include "util/util.h"

/* A line from vmplugd is at most this long; a longer one is a broken or
 * hostile peer, dropped like one. Events are far smaller. */
#define AGENT_MAX_LINE (256 * 1024)
/* Open questions kept (vmplugd keeps as many); one more closes the oldest. */
#define AGENT_MAX_QUESTIONS CONTROL_MAX_QUESTIONS
/* VMs offered on one notification; more would not fit on the screen. */
#define AGENT_MAX_VMS 8
/* A name from vmplugd shown or used at most this long. */
#define AGENT_MAX_NAME 128
/* Reconnecting waits 0.1 s, doubling to 5 s. */
#define AGENT_BACKOFF_MIN_USEC 100000ULL
#define AGENT_BACKOFF_MAX_USEC 5000000ULL

/* Notify's "question number" for a message not kept track of */
#define NOTICE UINT32_MAX

#define NOTIFY_NAME "org.freedesktop.Notifications"
#define NOTIFY_PATH "/org/freedesktop/Notifications"

struct question {
	struct list link;
	unsigned number;
	uint32_t notification; /* 0 until the server answered Notify */
	char *port;
	char **vms;
};

struct agent {
	const char *socket;
	bool focus;
	bool verbose;
	sd_event *ev;
	sd_bus *bus;
	int fd;
	bool greeted;
	sd_event_source *io;
	sd_event_source *retry;
	uint64_t backoff;
	bool down_said; /* the reason vmplugd cannot be reached was logged */
	char *buf;
	size_t len;
	struct list questions;
	unsigned n_questions;
	uint32_t focus_notification;
};

static bool verbose;
/* for the replies to Notify, whose user data is the question's number */
static struct agent *the_agent;

static void PRINTF_LIKE(1, 2) say(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	char *printable = xstrdup_printable(msg);
	fprintf(stderr, "vmplug-agent: %s\n", printable);
	free(printable);
	free(msg);
}

#define debug(...)                                                                                 \
	do {                                                                                       \
		if (verbose)                                                                       \
			say(__VA_ARGS__);                                                          \
	} while (0)

/* A string from vmplugd for the notification's body, which servers read
 * as markup: <, > and & escaped, cut at AGENT_MAX_NAME bytes, never
 * inside a UTF-8 character. */
static char *markup(const char *s)
{
	size_t n = 0, len = s ? strnlen(s, AGENT_MAX_NAME) : 0;
	char *out = xmalloc(len * 5 + 1);

	while (len > 0 && (s[len] & 0xc0) == 0x80)
		len--;
	for (size_t i = 0; i < len; i++) {
		const char *rep = s[i] == '<'   ? "&lt;"
				  : s[i] == '>' ? "&gt;"
				  : s[i] == '&' ? "&amp;"
						: NULL;

		if (rep) {
			memcpy(out + n, rep, strlen(rep));
			n += strlen(rep);
		} else {
			out[n++] = s[i];
		}
	}
	out[n] = '\0';
	return out;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* ---------------------------------------------------------- questions */

static struct question *find_question(struct agent *a, unsigned number, uint32_t notification)
{
	struct question *q;

	list_for_each(q, &a->questions, link)
		if (notification ? q->notification == notification : q->number == number)
			return q;
	return NULL;
}

static void close_notification(struct agent *a, uint32_t id)
{
	int r;

	if (!id)
		return;
	r = sd_bus_call_method_async(a->bus, NULL, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_NAME,
				     "CloseNotification", NULL, NULL, "u", id);
	if (r < 0)
		say("cannot close notification %u: %s", id, strerror(-r));
}

/* Forget q, and take its notification off the screen. */
static void drop_question(struct agent *a, struct question *q)
{
	close_notification(a, q->notification);
	list_remove(&q->link);
	a->n_questions--;
	free(q->port);
	strv_free(q->vms);
	free(q);
}

static void drop_all_questions(struct agent *a)
{
	while (!list_empty(&a->questions))
		drop_question(a, container_of(a->questions.next, struct question, link));
}

/* ----------------------------------------------------- notifications */

/* Notify's reply: the server's number for q's notification, or the
 * question was settled meanwhile and its notification goes at once. */
static int on_notified(sd_bus_message *m, void *data, sd_bus_error *err)
{
	struct agent *a = the_agent;
	unsigned number = (unsigned)(uintptr_t)data;
	struct question *q;
	uint32_t id;
	int r;

	(void)err;
	if (sd_bus_message_is_method_error(m, NULL)) {
		say("the notification server refused question %u: %s", number,
		    sd_bus_message_get_error(m)->message);
		return 0;
	}
	r = sd_bus_message_read(m, "u", &id);
	if (r < 0) {
		say("the notification server's reply to Notify is malformed: %s", strerror(-r));
		return 0;
	}
	if (number == NOTICE)
		return 0;
	q = number ? find_question(a, number, 0) : NULL;
	if (!number) {
		a->focus_notification = id;
	} else if (!q) {
		close_notification(a, id);
	} else {
		q->notification = id;
		debug("question %u: notification %u", number, id);
	}
	return 0;
}

/* Send Notify with actions (key, label pairs, NULL-ended), for question
 * `number` (0: the focus notice, which replaces the last one; NOTICE: a
 * message not kept track of). */
static int notify(struct agent *a, unsigned number, const char *summary, const char *body,
		  char **actions, int32_t timeout)
{
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(a->bus, &m, NOTIFY_NAME, NOTIFY_PATH, NOTIFY_NAME,
					   "Notify");
	if (r >= 0)
		r = sd_bus_message_append(m, "susss", "vmplug", number ? 0 : a->focus_notification,
					  number == NOTICE ? "dialog-error"
					  : number         ? "drive-removable-media"
							   : "input-keyboard",
					  summary, body);
	if (r >= 0)
		r = sd_bus_message_append_strv(m, actions);
	if (r >= 0)
		r = sd_bus_message_append(m, "a{sv}", 2, "urgency", "y", 1, "desktop-entry", "s",
					  "vmplug-agent");
	if (r >= 0)
		r = sd_bus_message_append(m, "i", timeout);
	if (r >= 0)
		r = sd_bus_call_async(a->bus, NULL, m, on_notified, (void *)(uintptr_t)number, 0);
	sd_bus_message_unref(m);
	if (r < 0)
		say("cannot send a notification: %s", strerror(-r));
	return r;
}

static void on_unclaimed(struct agent *a, json_t *data)
{
	json_t *jq = json_object_get(data, "question"), *vms = json_object_get(data, "vms");
	char **actions = NULL, *name, *port, *body, *summary;
	struct question *q;
	json_t *v;
	size_t i;

	if (!json_is_integer(jq) || json_integer_value(jq) <= 0 ||
	    json_integer_value(jq) >= UINT32_MAX || !json_is_array(vms)) {
		say("vmplugd sent a malformed %s event; ignored", CONTROL_EVENT_USB_UNCLAIMED);
		return;
	}
	if (find_question(a, (unsigned)json_integer_value(jq), 0))
		return;
	if (a->n_questions >= AGENT_MAX_QUESTIONS)
		drop_question(a, container_of(a->questions.next, struct question, link));
	q = xnew(struct question);
	q->number = (unsigned)json_integer_value(jq);
	q->port = xstrndup(jstr(data, "port"), AGENT_MAX_NAME);
	list_insert_tail(&a->questions, &q->link);
	a->n_questions++;

	json_array_foreach(vms, i, v) {
		const char *vm = json_string_value(v);

		if (!vm || !*vm || strlen(vm) > AGENT_MAX_NAME)
			continue;
		if (strv_len(q->vms) >= AGENT_MAX_VMS)
			break;
		strv_append(&q->vms, vm);
		char *key = xasprintf("attach:%s", vm), *label = xasprintf("Attach to %s", vm);
		strv_append(&actions, key);
		strv_append(&actions, label);
		free(key);
		free(label);
	}
	for (i = 0; q->vms && q->vms[i]; i++) {
		char *key = xasprintf("always:%s", q->vms[i]);
		char *label = xasprintf("Always attach to %s", q->vms[i]);
		strv_append(&actions, key);
		strv_append(&actions, label);
		free(key);
		free(label);
	}
	strv_append(&actions, "keep");
	strv_append(&actions, "Keep on host");
	strv_append(&actions, "keep-always");
	strv_append(&actions, "Always keep on host");

	name = markup(*jstr(data, "name") ? jstr(data, "name") : "USB device");
	port = markup(q->port);
	char *vendor = markup(jstr(data, "vendor")), *product = markup(jstr(data, "product"));
	body = xasprintf("%s (%s:%s) at port %s: which VM gets it?", name, vendor, product, port);
	debug("question %u: %s", q->number, body);
	summary = xasprintf("USB device at port %s", port);
	notify(a, q->number, summary, body, actions, 0);
	free(summary);
	free(vendor);
	free(product);
	free(body);
	free(name);
	free(port);
	strv_free(actions);
}

static void on_unclaimed_closed(struct agent *a, json_t *data)
{
	json_t *jq = json_object_get(data, "question");
	struct question *q;

	if (!json_is_integer(jq))
		return;
	q = find_question(a, (unsigned)json_integer_value(jq), 0);
	if (!q)
		return;
	debug("question %u settled: %s", q->number, jstr(data, "outcome"));
	drop_question(a, q);
}

static void on_focus(struct agent *a, json_t *data)
{
	const char *to = jstr(data, "to");
	char *who = markup(to), *body;

	body = streq(to, "host") ? xstrdup("Keyboard and mouse: this computer")
				 : xasprintf("Keyboard and mouse: VM %s", who);
	notify(a, 0, "Input focus", body, NULL, -1);
	free(body);
	free(who);
}

/* ------------------------------------------------------------ vmplugd */

static void schedule_retry(struct agent *a);

/* One request, without waiting: they are a few bytes and far apart, so
 * a socket that cannot take one at once belongs to a daemon that reads
 * nothing, and is dropped. */
static int send_request(struct agent *a, const char *cmd, json_t *args, const char *id)
{
	json_t *req = json_pack("{s:s,s:s}", "execute", cmd, "id", id);
	char *text;
	size_t len;
	ssize_t n;

	if (args)
		json_object_set_new(req, "arguments", args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	len = strlen(text);
	text[len++] = '\n'; /* json_dumps' NUL becomes the newline */
	n = send(a->fd, text, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	free(text);
	if (n == (ssize_t)len)
		return 0;
	say("cannot send %s to vmplugd: %s", cmd, n < 0 ? strerror(errno) : "short write");
	return -EIO;
}

static void disconnect(struct agent *a, const char *why)
{
	if (a->fd < 0)
		return;
	say("lost vmplugd at %s: %s; reconnecting", a->socket, why);
	a->io = sd_event_source_disable_unref(a->io);
	close(a->fd);
	a->fd = -1;
	a->greeted = false;
	a->len = 0;
	/* its questions went with it: question numbers start again */
	drop_all_questions(a);
	schedule_retry(a);
}

static void on_reply(struct agent *a, json_t *msg)
{
	const char *id = json_string_value(json_object_get(msg, "id"));
	json_t *err = json_object_get(msg, "error");

	if (!err) {
		if (id && streq(id, "subscribe")) {
			say("connected to vmplugd at %s", a->socket);
			a->backoff = 0;
			a->down_said = false;
		}
		return;
	}
	say("vmplugd refused %s: %s", id ? id : "a request", jstr(err, "desc"));
	if (id && streq(id, CONTROL_CMD_ANSWER)) {
		/* the person who chose should see why nothing happened */
		char *why = markup(jstr(err, "desc"));

		notify(a, NOTICE, "vmplug could not do that", why, NULL, -1);
		free(why);
	}
}

static void on_line(struct agent *a, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *msg = json_loadb(line, len, 0, &jerr);
	const char *event;

	if (!json_is_object(msg)) {
		say("vmplugd sent invalid JSON (%s); ignored", jerr.text);
		json_decref(msg);
		return;
	}
	if (!a->greeted) {
		json_t *err = json_object_get(msg, "error");

		if (err) {
			say("vmplugd turned the agent away: %s", jstr(err, "desc"));
		} else {
			a->greeted = true;
			send_request(a, CONTROL_CMD_SUBSCRIBE, NULL, "subscribe");
		}
	} else if ((event = json_string_value(json_object_get(msg, "event")))) {
		json_t *data = json_object_get(msg, "data");

		if (streq(event, CONTROL_EVENT_USB_UNCLAIMED))
			on_unclaimed(a, data);
		else if (streq(event, CONTROL_EVENT_USB_UNCLAIMED_CLOSED))
			on_unclaimed_closed(a, data);
		else if (a->focus && streq(event, CONTROL_EVENT_INPUT_FOCUS))
			on_focus(a, data);
	} else {
		on_reply(a, msg);
	}
	json_decref(msg);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *data)
{
	struct agent *a = data;
	ssize_t n;
	char *nl;

	(void)s;
	(void)revents;
	n = read(fd, a->buf + a->len, AGENT_MAX_LINE + 1 - a->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		disconnect(a, n < 0 ? strerror(errno) : "it closed the connection");
		return 0;
	}
	a->len += (size_t)n;
	while (a->fd >= 0 && (nl = memchr(a->buf, '\n', a->len))) {
		size_t linelen = (size_t)(nl - a->buf);

		on_line(a, a->buf, linelen);
		memmove(a->buf, nl + 1, a->len - linelen - 1);
		a->len -= linelen + 1;
	}
	if (a->len > AGENT_MAX_LINE)
		disconnect(a, "it sent a line longer than 256 KiB");
	return 0;
}

static int try_connect(struct agent *a)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(a->socket) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, a->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = sd_event_add_io(a->ev, &a->io, fd, EPOLLIN, on_readable, a);
	if (r < 0) {
		close(fd);
		return r;
	}
	a->fd = fd;
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *data)
{
	struct agent *a = data;
	int r;

	(void)s;
	(void)usec;
	a->retry = sd_event_source_disable_unref(a->retry);
	r = try_connect(a);
	if (r >= 0)
		return 0;
	if (!a->down_said) {
		say("cannot reach vmplugd at %s: %s%s; trying again", a->socket, strerror(-r),
		    r == -EACCES ? " (only members of vmplugd's control-group may)" : "");
		a->down_said = true;
	}
	schedule_retry(a);
	return 0;
}

static void schedule_retry(struct agent *a)
{
	uint64_t now;

	a->backoff = a->backoff ? a->backoff * 2 : AGENT_BACKOFF_MIN_USEC;
	if (a->backoff > AGENT_BACKOFF_MAX_USEC)
		a->backoff = AGENT_BACKOFF_MAX_USEC;
	sd_event_now(a->ev, CLOCK_MONOTONIC, &now);
	if (sd_event_add_time(a->ev, &a->retry, CLOCK_MONOTONIC, now + a->backoff, 0, on_retry, a) <
	    0) {
		say("cannot arm the reconnect timer");
		sd_event_exit(a->ev, EXIT_FAILURE);
	}
}

/* ------------------------------------------------------- bus signals */

static int on_action(sd_bus_message *m, void *data, sd_bus_error *err)
{
	struct agent *a = data;
	const char *key;
	struct question *q;
	uint32_t id;
	json_t *args;

	(void)err;
	if (sd_bus_message_read(m, "us", &id, &key) < 0)
		return 0;
	q = id ? find_question(a, 0, id) : NULL;
	if (!q || a->fd < 0)
		return 0;
	if (startswith(key, "attach:") || startswith(key, "always:")) {
		const char *vm = strchr(key, ':') + 1;

		if (!strv_contains(q->vms, vm))
			return 0;
		args = json_pack("{s:i,s:s,s:s,s:b}", "question", (int)q->number, "action",
				 "attach", "vm", vm, "remember", startswith(key, "always:"));
	} else if (streq(key, "keep") || streq(key, "keep-always")) {
		args = json_pack("{s:i,s:s,s:b}", "question", (int)q->number, "action",
				 "keep-on-host", "remember", streq(key, "keep-always"));
	} else {
		return 0;
	}
	debug("question %u: %s", q->number, key);
	send_request(a, CONTROL_CMD_ANSWER, args, CONTROL_CMD_ANSWER);
	return 0;
}

/* The user dismissed it (or it expired): the question stays open for
 * other clients; this agent no longer shows it. */
static int on_closed(sd_bus_message *m, void *data, sd_bus_error *err)
{
	struct agent *a = data;
	struct question *q;
	uint32_t id, reason;

	(void)err;
	if (sd_bus_message_read(m, "uu", &id, &reason) < 0 || !id)
		return 0;
	if (id == a->focus_notification)
		a->focus_notification = 0;
	q = find_question(a, 0, id);
	if (q) {
		q->notification = 0;
		drop_question(a, q);
	}
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmplug-agent [OPTION]...\n"
		"Ask, with desktop notifications, where a USB device no VM claims goes.\n"
		"\n"
		"  -s, --socket=PATH      vmplugd's control socket (default: control-socket\n"
		"                         in " VMPLUG_CONFDIR "/vmplug.conf, else %s)\n"
		"  -c, --config-dir=DIR   read control-socket from DIR/vmplug.conf\n"
		"      --focus            also show where keyboard and mouse go on each switch\n"
		"  -v, --verbose          say what is asked and answered\n"
		"  -h, --help             show this help\n"
		"  -V, --version          show the version\n",
		CONF_DEFAULT_CONTROL_SOCKET);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config-dir", required_argument, NULL, 'c' },
		{ "focus", no_argument, NULL, 'F' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct agent a = { .fd = -1 };
	const char *confdir = VMPLUG_CONFDIR;
	char *socket_path = NULL, **errors = NULL;
	sigset_t mask;
	int c, r;

	the_agent = &a;
	list_init(&a.questions);
	while ((c = getopt_long(argc, argv, "s:c:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			free(socket_path);
			socket_path = xstrdup(optarg);
			break;
		case 'c':
			confdir = optarg;
			break;
		case 'F':
			a.focus = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		case 'V':
			printf("vmplug-agent %s\n", PACKAGE_VERSION);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		say("unexpected argument: %s", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!socket_path) {
		r = conf_load_control_socket(confdir, &socket_path, &errors);
		if (r < 0) {
			if (r != -ENOENT)
				say("%s; using %s", errors && errors[0] ? errors[0] : strerror(-r),
				    CONF_DEFAULT_CONTROL_SOCKET);
			free(socket_path);
			socket_path = xstrdup(CONF_DEFAULT_CONTROL_SOCKET);
		}
		strv_free(errors);
	}
	a.socket = socket_path;
	a.buf = xmalloc(AGENT_MAX_LINE + 1);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	r = sd_event_new(&a.ev);
	if (r >= 0)
		r = sd_event_add_signal(a.ev, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(a.ev, NULL, SIGINT, NULL, NULL);
	if (r < 0) {
		say("cannot set up the event loop: %s", strerror(-r));
		goto out;
	}
	r = sd_bus_open_user(&a.bus);
	if (r < 0) {
		say("cannot connect to the session bus: %s (is this a desktop session? "
		    "DBUS_SESSION_BUS_ADDRESS)",
		    strerror(-r));
		goto out;
	}
	r = sd_bus_attach_event(a.bus, a.ev, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_set_exit_on_disconnect(a.bus, true);
	if (r >= 0)
		r = sd_bus_match_signal(a.bus, NULL, NULL, NOTIFY_PATH, NOTIFY_NAME,
					"ActionInvoked", on_action, &a);
	if (r >= 0)
		r = sd_bus_match_signal(a.bus, NULL, NULL, NOTIFY_PATH, NOTIFY_NAME,
					"NotificationClosed", on_closed, &a);
	if (r < 0) {
		say("cannot listen to the notification server: %s", strerror(-r));
		goto out;
	}
	on_retry(NULL, 0, &a);
	r = sd_event_loop(a.ev);
	if (r == 0)
		debug("stopping");
out:
	if (a.bus) {
		drop_all_questions(&a);
		sd_bus_flush(a.bus);
	}
	a.io = sd_event_source_disable_unref(a.io);
	a.retry = sd_event_source_disable_unref(a.retry);
	if (a.fd >= 0)
		close(a.fd);
	sd_bus_flush_close_unref(a.bus);
	sd_event_unref(a.ev);
	free(a.buf);
	free(socket_path);
	return r < 0 ? EXIT_FAILURE : r;
}

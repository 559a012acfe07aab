/* qmp-client: send one QMP command over a unix socket and print the reply, for e2e scenarios. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "helper-util.h"

enum {
	EXIT_QMP_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_TIMEOUT = 3,
	EXIT_IO = 4,
};

enum output {
	OUT_REPLY,
	OUT_RETURN,
	OUT_HUMAN,
};

struct conn {
	int fd;
	char buf[65536];
	size_t len;
	bool verbose;
};

struct wait_event {
	const char *name;   /* NULL: wait for no event */
	const char *device; /* NULL: any data.device */
	bool seen;
	json_t *event;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: qmp-client [-t MS] [-r|-H] [-w EVENT[:DEVICE]] [-v] SOCKET\n"
		   "                  [COMMAND [ARGUMENTS-JSON] | COMMAND-JSON]\n"
		   "Connects to QEMU's QMP unix SOCKET (retrying until it accepts), negotiates\n"
		   "capabilities, runs COMMAND and prints the reply as one line of JSON.\n"
		   "Events are skipped. With no COMMAND it only checks that QMP answers.\n"
		   "  -t MS     give up after MS milliseconds in all (default 10000)\n"
		   "  -r        print only the reply's \"return\" value (strings unquoted)\n"
		   "  -H        print only return.human-readable-text (for x-query-* commands)\n"
		   "  -w EVENT  also wait for the event EVENT (with data.device DEVICE); with\n"
		   "            no COMMAND, just wait for it and print it\n"
		   "  -v        log every message received on stderr\n"
		   "Exit status: 0 success, 1 QMP error reply, 2 bad usage, 3 timeout,\n"
		   "4 connection or protocol error.\n");
}

/* Connect, retrying while the socket is missing or refuses; returns an fd or -errno. */
static int connect_socket(const char *path, int64_t deadline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		/* non-blocking: a socket whose backlog is full (QEMU serving
		 * another client) says EAGAIN instead of blocking past -t */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			return fd;
		}
		int err = errno;

		close(fd);
		if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
			return -err;
		if (ms_left(deadline) == 0)
			return -ETIMEDOUT;
		usleep(50 * 1000);
	}
}

static int send_json(struct conn *c, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	size_t len, off = 0;
	int r = 0;

	if (!text)
		return -ENOMEM;
	len = strlen(text);
	while (off < len) {
		ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (r == 0 && send(c->fd, "\n", 1, MSG_NOSIGNAL) != 1)
		r = -errno;
	free(text);
	return r;
}

/* Read the next JSON object (one per line); returns 0, -ETIMEDOUT, -EPROTO or -errno. */
static int read_json(struct conn *c, int64_t deadline, json_t **out)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl) {
			size_t linelen = (size_t)(nl - c->buf);
			json_error_t err;
			json_t *msg = NULL;
			bool blank = strspn(c->buf, " \t\r") == linelen;

			*nl = '\0';
			if (!blank)
				msg = json_loads(c->buf, JSON_REJECT_DUPLICATES, &err);
			memmove(c->buf, nl + 1, c->len - linelen - 1);
			c->len -= linelen + 1;
			if (blank)
				continue;
			if (!msg || !json_is_object(msg)) {
				fprintf(stderr, "qmp-client: bad message from QEMU: %s\n",
					err.text);
				json_decref(msg);
				return -EPROTO;
			}
			if (c->verbose) {
				char *text = json_dumps(msg, JSON_COMPACT);

				fprintf(stderr, "qmp-client: <- %s\n", text ? text : "?");
				free(text);
			}
			*out = msg;
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -EPROTO;

		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = poll(&p, 1, ms_left(deadline));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}
}

static void note_event(struct wait_event *w, json_t *msg)
{
	const char *name = json_string_value(json_object_get(msg, "event"));
	const char *device;

	if (!w->name || w->seen || !name || strcmp(name, w->name) != 0)
		return;
	device = json_string_value(json_object_get(json_object_get(msg, "data"), "device"));
	if (w->device && (!device || strcmp(device, w->device) != 0))
		return;
	w->seen = true;
	w->event = json_incref(msg);
}

/*
 * Send cmd (which gets an "id") and wait for its reply and, if w names one, the event.
 * Returns 0 and the reply in *reply, or a negative errno.
 */
static int transact(struct conn *c, json_t *cmd, struct wait_event *w, int64_t deadline,
		    json_t **reply)
{
	char id[32];
	json_t *got = NULL;
	int r;

	if (cmd) {
		snprintf(id, sizeof(id), "qmp-client-%ld", (long)getpid());
		json_object_set_new(cmd, "id", json_string(id));
		r = send_json(c, cmd);
		if (r < 0)
			return r;
	}
	while ((cmd && !got) || (w && w->name && !w->seen)) {
		json_t *msg;
		const char *msg_id;

		r = read_json(c, deadline, &msg);
		if (r < 0) {
			json_decref(got);
			return r;
		}
		if (json_object_get(msg, "event")) {
			if (w)
				note_event(w, msg);
			json_decref(msg);
			continue;
		}
		msg_id = json_string_value(json_object_get(msg, "id"));
		if (cmd && !got && msg_id && strcmp(msg_id, id) == 0)
			got = msg;
		else
			json_decref(msg);
	}
	*reply = got;
	return 0;
}

/* Tell on stderr what QEMU sent where it should not have. */
static void say_unexpected(const char *where, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	fprintf(stderr, "qmp-client: %s QEMU sent %s\n", where, text ? text : "?");
	free(text);
}

/* Build the command from "NAME [ARGS-JSON]" or a whole JSON object; NULL on bad input. */
static json_t *build_command(int argc, char **argv)
{
	json_error_t err;
	json_t *cmd, *args;

	if (argc == 0)
		return NULL;
	if (argv[0][0] == '{') {
		if (argc != 1)
			return NULL;
		cmd = json_loads(argv[0], 0, &err);
		if (!json_is_object(cmd) || !json_is_string(json_object_get(cmd, "execute"))) {
			fprintf(stderr, "qmp-client: bad command JSON: %s\n",
				cmd ? "no \"execute\"" : err.text);
			json_decref(cmd);
			return NULL;
		}
		return cmd;
	}
	if (argc > 2)
		return NULL;
	cmd = json_pack("{s:s}", "execute", argv[0]);
	if (argc == 2) {
		args = json_loads(argv[1], 0, &err);
		if (!json_is_object(args)) {
			fprintf(stderr, "qmp-client: bad arguments JSON: %s\n",
				args ? "not an object" : err.text);
			json_decref(args);
			json_decref(cmd);
			return NULL;
		}
		json_object_set_new(cmd, "arguments", args);
	}
	return cmd;
}

static void print_value(json_t *v, bool raw_strings)
{
	if (raw_strings && json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t len = strlen(s);

		fputs(s, stdout);
		if (len == 0 || s[len - 1] != '\n')
			putchar('\n');
		return;
	}
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	puts(text ? text : "null");
	free(text);
}

/* Print the reply as asked; returns the exit status. */
static int report(json_t *reply, enum output out)
{
	json_t *ret = json_object_get(reply, "return");
	json_t *error = json_object_get(reply, "error");

	if (error) {
		const char *class = json_string_value(json_object_get(error, "class"));
		const char *desc = json_string_value(json_object_get(error, "desc"));

		if (out == OUT_REPLY) {
			json_object_del(reply, "id");
			print_value(reply, false);
		}
		fprintf(stderr, "qmp-client: QEMU answered %s: %s\n", class ? class : "an error",
			desc ? desc : "(no description)");
		return EXIT_QMP_ERROR;
	}
	if (!ret) {
		fprintf(stderr, "qmp-client: reply has neither \"return\" nor \"error\"\n");
		return EXIT_IO;
	}
	switch (out) {
	case OUT_REPLY:
		/* The id is qmp-client's own; callers only care about the answer. */
		json_object_del(reply, "id");
		print_value(reply, false);
		break;
	case OUT_RETURN:
		print_value(ret, true);
		break;
	case OUT_HUMAN:
		ret = json_object_get(ret, "human-readable-text");
		if (!json_is_string(ret)) {
			fprintf(stderr, "qmp-client: return has no human-readable-text\n");
			return EXIT_IO;
		}
		print_value(ret, true);
		break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct conn c = { .fd = -1 };
	struct wait_event w = { .name = NULL };
	enum output out = OUT_REPLY;
	json_t *cmd = NULL, *msg = NULL, *caps = NULL, *reply = NULL;
	int timeout = 10000, opt, r, status = EXIT_IO;
	int64_t deadline;
	char *colon;

	while ((opt = getopt(argc, argv, "t:rHw:vh")) != -1) {
		switch (opt) {
		case 't':
			if (parse_uint(optarg, &timeout) < 0)
				goto bad_usage;
			break;
		case 'r':
			out = OUT_RETURN;
			break;
		case 'H':
			out = OUT_HUMAN;
			break;
		case 'w':
			w.name = optarg;
			colon = strchr(optarg, ':');
			if (colon) {
				*colon = '\0';
				w.device = colon + 1;
			}
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind >= argc)
		goto bad_usage;
	if (optind + 1 < argc) {
		cmd = build_command(argc - optind - 1, argv + optind + 1);
		if (!cmd)
			goto bad_usage;
	}

	deadline = now_ms() + timeout;
	c.fd = connect_socket(argv[optind], deadline);
	if (c.fd < 0) {
		fprintf(stderr, "qmp-client: connect %s: %s\n", argv[optind], strerror(-c.fd));
		status = c.fd == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_IO;
		goto out;
	}
	r = read_json(&c, deadline, &msg);
	/* QEMU 7.2 goes back to negotiation mode only when the next client
	 * connects, so an event emitted while it accepts this connection
	 * (a late DEVICE_DELETED of the client before, say) comes ahead of
	 * the greeting. */
	while (r == 0 && json_object_get(msg, "event")) {
		json_decref(msg);
		msg = NULL;
		r = read_json(&c, deadline, &msg);
	}
	if (r == 0 && !json_object_get(msg, "QMP")) {
		say_unexpected("instead of the greeting", msg);
		r = -EPROTO;
	}
	if (r == 0) {
		caps = json_pack("{s:s}", "execute", "qmp_capabilities");
		r = transact(&c, caps, NULL, deadline, &reply);
	}
	if (r == 0 && !json_object_get(reply, "return")) {
		say_unexpected("as the reply to qmp_capabilities", reply);
		r = -EPROTO;
	}
	json_decref(reply);
	reply = NULL;
	if (r == 0)
		r = transact(&c, cmd, &w, deadline, &reply);
	if (r < 0) {
		fprintf(stderr, "qmp-client: %s: %s\n", argv[optind], strerror(-r));
		status = r == -ETIMEDOUT ? EXIT_TIMEOUT : EXIT_IO;
		goto out;
	}
	if (cmd)
		status = report(reply, out);
	else
		status = 0;
	if (!cmd && w.event)
		print_value(w.event, false);
out:
	json_decref(w.event);
	json_decref(reply);
	json_decref(caps);
	json_decref(msg);
	json_decref(cmd);
	if (c.fd >= 0)
		close(c.fd);
	return status;

bad_usage:
	json_decref(cmd);
	usage(stderr);
	return EXIT_USAGE;
}

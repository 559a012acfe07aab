/* A QMP peer that checks what vmplugd sends, for the hostile-input tests:
 *
 *   qmp-check LISTEN_PATH QEMU_PATH LOG
 *
 * It listens on LISTEN_PATH as QEMU would, forwards everything to the real
 * QEMU's QMP socket at QEMU_PATH and back, and checks every message the
 * client sends: one line of valid JSON, an object with only "execute",
 * "arguments" and "id", a command vmplug uses, and arguments of exactly
 * the shape that command takes (ids with vmplug's prefix and QEMU's id
 * syntax, hostports of numbers and dots, ...). Each message gets a line
 * in LOG: "ok COMMAND" or "bad WHY: TEXT". It runs until killed. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop/loop.h"
#include "qmp/qmp-int.h"
#include "util/util.h"

static FILE *out_log;

struct side {
	int fd;
	struct loop_source *src;
	struct qmp_framer *framer;
	struct side *other;
	bool from_client;
};

static struct side client = { .fd = -1, .from_client = true }, qemu = { .fd = -1 };
static const char *qemu_path;

static bool valid_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n < 8 || n >= 128 || !startswith(id, "vmplug-"))
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

static bool only_keys(json_t *o, const char *const *keys)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		bool known = false;

		for (size_t i = 0; keys[i] && !known; i++)
			known = streq(k, keys[i]);
		if (!known)
			return false;
	}
	return true;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool positive(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 65536;
}

/* NULL if args fit command, else why not. */
static const char *check_args(const char *cmd, json_t *a)
{
	if (streq(cmd, "qmp_capabilities") || streq(cmd, "query-fdsets") ||
	    streq(cmd, "query-status"))
		return !a || json_object_size(a) == 0 ? NULL : "arguments where none are taken";
	if (!json_is_object(a))
		return "arguments missing or not an object";
	if (streq(cmd, "device_add")) {
		static const char *const keys[] = { "driver",   "id",  "hostbus",    "hostaddr",
						    "hostport", "bus", "hostdevice", NULL };
		const char *port = str(a, "hostport"), *bus = str(a, "bus");

		if (!only_keys(a, keys) || !str(a, "driver") ||
		    !streq(str(a, "driver"), "usb-host"))
			return "device_add of something else than usb-host";
		if (!valid_id(str(a, "id")) || !positive(a, "hostbus"))
			return "device_add without a vmplug id or a hostbus";
		if (!port && !positive(a, "hostaddr"))
			return "usb-host with neither hostport nor hostaddr (it would take any device)";
		if (port && (!*port || strspn(port, "0123456789.") != strlen(port)))
			return "a hostport that is not port numbers";
		if (json_object_get(a, "hostaddr") && !positive(a, "hostaddr"))
			return "a hostaddr that is not a device number";
		if (bus && strspn(bus, "abcdefghijklmnopqrstuvwxyz0123456789-._") != strlen(bus))
			return "a bus that is not a QEMU id";
		if (json_object_get(a, "hostdevice") &&
		    (!str(a, "hostdevice") || !startswith(str(a, "hostdevice"), "/dev/fdset/")))
			return "a hostdevice that is not an fdset";
		return NULL;
	}
	if (streq(cmd, "device_del") || streq(cmd, "object-del")) {
		static const char *const keys[] = { "id", NULL };

		return only_keys(a, keys) && valid_id(str(a, "id")) ? NULL : "a bad id to delete";
	}
	if (streq(cmd, "object-add")) {
		static const char *const keys[] = { "qom-type", "id",          "evdev", "grab_all",
						    "repeat",   "grab-toggle", NULL };

		if (!only_keys(a, keys) || !str(a, "qom-type") ||
		    !streq(str(a, "qom-type"), "input-linux") || !valid_id(str(a, "id")) ||
		    !str(a, "evdev") || !json_is_boolean(json_object_get(a, "grab_all")) ||
		    !json_is_boolean(json_object_get(a, "repeat")))
			return "an object-add of the wrong shape";
		return NULL;
	}
	if (streq(cmd, "qom-list")) {
		const char *p = str(a, "path");

		return json_object_size(a) == 1 && p &&
			       (streq(p, "/machine/peripheral") || streq(p, "/objects"))
			   ? NULL
			   : "a qom-list of something else";
	}
	if (streq(cmd, "qom-get")) {
		const char *p = str(a, "path"), *prop = str(a, "property");
		const char *id = !p                                      ? NULL
				 : startswith(p, "/machine/peripheral/") ? p + 20
				 : startswith(p, "/objects/")            ? p + 9
									 : NULL;

		return json_object_size(a) == 2 && valid_id(id) && prop &&
			       strspn(prop, "abcdefghijklmnopqrstuvwxyz_") == strlen(prop)
			   ? NULL
			   : "a qom-get of something else";
	}
	if (streq(cmd, "add-fd"))
		return json_object_size(a) == 1 && valid_id(str(a, "opaque")) ? NULL
									      : "a bad add-fd";
	if (streq(cmd, "remove-fd"))
		return json_object_size(a) == 1 && json_is_integer(json_object_get(a, "fdset-id"))
			   ? NULL
			   : "a bad remove-fd";
	return "a command vmplug does not use";
}

static void judge(const char *raw, size_t len, json_t *j, bool line_end)
{
	static const char *const keys[] = { "execute", "arguments", "id", NULL };
	const char *cmd = str(j, "execute"), *why = NULL;
	json_t *id = json_object_get(j, "id");
	char *text = xstrndup(raw, len), *shown = xstrdup_printable(text);

	if (memchr(raw, '\n', len) || !line_end)
		why = "not one line";
	else if (!json_is_object(j) || !only_keys(j, keys) || !cmd)
		why = "not a command object";
	else if (!json_is_integer(id) || json_integer_value(id) < 0)
		why = "an id that is not a number";
	else
		why = check_args(cmd, json_object_get(j, "arguments"));
	if (why)
		fprintf(out_log, "bad %s: %s\n", why, shown);
	else
		fprintf(out_log, "ok %s\n", cmd);
	fflush(out_log);
	free(text);
	free(shown);
}

static void close_both(void)
{
	struct side *s[] = { &client, &qemu };

	for (size_t i = 0; i < 2; i++) {
		loop_source_remove(s[i]->src);
		s[i]->src = NULL;
		closep(&s[i]->fd);
		qmp_framer_reset(s[i]->framer);
	}
}

static void on_data(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct side *s = data;
	char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_both();
		return;
	}
	if (s->other->fd >= 0 && write_all(s->other->fd, buf, (size_t)n) < 0) {
		close_both();
		return;
	}
	if (!s->from_client)
		return;
	qmp_framer_feed(s->framer, buf, (size_t)n);
	for (;;) {
		const char *raw;
		size_t raw_len, rest;
		json_t *j = NULL;
		char error[160];
		int r = qmp_framer_next(s->framer, &j, &raw, &raw_len, error, sizeof(error));

		if (r == 0)
			break;
		if (r < 0) {
			fprintf(out_log, "bad JSON: %s\n", error);
			fflush(out_log);
			qmp_framer_reset(s->framer);
			break;
		}
		/* vmplugd ends every message with a newline: it is the next byte */
		rest = qmp_framer_pending(s->framer);
		judge(raw, raw_len, j, rest == 0 || raw[raw_len] == '\n');
		json_decref(j);
	}
}

static void on_accept(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct loop *loop = data;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

	if (cfd < 0)
		return;
	close_both();
	client.fd = cfd;
	qemu.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", qemu_path);
	if (qemu.fd < 0 || connect(qemu.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close_both();
		return;
	}
	client.src = loop_add_fd(loop, client.fd, EPOLLIN, on_data, &client);
	qemu.src = loop_add_fd(loop, qemu.fd, EPOLLIN, on_data, &qemu);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct loop *loop;
	int lfd;

	if (argc != 4) {
		fprintf(stderr, "usage: qmp-check LISTEN_PATH QEMU_PATH LOG\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	qemu_path = argv[2];
	out_log = fopen(argv[3], "ae");
	loop = loop_new();
	if (!out_log || !loop)
		return 1;
	client.other = &qemu;
	qemu.other = &client;
	client.framer = qmp_framer_new(QMP_MAX_MESSAGE);
	qemu.framer = qmp_framer_new(QMP_MAX_MESSAGE);
	unlink(argv[1]);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		perror("qmp-check");
		return 1;
	}
	loop_add_fd(loop, lfd, EPOLLIN, on_accept, loop);
	return loop_run(loop);
}

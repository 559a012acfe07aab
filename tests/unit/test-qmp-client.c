/* Unit tests for the QMP client (qmp/qmp.c) against a scripted fake peer:
 * handshake, reply matching, framing over real reads, events, unknown ids,
 * protocol errors, timeouts, fd passing, inotify, stale sockets, tracing
 * and freeing from callbacks. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "tests/lib/fake-qmp.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define WAIT_MS 5000

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

/* What the client reported. */
struct rec {
	struct qmp *q;
	int connected;
	int disconnected;
	char reason[256];
	char order[1024]; /* "ev:NAME " and "TAG:RESULT " in arrival order */
	bool free_on_event;
	bool free_on_disconnect;
};

/* One command's completion. */
struct pend {
	struct rec *rec;
	const char *tag;
	bool done;
	int err;
	char ret[256]; /* the return value as compact JSON with sorted keys */
	char desc[256];
	bool free_client;
};

static char *dir;
static char *sock;
static struct loop *loop;
static struct rec rec;
static struct qmp *client;
static struct fake_peer *peer;

static void setup(void)
{
	dir = scratch_new("qmp-unit");
	sock = xasprintf("%s/qmp.sock", dir);
	loop = loop_new();
	memset(&rec, 0, sizeof(rec));
	client = NULL;
	peer = NULL;
}

static void teardown(void)
{
	qmp_free(client);
	fake_peer_free(peer);
	loop_free(loop);
	log_capture_stop();
	unsetenv("VMPLUG_QMP_TRACE");
	free(sock);
	scratch_remove(dir);
}

static PRINTF_LIKE(2, 3) void append(struct rec *r, const char *fmt, ...)
{
	size_t len = strlen(r->order);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->order + len, sizeof(r->order) - len, fmt, ap);
	va_end(ap);
}

static void on_connected(struct qmp *q, void *data)
{
	struct rec *r = data;

	r->connected++;
}

static void on_disconnected(struct qmp *q, const char *reason, void *data)
{
	struct rec *r = data;

	r->disconnected++;
	snprintf(r->reason, sizeof(r->reason), "%s", reason);
	append(r, "gone ");
	if (r->free_on_disconnect) {
		qmp_free(q);
		client = NULL;
	}
}

static void on_event(struct qmp *q, const char *event, json_t *data, void *udata)
{
	struct rec *r = udata;

	append(r, "ev:%s%s ", event, data ? "+data" : "");
	if (r->free_on_event) {
		qmp_free(q);
		client = NULL;
	}
}

static const struct qmp_callbacks callbacks = {
	.connected = on_connected,
	.disconnected = on_disconnected,
	.event = on_event,
};

static void on_reply(struct qmp *q, const struct qmp_reply *reply, void *data)
{
	struct pend *p = data;
	char result[64];

	ck_assert(!p->done);
	p->done = true;
	p->err = reply->err;
	if (reply->err == -EREMOTEIO)
		snprintf(p->desc, sizeof(p->desc), "%s: %s", reply->error_class, reply->error_desc);
	if (reply->ret) {
		char *text = json_dumps(reply->ret,
					JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);

		snprintf(p->ret, sizeof(p->ret), "%s", text);
		free(text);
	}
	if (reply->err)
		snprintf(result, sizeof(result), "%d", reply->err);
	else
		snprintf(result, sizeof(result), "%lld",
			 json_is_integer(reply->ret) ? json_integer_value(reply->ret) : -1LL);
	append(p->rec, "%s:%s ", p->tag, result);
	if (p->free_client) {
		qmp_free(q);
		client = NULL;
	}
}

static struct qmp *start_client(uint64_t timeout, uint64_t backoff_min, uint64_t backoff_max)
{
	struct qmp_opts opts = { .name = "vm test",
				 .socket_path = sock,
				 .timeout_usec = timeout,
				 .backoff_min_usec = backoff_min,
				 .backoff_max_usec = backoff_max };

	client = qmp_new(loop, &opts, &callbacks, &rec);
	ck_assert_ptr_nonnull(client);
	rec.q = client;
	return client;
}

static bool is_connected(void *arg)
{
	return client && qmp_is_connected(client);
}

static bool connected_n(void *arg)
{
	return rec.connected >= *(int *)arg && is_connected(NULL);
}

static bool disconnected(void *arg)
{
	return rec.disconnected > 0;
}

static bool pend_done(void *arg)
{
	return ((struct pend *)arg)->done;
}

static bool peer_done(void *arg)
{
	return fake_peer_done(peer);
}

static bool connections_n(void *arg)
{
	return fake_peer_connections(peer) >= *(unsigned *)arg;
}

static int send_cmd(const char *cmd, struct pend *p, enum qmp_ret_type type, uint64_t timeout)
{
	struct qmp_command_opts o = { .ret_type = type, .timeout_usec = timeout, .fd = -1 };

	p->rec = &rec;
	if (!p->tag)
		p->tag = cmd;
	return qmp_command(client, cmd, NULL, &o, on_reply, p);
}

START_TEST(handshake_and_reply)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"return\": {\"status\": \"prelaunch\", \"running\": false}}" },
		{ FAKE_END },
	};
	struct pend p = { 0 };
	const struct qmp_version *v;

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert_str_eq(qmp_name(client), "vm test");
	/* Nothing is sent before the handshake, and nothing happens inside qmp_new(). */
	ck_assert_int_eq(send_cmd("query-status", &p, QMP_RET_ANY, 0), -ENOTCONN);
	ck_assert_ptr_null(qmp_version(client));
	ck_assert_int_eq(rec.connected, 0);

	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(rec.connected, 1);
	v = qmp_version(client);
	ck_assert_int_eq(v->major, 7);
	ck_assert_int_eq(v->minor, 2);
	ck_assert_int_eq(v->micro, 22);
	ck_assert_str_eq(v->package, "Debian 1:7.2+dfsg-7+deb12u18+b3");

	/* Arguments must be an object (and are consumed either way). */
	ck_assert_int_eq(qmp_command(client, "x", json_integer(1), NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(qmp_command(client, "", NULL, NULL, NULL, NULL), -EINVAL);

	ck_assert_int_eq(send_cmd("query-status", &p, QMP_RET_OBJECT, 0), 0);
	ck_assert(!p.done); /* never from inside the call */
	ck_assert(run_until(loop, pend_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert_str_eq(p.ret, "{\"running\":false,\"status\":\"prelaunch\"}");
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(json_string_value(json_object_get(fake_peer_last(peer), "execute")),
			 "query-status");
	ck_assert_int_eq(rec.disconnected, 0);
}
END_TEST

START_TEST(byte_by_byte)
{
	static const struct fake_step script[] = {
		{ FAKE_SEND_SLOW, greeting },
		{ FAKE_EXPECT, "qmp_capabilities" },
		{ FAKE_SEND_SLOW, "{\"return\": {}, \"id\": $1}" },
		{ FAKE_EXPECT, "query-kvm" },
		{ FAKE_SEND_SLOW, "{\"event\": \"STOP\"}{\"return\": 5, \"id\": $2}" },
		{ FAKE_END },
	};
	struct pend p = { 0 };

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("query-kvm", &p, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert_str_eq(rec.order, "ev:STOP query-kvm:5 ");
}
END_TEST

START_TEST(merged_out_of_order_with_events)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_EXPECT, "b" },
		{ FAKE_EXPECT, "c" },
		/* One write: events between replies, replies out of order,
		 * no separators, unknown keys. */
		{ FAKE_SEND,
		  "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1}}"
		  "{\"return\": 3, \"id\": $4, \"extra\": [1]}"
		  "{\"return\": 1, \"id\": $2}\n"
		  "{\"event\": \"RESUME\", \"data\": {\"x\": 1}}\r\n"
		  "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": $3}" },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a" }, b = { .tag = "b" }, c = { .tag = "c" };

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("c", &c, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &b, WAIT_MS));
	ck_assert_str_eq(rec.order, "ev:STOP c:3 a:1 ev:RESUME+data b:-121 ");
	ck_assert_int_eq(b.err, -EREMOTEIO);
	ck_assert_str_eq(b.desc, "GenericError: no");
	ck_assert_int_eq(fake_peer_connections(peer), 1);
}
END_TEST

START_TEST(unknown_ids_dropped)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_SEND, "{\"return\": {}, \"id\": 9999}" },
		{ FAKE_SEND, "{\"return\": {}, \"id\": \"$2\"}" },
		{ FAKE_SEND, "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse "
			     "error\"}}" },
		{ FAKE_REPLY, "{\"return\": 7}" },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a" };

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &a, WAIT_MS));
	ck_assert_str_eq(rec.order, "a:7 ");
	ck_assert_int_eq(log_captured_count(LOG_LEVEL_WARNING), 3);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU replied to an unknown id 9999"));
	ck_assert_ptr_nonnull(log_captured_find("unknown id (none); reply dropped: JSON parse"));
	ck_assert_int_eq(fake_peer_connections(peer), 1);
	ck_assert_int_eq(rec.disconnected, 0);
}
END_TEST

/* A peer that breaks the protocol after the handshake: the pending command
 * fails, the connection is dropped, and the client connects again. */
static const struct {
	const char *text;
	int err; /* what the pending command gets */
	const char *reason;
} bad_peers[] = {
	{ "{\"return\": nope}", -ENOTCONN, "protocol error: invalid JSON" },
	{ "hello", -ENOTCONN, "protocol error: invalid JSON, 'h' where" },
	{ "[1]", -ENOTCONN, "protocol error: a message that is not a JSON object" },
	{ "{\"foo\": 1}", -ENOTCONN, "protocol error: a message that is no greeting" },
	{ "{\"error\": \"x\", \"id\": $2}", -ENOTCONN, "protocol error: an error without" },
	{ "{\"event\": 5}", -ENOTCONN, "protocol error: an event whose name" },
	{ "{\"return\": [], \"id\": $2}", -EPROTO, "protocol error: the reply to 'a' has" },
	{ greeting, -ENOTCONN, "protocol error: a greeting on an established" },
	{ NULL, -ENOTCONN, "protocol error: a message longer than 1048576 bytes" },
};

START_TEST(bad_peer_reconnects)
{
	char *huge = NULL;
	struct fake_step script[] = {
		{ FAKE_HANDSHAKE }, { FAKE_EXPECT, "a" }, { FAKE_SEND, bad_peers[_i].text },
		{ FAKE_HANDSHAKE }, { FAKE_EXPECT, "b" }, { FAKE_REPLY, "{\"return\": 2}" },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a" }, b = { .tag = "b" };
	int two = 2;

	if (!bad_peers[_i].text) {
		/* A string reply that never ends within the limit. */
		size_t n = QMP_MAX_MESSAGE + 100;

		huge = xmalloc(n + 1);
		memset(huge, 'x', n);
		memcpy(huge, "{\"return\": \"", 12);
		huge[n] = '\0';
		script[2].arg = huge;
	}
	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_OBJECT, 0), 0);
	ck_assert(run_until(loop, pend_done, &a, WAIT_MS));
	ck_assert_int_eq(a.err, bad_peers[_i].err);
	ck_assert_int_eq(rec.disconnected, 1);
	ck_assert_msg(startswith(rec.reason, bad_peers[_i].reason), "reason: %s", rec.reason);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU broke the QMP protocol"));
	/* The daemon goes on: connected again on a new connection. */
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_int_eq(fake_peer_connections(peer), 2);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &b, WAIT_MS));
	ck_assert_int_eq(b.err, 0);
	ck_assert_ptr_null(fake_peer_error(peer));
	fake_peer_free(peer);
	peer = NULL;
	free(huge);
}
END_TEST

START_TEST(peer_closes_mid_reply)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_SEND, "{\"event\": \"SHUTDOWN\"}{\"return\": {\"sta" },
		{ FAKE_CLOSE },
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a" }, b = { .tag = "b" };
	int two = 2;

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &b, WAIT_MS));
	/* The event first, then every pending command, then the disconnect. */
	ck_assert_str_eq(rec.order, "ev:SHUTDOWN a:-107 b:-107 gone ");
	ck_assert_str_eq(rec.reason, "EOF");
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
}
END_TEST

START_TEST(peer_never_answers)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE }, { FAKE_EXPECT, "a" }, { FAKE_EXPECT, "b" },
		{ FAKE_HANDSHAKE }, { FAKE_EXPECT, "c" }, { FAKE_REPLY, "{\"return\": 3}" },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a" }, b = { .tag = "b" }, c = { .tag = "c" };
	int two = 2;

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(60 * USEC_PER_SEC, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	/* a has a short timeout of its own; b waits for the default minute. */
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 50 * USEC_PER_MSEC), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &b, WAIT_MS));
	ck_assert_str_eq(rec.order, "a:-110 b:-107 gone ");
	ck_assert_str_eq(rec.reason, "no reply to 'a' in time");
	ck_assert_ptr_nonnull(
	    log_captured_find("vm test: QEMU did not answer 'a' in time; dropping the connection"));
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_int_eq(send_cmd("c", &c, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &c, WAIT_MS));
	ck_assert_int_eq(c.err, 0);
}
END_TEST

START_TEST(greeting_missing)
{
	static const struct fake_step script[] = {
		/* first connection: silence until the client gives up */
		{ FAKE_PAUSE },
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	unsigned two = 2;

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(100 * USEC_PER_MSEC, 1000, 1000);
	ck_assert(run_until(loop, connections_n, &two, WAIT_MS));
	ck_assert_ptr_nonnull(log_captured_find("did not complete the QMP handshake within 0.1 s "
						"(no greeting); reconnecting"));
	fake_peer_resume(peer);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	/* Never connected, so never disconnected. */
	ck_assert_int_eq(rec.disconnected, 0);
	ck_assert_int_eq(rec.connected, 1);
}
END_TEST

START_TEST(not_a_greeting_first)
{
	static const struct fake_step script[] = {
		{ FAKE_SEND, "{\"return\": {}}" },
		{ FAKE_CLOSE },
		{ FAKE_GREET },
		{ FAKE_EXPECT, "qmp_capabilities" },
		{ FAKE_REPLY, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}" },
		{ FAKE_CLOSE },
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(fake_peer_connections(peer), 3);
	ck_assert_ptr_nonnull(log_captured_find("the first message is not a greeting"));
	ck_assert_ptr_nonnull(log_captured_find("qmp_capabilities refused: nope"));
	ck_assert_int_eq(rec.disconnected, 0);
}
END_TEST

START_TEST(fd_passing)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT_FD, "add-fd" },
		{ FAKE_REPLY, "{\"return\": {\"fd\": 11, \"fdset-id\": 0}}" },
		{ FAKE_END },
	};
	struct pend p = { .tag = "add-fd" };
	struct qmp_command_opts o = { .fd = -1, .ret_type = QMP_RET_OBJECT };
	struct stat mine, theirs;
	char *path = xasprintf("%s/dev", dir);
	FILE *f = fopen(path, "w+");

	ck_assert_ptr_nonnull(f);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	o.fd = 12345; /* not open */
	ck_assert_int_eq(qmp_command(client, "add-fd", NULL, &o, on_reply, &p), -EBADF);
	o.fd = fileno(f);
	p.rec = &rec;
	ck_assert_int_eq(qmp_command(client, "add-fd", json_pack("{s:s}", "opaque", "vmplug-x"), &o,
				     on_reply, &p),
			 0);
	/* Borrowed: closing ours now must not matter. */
	fclose(f);
	ck_assert(run_until(loop, pend_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_int_ge(fake_peer_last_fd(peer), 0);
	ck_assert_int_eq(stat(path, &mine), 0);
	ck_assert_int_eq(fstat(fake_peer_last_fd(peer), &theirs), 0);
	ck_assert_uint_eq(mine.st_ino, theirs.st_ino);
	ck_assert_str_eq(json_string_value(json_object_get(
			     json_object_get(fake_peer_last(peer), "arguments"), "opaque")),
			 "vmplug-x");
	free(path);
}
END_TEST

START_TEST(free_from_callbacks)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_EXPECT, "b" },
		{ FAKE_SEND, "{\"return\": 1, \"id\": $2}{\"return\": 2, \"id\": $3}" },
		{ FAKE_END },
	};
	static const struct fake_step events[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_SEND, "{\"event\": \"STOP\"}{\"return\": 1, \"id\": $2}" },
		{ FAKE_END },
	};
	static const struct fake_step closing[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "a" },
		{ FAKE_CLOSE },
		{ FAKE_END },
	};
	struct pend a = { .tag = "a", .free_client = true }, b = { .tag = "b" };

	/* From a reply: the second reply, already read, is never delivered. */
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(client);
	ck_assert_str_eq(rec.order, "a:1 ");
	fake_peer_free(peer);

	/* From an event. */
	memset(&rec, 0, sizeof(rec));
	memset(&a, 0, sizeof(a));
	a.tag = "a";
	rec.free_on_event = true;
	peer = fake_peer_new(loop, sock, events);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, peer_done, NULL, WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(client);
	ck_assert_str_eq(rec.order, "ev:STOP ");
	fake_peer_free(peer);

	/* From disconnected(). */
	memset(&rec, 0, sizeof(rec));
	memset(&a, 0, sizeof(a));
	a.tag = "a";
	rec.free_on_disconnect = true;
	peer = fake_peer_new(loop, sock, closing);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &a, WAIT_MS));
	run_for(loop, 20);
	ck_assert_ptr_null(client);
	ck_assert_str_eq(rec.order, "a:-107 gone ");
}
END_TEST

START_TEST(trace_every_message)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"return\": {\"status\": \"running\"}}" },
		{ FAKE_END },
	};
	struct pend p = { 0 };

	/* The environment switch, at the default log level. */
	setenv("VMPLUG_QMP_TRACE", "1", 1);
	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("query-status", &p, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, pend_done, &p, WAIT_MS));
	ck_assert_ptr_nonnull(log_captured_find("vm test: qmp <- {\"QMP\": {\"version\""));
	ck_assert_ptr_nonnull(log_captured_find("vm test: qmp -> {\"execute\":\"qmp_capabilities\","
						"\"id\":1}"));
	ck_assert_ptr_nonnull(log_captured_find("vm test: qmp -> {\"execute\":\"query-status\","
						"\"id\":2}"));
	ck_assert_ptr_nonnull(
	    log_captured_find("vm test: qmp <- {\"return\":{\"status\":\"running\"},\"id\":2}"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_INFO), 5);
}
END_TEST

START_TEST(no_trace_by_default)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_ptr_null(log_captured_find("qmp ->"));
	ck_assert_ptr_null(log_captured_find("qmp <-"));
}
END_TEST

START_TEST(inotify_missing_directory)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	char *a = xasprintf("%s/a", dir), *b = xasprintf("%s/a/b", dir);
	int two = 2;

	free(sock);
	sock = xasprintf("%s/a/b/qmp.sock", dir);
	/* A backoff of an hour: only inotify can connect within the test. */
	start_client(0, 3600 * USEC_PER_SEC, 3600 * USEC_PER_SEC);
	run_for(loop, 20);
	ck_assert_int_eq(mkdir(a, 0755), 0);
	run_for(loop, 10);
	ck_assert_int_eq(mkdir(b, 0755), 0);
	run_for(loop, 10);
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));

	/* QEMU exits (its socket goes), and the directory itself is
	 * replaced: the new one is watched. */
	fake_peer_free(peer);
	peer = NULL;
	ck_assert(run_until(loop, disconnected, NULL, WAIT_MS));
	ck_assert_int_eq(rmdir(b), 0);
	run_for(loop, 20);
	ck_assert(!is_connected(NULL));
	ck_assert_int_eq(mkdir(b, 0755), 0);
	run_for(loop, 10);
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	free(a);
	free(b);
}
END_TEST

START_TEST(stale_socket_is_quiet)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A socket file nobody listens on: what QEMU killed by SIGKILL leaves. */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	log_capture_start(LOG_LEVEL_DEBUG);
	start_client(0, 1000, 4000);
	run_for(loop, 200);
	/* Dozens of attempts, one line at info, none worse, few at debug. */
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 0);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 0);
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_INFO), 1);
	ck_assert_ptr_nonnull(log_captured_find("vm test: cannot connect to "));
	ck_assert_ptr_nonnull(log_captured_find("connection refused (stale socket: QEMU is not "
						"running); retrying"));
	ck_assert_uint_le(log_captured_count(LOG_LEVEL_DEBUG), 10);
	/* QEMU comes back: it replaces the socket file. */
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
}
END_TEST

START_TEST(bad_options)
{
	struct qmp_opts opts = { .name = "vm x", .socket_path = "relative.sock" };
	char longpath[200];

	ck_assert_ptr_null(qmp_new(loop, &opts, &callbacks, &rec));
	ck_assert_int_eq(errno, EINVAL);
	opts.socket_path = "/";
	ck_assert_ptr_null(qmp_new(loop, &opts, &callbacks, &rec));
	ck_assert_int_eq(errno, EINVAL);
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	opts.socket_path = longpath;
	ck_assert_ptr_null(qmp_new(loop, &opts, &callbacks, &rec));
	ck_assert_int_eq(errno, ENAMETOOLONG);
	opts.socket_path = sock;
	opts.name = NULL;
	ck_assert_ptr_null(qmp_new(loop, &opts, &callbacks, &rec));
	ck_assert_int_eq(errno, EINVAL);
	qmp_free(NULL);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("qmp-client");
	TCase *tc = tcase_create("client");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, handshake_and_reply);
	tcase_add_test(tc, byte_by_byte);
	tcase_add_test(tc, merged_out_of_order_with_events);
	tcase_add_test(tc, unknown_ids_dropped);
	tcase_add_loop_test(tc, bad_peer_reconnects, 0, (int)ARRAY_SIZE(bad_peers));
	tcase_add_test(tc, peer_closes_mid_reply);
	tcase_add_test(tc, peer_never_answers);
	tcase_add_test(tc, greeting_missing);
	tcase_add_test(tc, not_a_greeting_first);
	tcase_add_test(tc, fd_passing);
	tcase_add_test(tc, free_from_callbacks);
	tcase_add_test(tc, trace_every_message);
	tcase_add_test(tc, no_trace_by_default);
	tcase_add_test(tc, inotify_missing_directory);
	tcase_add_test(tc, stale_socket_is_quiet);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

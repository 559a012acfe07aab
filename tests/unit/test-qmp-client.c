/* Unit tests for the QMP client (qmp/qmp.c) against a scripted fake peer:
 * handshake, reply matching, framing over real reads, events, unknown ids,
 * protocol errors, timeouts, fd passing, inotify, stale sockets, tracing
 * and freeing from callbacks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop/dirwatch.h"
#include "qmp/qmp-int.h"
#include "qmp/qmp.h"
#include "tests/lib/fake-qmp.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define WAIT_MS 5000

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

static char *dir;
static char *sock;
static struct loop *loop;
static struct qmp *client;
static struct fake_peer *peer;

static void setup(void)
{
	dir = scratch_new("qmp-unit");
	sock = xasprintf("%s/qmp.sock", dir);
	loop = loop_new();
	rec_reset();
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

static struct qmp *start_client(uint64_t timeout, uint64_t backoff_min, uint64_t backoff_max)
{
	struct qmp_opts opts = { .name = "vm test",
				 .socket_path = sock,
				 .timeout_usec = timeout,
				 .backoff_min_usec = backoff_min,
				 .backoff_max_usec = backoff_max };

	client = qmp_new(loop, &opts, &rec_qmp_callbacks, NULL);
	ck_assert_ptr_nonnull(client);
	return client;
}

static bool is_connected(void *arg)
{
	return client && qmp_is_connected(client);
}

static bool connected_n(void *arg)
{
	return rec_up_n(arg) && is_connected(NULL);
}

static bool client_freed(void *arg)
{
	return client == NULL;
}

static int send_cmd(const char *cmd, struct rec_reply *p, enum qmp_ret_type type, uint64_t timeout)
{
	struct qmp_command_opts o = { .ret_type = type, .timeout_usec = timeout, .fd = -1 };

	if (!p->tag)
		p->tag = cmd;
	return qmp_command(client, cmd, NULL, &o, rec_qmp_reply, p);
}

START_TEST(handshake_and_reply)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_EXPECT, "query-status" },
		{ FAKE_REPLY, "{\"return\": {\"status\": \"prelaunch\", \"running\": false}}" },
		{ FAKE_END },
	};
	struct rec_reply p = { 0 };
	const struct qmp_version *v;

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert_str_eq(qmp_name(client), "vm test");
	/* Nothing is sent before the handshake, and nothing happens inside qmp_new(). */
	ck_assert_int_eq(send_cmd("query-status", &p, QMP_RET_ANY, 0), -ENOTCONN);
	ck_assert_ptr_null(qmp_version(client));
	ck_assert_int_eq(rec.up, 0);

	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(rec.up, 1);
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
	ck_assert(run_until(loop, rec_reply_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert_str_eq(p.ret, "{\"running\":false,\"status\":\"prelaunch\"}");
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_str_eq(json_string_value(json_object_get(fake_peer_last(peer), "execute")),
			 "query-status");
	ck_assert_int_eq(rec.gone, 0);
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
	struct rec_reply p = { 0 };

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("query-kvm", &p, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert_str_eq(rec.order, "up ev:STOP query-kvm:5 ");
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
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" }, c = { .tag = "c" };

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("c", &c, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &b, WAIT_MS));
	ck_assert_str_eq(rec.order, "up ev:STOP c:3 a:1 ev:RESUME+data b:-121 ");
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
	struct rec_reply a = { .tag = "a" };

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &a, WAIT_MS));
	ck_assert_str_eq(rec.order, "up a:7 ");
	ck_assert_int_eq(log_captured_count(LOG_LEVEL_WARNING), 3);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU replied to an unknown id 9999"));
	ck_assert_ptr_nonnull(log_captured_find("unknown id (none); reply dropped: JSON parse"));
	ck_assert_int_eq(fake_peer_connections(peer), 1);
	ck_assert_int_eq(rec.gone, 0);
}
END_TEST

/* Many commands pending (more than the id table starts with, so it grows
 * and shrinks under them) answered in a scrambled order, with replies to
 * ids never sent, to ids already answered and ids that are no integers in
 * between: every command gets its own reply, exactly once, and the
 * connection stays. */
#define SCRAMBLED 24

static bool all_done(void *arg)
{
	struct rec_reply *p = arg;

	for (int k = 0; k < SCRAMBLED; k++)
		if (!p[k].done)
			return false;
	return true;
}

START_TEST(scrambled_and_bogus_ids)
{
	static const char *const bogus[] = {
		"{\"return\": 99, \"id\": 0}",
		"{\"return\": 99, \"id\": 1000}",
		"{\"return\": 99, \"id\": 9223372036854775807}",
		"{\"return\": 99, \"id\": -1}",
		"{\"return\": 99, \"id\": 1e300}",
		"{\"return\": 99, \"id\": 3.0}",
		"{\"return\": 99, \"id\": \"$3\"}",
		"{\"return\": 99, \"id\": [$3]}",
		"{\"return\": 99, \"id\": {\"id\": $3}}",
		"{\"return\": 99, \"id\": null}",
		"{\"return\": 99, \"id\": $1}", /* qmp_capabilities', answered */
	};
	struct fake_step script[1 + SCRAMBLED + 3 + 1] = { { FAKE_HANDSHAKE } };
	struct rec_reply p[SCRAMBLED] = { { 0 } }, z = { .tag = "z" };
	char tags[SCRAMBLED][8], *replies = xstrdup(""), want[1024] = "up ";
	size_t nb = 0;

	for (int k = 0; k < SCRAMBLED; k++) {
		snprintf(tags[k], sizeof(tags[k]), "c%d", k + 1);
		p[k].tag = tags[k];
		script[1 + k] = (struct fake_step){ FAKE_EXPECT, tags[k] };
	}
	/* Command k (id $(k+2)) returns k + 1, in the order 7i mod 24; after
	 * every second one a bogus reply, among them one more reply to the
	 * command answered just before. */
	for (int i = 0; i < SCRAMBLED; i++) {
		int k = i * 7 % SCRAMBLED;
		char *next = xasprintf("%s{\"return\": %d, \"id\": $%d}", replies, k + 1, k + 2);

		free(replies);
		replies = next;
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "c%d:%d ", k + 1, k + 1);
		if (i % 2 == 1) {
			next = i == 11
				   ? xasprintf("%s{\"return\": 99, \"id\": $%d}", replies, k + 2)
				   : xasprintf("%s%s", replies, bogus[nb++ % ARRAY_SIZE(bogus)]);
			free(replies);
			replies = next;
		}
	}
	log_capture_start(LOG_LEVEL_INFO);
	script[1 + SCRAMBLED] = (struct fake_step){ FAKE_SEND, replies };
	script[2 + SCRAMBLED] = (struct fake_step){ FAKE_EXPECT, "z" };
	script[3 + SCRAMBLED] = (struct fake_step){ FAKE_REPLY, "{\"return\": 26}" };
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	for (int k = 0; k < SCRAMBLED; k++)
		ck_assert_int_eq(send_cmd(tags[k], &p[k], QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, all_done, p, WAIT_MS));
	/* One more command, after the table shrank back: its reply comes
	 * after every bogus one, so nothing completes twice unseen. */
	ck_assert_int_eq(send_cmd("z", &z, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &z, WAIT_MS));
	strcat(want, "z:26 ");
	ck_assert_str_eq(rec.order, want);
	for (int k = 0; k < SCRAMBLED; k++)
		ck_assert_int_eq(p[k].err, 0);
	ck_assert_ptr_null(fake_peer_error(peer));
	ck_assert_int_eq(fake_peer_connections(peer), 1);
	ck_assert_int_eq(rec.gone, 0);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU replied to an unknown id 0;"));
	fake_peer_free(peer);
	peer = NULL;
	free(replies);
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
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" };
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
	ck_assert(run_until(loop, rec_reply_done, &a, WAIT_MS));
	ck_assert_int_eq(a.err, bad_peers[_i].err);
	ck_assert_int_eq(rec.gone, 1);
	ck_assert_msg(startswith(rec.reason, bad_peers[_i].reason), "reason: %s", rec.reason);
	ck_assert_ptr_nonnull(log_captured_find("vm test: QEMU broke the QMP protocol"));
	/* The daemon goes on: connected again on a new connection. */
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_int_eq(fake_peer_connections(peer), 2);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &b, WAIT_MS));
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
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" };
	int two = 2;

	peer = fake_peer_new(loop, sock, script);
	start_client(0, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &b, WAIT_MS));
	/* The event first, then every pending command, then the disconnect. */
	ck_assert_str_eq(rec.order, "up ev:SHUTDOWN a:-107 b:-107 gone ");
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
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" }, c = { .tag = "c" };
	int two = 2;

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(60 * USEC_PER_SEC, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	/* a has a short timeout of its own; b waits for the default minute. */
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, test_scaled_usec(50 * USEC_PER_MSEC)), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &b, WAIT_MS));
	ck_assert_str_eq(rec.order, "up a:-110 b:-107 gone ");
	ck_assert_str_eq(rec.reason, "no reply to 'a' in time");
	ck_assert_ptr_nonnull(
	    log_captured_find("vm test: QEMU did not answer 'a' in time; dropping the connection"));
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_int_eq(send_cmd("c", &c, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &c, WAIT_MS));
	ck_assert_int_eq(c.err, 0);
}
END_TEST

START_TEST(finished_command_deadline_is_harmless)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },   { FAKE_EXPECT, "a" }, { FAKE_REPLY, "{\"return\": 1}" },
		{ FAKE_EXPECT, "b" }, { FAKE_PAUSE },       { FAKE_REPLY, "{\"return\": 2}" },
		{ FAKE_END },
	};
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" };
	/* short, but long enough for the peer's reply on a slow machine */
	uint64_t a_timeout = test_scaled_usec(30 * USEC_PER_MSEC), a_deadline, now;

	peer = fake_peer_new(loop, sock, script);
	start_client(60 * USEC_PER_SEC, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	/* a's short deadline passes after its reply, while b is pending:
	 * nothing times out. */
	a_deadline = now_usec() + a_timeout;
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, a_timeout), 0);
	ck_assert(run_until(loop, rec_reply_done, &a, WAIT_MS));
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	/* until well past a's deadline */
	now = now_usec();
	run_for(loop, (unsigned)((a_deadline > now ? a_deadline - now : 0) / USEC_PER_MSEC) + 100);
	ck_assert(!b.done);
	fake_peer_resume(peer);
	ck_assert(run_until(loop, rec_reply_done, &b, WAIT_MS));
	ck_assert_str_eq(rec.order, "up a:1 b:2 ");
}
END_TEST

START_TEST(greeting_missing)
{
	/* The second connection gets its greeting as soon as it is accepted:
	 * nothing the test does in between can make its handshake late. */
	static const struct fake_step script[] = {
		/* first connection: silence until the client gives up */
		{ FAKE_SILENT },
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	/* short, but long enough for a handshake on a slow machine */
	uint64_t timeout = test_scaled_usec(300 * USEC_PER_MSEC);
	char *said = xasprintf("did not complete the QMP handshake within %.1f s (no greeting); "
			       "reconnecting",
			       (double)timeout / USEC_PER_SEC);

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(timeout, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_uint_eq(fake_peer_connections(peer), 2);
	ck_assert_msg(log_captured_find(said), "not logged: %s", said);
	free(said);
	/* Never connected, so never disconnected. */
	ck_assert_int_eq(rec.gone, 0);
	ck_assert_int_eq(rec.up, 1);
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
	ck_assert_int_eq(rec.gone, 0);
}
END_TEST

START_TEST(event_before_greeting)
{
	/* QEMU 7.2 writes an event emitted while it accepts a connection
	 * ahead of the greeting. */
	static const struct fake_step script[] = {
		{ FAKE_SEND, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
			     "\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"u0\", "
			     "\"path\": \"/machine/peripheral/u0\"}}" },
		{ FAKE_GREET },
		{ FAKE_EXPECT, "qmp_capabilities" },
		{ FAKE_REPLY, "{\"return\": {}}" },
		{ FAKE_END },
	};

	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 1000, 1000);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(fake_peer_connections(peer), 1);
	ck_assert_ptr_null(log_captured_find("protocol error"));
	ck_assert_int_eq(rec.up, 1);
	ck_assert_int_eq(rec.gone, 0);
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
	struct rec_reply p = { .tag = "add-fd" };
	struct qmp_command_opts o = { .fd = -1, .ret_type = QMP_RET_OBJECT };
	struct stat mine, theirs;
	char *path = xasprintf("%s/dev", dir);
	FILE *f = fopen(path, "w+");

	ck_assert_ptr_nonnull(f);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	o.fd = 12345; /* not open */
	ck_assert_int_eq(qmp_command(client, "add-fd", NULL, &o, rec_qmp_reply, &p), -EBADF);
	o.fd = fileno(f);
	ck_assert_int_eq(qmp_command(client, "add-fd", json_pack("{s:s}", "opaque", "vmplug-x"), &o,
				     rec_qmp_reply, &p),
			 0);
	/* Borrowed: closing ours now must not matter. */
	fclose(f);
	ck_assert(run_until(loop, rec_reply_done, &p, WAIT_MS));
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

/* The client freed from inside each kind of callback: nothing else is
 * delivered (b's reply is already read in the first case). */
static const struct fake_step replies[] = {
	{ FAKE_HANDSHAKE },
	{ FAKE_EXPECT, "a" },
	{ FAKE_EXPECT, "b" },
	{ FAKE_SEND, "{\"return\": 1, \"id\": $2}{\"return\": 2, \"id\": $3}" },
	{ FAKE_END },
};
static const struct fake_step event_first[] = {
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
static const struct {
	const struct fake_step *script;
	const char *free_after; /* the token whose callback frees the client */
	const char *order;
} frees[] = {
	{ replies, "a:", "up a:1 " },
	{ event_first, "ev:", "up ev:STOP " },
	{ closing, "gone", "up a:-107 b:-107 gone " },
};

static int free_case;

static void free_client_after(const char *token)
{
	if (startswith(token, frees[free_case].free_after)) {
		qmp_free(client);
		client = NULL;
	}
}

START_TEST(free_from_callbacks)
{
	struct rec_reply a = { .tag = "a" }, b = { .tag = "b" };

	free_case = _i;
	rec.after = free_client_after;
	peer = fake_peer_new(loop, sock, frees[_i].script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("a", &a, QMP_RET_ANY, 0), 0);
	ck_assert_int_eq(send_cmd("b", &b, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, client_freed, NULL, WAIT_MS));
	run_for(loop, 20);
	ck_assert_str_eq(rec.order, frees[_i].order);
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
	struct rec_reply p = { 0 };

	/* The environment switch, at the default log level. */
	setenv("VMPLUG_QMP_TRACE", "1", 1);
	log_capture_start(LOG_LEVEL_INFO);
	peer = fake_peer_new(loop, sock, script);
	start_client(0, 0, 0);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_int_eq(send_cmd("query-status", &p, QMP_RET_ANY, 0), 0);
	ck_assert(run_until(loop, rec_reply_done, &p, WAIT_MS));
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
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
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

/* How many inotify instances this process has open. */
static unsigned inotify_instances(void)
{
	char path[64], target[64];
	unsigned n = 0;

	for (int fd = 0; fd < 4096; fd++) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (streq(target, "anon_inode:inotify"))
			n++;
	}
	return n;
}

/* More clients than the kernel's default number of inotify instances per
 * user (128): they share one instance, and one kernel watch per
 * directory. */
START_TEST(clients_share_one_inotify_instance)
{
	enum { N = 200 };
	struct qmp *many[N];
	char *sub = xasprintf("%s/other", dir);
	unsigned before = inotify_instances();

	ck_assert_int_eq(mkdir(sub, 0755), 0);
	for (int i = 0; i < N; i++) {
		char *path = xasprintf("%s/vm%d.qmp", i % 2 ? sub : dir, i);
		char *name = xasprintf("vm%d", i);
		struct qmp_opts opts = { .name = name, .socket_path = path };

		many[i] = qmp_new(loop, &opts, NULL, NULL);
		ck_assert_msg(many[i], "client %d: %s", i, strerror(errno));
		free(path);
		free(name);
	}
	run_for(loop, 20);
	ck_assert_uint_eq(inotify_instances(), before + 1);
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 2);
	/* A watch outlives the others of its directory until the last. */
	for (int i = 0; i < N - 2; i++)
		qmp_free(many[i]);
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 2);
	qmp_free(many[N - 2]);
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 1);
	qmp_free(many[N - 1]);
	ck_assert_int_eq(dirwatch_fd(loop), -1);
	ck_assert_uint_eq(inotify_instances(), before);
	rmdir(sub);
	free(sub);
}
END_TEST

/* The shared instance still tells each of 200 clients of its own
 * socket, also in a directory that appears later. */
START_TEST(shared_instance_finds_a_late_directory)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	struct qmp *many[200];
	unsigned before = inotify_instances();
	char *sub = xasprintf("%s/late", dir);
	int one = 1;

	for (size_t i = 0; i < ARRAY_SIZE(many); i++) {
		char *path = xasprintf("%s/%s/vm%zu.qmp", dir, i % 2 ? "late" : ".", i);
		struct qmp_opts opts = { .name = "vm", .socket_path = path };

		many[i] = qmp_new(loop, &opts, NULL, NULL);
		ck_assert_msg(many[i] != NULL, "client %zu: %s", i, strerror(errno));
		free(path);
	}
	free(sock);
	sock = xasprintf("%s/late/qmp.sock", dir);
	start_client(0, 3600 * USEC_PER_SEC, 3600 * USEC_PER_SEC);
	run_for(loop, 10);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	run_for(loop, 10);
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, connected_n, &one, WAIT_MS));
	ck_assert_uint_eq(inotify_instances(), before + 1);
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		qmp_free(many[i]);
	qmp_free(client);
	client = NULL;
	ck_assert_uint_eq(inotify_instances(), before);
	free(sub);
}
END_TEST

/* A connected client watches nothing: files coming and going beside its
 * socket do not wake it. It watches again when the connection ends, and
 * a new socket is still found through inotify alone. */
START_TEST(no_watch_while_connected)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_END },
	};
	int two = 2;
	char *other = xasprintf("%s/unrelated", dir);

	peer = fake_peer_new(loop, sock, script);
	/* A backoff of an hour: only inotify can reconnect within the test. */
	start_client(0, 3600 * USEC_PER_SEC, 3600 * USEC_PER_SEC);
	ck_assert(run_until(loop, is_connected, NULL, WAIT_MS));
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 0);
	ck_assert_int_eq(mkdir(other, 0755), 0);
	ck_assert_int_eq(loop_dispatch(loop, 100), 0); /* no callback ran */

	fake_peer_free(peer);
	peer = NULL;
	ck_assert(run_until(loop, rec_noted, (char *)"gone ", WAIT_MS));
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 1);
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_uint_eq(dirwatch_kernel_watches(loop), 0);
	rmdir(other);
	free(other);
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

/* A socket file nobody listens on, as QEMU killed by SIGKILL leaves it. */
static void make_stale_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

/* Run the loop until the client has scheduled n more reconnect attempts
 * and put their delays in out. Each one is due no sooner than its delay
 * after the previous one came due (the timer really waits that long);
 * how much later depends on the machine's load and is not checked. */
static void next_retry_delays(uint64_t *out, size_t n)
{
	uint64_t give_up = now_usec() + test_scaled_usec(30 * USEC_PER_SEC), last_at = 0, at = 0, d;
	size_t i = 0;

	d = qmp_retry_delay(client, &at);
	if (d)
		last_at = at; /* already scheduled: not one of the n */
	while (i < n) {
		ck_assert_uint_lt(now_usec(), give_up);
		ck_assert_int_ge(loop_dispatch(loop, 100), 0);
		d = qmp_retry_delay(client, &at);
		if (!d || at == last_at)
			continue;
		ck_assert_uint_le(at, now_usec() + d);
		if (last_at)
			ck_assert_uint_ge(at, last_at + d);
		out[i++] = d;
		last_at = at;
	}
}

START_TEST(reconnect_backoff_defaults)
{
	uint64_t d[5];

	make_stale_socket();
	log_capture_start(LOG_LEVEL_INFO);
	start_client(0, 0, 0);
	/* 50 ms, doubling (to 5 s: the cap is the next test's). */
	next_retry_delays(d, ARRAY_SIZE(d));
	ck_assert_uint_eq(d[0], 50 * USEC_PER_MSEC);
	ck_assert_uint_eq(d[1], 100 * USEC_PER_MSEC);
	ck_assert_uint_eq(d[2], 200 * USEC_PER_MSEC);
	ck_assert_uint_eq(d[3], 400 * USEC_PER_MSEC);
	ck_assert_uint_eq(d[4], 800 * USEC_PER_MSEC);
	ck_assert_uint_eq(QMP_DEFAULT_BACKOFF_MIN_USEC, 50 * USEC_PER_MSEC);
	ck_assert_uint_eq(QMP_DEFAULT_BACKOFF_MAX_USEC, 5 * USEC_PER_SEC);
}
END_TEST

START_TEST(reconnect_backoff_cap_and_reset)
{
	static const struct fake_step script[] = {
		{ FAKE_HANDSHAKE },
		{ FAKE_CLOSE },
		{ FAKE_END },
	};
	static const uint64_t want[] = { 3000, 6000, 12000, 20000, 20000, 20000 };
	uint64_t d[ARRAY_SIZE(want)];
	int one = 1;

	make_stale_socket();
	log_capture_start(LOG_LEVEL_INFO);
	start_client(0, 3000, 20000);
	next_retry_delays(d, ARRAY_SIZE(d));
	for (size_t i = 0; i < ARRAY_SIZE(want); i++)
		ck_assert_msg(d[i] == want[i], "retry %zu: %llu us, want %llu", i,
			      (unsigned long long)d[i], (unsigned long long)want[i]);
	/* QEMU comes back (a new socket file: inotify, at once), then goes
	 * away in an orderly way: the next attempt is at the shortest delay
	 * again. */
	peer = fake_peer_new(loop, sock, script);
	ck_assert(run_until(loop, rec_up_n, &one, WAIT_MS));
	ck_assert_uint_eq(qmp_retry_delay(client, NULL), 0);
	ck_assert(run_until(loop, rec_gone_n, &one, WAIT_MS));
	ck_assert_uint_eq(qmp_retry_delay(client, NULL), 3000);
}
END_TEST

START_TEST(bad_options)
{
	struct qmp_opts opts = { .name = "vm x", .socket_path = "relative.sock" };
	char longpath[200];

	ck_assert_ptr_null(qmp_new(loop, &opts, &rec_qmp_callbacks, NULL));
	ck_assert_int_eq(errno, EINVAL);
	opts.socket_path = "/";
	ck_assert_ptr_null(qmp_new(loop, &opts, &rec_qmp_callbacks, NULL));
	ck_assert_int_eq(errno, EINVAL);
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	opts.socket_path = longpath;
	ck_assert_ptr_null(qmp_new(loop, &opts, &rec_qmp_callbacks, NULL));
	ck_assert_int_eq(errno, ENAMETOOLONG);
	opts.socket_path = sock;
	opts.name = NULL;
	ck_assert_ptr_null(qmp_new(loop, &opts, &rec_qmp_callbacks, NULL));
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
	tcase_add_test(tc, scrambled_and_bogus_ids);
	tcase_add_loop_test(tc, bad_peer_reconnects, 0, (int)ARRAY_SIZE(bad_peers));
	tcase_add_test(tc, peer_closes_mid_reply);
	tcase_add_test(tc, peer_never_answers);
	tcase_add_test(tc, finished_command_deadline_is_harmless);
	tcase_add_test(tc, greeting_missing);
	tcase_add_test(tc, event_before_greeting);
	tcase_add_test(tc, not_a_greeting_first);
	tcase_add_test(tc, fd_passing);
	tcase_add_loop_test(tc, free_from_callbacks, 0, (int)ARRAY_SIZE(frees));
	tcase_add_test(tc, trace_every_message);
	tcase_add_test(tc, no_trace_by_default);
	tcase_add_test(tc, inotify_missing_directory);
	tcase_add_test(tc, clients_share_one_inotify_instance);
	tcase_add_test(tc, shared_instance_finds_a_late_directory);
	tcase_add_test(tc, no_watch_while_connected);
	tcase_add_test(tc, stale_socket_is_quiet);
	tcase_add_test(tc, reconnect_backoff_defaults);
	tcase_add_test(tc, reconnect_backoff_cap_and_reset);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

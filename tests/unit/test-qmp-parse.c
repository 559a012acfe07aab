/* Unit tests for QMP framing and message shapes (qmp/parse.c): no sockets. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "qmp/qmp-int.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

/* Feed text and take every complete message; returns how many, -errno on error. */
static int feed_all(struct qmp_framer *f, const char *text, size_t len, json_t **msgs, int max)
{
	int n = 0, r;
	json_t *j;

	qmp_framer_feed(f, text, len);
	while ((r = qmp_framer_next(f, &j, NULL, NULL, NULL, 0)) == 1) {
		ck_assert_int_lt(n, max);
		msgs[n++] = j;
	}
	return r < 0 ? r : n;
}

static void decref_all(json_t **msgs, int n)
{
	for (int i = 0; i < n; i++)
		json_decref(msgs[i]);
}

START_TEST(framer_one_message_per_byte)
{
	struct qmp_framer *f = qmp_framer_new(QMP_MAX_MESSAGE);
	size_t len = strlen(greeting);
	json_t *msgs[2];
	int got = 0;

	/* A message split across as many reads as it has bytes. */
	for (size_t i = 0; i < len; i++) {
		int r = feed_all(f, greeting + i, 1, msgs + got, 2 - got);

		ck_assert_int_ge(r, 0);
		if (i + 3 < len)
			ck_assert_int_eq(r, 0);
		got += r;
	}
	ck_assert_int_eq(got, 1);
	ck_assert(json_is_object(json_object_get(msgs[0], "QMP")));
	ck_assert_uint_eq(qmp_framer_pending(f), 0);
	decref_all(msgs, got);
	qmp_framer_free(f);
}
END_TEST

START_TEST(framer_merged_messages_and_strings)
{
	/* Three messages in one read, no separators between two of them,
	 * braces and quotes inside strings, and a split third one. */
	static const char text[] = "{\"return\": {}, \"id\": 1}{\"event\": \"X\", \"data\": "
				   "{\"s\": \"}{\\\"]\"}}\n  {\"return\": [1, {\"a\": \"[\"}], "
				   "\"id\": 2}\n{\"ret";
	struct qmp_framer *f = qmp_framer_new(QMP_MAX_MESSAGE);
	json_t *msgs[4];
	int n;

	n = feed_all(f, text, strlen(text), msgs, 4);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(msgs[1], "data"), "s")),
			 "}{\"]");
	ck_assert_int_eq(json_array_size(json_object_get(msgs[2], "return")), 2);
	ck_assert_uint_eq(qmp_framer_pending(f), 5);
	decref_all(msgs, n);
	n = feed_all(f, "urn\": {}, \"id\": 3}", 18, msgs, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(json_integer_value(json_object_get(msgs[0], "id")), 3);
	decref_all(msgs, n);

	/* Whitespace alone is no message, and reset forgets a partial one. */
	ck_assert_int_eq(feed_all(f, " \r\n\t{\"a", 7, msgs, 4), 0);
	qmp_framer_reset(f);
	ck_assert_uint_eq(qmp_framer_pending(f), 0);
	ck_assert_int_eq(feed_all(f, "[1]", 3, msgs, 4), 1);
	ck_assert(json_is_array(msgs[0]));
	decref_all(msgs, 1);
	qmp_framer_free(f);
}
END_TEST

START_TEST(framer_garbage)
{
	struct qmp_framer *f = qmp_framer_new(QMP_MAX_MESSAGE);
	char error[128] = "";
	const char *raw = NULL;
	size_t raw_len = 0;
	json_t *j = NULL;

	/* Not the start of an object. */
	qmp_framer_feed(f, "  hello", 7);
	ck_assert_int_eq(qmp_framer_next(f, &j, &raw, &raw_len, error, sizeof(error)), -EPROTO);
	ck_assert_uint_eq(raw_len, 5);
	ck_assert(strstr(error, "'h'"));

	/* Balanced but not JSON. */
	qmp_framer_reset(f);
	qmp_framer_feed(f, "{\"a\": nope}", 11);
	ck_assert_int_eq(qmp_framer_next(f, &j, &raw, &raw_len, error, sizeof(error)), -EPROTO);
	ck_assert_uint_eq(raw_len, 11);
	ck_assert_ptr_null(j);

	/* A NUL inside a string is refused by jansson. */
	qmp_framer_reset(f);
	qmp_framer_feed(f, "{\"a\": \"\\u0000\"}", 15);
	ck_assert_int_eq(qmp_framer_next(f, &j, NULL, NULL, NULL, 0), -EPROTO);
	qmp_framer_free(f);
}
END_TEST

START_TEST(framer_size_limit)
{
	struct qmp_framer *f = qmp_framer_new(64);
	char big[100];
	json_t *j = NULL;

	/* Exactly at the limit is fine. */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[63] = '}';
	qmp_framer_feed(f, big, 64);
	ck_assert_int_eq(qmp_framer_next(f, &j, NULL, NULL, NULL, 0), 1);
	json_decref(j);

	/* One byte over, complete or still open, is refused. */
	big[63] = ' ';
	big[64] = '}';
	qmp_framer_feed(f, big, 65);
	ck_assert_int_eq(qmp_framer_next(f, &j, NULL, NULL, NULL, 0), -EMSGSIZE);
	qmp_framer_reset(f);
	qmp_framer_feed(f, "{\"s\": \"", 7);
	ck_assert_int_eq(qmp_framer_next(f, &j, NULL, NULL, NULL, 0), 0);
	memset(big, 'x', sizeof(big));
	qmp_framer_feed(f, big, sizeof(big));
	ck_assert_int_eq(qmp_framer_next(f, &j, NULL, NULL, NULL, 0), -EMSGSIZE);
	qmp_framer_free(f);
	qmp_framer_free(NULL);
}
END_TEST

static int parse_text(const char *text, struct qmp_msg *m, json_t **keep, const char **why)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	int r;

	ck_assert_msg(j != NULL, "test JSON: %s", err.text);
	r = qmp_msg_parse(j, m, why);
	*keep = j;
	return r;
}

START_TEST(msg_shapes)
{
	const char *why = NULL;
	struct qmp_msg m;
	uint64_t id;
	json_t *j;

	ck_assert_int_eq(parse_text(greeting, &m, &j, &why), 0);
	ck_assert_int_eq(m.type, QMP_MSG_GREETING);
	ck_assert_int_eq(m.version.major, 7);
	ck_assert_int_eq(m.version.minor, 2);
	ck_assert_int_eq(m.version.micro, 22);
	ck_assert_str_eq(m.version.package, "Debian 1:7.2+dfsg-7+deb12u18+b3");
	json_decref(j);

	/* Unknown keys are ignored; the package is optional. */
	ck_assert_int_eq(
	    parse_text("{\"QMP\": {\"version\": {\"qemu\": {\"major\": 9, \"minor\": 0, "
		       "\"micro\": 1}}, \"new\": 1}, \"x\": null}",
		       &m, &j, &why),
	    0);
	ck_assert_str_eq(m.version.package, "");
	json_decref(j);

	ck_assert_int_eq(
	    parse_text("{\"return\": {\"status\": \"prelaunch\"}, \"id\": 7}", &m, &j, &why), 0);
	ck_assert_int_eq(m.type, QMP_MSG_RETURN);
	ck_assert_int_eq(qmp_msg_id(&m, &id), 0);
	ck_assert_uint_eq(id, 7);
	json_decref(j);

	ck_assert_int_eq(
	    parse_text("{\"error\": {\"class\": \"DeviceNotFound\", \"desc\": \"Device "
		       "'u1' not found\"}, \"id\": \"str\"}",
		       &m, &j, &why),
	    0);
	ck_assert_int_eq(m.type, QMP_MSG_ERROR);
	ck_assert_str_eq(m.error_class, "DeviceNotFound");
	ck_assert_str_eq(m.error_desc, "Device 'u1' not found");
	/* An id that is not a number is no id of ours. */
	ck_assert_int_eq(qmp_msg_id(&m, &id), -ENOENT);
	json_decref(j);

	ck_assert_int_eq(
	    parse_text("{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
		       "\"event\": \"DEVICE_DELETED\", \"data\": {\"device\": \"u0\"}}",
		       &m, &j, &why),
	    0);
	ck_assert_int_eq(m.type, QMP_MSG_EVENT);
	ck_assert_str_eq(m.event, "DEVICE_DELETED");
	ck_assert(json_is_object(m.data));
	json_decref(j);

	ck_assert_int_eq(parse_text("{\"event\": \"STOP\"}", &m, &j, &why), 0);
	ck_assert_ptr_null(m.data);
	json_decref(j);
}
END_TEST

START_TEST(msg_wrong_shapes)
{
	static const char *const bad[] = {
		"[1, 2]",
		"{}",
		"{\"id\": 1}",
		"{\"QMP\": 1}",
		"{\"QMP\": {}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\", \"minor\": 2, \"micro\": 0}}}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"major\": -1, \"minor\": 2, \"micro\": 0}}}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2}}}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}, "
		"\"package\": 5}}}",
		"{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7, \"minor\": 2, \"micro\": 0}}, "
		"\"capabilities\": \"oob\"}}",
		"{\"event\": 5}",
		"{\"event\": \"X\", \"data\": [1]}",
		"{\"error\": \"bad\", \"id\": 1}",
		"{\"error\": {\"class\": \"GenericError\"}, \"id\": 1}",
		"{\"error\": {\"class\": 1, \"desc\": \"x\"}, \"id\": 1}",
		"{\"return\": {}, \"error\": {\"class\": \"a\", \"desc\": \"b\"}, \"id\": 1}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		const char *why = NULL;
		struct qmp_msg m;
		json_t *j;

		ck_assert_msg(parse_text(bad[i], &m, &j, &why) == -EPROTO, "accepted: %s", bad[i]);
		ck_assert_msg(why != NULL, "no reason for %s", bad[i]);
		json_decref(j);
	}
}
END_TEST

START_TEST(build_command)
{
	json_t *c = qmp_build_command("device_del", json_pack("{s:s}", "id", "vmplug-a"), 42);
	char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_str_eq(text, "{\"arguments\":{\"id\":\"vmplug-a\"},\"execute\":\"device_del\","
			       "\"id\":42}");
	free(text);
	json_decref(c);
	c = qmp_build_command("query-status", NULL, 1);
	ck_assert_ptr_null(json_object_get(c, "arguments"));
	json_decref(c);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("qmp-parse");
	TCase *tc = tcase_create("framer");

	tcase_add_test(tc, framer_one_message_per_byte);
	tcase_add_test(tc, framer_merged_messages_and_strings);
	tcase_add_test(tc, framer_garbage);
	tcase_add_test(tc, framer_size_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("messages");
	tcase_add_test(tc, msg_shapes);
	tcase_add_test(tc, msg_wrong_shapes);
	tcase_add_test(tc, build_command);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(suite)

/* Unit tests for util/: string vectors, number parsing, atomic writes, rate limiting. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/guard.h"
#include "util/hash.h"
#include "util/heap.h"
#include "util/log.h"
#include "util/util.h"

START_TEST(strv_split_join)
{
	char **v = strv_split(" kbd, mouse,,pad ", ", ");
	char *j;

	ck_assert_uint_eq(strv_len(v), 3);
	ck_assert_str_eq(v[0], "kbd");
	ck_assert_str_eq(v[2], "pad");
	ck_assert(strv_contains(v, "mouse"));
	ck_assert(!strv_contains(v, "mous"));
	j = strv_join(v, "+");
	ck_assert_str_eq(j, "kbd+mouse+pad");
	free(j);
	strv_free(v);
	v = strv_split("", ",");
	ck_assert_uint_eq(strv_len(v), 0);
	j = strv_join(v, ",");
	ck_assert_str_eq(j, "");
	free(j);
	strv_free(v);
}
END_TEST

/* FNV-1a: the published values, and syspaths that differ only at the end. */
START_TEST(str_hash_is_fnv1a)
{
	ck_assert_uint_eq(str_hash(""), 0x811c9dc5u);
	ck_assert_uint_eq(str_hash("a"), 0xe40c292cu);
	ck_assert_uint_eq(str_hash("foobar"), 0xbf9cf968u);
	ck_assert_uint_ne(str_hash("/sys/devices/pci0000:00/0000:00:14.0/usb3/3-10/3-10.2"),
			  str_hash("/sys/devices/pci0000:00/0000:00:14.0/usb3/3-10/3-10.3"));
}
END_TEST

/* The tests' scenario lists: the suffix's files only, in name order. */
START_TEST(list_dir_sorts_by_name)
{
	char *dir = scratch_new("list-dir");
	static const char *const files[] = { "b.scenario", "10.scenario", "a.scenario", "c.txt",
					     ".hidden.scenario" };
	char **names, *joined;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *path = xasprintf("%s/%s", dir, files[i]);

		ck_assert_int_eq(write_file_atomic(path, "", 0, 0644), 0);
		free(path);
	}
	names = list_dir(dir, ".scenario");
	joined = strv_join(names, " ");
	ck_assert_str_eq(joined, "10.scenario a.scenario b.scenario");
	free(joined);
	strv_free(names);
	scratch_remove(dir);
}
END_TEST

/* A free inside an entry waits for the outermost entry to end. */
START_TEST(guard_defers_the_free_to_the_outermost_entry)
{
	struct guard g = { 0 };

	guard_enter(&g);
	guard_enter(&g);
	ck_assert(!guard_kill(&g));
	ck_assert(g.dead);
	ck_assert(!guard_leave(&g));
	ck_assert(guard_leave(&g));
	/* outside any entry: at once */
	g = (struct guard){ 0 };
	ck_assert(guard_kill(&g));
	/* entries that free nothing free nothing */
	g = (struct guard){ 0 };
	guard_enter(&g);
	ck_assert(!guard_leave(&g));
}
END_TEST

START_TEST(parse_uint_bounds)
{
	unsigned long v = 7;

	ck_assert_int_eq(parse_uint("255", 10, 255, &v), 0);
	ck_assert_uint_eq(v, 255);
	ck_assert_int_eq(parse_uint("256", 10, 255, &v), -ERANGE);
	ck_assert_int_eq(parse_uint("ffff", 16, 0xffff, &v), 0);
	ck_assert_uint_eq(v, 0xffff);
	ck_assert_int_eq(parse_uint("", 10, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("-1", 10, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint(" 1", 10, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("1x", 10, 10, &v), -EINVAL);
	ck_assert_int_eq(parse_uint("99999999999999999999999", 10, ~0UL, &v), -ERANGE);
	/* Out-parameters are written only on success. */
	ck_assert_uint_eq(v, 0xffff);
}
END_TEST

START_TEST(atomic_write_replaces_file)
{
	char dir[] = "/tmp/vmplug-test-XXXXXX";
	char *path, *sub, *rm, buf[32] = { 0 };
	struct stat st;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	path = xasprintf("%s/sub/dir/file.json", dir);
	sub = xasprintf("%s/sub/dir", dir);
	ck_assert_int_eq(mkdir_p(sub, 0755), 0);
	ck_assert_int_eq(mkdir_p(sub, 0755), 0);
	ck_assert_int_eq(write_file_atomic(path, "first", 5, 0644), 0);
	ck_assert_int_eq(write_file_atomic(path, "second", 6, 0600), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(buf, 1, sizeof(buf), f), 6);
	fclose(f);
	ck_assert_str_eq(buf, "second");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* read_small_file reads it back, or says why not */
	{
		char small[4];
		char *subdir = xasprintf("%s/sub/dir", dir);

		ck_assert_int_eq(read_small_file(subdir, "file.json", small, sizeof(small)), 4);
		ck_assert_int_eq(memcmp(small, "seco", 4), 0);
		ck_assert_int_eq(read_small_file(subdir, "nope", small, sizeof(small)), -ENOENT);
		free(subdir);
	}
	/* A directory that does not exist: the error, and no temp file left. */
	ck_assert_int_eq(write_file_atomic("/nonexistent-vmplug/x", "a", 1, 0644), -ENOENT);
	rm = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(rm), 0);
	free(rm);
	free(sub);
	free(path);
}
END_TEST

static int logged;
static char last[256];

static void capture(enum log_level level, const char *msg, void *data)
{
	logged++;
	snprintf(last, sizeof(last), "%s", msg);
}

START_TEST(ratelimit_allows_burst_then_reports_suppressed)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(1000000, 3);
	uint64_t t = 5000000;
	int allowed = 0;

	log_set_handler(capture, NULL);
	for (int i = 0; i < 10; i++)
		allowed += log_ratelimit_allow(&rl, t + (uint64_t)i);
	ck_assert_int_eq(allowed, 3);
	ck_assert_int_eq(logged, 0);
	/* Next interval: allowed again, after one line about the 7 dropped. */
	ck_assert(log_ratelimit_allow(&rl, t + 1000000));
	ck_assert_int_eq(logged, 1);
	ck_assert_str_eq(last, "7 similar messages suppressed");
	log_set_handler(NULL, NULL);
}
END_TEST

START_TEST(printable_copies)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "Logitech USB Receiver", "Logitech USB Receiver" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "a\nb\rc\td", "a\\x0ab\\x0dc\\x09d" },
		{ "quote\" back\\slash", "quote\" back\\slash" },
		{ "\x7f\x1b[31m", "\\x7f\\x1b[31m" },
		{ "\xff\xfe", "\\xff\\xfe" },
		{ "\xc3", "\\xc3" },                   /* cut short */
		{ "\xc0\xaf", "\\xc0\\xaf" },          /* overlong */
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" }, /* a surrogate */
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
		{ "csi \xc2\x9b"
		  "2J nbsp\xc2\xa0",
		  "csi \\xc2\\x9b2J nbsp\xc2\xa0" }, /* C1 */
		{ "", "" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *s = xstrdup_printable(cases[i].in);

		ck_assert_str_eq(s, cases[i].out);
		free(s);
	}
}
END_TEST

/* Only what JSON cannot carry, or every control but newlines; cut
 * before a character that does not fit. */
START_TEST(escape_modes)
{
	char buf[8];
	char *s;

	s = xstrescape("a\nb\x1b\xff", STR_ESCAPE_INVALID);
	ck_assert_str_eq(s, "a\nb\x1b\\xff");
	free(s);
	s = xstrescape("a\nb\x1b\xff", STR_ESCAPE_CONTROL | STR_ESCAPE_KEEP_NEWLINE);
	ck_assert_str_eq(s, "a\nb\\x1b\\xff");
	free(s);
	ck_assert_uint_eq(strescape(buf, sizeof(buf), "ab\x1b\xc3\xa9", STR_ESCAPE_CONTROL), 6);
	ck_assert_str_eq(buf, "ab\\x1b");
	ck_assert_uint_eq(strescape(buf, sizeof(buf), "abcd\xc3\xa9x", STR_ESCAPE_CONTROL), 7);
	ck_assert_str_eq(buf, "abcd\xc3\xa9x");
}
END_TEST

/* Whatever the arguments hold, a log line is one line of valid UTF-8
 * without a control character: nothing can forge a line or drive the
 * terminal of whoever reads the log. */
START_TEST(log_lines_are_escaped)
{
	log_set_handler(capture, NULL);
	log_warning("vm %s: %s", "pc",
		    "QEMU says: bad\nvmplugd: error: forged \x1b[2J\xff\xc2\x9b");
	ck_assert_str_eq(last, "vm pc: QEMU says: bad\\x0avmplugd: error: forged \\x1b[2J\\xff"
			       "\\xc2\\x9b");
	log_set_handler(NULL, NULL);
}
END_TEST

START_TEST(log_levels_filter)
{
	enum log_level l;

	log_set_handler(capture, NULL);
	logged = 0;
	log_set_level(LOG_LEVEL_WARNING);
	log_info("hidden");
	log_debug("hidden");
	log_warning("shown %d", 1);
	ck_assert_int_eq(logged, 1);
	ck_assert_str_eq(last, "shown 1");
	ck_assert_int_eq(log_level_from_name("debug", &l), 0);
	ck_assert_int_eq(l, LOG_LEVEL_DEBUG);
	ck_assert_int_eq(log_level_from_name("verbose", &l), -EINVAL);
	log_set_handler(NULL, NULL);
	log_set_level(LOG_LEVEL_INFO);
}
END_TEST

struct entry {
	struct hash_link link;
	struct heap_node node;
	unsigned key;
};

/* The entry with key in h, NULL if none (hashes collide on purpose: key % 7). */
static struct entry *hash_find(const struct hash *h, unsigned key)
{
	struct entry *e;

	hash_for_each_match(e, h, key % 7, link)
		if (e->key == key)
			return e;
	return NULL;
}

/* Lookups hold through growth (rehash), colliding hashes and removals. */
START_TEST(hash_finds_through_rehash_and_removal)
{
	enum { N = 1000 };
	struct entry *e = xcalloc(N, sizeof(*e));
	struct hash h = { 0 };

	for (unsigned i = 0; i < N; i++) {
		e[i].key = i;
		hash_insert(&h, &e[i].link, i % 7);
	}
	ck_assert_uint_eq(h.len, N);
	ck_assert_uint_ge(h.n_buckets, N);
	for (unsigned i = 0; i < N; i += 2)
		hash_remove(&h, &e[i].link);
	ck_assert_uint_eq(h.len, N / 2);
	for (unsigned i = 0; i < N; i++)
		ck_assert_ptr_eq(hash_find(&h, i), i % 2 ? &e[i] : NULL);
	hash_insert(&h, &e[4].link, 4 % 7);
	ck_assert_ptr_eq(hash_find(&h, 4), &e[4]);
	ck_assert_ptr_null(hash_find(&h, N));
	hash_clear(&h);
	ck_assert_ptr_null(hash_find(&h, 3));
	free(e);
}
END_TEST

/* Earliest first, equal keys in arming order, and any node moved or
 * taken out from the middle. */
START_TEST(heap_orders_by_key_then_arming)
{
	enum { N = 200 };
	struct entry *e = xcalloc(N, sizeof(*e));
	struct heap h = { 0 };
	uint64_t prev_key = 0;
	size_t prev_i = 0, n = 0;

	for (unsigned i = 0; i < N; i++) {
		heap_node_init(&e[i].node);
		e[i].key = i;
		heap_arm(&h, &e[i].node, 1 + (i * 37) % 50); /* four of each key */
	}
	heap_arm(&h, &e[10].node, 0); /* out */
	heap_remove(&h, &e[10].node); /* a no-op now */
	heap_arm(&h, &e[11].node, 1); /* moved: last among the 1s */
	ck_assert(!heap_node_queued(&e[10].node));
	ck_assert_uint_eq(h.len, N - 1);
	while (heap_top(&h)) {
		struct heap_node *t = heap_top(&h);
		struct entry *x = container_of(t, struct entry, node);

		ck_assert_uint_ge(t->key, prev_key);
		if (t->key == prev_key && x->key != 11)
			ck_assert_uint_gt(x->key, prev_i); /* armed in index order */
		if (t->key == 1 && prev_key == 1)
			ck_assert_uint_ne(prev_i, 11); /* 11 comes last of the 1s */
		prev_key = t->key;
		prev_i = x->key;
		heap_remove(&h, t);
		n++;
	}
	ck_assert_uint_eq(n, N - 1);
	heap_clear(&h);
	free(e);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_test(tc, strv_split_join);
	tcase_add_test(tc, str_hash_is_fnv1a);
	tcase_add_test(tc, hash_finds_through_rehash_and_removal);
	tcase_add_test(tc, heap_orders_by_key_then_arming);
	tcase_add_test(tc, parse_uint_bounds);
	tcase_add_test(tc, guard_defers_the_free_to_the_outermost_entry);
	tcase_add_test(tc, list_dir_sorts_by_name);
	tcase_add_test(tc, atomic_write_replaces_file);
	tcase_add_test(tc, ratelimit_allows_burst_then_reports_suppressed);
	tcase_add_test(tc, log_levels_filter);
	tcase_add_test(tc, printable_copies);
	tcase_add_test(tc, escape_modes);
	tcase_add_test(tc, log_lines_are_escaped);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_suite)

/* Unit tests for input/cache: golden round trips, a corpus of bad files,
 * truncation at every length, files on disk, fallbacks, comparisons. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input/cache.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/log.h"
#include "util/util.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = xmalloc(INPUT_CACHE_MAX_SIZE);
	size_t n;

	ck_assert_msg(f != NULL, "cannot read %s", path);
	n = fread(buf, 1, INPUT_CACHE_MAX_SIZE - 1, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *corpus(const char *rel)
{
	return xasprintf("%s/%s", CACHE_CORPUS, rel);
}

static struct libevdev *parse_file(const char *rel)
{
	char *path = corpus(rel), *text, *error = NULL;
	struct libevdev *dev = NULL;
	size_t len;
	int r;

	text = slurp(path, &len);
	r = input_cache_parse(text, len, &dev, &error);
	ck_assert_msg(r == 0, "%s: %s", rel, error ? error : "?");
	free(text);
	free(path);
	return dev;
}

static void round_trip(const char *rel, const char *source)
{
	char *path = corpus(rel), *text, *again;
	struct libevdev *dev = parse_file(rel);
	size_t len;

	text = slurp(path, &len);
	again = input_cache_format(dev, source);
	ck_assert_str_eq(again, text);
	free(again);
	free(text);
	free(path);
	libevdev_free(dev);
}

START_TEST(golden_keyboard)
{
	struct libevdev *dev = parse_file("good/desk-kbd.json");
	int delay = 0, period = 0;

	round_trip("good/desk-kbd.json", "desk-kbd");
	ck_assert_str_eq(libevdev_get_name(dev), "Cherry GmbH CHERRY Wired Keyboard");
	ck_assert_int_eq(libevdev_get_id_bustype(dev), BUS_USB);
	ck_assert_int_eq(libevdev_get_id_vendor(dev), 0x046a);
	ck_assert_int_eq(libevdev_get_id_product(dev), 0x4001);
	ck_assert_int_eq(libevdev_get_id_version(dev), 0x0111);
	ck_assert(libevdev_has_event_code(dev, EV_KEY, KEY_A));
	ck_assert(libevdev_has_event_code(dev, EV_KEY, KEY_F24));
	ck_assert(!libevdev_has_event_code(dev, EV_KEY, KEY_B));
	ck_assert(libevdev_has_event_code(dev, EV_MSC, MSC_SCAN));
	ck_assert(libevdev_has_event_code(dev, EV_LED, LED_KANA));
	ck_assert(!libevdev_has_event_type(dev, EV_REL));
	ck_assert_int_eq(libevdev_get_repeat(dev, &delay, &period), 0);
	ck_assert_int_eq(delay, 250);
	ck_assert_int_eq(period, 33);
	libevdev_free(dev);
}
END_TEST

START_TEST(golden_touchpad)
{
	struct libevdev *dev = parse_file("good/touchpad.json");
	const struct input_absinfo *a;

	round_trip("good/touchpad.json", "touchpad");
	ck_assert(libevdev_has_property(dev, INPUT_PROP_POINTER));
	ck_assert(libevdev_has_property(dev, INPUT_PROP_BUTTONPAD));
	ck_assert(!libevdev_has_property(dev, INPUT_PROP_DIRECT));
	a = libevdev_get_abs_info(dev, ABS_MT_POSITION_Y);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->minimum, 1096);
	ck_assert_int_eq(a->maximum, 4758);
	ck_assert_int_eq(a->fuzz, 8);
	ck_assert_int_eq(a->flat, 0);
	ck_assert_int_eq(a->resolution, 68);
	ck_assert_int_eq(libevdev_get_num_slots(dev), 5);
	ck_assert(libevdev_has_event_code(dev, EV_SW, SW_LID));
	ck_assert(libevdev_has_event_code(dev, EV_SND, SND_BELL));
	ck_assert(libevdev_has_event_code(dev, EV_FF, FF_RUMBLE));
	ck_assert(!libevdev_has_event_type(dev, EV_REP));
	libevdev_free(dev);
}
END_TEST

START_TEST(numbers_and_names_are_both_read)
{
	const char *json = "{\"format\":1,\"name\":\"n\",\"id\":{\"bustype\":3,\"vendor\":1,"
			   "\"product\":2,\"version\":3},\"properties\":[1],\"events\":{\"1\":[30,"
			   "\"KEY_B\"],\"EV_ABS\":{\"0\":{\"minimum\":-5,\"maximum\":5}},"
			   "\"EV_SYN\":[],\"unknown-key\":0},\"extra\":{\"ignored\":true}}";
	struct libevdev *dev = NULL;
	char *error = NULL;

	/* "unknown-key" is not a type: refused; without it the rest parses. */
	ck_assert_int_eq(input_cache_parse(json, strlen(json), &dev, &error), -EINVAL);
	ck_assert_ptr_null(dev);
	ck_assert_str_eq(error, "events.unknown-key: unknown event type");
	free(error);
	json = "{\"format\":1,\"name\":\"n\",\"id\":{\"bustype\":3,\"vendor\":1,\"product\":2,"
	       "\"version\":3},\"properties\":[1],\"events\":{\"1\":[30,\"KEY_B\"],\"EV_ABS\":{"
	       "\"0\":{\"minimum\":-5,\"maximum\":5}},\"EV_SYN\":[]},\"extra\":{\"ignored\":true}}";
	ck_assert_int_eq(input_cache_parse(json, strlen(json), &dev, NULL), 0);
	ck_assert(libevdev_has_event_code(dev, EV_KEY, KEY_A));
	ck_assert(libevdev_has_event_code(dev, EV_KEY, KEY_B));
	ck_assert(libevdev_has_property(dev, INPUT_PROP_DIRECT));
	ck_assert_int_eq(libevdev_get_abs_minimum(dev, ABS_X), -5);
	libevdev_free(dev);
}
END_TEST

static const struct {
	const char *file;
	const char *error;
} bad[] = {
	{ "not-json", "line 1: " },
	{ "empty", "line " },
	{ "truncated", "line 1: " },
	{ "top-level-array", "not a JSON object" },
	{ "no-format", "\"format\" is missing" },
	{ "format-2", "format 2 is not supported" },
	{ "format-string", "cache.format: not an integer" },
	{ "name-number", "name: not a string" },
	{ "no-id", "id: missing" },
	{ "vendor-string", "id.vendor: not an integer" },
	{ "vendor-too-large", "id.vendor: 65536 is out of range" },
	{ "no-events", "events: missing" },
	{ "events-array", "events: not an object" },
	{ "key-object", "events.EV_KEY: not an array" },
	{ "key-unknown", "events.EV_KEY[1]: unknown code \"KEY_NOPE\"" },
	{ "key-number-too-large", "events.EV_KEY[0]: not a code name or a number" },
	{ "key-negative", "events.EV_KEY[0]: not a code name or a number" },
	{ "key-null", "events.EV_KEY[0]: not a code name or a number" },
	{ "type-unknown", "events.EV_NOPE: unknown event type" },
	{ "abs-min-above-max", "events.EV_ABS.ABS_X: minimum 10 is above maximum 1" },
	{ "abs-no-maximum", "events.EV_ABS.ABS_X: \"maximum\" is missing" },
	{ "abs-float", "events.EV_ABS.ABS_X.maximum: not an integer" },
	{ "abs-unknown-code", "events.EV_ABS.ABS_NOPE: unknown code" },
	{ "abs-array", "events.EV_ABS: not an object" },
	{ "abs-too-large", "events.EV_ABS.ABS_X.maximum: 4294967296 is out of range" },
	{ "rep-no-delay", "events.EV_REP: \"delay\" is missing" },
	{ "rep-array", "events.EV_REP: not an object" },
	{ "properties-object", "properties: not an array" },
	{ "property-unknown", "properties[0]: not a property name" },
	{ "duplicate-key", "duplicate object key" },
};

START_TEST(bad_files_are_errors)
{
	char *rel = xasprintf("bad/%s.json", bad[_i].file), *path = corpus(rel), *text;
	struct libevdev *dev = NULL;
	char *error = NULL;
	size_t len;

	text = slurp(path, &len);
	ck_assert_int_eq(input_cache_parse(text, len, &dev, &error), -EINVAL);
	ck_assert_ptr_null(dev);
	ck_assert_ptr_nonnull(error);
	ck_assert_msg(strstr(error, bad[_i].error), "%s: error \"%s\" lacks \"%s\"", rel, error,
		      bad[_i].error);
	free(error);
	free(text);
	free(path);
	free(rel);
}
END_TEST

/* Every prefix of a good file is an error, never a crash. */
START_TEST(truncated_at_every_length)
{
	char *path = corpus("good/touchpad.json"), *text;
	size_t len;

	text = slurp(path, &len);
	for (size_t n = 0; n < len - 1; n++) {
		struct libevdev *dev = NULL;
		char *copy = xmalloc(n ? n : 1), *error = NULL;

		/* A buffer of exactly n bytes, so ASan sees any overread. */
		memcpy(copy, text, n);
		ck_assert_int_eq(input_cache_parse(copy, n, &dev, &error), -EINVAL);
		ck_assert_ptr_nonnull(error);
		free(error);
		free(copy);
	}
	free(text);
	free(path);
}
END_TEST

static char **logged;

static void capture(enum log_level level, const char *msg, void *data)
{
	strv_append(&logged, msg);
}

static bool logged_has(const char *needle)
{
	for (size_t i = 0; logged && logged[i]; i++)
		if (strstr(logged[i], needle))
			return true;
	return false;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, text, strlen(text)), 0);
	close(fd);
}

START_TEST(save_and_load)
{
	char dir[] = "/tmp/vmplug-cache-XXXXXX";
	char *sub, *path, *text, *want;
	struct libevdev *dev = parse_file("good/desk-kbd.json"), *back = NULL;
	struct stat st;
	size_t len;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	sub = xasprintf("%s/not/yet", dir);
	ck_assert_int_eq(input_cache_load(sub, "desk-kbd", &back), -ENOENT);
	ck_assert_int_eq(input_cache_save(sub, "desk-kbd", dev), 0);
	path = input_cache_path(sub, "desk-kbd");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0644);
	text = slurp(path, &len);
	want = input_cache_format(dev, "desk-kbd");
	ck_assert_str_eq(text, want);
	ck_assert_int_eq(input_cache_load(sub, "desk-kbd", &back), 0);
	ck_assert(input_cache_equal(dev, back));
	libevdev_free(back);
	back = NULL;

	/* Corrupt files are reported, with the path and the problem, and ignored. */
	logged = NULL;
	log_set_handler(capture, NULL);
	put(path, "{\"format\":1,\"name\":");
	ck_assert_int_eq(input_cache_load(sub, "desk-kbd", &back), -EINVAL);
	ck_assert_ptr_null(back);
	ck_assert(logged_has("input desk-kbd: capability cache "));
	ck_assert(logged_has("desk-kbd.json is corrupt (line 1: "));
	put(path, "{\"format\":1,\"name\":\"x\",\"id\":{\"bustype\":\"usb\"}}");
	ck_assert_int_eq(input_cache_load(sub, "desk-kbd", &back), -EINVAL);
	ck_assert(logged_has("(id.bustype: not an integer)"));
	log_set_handler(NULL, NULL);
	strv_free(logged);
	logged = NULL;

	free(text);
	text = xasprintf("rm -rf %s", dir);
	ck_assert_int_eq(system(text), 0);
	free(text);
	free(want);
	free(path);
	free(sub);
	libevdev_free(dev);
}
END_TEST

/* A FIFO or a link planted where a cache file goes neither hangs the
 * daemon nor sends it elsewhere; a save replaces it, the link's target
 * untouched. */
START_TEST(fifo_and_link_are_not_followed)
{
	struct libevdev *dev = parse_file("good/desk-kbd.json"), *back = NULL;
	char *dir = scratch_new("cache"), *path, *elsewhere, *text, *want;
	struct stat st;
	size_t len;

	path = input_cache_path(dir, "desk-kbd");
	elsewhere = xasprintf("%s/elsewhere", dir);
	want = input_cache_format(dev, "desk-kbd");
	logged = NULL;
	log_set_handler(capture, NULL);

	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(input_cache_load(dir, "desk-kbd", &back), -EINVAL);
	ck_assert(logged_has("desk-kbd.json is not a regular file; ignoring it"));
	ck_assert_int_eq(input_cache_save(dir, "desk-kbd", dev), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(input_cache_load(dir, "desk-kbd", &back), 0);
	libevdev_free(back);
	back = NULL;

	ck_assert_int_eq(unlink(path), 0);
	put(elsewhere, want);
	ck_assert_int_eq(symlink(elsewhere, path), 0);
	ck_assert_int_eq(input_cache_load(dir, "desk-kbd", &back), -EINVAL);
	ck_assert_ptr_null(back);
	ck_assert_int_eq(input_cache_save(dir, "desk-kbd", dev), 0);
	ck_assert_int_eq(lstat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(lstat(elsewhere, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	text = slurp(elsewhere, &len);
	ck_assert_str_eq(text, want);
	free(text);

	log_set_handler(NULL, NULL);
	strv_free(logged);
	logged = NULL;
	scratch_remove(dir);
	free(want);
	free(elsewhere);
	free(path);
	libevdev_free(dev);
}
END_TEST

/* As root, a cache directory another user owns, or others may write to,
 * is refused with its path and the reason: nothing read, nothing written. */
START_TEST(untrusted_directory_is_refused)
{
	static const struct {
		unsigned mode;
		uid_t owner;
		const char *why;
	} cases[] = {
		{ 0777, 0, "it is writable by others (mode 0777)" },
		{ 0770, 0, "it is writable by its group (mode 0770)" },
		{ 0755, 65534, "it is owned by uid 65534, not root" },
	};
	struct libevdev *dev = parse_file("good/desk-kbd.json"), *back = NULL;
	char *dir = scratch_new("cache"), *path, *msg;

	path = input_cache_path(dir, "desk-kbd");
	ck_assert_int_eq(input_cache_save(dir, "desk-kbd", dev), 0);
	logged = NULL;
	log_set_handler(capture, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ck_assert_int_eq(chown(dir, cases[i].owner, 0), 0);
		ck_assert_int_eq(chmod(dir, cases[i].mode), 0);
		ck_assert_int_eq(input_cache_load(dir, "desk-kbd", &back), -EPERM);
		ck_assert_ptr_null(back);
		msg = xasprintf("input desk-kbd: refusing the capability cache directory %s: %s",
				dir, cases[i].why);
		ck_assert_msg(logged_has(msg), "no '%s' logged", msg);
		free(msg);
		ck_assert_int_eq(unlink(path), 0);
		ck_assert_int_eq(input_cache_save(dir, "desk-kbd", dev), -EPERM);
		ck_assert_int_eq(access(path, F_OK), -1);
		ck_assert_int_eq(chown(dir, 0, 0), 0);
		ck_assert_int_eq(chmod(dir, 0700), 0);
		ck_assert_int_eq(input_cache_save(dir, "desk-kbd", dev), 0);
	}
	log_set_handler(NULL, NULL);
	strv_free(logged);
	logged = NULL;
	scratch_remove(dir);
	free(path);
	libevdev_free(dev);
}
END_TEST

START_TEST(fallback_sets)
{
	struct libevdev *kbd = input_cache_fallback(INPUT_CACHE_KEYBOARD);
	struct libevdev *mouse = input_cache_fallback(INPUT_CACHE_MOUSE);
	struct libevdev *real = parse_file("good/desk-kbd.json"), *back = NULL, *small;
	char *missing, *json, *error = NULL;
	int delay, period;

	for (unsigned code = KEY_ESC; code <= KEY_MICMUTE; code++)
		ck_assert(libevdev_has_event_code(kbd, EV_KEY, code));
	ck_assert(!libevdev_has_event_code(kbd, EV_KEY, BTN_LEFT));
	ck_assert(!libevdev_has_event_type(kbd, EV_REL));
	ck_assert(libevdev_has_event_code(kbd, EV_LED, LED_CAPSL));
	ck_assert(libevdev_has_event_code(kbd, EV_MSC, MSC_SCAN));
	ck_assert_int_eq(libevdev_get_repeat(kbd, &delay, &period), 0);

	for (unsigned code = BTN_LEFT; code <= BTN_TASK; code++)
		ck_assert(libevdev_has_event_code(mouse, EV_KEY, code));
	ck_assert(!libevdev_has_event_code(mouse, EV_KEY, KEY_A));
	ck_assert(libevdev_has_event_code(mouse, EV_REL, REL_X));
	ck_assert(libevdev_has_event_code(mouse, EV_REL, REL_Y));
	ck_assert(libevdev_has_event_code(mouse, EV_REL, REL_WHEEL));
	ck_assert(libevdev_has_event_code(mouse, EV_REL, REL_HWHEEL_HI_RES));
	ck_assert(libevdev_has_property(mouse, INPUT_PROP_POINTER));
	ck_assert(!libevdev_has_event_type(mouse, EV_REP));

	/* The keyboard superset covers a real keyboard, F13-F24 and media
	 * keys included. */
	missing = input_cache_missing(kbd, real);
	ck_assert_ptr_null(missing);
	missing = input_cache_missing(mouse, real);
	ck_assert_ptr_nonnull(missing);
	ck_assert_msg(startswith(missing, "EV_KEY: KEY_ESC KEY_1 KEY_2 KEY_BACKSPACE KEY_ENTER"),
		      "%s", missing);
	ck_assert_msg(strstr(missing, " KEY_F13 and 7 more"), "%s", missing);
	free(missing);
	small = libevdev_new();
	libevdev_enable_event_code(small, EV_KEY, KEY_A, NULL);
	libevdev_enable_event_code(small, EV_KEY, BTN_LEFT, NULL);
	libevdev_enable_event_code(small, EV_LED, LED_CAPSL, NULL);
	libevdev_enable_event_code(small, EV_REP, REP_DELAY, &delay);
	libevdev_enable_event_code(small, EV_REP, REP_PERIOD, &period);
	libevdev_enable_property(small, INPUT_PROP_DIRECT);
	missing = input_cache_missing(mouse, small);
	ck_assert_str_eq(missing,
			 "properties: INPUT_PROP_DIRECT; EV_KEY: KEY_A; EV_LED: LED_CAPSL; "
			 "EV_REP: (key repeat)");
	free(missing);
	libevdev_free(small);

	/* Fallbacks survive the cache format too. */
	json = input_cache_format(mouse, "m");
	ck_assert_int_eq(input_cache_parse(json, strlen(json), &back, &error), 0);
	ck_assert(input_cache_equal(back, mouse));
	free(json);
	libevdev_free(back);
	libevdev_free(real);
	libevdev_free(kbd);
	libevdev_free(mouse);
}
END_TEST

START_TEST(missing_is_bounded)
{
	struct libevdev *kbd = input_cache_fallback(INPUT_CACHE_KEYBOARD);
	struct libevdev *empty = libevdev_new();
	char *missing = input_cache_missing(empty, kbd);

	ck_assert_msg(strstr(missing, " and "), "%s", missing);
	ck_assert_msg(strstr(missing, " more"), "%s", missing);
	ck_assert_uint_lt(strlen(missing), 400);
	free(missing);
	libevdev_free(empty);
	libevdev_free(kbd);
}
END_TEST

START_TEST(copy_is_equal)
{
	struct libevdev *pad = parse_file("good/touchpad.json");
	struct libevdev *copy = input_cache_copy(pad);

	ck_assert(input_cache_equal(pad, copy));
	libevdev_disable_event_code(copy, EV_ABS, ABS_PRESSURE);
	ck_assert(!input_cache_equal(pad, copy));
	libevdev_free(copy);
	libevdev_free(pad);
}
END_TEST

static const struct {
	const char *source, *device;
	enum input_cache_kind kind;
	const char *why;
} guesses[] = {
	{ "desk", "/dev/input/by-id/usb-Logitech_USB_Receiver-if02-event-mouse", INPUT_CACHE_MOUSE,
	  "ends in -event-mouse" },
	{ "mouse", "/dev/input/by-id/usb-Cherry_Keyboard-event-kbd", INPUT_CACHE_KEYBOARD,
	  "ends in -event-kbd" },
	{ "a", "/dev/input/by-path/pci-0000:00:14.0-usb-0:2:1.0-mouse", INPUT_CACHE_MOUSE,
	  "path names a mouse" },
	{ "a", "/dev/input/by-id/my-keyboard", INPUT_CACHE_KEYBOARD, "path names a keyboard" },
	{ "trackball", "/dev/input/event7", INPUT_CACHE_MOUSE, "name says mouse" },
	{ "Mouse", "/dev/input/event7", INPUT_CACHE_MOUSE, "name says mouse" },
	{ "kbd", "/dev/input/event7", INPUT_CACHE_KEYBOARD, "keyboard is the default" },
};

START_TEST(guess_kind)
{
	const char *why = NULL;

	ck_assert_int_eq(input_cache_guess_kind(guesses[_i].source, guesses[_i].device, &why),
			 guesses[_i].kind);
	ck_assert_msg(strstr(why, guesses[_i].why), "%s", why);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("input-cache");
	TCase *tc = tcase_create("cache");

	tcase_add_test(tc, golden_keyboard);
	tcase_add_test(tc, golden_touchpad);
	tcase_add_test(tc, numbers_and_names_are_both_read);
	tcase_add_loop_test(tc, bad_files_are_errors, 0, ARRAY_SIZE(bad));
	tcase_add_test(tc, truncated_at_every_length);
	tcase_add_test(tc, save_and_load);
	tcase_add_test(tc, fifo_and_link_are_not_followed);
	tcase_add_test_if(tc, untrusted_directory_is_refused, geteuid() == 0,
			  "only root owns what others cannot change");
	tcase_add_test(tc, fallback_sets);
	tcase_add_test(tc, missing_is_bounded);
	tcase_add_test(tc, copy_is_equal);
	tcase_add_loop_test(tc, guess_kind, 0, ARRAY_SIZE(guesses));
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(cache_suite)

/* Unit tests for input/frame: key state, release frames, frame assembly
 * and SYN_DROPPED resyncs, fed as libevdev would hand events out. */
#include "config.h"

#include <libevdev/libevdev.h>
#include <stdlib.h>

#include "input/frame.h"
#include "tests/unit/check-main.h"
#include "tests/unit/fixture.h"
#include "util/util.h"

#define OK LIBEVDEV_READ_STATUS_SUCCESS
#define SYNC LIBEVDEV_READ_STATUS_SYNC

struct step {
	int status;
	unsigned short type, code;
	int value;
};

#define KEY(c, v)                                                                                  \
	{                                                                                          \
		OK, EV_KEY, c, v                                                                   \
	}
#define REPORT                                                                                     \
	{                                                                                          \
		OK, EV_SYN, SYN_REPORT, 0                                                          \
	}
#define DROPPED                                                                                    \
	{                                                                                          \
		SYNC, EV_SYN, SYN_DROPPED, 0                                                       \
	}
#define SYNC_KEY(c, v)                                                                             \
	{                                                                                          \
		SYNC, EV_KEY, c, v                                                                 \
	}
#define SYNC_REPORT                                                                                \
	{                                                                                          \
		SYNC, EV_SYN, SYN_REPORT, 0                                                        \
	}
#define EAGAIN_SYNC                                                                                \
	{                                                                                          \
		-1, 0, 0, 0                                                                        \
	} /* libevdev: -EAGAIN in sync mode */

/* Feed steps; each complete frame is appended to `out` as text
 * "KEY_A:1 SYN_REPORT | ..." and applied to keys. */
static char *run(const struct step *steps, size_t n, struct input_keys *keys)
{
	struct input_frame f = { 0 };
	char **frames = NULL, *s;

	for (size_t i = 0; i < n; i++) {
		struct input_event ev = { .type = steps[i].type,
					  .code = steps[i].code,
					  .value = steps[i].value };
		bool done = steps[i].status < 0 ? input_frame_sync_done(&f)
						: input_frame_feed(&f, steps[i].status, &ev);

		if (!done)
			continue;
		s = fixture_events_text(f.ev, f.n);
		strv_append(&frames, s);
		free(s);
		input_keys_update(keys, f.ev, f.n);
		input_frame_reset(&f);
	}
	input_frame_clear(&f);
	s = frames ? strv_join(frames, " | ") : xstrdup("");
	strv_free(frames);
	return s;
}

START_TEST(frames_end_at_syn_report)
{
	static const struct step steps[] = {
		{ OK, EV_MSC, MSC_SCAN, 0x70004 },
		KEY(KEY_A, 1),
		REPORT,
		KEY(KEY_A, 2),
		REPORT,
		KEY(KEY_A, 0),
		REPORT,
		KEY(KEY_B, 1), /* no report yet */
	};
	struct input_keys keys = { 0 };
	char *out = run(steps, ARRAY_SIZE(steps), &keys);

	ck_assert_str_eq(out, "MSC_SCAN:458756 KEY_A:1 SYN_REPORT | KEY_A:2 SYN_REPORT | "
			      "KEY_A:0 SYN_REPORT");
	ck_assert(!input_keys_down(&keys, KEY_A));
	ck_assert(!input_keys_down(&keys, KEY_B)); /* its frame is not complete */
	free(out);
}
END_TEST

START_TEST(held_keys_and_release_frame)
{
	static const struct step steps[] = {
		KEY(KEY_LEFTSHIFT, 1), REPORT,        KEY(KEY_A, 1), REPORT,
		KEY(BTN_LEFT, 1),      REPORT,        KEY(KEY_A, 2), REPORT,
		KEY(KEY_A, 0),         KEY(KEY_Z, 1), REPORT,
	};
	struct input_keys keys = { 0 };
	struct input_event *rel = NULL;
	char *out = run(steps, ARRAY_SIZE(steps), &keys), *held;
	size_t n;

	held = input_keys_to_string(&keys);
	ck_assert_str_eq(held, "KEY_LEFTSHIFT KEY_Z BTN_LEFT");
	ck_assert_uint_eq(input_keys_count(&keys), 3);
	n = input_keys_release_frame(&keys, &rel);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(rel[0].code, KEY_LEFTSHIFT);
	ck_assert_int_eq(rel[1].code, KEY_Z);
	ck_assert_int_eq(rel[2].code, BTN_LEFT);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(rel[i].type, EV_KEY);
		ck_assert_int_eq(rel[i].value, 0);
	}
	ck_assert_int_eq(rel[3].type, EV_SYN);
	ck_assert_int_eq(rel[3].code, SYN_REPORT);
	/* Applying the release frame leaves nothing down. */
	input_keys_update(&keys, rel, n);
	ck_assert_uint_eq(input_keys_count(&keys), 0);
	ck_assert_uint_eq(input_keys_release_frame(&keys, &rel), 0);
	free(held);
	held = input_keys_to_string(&keys);
	ck_assert_str_eq(held, "(none)");
	free(held);
	free(rel);
	free(out);
}
END_TEST

/* The frame interrupted by SYN_DROPPED keeps what libevdev had handed
 * out; the resync's differences follow; the result is the device state. */
START_TEST(syn_dropped_resync_with_report)
{
	static const struct step steps[] = {
		KEY(KEY_A, 1),
		REPORT,
		KEY(KEY_B, 1), /* interrupted frame */
		DROPPED,
		SYNC_KEY(KEY_A, 0),
		SYNC_KEY(KEY_C, 1),
		SYNC_REPORT,
		EAGAIN_SYNC,
		KEY(KEY_C, 0),
		REPORT,
	};
	struct input_keys keys = { 0 };
	char *out = run(steps, ARRAY_SIZE(steps), &keys), *held;

	ck_assert_str_eq(out, "KEY_A:1 SYN_REPORT | KEY_B:1 KEY_A:0 KEY_C:1 SYN_REPORT | "
			      "KEY_C:0 SYN_REPORT");
	held = input_keys_to_string(&keys);
	ck_assert_str_eq(held, "KEY_B");
	free(held);
	free(out);
}
END_TEST

START_TEST(syn_dropped_resync_without_report)
{
	static const struct step steps[] = {
		KEY(KEY_A, 1),
		REPORT,
		DROPPED,
		SYNC_KEY(KEY_A, 0),
		EAGAIN_SYNC,
		/* nothing changed at all: an empty resync gives no frame */
		DROPPED,
		EAGAIN_SYNC,
		KEY(KEY_D, 1),
		REPORT,
	};
	struct input_keys keys = { 0 };
	char *out = run(steps, ARRAY_SIZE(steps), &keys);

	ck_assert_str_eq(out, "KEY_A:1 SYN_REPORT | KEY_A:0 SYN_REPORT | KEY_D:1 SYN_REPORT");
	free(out);
}
END_TEST

START_TEST(endless_frame_is_cut)
{
	struct input_frame f = { 0 };
	struct input_event ev = { .type = EV_REL, .code = REL_X, .value = 1 };
	size_t frames = 0;

	for (size_t i = 0; i < 3 * INPUT_FRAME_MAX; i++)
		if (input_frame_feed(&f, OK, &ev)) {
			frames++;
			ck_assert_uint_le(f.n, INPUT_FRAME_MAX);
			ck_assert_int_eq(f.ev[f.n - 1].type, EV_SYN);
			input_frame_reset(&f);
		}
	ck_assert_uint_eq(frames, 3);
	input_frame_clear(&f);
}
END_TEST

START_TEST(codes_out_of_range_are_ignored)
{
	struct input_keys keys = { 0 };
	struct input_event ev[] = {
		{ .type = EV_KEY, .code = KEY_MAX + 1, .value = 1 },
		{ .type = EV_REL, .code = REL_X, .value = 1 },
		{ .type = EV_KEY, .code = KEY_MAX, .value = 1 },
	};

	input_keys_update(&keys, ev, ARRAY_SIZE(ev));
	ck_assert_uint_eq(input_keys_count(&keys), 1);
	ck_assert(!input_keys_down(&keys, KEY_MAX + 1));
	ck_assert(input_keys_down(&keys, KEY_MAX));
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("input-frame");
	TCase *tc = tcase_create("frame");

	tcase_add_test(tc, frames_end_at_syn_report);
	tcase_add_test(tc, held_keys_and_release_frame);
	tcase_add_test(tc, syn_dropped_resync_with_report);
	tcase_add_test(tc, syn_dropped_resync_without_report);
	tcase_add_test(tc, endless_frame_is_cut);
	tcase_add_test(tc, codes_out_of_range_are_ignored);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(frame_suite)

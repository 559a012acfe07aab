/* Frames and key state: the pure core shared by sources and sinks. A
 * frame is the events of one device report, up to and including its
 * SYN_REPORT; key state is the set of EV_KEY codes (keys and buttons)
 * currently down. No fds, no libevdev device: tests drive it with arrays. */
#pragma once

#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>

/* A device that never sends SYN_REPORT must not grow a frame without
 * bound: at this many events the frame is closed by itself. */
#define INPUT_FRAME_MAX 1024

#define INPUT_KEYS_LONGS ((KEY_CNT + 8 * sizeof(unsigned long) - 1) / (8 * sizeof(unsigned long)))

struct input_keys {
	unsigned long bits[INPUT_KEYS_LONGS];
};

/* Apply the EV_KEY events of ev[0..n): value 0 releases, 1 and 2 (repeat)
 * mean down. Codes above KEY_MAX are ignored. */
void input_keys_update(struct input_keys *keys, const struct input_event *ev, size_t n);
/* Is code down (inline: the router asks several times per frame)? */
static inline bool input_keys_down(const struct input_keys *keys, unsigned code)
{
	const unsigned bits = 8 * sizeof(unsigned long);

	if (code > KEY_MAX)
		return false;
	return keys->bits[code / bits] & (1UL << (code % bits));
}
/* Number of keys and buttons down. */
size_t input_keys_count(const struct input_keys *keys);
/* The frame that releases every key and button down (EV_KEY code 0 in
 * ascending code order, then SYN_REPORT), in a new array *out of the
 * returned length; 0 and *out untouched when nothing is down. Does not
 * change keys. */
size_t input_keys_release_frame(const struct input_keys *keys, struct input_event **out);
/* "KEY_A KEY_LEFTSHIFT" or "(none)"; a new string. */
char *input_keys_to_string(const struct input_keys *keys);

struct input_frame {
	struct input_event *ev;
	size_t n, cap;
	bool resync; /* inside a SYN_DROPPED resync */
};

/* Feed one event as libevdev_next_event() returned it: status is
 * LIBEVDEV_READ_STATUS_SUCCESS or LIBEVDEV_READ_STATUS_SYNC. Returns true
 * when f->ev[0..f->n) is a complete frame ending with SYN_REPORT; the
 * caller uses it and then calls input_frame_reset().
 *
 * SYN_DROPPED is not stored. The events of the interrupted frame that
 * libevdev had already handed out stay in the frame, and the resync
 * events (libevdev's difference between that state and the device's)
 * are appended, so whoever applies the frames ends with the device's
 * real state. */
bool input_frame_feed(struct input_frame *f, int status, const struct input_event *ev);
/* The resync ran out of events (libevdev_next_event() in sync mode said
 * -EAGAIN): returns true, with a SYN_REPORT appended, if events are
 * pending that no SYN_REPORT closed. */
bool input_frame_sync_done(struct input_frame *f);
void input_frame_reset(struct input_frame *f);
/* Free the buffer. */
void input_frame_clear(struct input_frame *f);

/* The capability cache: everything needed to recreate an input device
 * exactly (name, ids, properties, every event type and code, absinfo,
 * repeat), as a struct libevdev with no fd that libevdev_uinput can
 * build a device from. One JSON file per source, DIR/SOURCE.json,
 * written atomically. When there is no cache and no device, a generic
 * keyboard or mouse superset stands in so a VM can still start. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct libevdev;

#define INPUT_CACHE_MAX_SIZE (1024 * 1024)

/* Parse cache JSON (not NUL-terminated; len bytes). Pure: no logging, no
 * files, so a fuzzer can drive it. Returns 0 and *out (a new device with
 * no fd; free with libevdev_free) or -EINVAL with *error set to a message
 * naming what is wrong (a new string; may be NULL). Unknown keys are
 * ignored; an event code may be a name ("KEY_A") or a number. */
int input_cache_parse(const char *json, size_t len, struct libevdev **out, char **error);

/* The JSON text of dev's capabilities (a new string, ends with a
 * newline). source is recorded for people reading the file; may be NULL.
 * Codes libevdev has names for (and reads back) are written by name. */
char *input_cache_format(const struct libevdev *dev, const char *source);

/* A capability copy of dev (an opened device or another copy): a new
 * device with no fd. */
struct libevdev *input_cache_copy(const struct libevdev *dev);

/* DIR/SOURCE.json: a new string. */
char *input_cache_path(const char *dir, const char *source);

/* Load DIR/SOURCE.json. 0 and *out; -ENOENT if there is none; -EINVAL if
 * it is corrupt, truncated, has wrong types or is not a regular file (a
 * link is not followed, a FIFO not waited on; logged with the path and
 * what is wrong: the file is then ignored); -EPERM if DIR may not be
 * trusted: as root, DIR must be root's and not writable by group or
 * others (logged with the reason); other -errno if unreadable (logged). */
int input_cache_load(const char *dir, const char *source, struct libevdev **out);

/* Write DIR/SOURCE.json atomically (temp file, rename; no fsync, so the
 * loop never waits on the disk), creating DIR if needed. 0 or -errno (not
 * logged): -EPERM when DIR may not be trusted (see input_cache_load). */
int input_cache_save(const char *dir, const char *source, const struct libevdev *dev);

enum input_cache_kind {
	INPUT_CACHE_KEYBOARD,
	INPUT_CACHE_MOUSE,
};

/* Which fallback fits a source with no cache: from its device path (the
 * by-id links end in -event-kbd / -event-mouse) and name, keyboard when
 * nothing says otherwise. *why (static text) says what decided. */
enum input_cache_kind input_cache_guess_kind(const char *source, const char *device,
					     const char **why);
const char *input_cache_kind_name(enum input_cache_kind kind);

/* The generic superset for kind: a keyboard with every key code up to
 * 255, LEDs, MSC_SCAN and repeat; or a mouse with 8 buttons, X/Y, both
 * wheels (with high-resolution events) and INPUT_PROP_POINTER. A new
 * device with no fd. */
struct libevdev *input_cache_fallback(enum input_cache_kind kind);

/* The capabilities want has and have lacks, as text for a log line
 * ("EV_KEY: KEY_F13 KEY_F14; EV_REL: REL_HWHEEL"), at most about 20
 * codes named; NULL if have has them all. EV_SYN is ignored, and so is
 * EV_REP's delay and period. A new string. */
char *input_cache_missing(const struct libevdev *have, const struct libevdev *want);

/* True if a and b have the same capabilities, ids and name. */
bool input_cache_equal(const struct libevdev *a, const struct libevdev *b);

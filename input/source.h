/* A source: the physical evdev device a [input] section names with
 * `device =` (usually a /dev/input/by-id link). It is opened when udev
 * reports it, grabbed (EVIOCGRAB) so the host no longer sees it, read
 * with libevdev (SYN_DROPPED resyncs included), and closed when it goes
 * away; a replug opens it again. It hands complete frames to a consumer
 * and knows which keys and buttons it holds down, so that what it held
 * can be released when it disappears. On every open it records the
 * device's capabilities in the cache. */
#pragma once

#include <libudev.h>
#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>

#include "loop/loop.h"
#include "input/frame.h"

struct libevdev;
struct input_source;

enum input_source_state {
	INPUT_SOURCE_ABSENT,   /* not plugged in (or not seen yet) */
	INPUT_SOURCE_OPENING,  /* seen; retrying until the node can be opened */
	INPUT_SOURCE_SETTLING, /* open; waiting for keys held at open to be released */
	INPUT_SOURCE_BUSY,     /* another program grabbed it; retrying */
	INPUT_SOURCE_OPEN,     /* open and grabbed: frames flow */
	INPUT_SOURCE_FAILED,   /* cannot be used (not evdev, open error); see the log */
	INPUT_SOURCE_RELEASED, /* open, not grabbed (input_source_set_grab): the host
				* sees the device too; frames flow */
};

struct input_source_hooks {
	/* Opened and grabbed. dev is the device's capabilities (borrowed for
	 * the call; the cache has them already). */
	void (*opened)(void *data, struct input_source *src, const struct libevdev *dev);
	/* One complete frame, ending with SYN_REPORT (borrowed for the call). */
	void (*frame)(void *data, struct input_source *src, const struct input_event *ev, size_t n);
	/* The device went away or failed after being opened; the keys and
	 * buttons it held count as released. */
	void (*closed)(void *data, struct input_source *src);
};

/* A source for [input "name"] with `device = device`, recording
 * capabilities in cache_dir. Hooks may be NULL members; they must not
 * free the source. Nothing is opened until input_source_udev() or
 * input_source_open(). */
struct input_source *input_source_new(struct loop *loop, const char *name, const char *device,
				      const char *cache_dir, const struct input_source_hooks *hooks,
				      void *data);
/* Ungrab, close and free; calls no hook. NULL is a no-op. */
void input_source_free(struct input_source *src);

/* A udev event of the input subsystem. An "add" or "change" of the
 * configured device (its devnode, one of its DEVLINKS, or where the
 * configured link points) opens it; a "remove" of the open device closes
 * it. Returns true if the event concerned this source. */
bool input_source_udev(struct input_source *src, const char *action, struct udev_device *dev);
/* Open devnode now (retrying briefly on ENOENT/EACCES). 0 or -errno for
 * errors that end the attempt at once. */
int input_source_open(struct input_source *src, const char *devnode);
/* Whether the source should be grabbed (the default) or left to the
 * host. Ungrabbing is immediate and the frames keep flowing; grabbing
 * again waits, as on open, until no key is held (3 s at most), and
 * retries while another program holds the grab. */
void input_source_set_grab(struct input_source *src, bool grab);

/* Show these lock lights (a mask of LED codes, bit LED_CAPSL for Caps
 * Lock) on the device: EV_LED for each light it has, in one write (the
 * kernel passes on those that change). 0 (also when it has no lights);
 * -ENODEV when it is not open; -errno from write() (EBADF: opened
 * read-only). */
int input_source_set_leds(struct input_source *src, unsigned leds);

const char *input_source_name(const struct input_source *src);
/* The configured path. */
const char *input_source_device(const struct input_source *src);
/* The evdev node in use or being opened; NULL when absent. */
const char *input_source_devnode(const struct input_source *src);
enum input_source_state input_source_state(const struct input_source *src);
const char *input_source_state_name(enum input_source_state state);
/* Grabbed now: the host does not see the device's events. */
bool input_source_grabbed(const struct input_source *src);
/* Keys and buttons down, as delivered in frames. */
const struct input_keys *input_source_keys(const struct input_source *src);
/* Capabilities of the device last opened; NULL if never opened. */
const struct libevdev *input_source_caps(const struct input_source *src);

/* A sink: the persistent virtual device (uinput) QEMU's input-linux
 * holds, one per (source, VM), named vmplug-VM-SOURCE. Creating the
 * uinput device is separate from writing frames to its fd, so the writer
 * runs on any fd (a pipe in tests; a descriptor re-adopted from the
 * service manager's fd store). */
#pragma once

#include <linux/input.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "input/frame.h"

struct libevdev;
struct input_sink;

/* Create the uinput device `name` with caps' capabilities (name and
 * EV_FF aside: force feedback needs an effect handler vmplug does not
 * have). caps must not be NULL. Opens /dev/uinput. 0 and *out, or -errno: -ENOENT when there is
 * no /dev/uinput (uinput module not loaded), -EACCES, or what
 * UI_DEV_CREATE said. */
int input_sink_create(const char *name, const struct libevdev *caps, struct input_sink **out);

/* A writer-only sink on fd (taken: closed by input_sink_free), with caps
 * (copied; may be NULL) deciding whether it repeats keys itself. No
 * devnode. */
struct input_sink *input_sink_new_fd(const char *name, int fd, const struct libevdev *caps);

/* Re-adopt fd, a uinput descriptor kept across a restart: it must be a
 * created uinput device (UI_GET_SYSNAME) whose sysfs name is `name`.
 * caps (copied; may be NULL) stand for its capabilities. 0 and *out with
 * fd taken; on error fd is left to the caller: -ENOTTY (not uinput, or
 * no device created on it), -ESTALE (another name), -errno. */
int input_sink_adopt(int fd, const char *name, const struct libevdev *caps,
		     struct input_sink **out);

/* Release every key still down, then (unless input_sink_set_persistent())
 * destroy the device, and free. NULL is a no-op. */
void input_sink_free(struct input_sink *s);

/* Forward one frame (events up to SYN_REPORT) in one write(). EV_KEY
 * repeats (value 2) are dropped when the sink repeats keys itself (it has
 * EV_REP: the kernel's autorepeat runs on the sink as on the physical
 * device); a frame left with nothing but SYN_REPORT is not written. Key
 * state follows what was written. 0 or -errno (the frame is then lost
 * and the key state unchanged). */
int input_sink_write(struct input_sink *s, const struct input_event *ev, size_t n);

/* Release every key and button down (EV_KEY 0 each, then SYN_REPORT, in
 * one write). 0 (also when nothing was down) or -errno. */
int input_sink_release_all(struct input_sink *s);

/* Read what the device's readers set on it (the desktop, or QEMU's
 * virtio-input-host for its guest, writing EV_LED to the event node; the
 * kernel hands those to the uinput descriptor): at most one read(). 1 and
 * *leds (a mask of LED codes, bit LED_CAPSL for Caps Lock) when its lights
 * changed; 0 when they did not (or nothing was there); -errno. */
int input_sink_read_leds(struct input_sink *s, unsigned *leds);
/* The lights its readers set, as last read (input_sink_read_leds). */
unsigned input_sink_leds(const struct input_sink *s);

/* The device survives input_sink_free (its fd is in the fd store). */
void input_sink_set_persistent(struct input_sink *s, bool persistent);

/* Who may open a VM's sink node. */
struct input_sink_owner {
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

/* The owner of a VM's sink node for its qemu-user and qemu-group (either
 * may be NULL): the user owns it (else root), the group may read and
 * write it (mode 0660) when one is given, else nobody but the owner
 * (0600); neither: root's alone. 0 and *o; -ENOENT and *missing (the
 * name) when the user or the group does not exist. */
int input_sink_owner_of(const char *user, const char *group, struct input_sink_owner *o,
			const char **missing);

/* Give the device node to o: its mode narrowed to 0600 first, so that
 * nobody gains access on the way, then chown, then o's mode. 0; -ENODEV
 * if the sink has no node; -errno from chown/chmod. */
int input_sink_set_owner(struct input_sink *s, const struct input_sink_owner *o);

const char *input_sink_name(const struct input_sink *s);
/* /dev/input/eventN, or NULL (writer-only sink, or not found). */
const char *input_sink_devnode(const struct input_sink *s);
/* Does a reader hold the sink's node grabbed (EVIOCGRAB)? 1 if so, 0 if
 * nobody does (a brief grab of our own succeeded and was let go), -errno
 * (-ENODEV: no node). */
int input_sink_grabbed(const struct input_sink *s);
/* Is path (links followed) the sink's own node: a character device with
 * the device number the kernel gave the sink's event node? 1 if so, 0 if
 * it is something else (another device, a file), -errno when it cannot
 * be looked at, -ENODEV when the sink has no node. Whatever names itself
 * like a sink (a USB device, another program's uinput device) may own a
 * path that looks like the sink's; this tells them apart. */
int input_sink_is_node(const struct input_sink *s, const char *path);
/* The path QEMU should open for the sink: by_id_dir/NAME when it leads
 * to the sink's own node (input_sink_is_node), else the node itself
 * (logged when the link leads elsewhere). NULL when the sink has no
 * node. A new string. */
char *input_sink_link(const struct input_sink *s, const char *by_id_dir);
/* Give a sink made elsewhere (input_sink_new_fd) its node: devnode and
 * its device number. */
void input_sink_set_node(struct input_sink *s, const char *devnode, dev_t rdev);
/* /sys/devices/virtual/input/inputN, or NULL. */
const char *input_sink_syspath(const struct input_sink *s);
/* The uinput fd (owned by the sink). */
int input_sink_fd(const struct input_sink *s);
/* The capabilities the sink was made with; NULL if unknown. */
const struct libevdev *input_sink_caps(const struct input_sink *s);
const struct input_keys *input_sink_keys(const struct input_sink *s);
/* True if the sink repeats keys itself (see input_sink_write). */
bool input_sink_repeats(const struct input_sink *s);

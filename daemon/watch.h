/* The udev watcher: one libudev monitor for the "usb" and "input"
 * subsystems, plus enumeration of what is already plugged in (coldplug).
 * USB devices are handed on as struct usb_device; input devices as the
 * udev_device itself (for the input sources). */
#pragma once

#include <stdbool.h>

#include <libudev.h>

#include "loop/loop.h"
#include "usb/device.h"

struct watch;

struct watch_hooks {
	/* A USB device (not an interface) appeared or changed; takes dev. */
	void (*usb_add)(void *data, struct usb_device *dev);
	/* A USB device went away. */
	void (*usb_remove)(void *data, const char *syspath);
	/* An input device event ("add", "remove", "change", ...), the device
	 * borrowed for the call; may be NULL. */
	void (*input)(void *data, const char *action, struct udev_device *dev);
};

/* Start watching and report every present device through the hooks
 * before returning. Uses udevd's events when udevd runs, else the
 * kernel's (logged: udev properties and tags are then missing). NULL
 * with errno set on failure. */
struct watch *watch_new(struct loop *loop, const struct watch_hooks *hooks, void *data);
void watch_free(struct watch *w);
/* True when events come from udevd (with its properties and tags). */
bool watch_uses_udevd(const struct watch *w);
/* True while the hooks are called for devices found present (at start,
 * the scan a second later, after lost events), which nobody just
 * plugged in: their "add" is not news for identify. */
bool watch_enumerating(const struct watch *w);

/* The USB device as vmplug sees it, read from udev (and the device's
 * descriptors in sysfs for its interface classes). */
struct usb_device *watch_usb_device_from_udev(struct udev_device *dev);

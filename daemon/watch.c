/* The udev watcher: monitor + coldplug for USB and input (see watch.h). */
#include "config.h"

#include "daemon/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* A storm of events should not overflow the socket: the kernel drops
 * what does not fit (ENOBUFS) and we resync with a full rescan. Without
 * CAP_NET_ADMIN (the unit does not give it) the buffer grows only as far
 * as net.core.rmem_max, and the rescan is what keeps vmplugd right. */
#define RECEIVE_BUFFER (16 * 1024 * 1024)
/* When the start-up scan is checked once more (see watch_new()). */
#define RESCAN_USEC (1 * USEC_PER_SEC)

struct watch {
	struct udev *udev;
	struct udev_monitor *mon;
	struct loop_source *src;
	struct loop_timer *rescan;
	struct watch_hooks hooks;
	void *data;
	bool udevd;
	bool enumerating;   /* reporting what is present, not what was plugged */
	char **usb_present; /* syspaths reported and not removed, for resync */
};

/* A number from a sysfs attribute, or the udev property when sysfs lacks it; 0 if none. */
static unsigned attr_uint(struct udev_device *dev, const char *attr, const char *prop, int base)
{
	const char *v = udev_device_get_sysattr_value(dev, attr);
	unsigned long n;

	if (!v && prop)
		v = udev_device_get_property_value(dev, prop);
	if (!v)
		return 0;
	/* sysfs values may end with a newline; BUSNUM is "003" (decimal) */
	char *copy = xstrdup(v);
	int r = parse_uint(strstrip(copy), base, 0xffff, &n);

	free(copy);
	return r == 0 ? (unsigned)n : 0;
}

/* As attr_uint(), in hex, -1 if absent (an ID of 0 is valid). */
static int attr_hex(struct udev_device *dev, const char *attr, const char *prop)
{
	const char *v = udev_device_get_sysattr_value(dev, attr);
	unsigned long n;
	char *copy;
	int r;

	if (!v && prop)
		v = udev_device_get_property_value(dev, prop);
	if (!v)
		return -1;
	copy = xstrdup(v);
	r = parse_uint(strstrip(copy), 16, 0xffff, &n);
	free(copy);
	return r == 0 ? (int)n : -1;
}

/* A device-chosen string, made printable; NULL if absent or empty. */
static char *attr_str(struct udev_device *dev, const char *attr)
{
	const char *v = udev_device_get_sysattr_value(dev, attr);
	char *copy, *out;

	if (!v)
		return NULL;
	copy = xstrdup(v);
	v = strstrip(copy);
	/* A device chooses its own strings (serial, product): they reach
	 * logs, rules, the control socket's JSON and terminals. */
	out = *v ? xstrdup_printable(v) : NULL;
	free(copy);
	return out;
}

/* The binary "descriptors" attribute: libudev reads attributes as
 * strings, so read it as a file (umockdev redirects this open too). */
static void read_descriptors(struct usb_device *d)
{
	uint8_t buf[4096];
	ssize_t n = read_small_file(d->syspath, "descriptors", buf, sizeof(buf));

	if (n > 0)
		usb_device_parse_descriptors(d, buf, (size_t)n);
}

struct usb_device *watch_usb_device_from_udev(struct udev_device *dev)
{
	struct usb_device *d = usb_device_new(udev_device_get_syspath(dev),
					      udev_device_get_sysname(dev));
	struct udev_list_entry *e;
	const char *v;

	if ((v = udev_device_get_devnode(dev)))
		d->devnode = xstrdup(v);
	d->bus = attr_uint(dev, "busnum", "BUSNUM", 10);
	d->devnum = attr_uint(dev, "devnum", "DEVNUM", 10);
	d->vendor = attr_hex(dev, "idVendor", "ID_VENDOR_ID");
	d->product = attr_hex(dev, "idProduct", "ID_MODEL_ID");
	d->device_class = attr_hex(dev, "bDeviceClass", NULL);
	if ((v = udev_device_get_sysattr_value(dev, "serial")))
		usb_device_set_serial(d, v);
	d->manufacturer = attr_str(dev, "manufacturer");
	d->product_name = attr_str(dev, "product");
	udev_list_entry_foreach(e, udev_device_get_properties_list_entry(dev)) {
		char *name = xstrdup_printable(udev_list_entry_get_name(e));
		char *value = xstrdup_printable(udev_list_entry_get_value(e));

		usb_device_add_prop(d, name, value);
		free(name);
		free(value);
	}
	udev_list_entry_foreach(e, udev_device_get_tags_list_entry(dev))
		usb_device_add_tag(d, udev_list_entry_get_name(e));
	if ((v = udev_device_get_property_value(dev, "ID_USB_INTERFACES")))
		usb_device_parse_udev_interfaces(d, v);
	read_descriptors(d);
	return d;
}

static bool is_usb_device(struct udev_device *dev)
{
	const char *type = udev_device_get_devtype(dev);

	return type && streq(type, "usb_device");
}

/* Drop syspath from usb_present, so a resync does not report it removed again. */
static void forget(struct watch *w, const char *syspath)
{
	size_t n = strv_len(w->usb_present);

	for (size_t i = 0; i < n; i++) {
		if (streq(w->usb_present[i], syspath)) {
			free(w->usb_present[i]);
			w->usb_present[i] = w->usb_present[n - 1];
			w->usb_present[n - 1] = NULL;
			return;
		}
	}
}

/* Remember the device as present (for resync) and hand it to the hooks. */
static void report_usb(struct watch *w, struct udev_device *dev)
{
	const char *syspath = udev_device_get_syspath(dev);

	if (!strv_contains(w->usb_present, syspath))
		strv_append(&w->usb_present, syspath);
	w->hooks.usb_add(w->data, watch_usb_device_from_udev(dev));
}

/* Route one udev event: input to the input hook, USB devices and new interfaces to usb_add. */
static void handle(struct watch *w, const char *action, struct udev_device *dev)
{
	const char *subsystem = udev_device_get_subsystem(dev);
	struct udev_device *parent;

	if (!subsystem)
		return;
	if (streq(subsystem, "input")) {
		if (w->hooks.input)
			w->hooks.input(w->data, action, dev);
		return;
	}
	if (!streq(subsystem, "usb"))
		return;
	if (is_usb_device(dev)) {
		if (streq(action, "remove")) {
			forget(w, udev_device_get_syspath(dev));
			w->hooks.usb_remove(w->data, udev_device_get_syspath(dev));
		} else if (!streq(action, "unbind")) {
			report_usb(w, dev);
		}
		return;
	}
	/* An interface appeared: its device may now match interface-class. */
	if (!streq(action, "add") && !streq(action, "bind"))
		return;
	parent = udev_device_get_parent_with_subsystem_devtype(dev, "usb", "usb_device");
	if (parent && strv_contains(w->usb_present, udev_device_get_syspath(parent)))
		report_usb(w, parent);
}

/* Report every present USB device, and as removed every one we had
 * reported that is not there any more (after lost events). */
static int enumerate(struct watch *w, bool resync)
{
	struct udev_enumerate *e = udev_enumerate_new(w->udev);
	struct udev_list_entry *entry;
	char **seen = NULL;
	int r;

	if (!e)
		return -ENOMEM;
	udev_enumerate_add_match_subsystem(e, "usb");
	udev_enumerate_add_match_subsystem(e, "input");
	r = udev_enumerate_scan_devices(e);
	if (r < 0) {
		udev_enumerate_unref(e);
		return r;
	}
	w->enumerating = true;
	udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(e)) {
		struct udev_device *dev = udev_device_new_from_syspath(
		    w->udev, udev_list_entry_get_name(entry));

		if (!dev)
			continue;
		if (is_usb_device(dev)) {
			strv_append(&seen, udev_device_get_syspath(dev));
			report_usb(w, dev);
		} else if (streq(udev_device_get_subsystem(dev), "input")) {
			handle(w, "add", dev);
		}
		udev_device_unref(dev);
	}
	udev_enumerate_unref(e);
	w->enumerating = false;
	if (resync) {
		char **old = strv_copy(w->usb_present);

		for (size_t i = 0; old[i]; i++) {
			if (strv_contains(seen, old[i]))
				continue;
			forget(w, old[i]);
			w->hooks.usb_remove(w->data, old[i]);
		}
		strv_free(old);
	}
	strv_free(seen);
	return 0;
}

/* Drain the monitor; lost events (ENOBUFS) are made good by a full rescan. */
static void on_monitor(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	static struct log_ratelimit rl = LOG_RATELIMIT_INIT(10 * USEC_PER_SEC, 3);
	struct watch *w = data;

	for (;;) {
		struct udev_device *dev;

		errno = 0;
		dev = udev_monitor_receive_device(w->mon);
		if (!dev) {
			if (errno == ENOBUFS) {
				log_ratelimited(&rl, LOG_LEVEL_WARNING,
						"udev: events were lost (event storm); rescanning "
						"devices");
				enumerate(w, true);
				continue;
			}
			return; /* EAGAIN: drained */
		}
		const char *action = udev_device_get_action(dev);

		log_debug("udev: %s %s (%s)", action ? action : "?", udev_device_get_sysname(dev),
			  udev_device_get_subsystem(dev));
		if (action)
			handle(w, action, dev);
		udev_device_unref(dev);
	}
}

/* The one rescan after start-up (see watch_new()). */
static void on_rescan(struct loop_timer *t, void *data)
{
	struct watch *w = data;

	enumerate(w, true);
}

struct watch *watch_new(struct loop *loop, const struct watch_hooks *hooks, void *data)
{
	struct watch *w = xnew(struct watch);
	struct udev_queue *q;
	int r;

	w->hooks = *hooks;
	w->data = data;
	w->udev = udev_new();
	if (!w->udev)
		goto fail;
	q = udev_queue_new(w->udev);
	w->udevd = q && udev_queue_get_udev_is_active(q);
	udev_queue_unref(q);
	if (!w->udevd)
		log_warning("udevd is not running: watching the kernel's device events "
			    "directly; udev properties and tags are not available to rules, "
			    "and QEMU may not see devices plugged in later");
	w->mon = udev_monitor_new_from_netlink(w->udev, w->udevd ? "udev" : "kernel");
	if (!w->mon)
		goto fail;
	if (udev_monitor_filter_add_match_subsystem_devtype(w->mon, "usb", NULL) < 0 ||
	    udev_monitor_filter_add_match_subsystem_devtype(w->mon, "input", NULL) < 0)
		goto fail;
	udev_monitor_set_receive_buffer_size(w->mon, RECEIVE_BUFFER);
	r = udev_monitor_enable_receiving(w->mon);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	w->src = loop_add_fd(loop, udev_monitor_get_fd(w->mon), EPOLLIN, on_monitor, w);
	if (!w->src)
		goto fail;
	/* Monitor first, then enumerate: nothing plugged in between is lost
	 * (a device seen twice is simply reported twice). */
	r = enumerate(w, false);
	if (r < 0) {
		errno = -r;
		goto fail;
	}
	/* The kernel sends "remove" before the device leaves sysfs (and
	 * umockdev does the same): a device being unplugged while vmplugd
	 * started may have been enumerated after its event went by, and
	 * would stay "present" for good. One more scan a moment later
	 * settles what was in flight; nothing is polled after that. */
	w->rescan = loop_timer_new(loop, on_rescan, w);
	loop_timer_arm_in(w->rescan, RESCAN_USEC);
	log_info("udev: watching USB and input devices (%s events), %zu USB device(s) present",
		 w->udevd ? "udevd" : "kernel", strv_len(w->usb_present));
	return w;
fail:
	r = errno ? errno : ENOMEM;
	watch_free(w);
	errno = r;
	return NULL;
}

void watch_free(struct watch *w)
{
	if (!w)
		return;
	loop_source_remove(w->src);
	loop_timer_free(w->rescan);
	udev_monitor_unref(w->mon);
	udev_unref(w->udev);
	strv_free(w->usb_present);
	free(w);
}

bool watch_uses_udevd(const struct watch *w)
{
	return w->udevd;
}

bool watch_enumerating(const struct watch *w)
{
	return w->enumerating;
}

/* identify: wait for the next device plugged in and answer with a
 * configuration section for it, ready to paste: a [usb] rule, and for a
 * keyboard or mouse an [input] section as well (see control.h). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "control/control-int.h"

/* How long identify waits for the input node of a USB keyboard or mouse
 * once the USB device is in. The node normally follows within a tenth of a
 * second, but udev hands it over only after its rules for the USB device
 * and the node have run, which takes seconds on a loaded host; the answer
 * goes out as soon as the node comes, so only a HID device without one (a
 * UPS, a game pad) waits all of this. */
#define INPUT_NODE_WAIT_USEC (10 * USEC_PER_SEC)

/* ------------------------------------------------------------ suggestions */

/* A rule name from the product name ("hd-webcam-c270"), else
 * "usb-VVVV-PPPP"; at most 32 characters, valid in a section name. */
static char *rule_name(const struct usb_device *d)
{
	const char *src = d->product_name;
	char name[33];
	size_t n = 0;
	bool dash = false;

	for (const char *c = src; c && *c && n < sizeof(name) - 1; c++) {
		if (isalnum((unsigned char)*c)) {
			if (dash && n)
				name[n++] = '-';
			if (n < sizeof(name) - 1)
				name[n++] = (char)tolower((unsigned char)*c);
			dash = false;
		} else {
			dash = true;
		}
	}
	name[n] = '\0';
	if (n == 0)
		return xasprintf("usb-%04x-%04x", d->vendor & 0xffff, d->product & 0xffff);
	return xstrdup(name);
}

/* "key = value", or, when value cannot be written so that it reads back
 * the same (a device chose it), a comment saying so. A new string. */
static char *key_line(const char *key, const char *value)
{
	char *shown;
	char *line;

	if (conf_line_writable(key, value))
		return xasprintf("%s = %s", key, value);
	shown = xstrdup_printable(value);
	line = xasprintf("(%s \"%.40s%s\" cannot be written in vmplug.conf)", key, shown,
			 strlen(shown) > 40 ? "..." : "");
	free(shown);
	return line;
}

/* The [usb] text: a port rule (by udev's ID_PATH when the device has
 * one: bus numbers follow the order controllers were probed in), and the
 * vendor/product(/serial) rule as a commented alternative, each with a
 * comment saying what it follows. What the device says goes into
 * comments escaped (one line each), and into a key only when it reads
 * back as it is: whatever a device calls itself, the text parses as
 * these sections and no others. */
char *control_identify_usb_text(const struct usb_device *d)
{
	char *name = rule_name(d);
	char *desc = usb_device_describe(d), *shown = xstrdup_printable(desc);
	char *port = xstrdup_printable(d->sysname);
	char *id_path = usb_device_id_path(d);
	bool by_path = id_path && conf_line_writable("port", id_path);
	const char *where = by_path ? id_path : d->sysname;
	char *port_line = key_line("port", where);
	char *serial_line = d->serial ? key_line("serial", d->serial) : NULL;
	char *serial = serial_line ? xasprintf("# %s\n", serial_line) : xstrdup("");
	char *alt = by_path ? xasprintf("# or by bus number, as sysfs names it: port = %s\n", port)
			    : xstrdup("");
	const char *off = conf_line_writable("port", where) ? "" : "# ";
	char *text;

	text = xasprintf(
	    "# %s: for a VM's file, vm.d/NAME.conf\n"
	    "# By port: whatever is plugged into port %s%s. Stays the same when\n"
	    "# the device is replugged there; tells identical devices apart by where\n"
	    "# they are plugged in.\n"
	    "%s"
	    "%s[usb \"%s\"]\n"
	    "%s%s\n"
	    "%s"
	    "\n"
	    "# Or by identity: this device on any port. %s\n"
	    "# [usb \"%s\"]\n"
	    "# vendor = %04x\n"
	    "# product = %04x\n"
	    "%s",
	    shown, port, usb_device_is_hub(d) ? " and behind this hub" : "",
	    by_path ? "# Named by its controller (udev's ID_PATH), it stays the same "
		      "when the\n# USB buses are numbered differently after a reboot.\n"
		    : "",
	    off, name, off, port_line, alt,
	    d->serial ? "Its serial number tells it apart\n# from identical devices."
		      : "It has no serial number, so\n# identical devices would all match.",
	    name, d->vendor & 0xffff, d->product & 0xffff, serial);
	free(alt);
	free(serial);
	free(serial_line);
	free(port_line);
	free(id_path);
	free(port);
	free(shown);
	free(desc);
	free(name);
	return text;
}

/* The [input] text for an event node, by its by-id link when it has one
 * that can be written as it is. */
char *control_identify_input_text(const char *devnode, const char *by_id, const char *name,
				  bool keyboard, bool mouse)
{
	const char *section = keyboard ? "kbd" : mouse ? "mouse" : "input";
	const char *path = by_id && conf_line_writable("device", by_id) ? by_id : devnode;
	char *shown = xstrdup_printable(name ? name : devnode);
	char *device = key_line("device", path);
	char *text;

	text = xasprintf(
	    "# %s: for vmplug.conf%s\n"
	    "[input \"%s\"]\n"
	    "%s%s\n"
	    "# and in each VM file that should get it: inputs = %s\n",
	    shown,
	    path != devnode ? "" : "\n# No /dev/input/by-id link: this path may change on replug.",
	    section, conf_line_writable("device", path) ? "" : "# ", device, section);
	free(device);
	free(shown);
	return text;
}

/* The /dev/input/by-id link among a device's DEVLINKS, if any. */
static char *by_id_link(struct udev_device *dev)
{
	const char *links = udev_device_get_property_value(dev, "DEVLINKS");
	char **v, *found = NULL;

	if (!links)
		return NULL;
	v = strv_split(links, " ");
	for (size_t i = 0; v[i] && !found; i++)
		if (startswith(v[i], "/dev/input/by-id/"))
			found = xstrdup(v[i]);
	strv_free(v);
	return found;
}

/* -------------------------------------------------------------- waiters */

/* Nothing (or a USB device without its input node) came in time. */
static void identify_expired(struct control_waiter *w)
{
	if (w->found)
		control_reply(w->client, w->id,
			      json_incref(w->found)); /* its input node did not come */
	else
		control_reply_error(w->client, w->id, "Timeout",
				    "nothing was plugged in within the time given");
}

void control_cmd_identify(const struct control_call *call)
{
	json_t *t = json_object_get(call->args, "timeout");
	json_int_t secs = 30;

	if (t &&
	    (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > 3600)) {
		control_reply_error(
		    call->cl, call->id, "GenericError",
		    "argument 'timeout' must be a number of seconds from 1 to 3600");
		return;
	}
	if (t)
		secs = json_integer_value(t);
	if (!control_may_wait(call))
		return;
	control_waiter_new(call, CONTROL_WAIT_IDENTIFY, (uint64_t)secs * USEC_PER_SEC,
			   identify_expired);
}

/* Answer the identify waiters that have found nothing yet (with ret), or,
 * for an input node, those waiting for the input node of the USB device
 * at usb_syspath (with both). Takes ret. */
static void identified(struct control *c, json_t *ret, const char *usb_syspath)
{
	struct control_waiter *w, *tmp;
	struct list done;

	list_init(&done);
	list_for_each_safe(w, tmp, &c->waiters, link) {
		if (w->kind != CONTROL_WAIT_IDENTIFY)
			continue;
		if (w->found &&
		    !(usb_syspath && w->found_syspath && streq(usb_syspath, w->found_syspath)))
			continue;
		list_remove(&w->link);
		list_insert_tail(&done, &w->link);
	}
	list_for_each_safe(w, tmp, &done, link) {
		json_t *answer = json_deep_copy(ret);

		if (w->found) {
			/* the USB device's answer, with its input node's section added */
			char *both = xasprintf(
			    "%s\n%s", json_string_value(json_object_get(w->found, "suggestion")),
			    json_string_value(json_object_get(ret, "suggestion")));

			json_decref(answer);
			answer = json_deep_copy(w->found);
			json_object_set(answer, "input", ret);
			json_object_set_new(answer, "suggestion", control_json_str(both));
			free(both);
		}
		control_reply(w->client, w->id, answer);
		control_waiter_free(w);
	}
	json_decref(ret);
}

/* -------------------------------------------------------- the daemon's */

void control_identify_usb(struct control *c, const struct usb_device *dev)
{
	struct control_waiter *w;
	json_t *ret;
	char *text;

	if (!c || usb_device_is_root_hub(dev))
		return;
	text = control_identify_usb_text(dev);
	ret = json_pack("{s:s,s:o,s:o}", "kind", "usb", "device", control_json_usb(dev),
			"suggestion", control_json_str(text));
	free(text);
	if (!usb_device_has_if_class(dev, USB_CLASS_HID)) {
		identified(c, ret, NULL);
		return;
	}
	/* A keyboard or mouse: its input node follows in a moment, and the
	 * user probably wants an [input] section for it as well. */
	list_for_each(w, &c->waiters, link) {
		if (w->kind != CONTROL_WAIT_IDENTIFY || w->found)
			continue;
		w->found = json_incref(ret);
		w->found_syspath = xstrdup(dev->syspath);
		loop_timer_arm_in(w->timer, INPUT_NODE_WAIT_USEC);
	}
	json_decref(ret);
}

void control_identify_input(struct control *c, struct udev_device *dev)
{
	const char *node = udev_device_get_devnode(dev);
	struct udev_device *parent, *usb;
	const char *name = NULL;
	char *link, *text;

	if (!c || !node || !startswith(node, "/dev/input/event"))
		return;
	parent = udev_device_get_parent_with_subsystem_devtype(dev, "input", NULL);
	if (parent)
		name = udev_device_get_sysattr_value(parent, "name");
	/* Our own sinks are not something the user plugged in. They are
	 * uinput devices: a USB device may call itself vmplug-* too. */
	if (name && startswith(name, "vmplug-") &&
	    startswith(udev_device_get_devpath(parent), "/devices/virtual/input/"))
		return;
	link = by_id_link(dev);
	usb = udev_device_get_parent_with_subsystem_devtype(dev, "usb", "usb_device");
	text = control_identify_input_text(
	    node, link, name, udev_device_get_property_value(dev, "ID_INPUT_KEYBOARD") != NULL,
	    udev_device_get_property_value(dev, "ID_INPUT_MOUSE") != NULL);
	identified(c,
		   json_pack("{s:s,s:o,s:o,s:o,s:o}", "kind", "input", "devnode",
			     control_json_str(node), "by-id", control_json_str(link), "name",
			     control_json_str(name), "suggestion", control_json_str(text)),
		   usb ? udev_device_get_syspath(usb) : NULL);
	free(text);
	free(link);
}

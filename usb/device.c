/* The host USB device as vmplug sees it (see device.h). */
#include "config.h"

#include "usb/device.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

struct usb_device *usb_device_new(const char *syspath, const char *sysname)
{
	struct usb_device *d = xnew(struct usb_device);

	d->syspath = xstrdup(syspath);
	d->sysname = xstrdup(sysname);
	d->vendor = d->product = d->device_class = -1;
	return d;
}

void usb_device_free(struct usb_device *d)
{
	if (!d)
		return;
	free(d->syspath);
	free(d->sysname);
	free(d->devnode);
	free(d->serial);
	free(d->serial_udev);
	free(d->manufacturer);
	free(d->product_name);
	free(d->if_classes);
	strv_free(d->props);
	strv_free(d->tags);
	free(d);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct usb_device *usb_device_copy(const struct usb_device *d)
{
	struct usb_device *c = xnew(struct usb_device);

	*c = *d;
	c->syspath = xstrdup(d->syspath);
	c->sysname = xstrdup(d->sysname);
	c->devnode = dup_or_null(d->devnode);
	c->serial = dup_or_null(d->serial);
	c->serial_udev = dup_or_null(d->serial_udev);
	c->manufacturer = dup_or_null(d->manufacturer);
	c->product_name = dup_or_null(d->product_name);
	c->if_classes = NULL;
	c->n_if_classes = 0;
	for (size_t i = 0; i < d->n_if_classes; i++)
		usb_device_add_if_class(c, d->if_classes[i]);
	c->props = d->props ? strv_copy(d->props) : NULL;
	c->tags = d->tags ? strv_copy(d->tags) : NULL;
	return c;
}

/* The characters udev keeps in a name it makes from a device's string. */
static bool udev_name_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c && strchr("#+-.:=@_", c));
}

char *usb_serial_udev(const char *raw)
{
	char *out = xmalloc(strlen(raw) + 1);
	size_t n = 0;
	bool gap = false;

	for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
		if (*p < 0x20 || *p > 0x7f || *p == ',') {
			free(out);
			return NULL;
		}
	}
	/* Only ' ' is whitespace among the bytes left: runs of it inside
	 * become one '_', at either end nothing. */
	for (const char *p = raw; *p; p++) {
		if (*p == ' ') {
			gap = n > 0;
			continue;
		}
		if (gap)
			out[n++] = '_';
		gap = false;
		out[n++] = *p;
	}
	out[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (out[i] == '\\' && out[i + 1] == 'x')
			i++; /* udev lets a "\x" stand (its own escapes) */
		else if (!udev_name_char(out[i]))
			out[i] = '_';
	}
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

void usb_device_set_serial(struct usb_device *d, const char *raw)
{
	char *copy = xstrdup(raw), *v;
	size_t len = strlen(copy);

	while (len && (copy[len - 1] == '\n' || copy[len - 1] == '\r'))
		copy[--len] = '\0';
	free(d->serial);
	free(d->serial_udev);
	d->serial_udev = usb_serial_udev(copy);
	/* A device chooses its own serial: it reaches logs, rules, the
	 * control socket's JSON and terminals. */
	v = strstrip(copy);
	d->serial = *v ? xstrdup_printable(v) : NULL;
	free(copy);
}

bool usb_device_serial_is(const struct usb_device *d, const char *s)
{
	return (d->serial && streq(d->serial, s)) || (d->serial_udev && streq(d->serial_udev, s));
}

void usb_device_add_prop(struct usb_device *d, const char *name, const char *value)
{
	char *kv = xasprintf("%s=%s", name, value);

	strv_append(&d->props, kv);
	free(kv);
}

const char *usb_device_prop(const struct usb_device *d, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; d->props && d->props[i]; i++)
		if (strncmp(d->props[i], name, len) == 0 && d->props[i][len] == '=')
			return d->props[i] + len + 1;
	return NULL;
}

void usb_device_add_tag(struct usb_device *d, const char *tag)
{
	if (!usb_device_has_tag(d, tag))
		strv_append(&d->tags, tag);
}

bool usb_device_has_tag(const struct usb_device *d, const char *tag)
{
	return strv_contains(d->tags, tag);
}

void usb_device_add_if_class(struct usb_device *d, unsigned cls)
{
	if (cls > 0xff || usb_device_has_if_class(d, cls))
		return;
	d->if_classes = xrealloc(d->if_classes, d->n_if_classes + 1);
	d->if_classes[d->n_if_classes++] = (uint8_t)cls;
}

bool usb_device_has_if_class(const struct usb_device *d, unsigned cls)
{
	for (size_t i = 0; i < d->n_if_classes; i++)
		if (d->if_classes[i] == cls)
			return true;
	return false;
}

/* USB 2.0 spec 9.6: every descriptor starts with bLength, bDescriptorType;
 * an interface descriptor (type 4) has bInterfaceClass at offset 5. */
int usb_device_parse_descriptors(struct usb_device *d, const uint8_t *buf, size_t len)
{
	enum { TYPE_INTERFACE = 4 };
	size_t off = 0;
	int found = 0;

	while (off + 2 <= len) {
		uint8_t blen = buf[off], type = buf[off + 1];

		if (blen < 2 || off + blen > len)
			return -EINVAL;
		if (type == TYPE_INTERFACE) {
			if (blen < 9)
				return -EINVAL;
			usb_device_add_if_class(d, buf[off + 5]);
			found++;
		}
		off += blen;
	}
	return off == len ? found : -EINVAL;
}

void usb_device_parse_udev_interfaces(struct usb_device *d, const char *value)
{
	/* udev's usb_id: ":CCSSPP:CCSSPP:" with class, subclass, protocol in hex */
	for (const char *p = value; *p;) {
		unsigned long cls;
		char hex[3] = { 0 };

		if (*p == ':') {
			p++;
			continue;
		}
		hex[0] = p[0];
		hex[1] = p[1] ? p[1] : '\0';
		if (hex[1] && parse_uint(hex, 16, 0xff, &cls) == 0)
			usb_device_add_if_class(d, (unsigned)cls);
		p += strcspn(p, ":");
	}
}

bool usb_device_is_root_hub(const struct usb_device *d)
{
	return startswith(d->sysname, "usb");
}

bool usb_device_is_hub(const struct usb_device *d)
{
	return d->device_class == USB_CLASS_HUB || usb_device_is_root_hub(d);
}

const char *usb_device_hostport(const struct usb_device *d)
{
	const char *dash = strchr(d->sysname, '-');

	return dash && !usb_device_is_root_hub(d) ? dash + 1 : NULL;
}

bool usb_port_covers(const char *port, const char *sysname)
{
	size_t len = strlen(port);

	return strncmp(port, sysname, len) == 0 && (sysname[len] == '\0' || sysname[len] == '.');
}

/* A PCI address as sysfs names the device: DOMAIN:BUS:SLOT.FUNCTION in hex. */
static bool is_pci_address(const char *s, size_t len)
{
	size_t i = 0, n;

	for (n = 0; i < len && isxdigit((unsigned char)s[i]); i++)
		n++;
	if (n == 0 || i + 8 != len || s[i] != ':' || s[i + 3] != ':' || s[i + 6] != '.')
		return false;
	return isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2]) &&
	       isxdigit((unsigned char)s[i + 4]) && isxdigit((unsigned char)s[i + 5]) &&
	       isxdigit((unsigned char)s[i + 7]);
}

char *usb_device_id_path(const struct usb_device *d)
{
	const char *id = usb_device_prop(d, "ID_PATH"), *prev = NULL, *c;
	size_t prev_len = 0;

	if (id)
		return xstrdup(id);
	/* Without udevd: path_id names the nearest PCI device above the root
	 * hub ("usbN" in the syspath), then "usb-0:" and the port path. */
	for (c = d->syspath; c && *c;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);

		if (len > 3 && strncmp(c, "usb", 3) == 0 && strspn(c + 3, "0123456789") == len - 3)
			break;
		prev = c;
		prev_len = len;
		c = slash ? slash + 1 : NULL;
	}
	if (!c || !*c || !prev || !is_pci_address(prev, prev_len))
		return NULL;
	if (usb_device_is_root_hub(d))
		return xasprintf("pci-%.*s", (int)prev_len, prev);
	return xasprintf("pci-%.*s-usb-0:%s", (int)prev_len, prev, usb_device_hostport(d));
}

char *usb_device_describe(const struct usb_device *d)
{
	char ids[24] = "?:?";

	if (d->vendor >= 0 && d->product >= 0)
		snprintf(ids, sizeof(ids), "%04x:%04x", d->vendor, d->product);
	/* a log line, not a dump: long names are cut, at a UTF-8 boundary */
	if (d->product_name && strlen(d->product_name) > 64) {
		int cut = 64;

		while (cut > 0 && ((unsigned char)d->product_name[cut] & 0xc0) == 0x80)
			cut--;
		return xasprintf("%s %s \"%.*s...\"", d->sysname, ids, cut, d->product_name);
	}
	if (d->product_name)
		return xasprintf("%s %s \"%s\"", d->sysname, ids, d->product_name);
	return xasprintf("%s %s", d->sysname, ids);
}

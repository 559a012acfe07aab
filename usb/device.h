/* The host USB device as vmplug sees it: plain data filled in by the udev
 * watcher (or by tests), no fds. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USB_CLASS_HID 0x03
#define USB_CLASS_HUB 0x09

struct usb_device {
	char *syspath; /* identity: /sys/devices/.../usb3/3-10/3-10.2 */
	char *sysname; /* the port path, e.g. "3-10.2"; "usb3" for a root hub */
	char *devnode; /* /dev/bus/usb/003/005, or NULL */
	unsigned bus;
	unsigned devnum;
	int vendor; /* -1 if unknown */
	int product;
	int device_class;
	char *serial; /* as sysfs has it, printable (see usb_device_set_serial()); NULL if none */
	char *serial_udev;   /* as udev's ID_SERIAL_SHORT shows it; NULL if udev gives none */
	char *manufacturer;  /* NULL if none */
	char *product_name;  /* NULL if none */
	uint8_t *if_classes; /* distinct interface classes */
	size_t n_if_classes;
	char **props; /* "NAME=VALUE", NULL-terminated, may be NULL */
	char **tags;  /* NULL-terminated, may be NULL */
};

struct usb_device *usb_device_new(const char *syspath, const char *sysname);
void usb_device_free(struct usb_device *d);
struct usb_device *usb_device_copy(const struct usb_device *d);

/* Set the serial from the raw sysfs value (a trailing newline is
 * dropped): serial gets it without surrounding whitespace, every byte
 * that is not printable UTF-8 as \xHH; serial_udev gets
 * usb_serial_udev() of it. An empty serial is none. */
void usb_device_set_serial(struct usb_device *d, const char *raw);
/* The serial as udev's usb_id builtin puts it in ID_SERIAL_SHORT: NULL
 * when udev drops it (a byte below 0x20 or above 0x7f, or a comma: the
 * USB serials Windows accepts) or it is empty; else whitespace at either
 * end removed, each run of whitespace inside one '_', and every byte
 * but ASCII letters, digits, "#+-.:=@_" and the pair "\x" turned into
 * '_'. A new string. */
char *usb_serial_udev(const char *raw);
/* Does s name d's serial, as sysfs has it or as udev shows it? */
bool usb_device_serial_is(const struct usb_device *d, const char *s);

void usb_device_add_prop(struct usb_device *d, const char *name, const char *value);
/* The value of udev property `name`, or NULL. */
const char *usb_device_prop(const struct usb_device *d, const char *name);
void usb_device_add_tag(struct usb_device *d, const char *tag);
bool usb_device_has_tag(const struct usb_device *d, const char *tag);
void usb_device_add_if_class(struct usb_device *d, unsigned cls);
bool usb_device_has_if_class(const struct usb_device *d, unsigned cls);

/* Add the interface classes found in a raw `descriptors` sysfs blob
 * (device descriptor, then configuration descriptors). Returns how many
 * interface descriptors were seen, or -EINVAL if the blob is malformed
 * (whatever was parsed before the fault is kept). */
int usb_device_parse_descriptors(struct usb_device *d, const uint8_t *buf, size_t len);
/* Add the classes listed in udev's ID_USB_INTERFACES (":030101:0e0100:"). */
void usb_device_parse_udev_interfaces(struct usb_device *d, const char *value);

/* A root hub (sysname "usbN"): never a device anyone plugs in. */
bool usb_device_is_root_hub(const struct usb_device *d);
bool usb_device_is_hub(const struct usb_device *d);
/* The port part QEMU calls hostport: "10.2" for "3-10.2"; NULL for a root hub. */
const char *usb_device_hostport(const struct usb_device *d);
/* True if the device sits at `port` ("3-10") or anywhere behind it;
 * works as well on ID_PATHs (see usb_device_id_path()). */
bool usb_port_covers(const char *port, const char *sysname);
/* The device's place as udev's path_id names it, anchored on its
 * controller rather than on the bus number ("pci-0000:00:14.0-usb-0:10.2";
 * "pci-0000:00:14.0" for a root hub): udev's ID_PATH when the device has
 * it, else worked out from the syspath when the controller is a PCI
 * device, else NULL. Both root hubs (USB 2 and 3) of a controller have
 * the same. A new string. */
char *usb_device_id_path(const struct usb_device *d);

/* "3-10.2 046d:0825 \"HD Webcam C270\"": for logs; a name over 64 bytes
 * is cut. Returns a new string. */
char *usb_device_describe(const struct usb_device *d);

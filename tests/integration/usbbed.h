/* A fake USB tree for tests, on a umockdev testbed: an xHCI controller,
 * root hubs, hubs and devices with the sysfs attributes, descriptors and
 * device nodes that libudev, vmplugd and QEMU's usb-host read. The
 * calling process must run under the umockdev preload (see
 * usbbed_reexec()); children inherit the testbed. */
#pragma once

#include <stdbool.h>

struct usbbed;

struct usbbed_dev {
	const char *port; /* sysname: "3-10.2"; its parent is "3-10" (or usb3) */
	unsigned devnum;
	unsigned vendor;
	unsigned product;
	const char *serial; /* NULL: none */
	const char *name;   /* product string, NULL: none */
	unsigned dev_class; /* 0x09: a hub */
	unsigned if_class;  /* the one interface's class (0x03 HID, 0xff vendor) */
	/* No device node: for what nothing opens. The testbed keeps a pty
	 * and an entry of a small fixed table for each node, so a tree of
	 * hundreds of devices must do without. */
	bool no_node;
};

/* Re-run the calling program under the umockdev preload (and, under ASan,
 * without ASan's link-order check) unless it already is; argv as main's. */
void usbbed_reexec(char **argv);

/* A testbed with a controller and root hubs for buses 1 to `buses`. Its
 * files go to $USBBED_TMPDIR when set, else to /dev/shm when writable
 * (umockdev fsyncs every attribute it writes), else to $TMPDIR. */
struct usbbed *usbbed_new(unsigned buses);
void usbbed_free(struct usbbed *b);
/* The UMOCKDEV_DIR of the testbed (for logs). */
const char *usbbed_dir(const struct usbbed *b);

/* Plug a device in (sends "add"); returns its syspath (owned by the bed). */
const char *usbbed_plug(struct usbbed *b, const struct usbbed_dev *dev);
/* Send an "add" for the device's interface N (interfaces come after their device). */
void usbbed_add_interface(struct usbbed *b, const char *port, unsigned if_class);
/* A device in a reset loop or behind a bouncing KVM switch: `count` times
 * a "remove" and an "add" with the next device number (from dev->devnum
 * + 1, wrapping round within 2..127), every_usec apart. udev listeners
 * see what they would see on real hardware, but no device node is made
 * for the new numbers: unplug and plug the last one for real for QEMU to
 * open it. dev must be plugged in. */
void usbbed_flap(struct usbbed *b, const struct usbbed_dev *dev, unsigned long count,
		 unsigned long every_usec);
/* Unplug (sends "remove" for the device, then removes it). */
void usbbed_unplug(struct usbbed *b, const char *port);
/* The syspath a port has (whether or not it is plugged). */
char *usbbed_syspath(const struct usbbed *b, const char *port);

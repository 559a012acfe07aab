/* A fake USB tree for tests on a umockdev testbed (see usbbed.h). */
#include "config.h"

#include "tests/integration/usbbed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <umockdev.h>

#include "util/util.h"

#define CONTROLLER "/devices/pci0000:00/0000:00:14.0"

struct usbbed {
	UMockdevTestbed *tb;
	char *dir;
	char **plugged; /* syspaths */
};

void usbbed_reexec(char **argv)
{
	const char *preload = getenv("LD_PRELOAD");

	if (preload && strstr(preload, "libumockdev-preload"))
		return;
	setenv("LD_PRELOAD", "libumockdev-preload.so.0", 1);
	/* ASan insists on being first in the library list; the preload is. */
	setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=1", 1);
	execv("/proc/self/exe", argv);
	perror("usbbed: re-exec under umockdev");
	exit(99);
}

/* sysfs path below /sys of a port: the chain of hubs is the directory chain. */
char *usbbed_syspath(const struct usbbed *b, const char *port)
{
	unsigned bus = (unsigned)atoi(port);
	char *path = xasprintf("/sys" CONTROLLER "/usb%u", bus);
	const char *p = port;

	for (;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - port) : strlen(port);
		char *next = xasprintf("%s/%.*s", path, (int)len, port);

		free(path);
		path = next;
		if (!dot)
			break;
		p = dot + 1;
	}
	return path;
}

/* Device descriptor + configuration with one interface and one interrupt
 * endpoint, full speed, iProduct 0 (QEMU then reads no string). */
static char *descriptors_hex(const struct usbbed_dev *d)
{
	unsigned char desc[] = {
		18,
		1,
		0x00,
		0x02,
		(unsigned char)d->dev_class,
		0,
		0,
		64,
		d->vendor & 0xff,
		d->vendor >> 8,
		d->product & 0xff,
		d->product >> 8,
		0x00,
		0x01,
		0,
		0,
		0,
		1,
		9,
		2,
		25,
		0,
		1,
		1,
		0,
		0x80,
		50,
		9,
		4,
		0,
		0,
		1,
		(unsigned char)d->if_class,
		0,
		0,
		0,
		7,
		5,
		0x81,
		3,
		8,
		0,
		10,
	};
	char *hex = xmalloc(sizeof(desc) * 2 + 1);

	for (size_t i = 0; i < sizeof(desc); i++)
		sprintf(hex + 2 * i, "%02X", desc[i]);
	return hex;
}

/* A string attribute's value as umockdev's text format wants it
 * (g_strcompress() unescapes it): anything but plain printable ASCII as
 * an octal escape, so any bytes at all can be a device's strings. */
static char *escape_attr(const char *v)
{
	char *out = xmalloc(strlen(v) * 4 + 1), *o = out;

	for (const unsigned char *c = (const unsigned char *)v; *c; c++) {
		if (*c >= 0x20 && *c < 0x7f && *c != '\\')
			*o++ = (char)*c;
		else
			o += sprintf(o, "\\%03o", *c);
	}
	*o = '\0';
	return out;
}

static void add_usb_device(struct usbbed *b, const char *syspath, const char *sysname,
			   const struct usbbed_dev *d, unsigned bus)
{
	char *hex = descriptors_hex(d);
	char *serial = d->serial ? escape_attr(d->serial) : NULL;
	char *name = d->name ? escape_attr(d->name) : NULL;
	char *node = d->no_node ? xstrdup("") : xasprintf("N: bus/usb/%03u/%03u\n", bus, d->devnum);
	char *text;
	GError *err = NULL;

	text = xasprintf("P: %s\n"
			 "%s"
			 "E: SUBSYSTEM=usb\n"
			 "E: DEVTYPE=usb_device\n"
			 "E: DRIVER=usb\n"
			 "E: BUSNUM=%03u\n"
			 "E: DEVNUM=%03u\n"
			 "E: DEVNAME=/dev/bus/usb/%03u/%03u\n"
			 "E: PRODUCT=%x/%x/100\n"
			 "A: busnum=%u\\n\n"
			 "A: devnum=%u\\n\n"
			 "A: idVendor=%04x\\n\n"
			 "A: idProduct=%04x\\n\n"
			 "A: bDeviceClass=%02x\\n\n"
			 "A: bConfigurationValue=1\\n\n"
			 "A: bNumInterfaces= 1\\n\n"
			 "A: speed=12\\n\n"
			 "A: devpath=%s\\n\n"
			 "%s%s%s"
			 "%s%s%s"
			 "H: descriptors=%s\n",
			 syspath + strlen("/sys"), node, bus, d->devnum, bus, d->devnum, d->vendor,
			 d->product, bus, d->devnum, d->vendor, d->product, d->dev_class,
			 strchr(sysname, '-') ? strchr(sysname, '-') + 1 : "0",
			 serial ? "A: serial=" : "", serial ? serial : "", serial ? "\\n\n" : "",
			 name ? "A: product=" : "", name ? name : "", name ? "\\n\n" : "", hex);
	if (!umockdev_testbed_add_from_string(b->tb, text, &err)) {
		fprintf(stderr, "usbbed: cannot add %s: %s\n", sysname, err->message);
		abort();
	}
	/* The kernel's "dev" attribute (usb_device nodes are major 189). Not
	 * in the text above, where umockdev would also make the node a
	 * character device for the preload: written after, it is only what
	 * umockdev_testbed_remove_device() reads to remove the node. Without
	 * it the node stays behind after an unplug. */
	{
		char dev[32];

		snprintf(dev, sizeof(dev), "189:%u\n", (bus - 1) * 128 + d->devnum - 1);
		umockdev_testbed_set_attribute(b->tb, syspath, "dev", dev);
	}
	free(text);
	free(node);
	free(hex);
	free(serial);
	free(name);
}

struct usbbed *usbbed_new(unsigned buses)
{
	struct usbbed *b = xnew(struct usbbed);
	char *tmpdir = getenv("TMPDIR") ? xstrdup(getenv("TMPDIR")) : NULL, *tree;
	GError *err = NULL;

	/* umockdev fsyncs every attribute it writes: on a disk that costs
	 * milliseconds, so the tree goes to tmpfs when there is one. Spelt
	 * "//dev/shm": the preload of this process takes every path that
	 * begins with "/dev/" for a device node and, for each open of one,
	 * connects a socket to the testbed's own worker thread and notes the
	 * fd in a table that it changes without a lock. With the tree's
	 * thousands of opens that raced with the worker's closes and aborted
	 * the testbed ("fd_map_remove(): did not find fd"). The same
	 * directory, spelt so, is left alone by the preload. */
	if (getenv("USBBED_TMPDIR"))
		setenv("TMPDIR", getenv("USBBED_TMPDIR"), 1);
	else if (access("/dev/shm", W_OK) == 0)
		setenv("TMPDIR", "//dev/shm", 1);
	b->tb = umockdev_testbed_new();
	if (tmpdir)
		setenv("TMPDIR", tmpdir, 1);
	else
		unsetenv("TMPDIR");
	free(tmpdir);
	tree = umockdev_testbed_get_root_dir(b->tb);
	if (startswith(tree, "/dev/")) {
		fprintf(stderr,
			"usbbed: the tree's path %s begins with /dev/, where the "
			"preload races with the testbed's thread\n",
			tree);
		abort();
	}
	/* Other processes, and what the preload maps /sys to here, use the
	 * plain path: the one the kernel gives for their open files. */
	b->dir = realpath(tree, NULL);
	if (!b->dir) {
		fprintf(stderr, "usbbed: %s: %s\n", tree, strerror(errno));
		abort();
	}
	g_free(tree);
	setenv("UMOCKDEV_DIR", b->dir, 1);
	if (!umockdev_testbed_add_from_string(b->tb,
					      "P: " CONTROLLER "\n"
					      "E: SUBSYSTEM=pci\n"
					      "E: DRIVER=xhci_hcd\n"
					      "A: vendor=0x8086\\n\n"
					      "A: device=0xa36d\\n\n",
					      &err)) {
		fprintf(stderr, "usbbed: cannot add the controller: %s\n", err->message);
		abort();
	}
	for (unsigned bus = 1; bus <= buses; bus++) {
		struct usbbed_dev root = { .devnum = 1,
					   .vendor = 0x1d6b,
					   .product = 0x0002,
					   .dev_class = 0x09,
					   .if_class = 0x09 };
		char *sysname = xasprintf("usb%u", bus);
		char *syspath = xasprintf("/sys" CONTROLLER "/usb%u", bus);

		add_usb_device(b, syspath, sysname, &root, bus);
		free(syspath);
		free(sysname);
	}
	return b;
}

void usbbed_free(struct usbbed *b)
{
	if (!b)
		return;
	g_object_unref(b->tb);
	free(b->dir);
	strv_free(b->plugged);
	free(b);
}

const char *usbbed_dir(const struct usbbed *b)
{
	return b->dir;
}

const char *usbbed_plug(struct usbbed *b, const struct usbbed_dev *dev)
{
	char *syspath = usbbed_syspath(b, dev->port);

	add_usb_device(b, syspath, dev->port, dev, (unsigned)atoi(dev->port));
	for (size_t i = 0; b->plugged && b->plugged[i]; i++) {
		if (streq(b->plugged[i], syspath)) {
			free(syspath);
			return b->plugged[i];
		}
	}
	strv_append(&b->plugged, syspath);
	free(syspath);
	return b->plugged[strv_len(b->plugged) - 1];
}

void usbbed_add_interface(struct usbbed *b, const char *port, unsigned if_class)
{
	char *parent = usbbed_syspath(b, port);
	char *text = xasprintf("P: %s/%s:1.0\n"
			       "E: SUBSYSTEM=usb\n"
			       "E: DEVTYPE=usb_interface\n"
			       "E: INTERFACE=%u/0/0\n"
			       "A: bInterfaceClass=%02x\\n\n"
			       "A: bInterfaceNumber=00\\n\n",
			       parent + strlen("/sys"), port, if_class, if_class);
	GError *err = NULL;

	if (!umockdev_testbed_add_from_string(b->tb, text, &err)) {
		fprintf(stderr, "usbbed: cannot add an interface to %s: %s\n", port, err->message);
		abort();
	}
	free(text);
	free(parent);
}

void usbbed_flap(struct usbbed *b, const struct usbbed_dev *dev, unsigned long count,
		 unsigned long every_usec)
{
	struct usbbed_dev d = *dev;
	char *syspath = usbbed_syspath(b, dev->port);
	unsigned bus = (unsigned)atoi(dev->port);

	for (unsigned long i = 0; i < count; i++) {
		char num[16], node[32];

		d.devnum = (d.devnum - 2 + 1) % 126 + 2;
		/* Only what udev listeners see: remove, a new number, add. */
		umockdev_testbed_uevent(b->tb, syspath, "remove");
		snprintf(num, sizeof(num), "%u\n", d.devnum);
		umockdev_testbed_set_attribute(b->tb, syspath, "devnum", num);
		snprintf(num, sizeof(num), "%03u", d.devnum);
		umockdev_testbed_set_property(b->tb, syspath, "DEVNUM", num);
		snprintf(node, sizeof(node), "/dev/bus/usb/%03u/%03u", bus, d.devnum);
		umockdev_testbed_set_property(b->tb, syspath, "DEVNAME", node);
		umockdev_testbed_uevent(b->tb, syspath, "add");
		if (every_usec)
			usleep((useconds_t)every_usec);
	}
	free(syspath);
}

void usbbed_unplug(struct usbbed *b, const char *port)
{
	char *syspath = usbbed_syspath(b, port);

	/* umockdev removes silently: the uevent must come first */
	umockdev_testbed_uevent(b->tb, syspath, "remove");
	umockdev_testbed_remove_device(b->tb, syspath);
	free(syspath);
}

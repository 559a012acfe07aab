/* Ready-to-paste [usb] sections for a device (see suggest.h). */
#include "config.h"

#include "usb/suggest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/util.h"

char *usb_suggest_name(const struct usb_device *d)
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

char *usb_suggest_rule(const struct usb_device *d)
{
	char *name = usb_suggest_name(d);
	char *desc = usb_device_describe(d);
	char *serial = d->serial ? xasprintf("# serial = %s\n", d->serial) : xstrdup("");
	char *text;

	text = xasprintf(
	    "# %s: for a VM's file, vm.d/NAME.conf\n"
	    "# By port: whatever is plugged into port %s%s. Stays the same when\n"
	    "# the device is replugged there; tells identical devices apart by where\n"
	    "# they are plugged in.\n"
	    "[usb \"%s\"]\n"
	    "port = %s\n"
	    "\n"
	    "# Or by identity: this device on any port. %s\n"
	    "# [usb \"%s\"]\n"
	    "# vendor = %04x\n"
	    "# product = %04x\n"
	    "%s",
	    desc, d->sysname, usb_device_is_hub(d) ? " and behind this hub" : "", name, d->sysname,
	    d->serial ? "Its serial number tells it apart\n# from identical devices."
		      : "It has no serial number, so\n# identical devices would all match.",
	    name, d->vendor & 0xffff, d->product & 0xffff, serial);
	free(serial);
	free(desc);
	free(name);
	return text;
}

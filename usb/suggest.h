/* Ready-to-paste [usb] sections for a device (vmplugctl identify). */
#pragma once

#include "usb/device.h"

/* A rule name from the product name ("hd-webcam-c270"), else
 * "usb-VVVV-PPPP"; at most 32 characters, valid in a section name. */
char *usb_suggest_name(const struct usb_device *d);
/* The config text: a port rule, and the vendor/product(/serial) rule as
 * a commented alternative, each with a comment saying what it follows.
 * A new string. */
char *usb_suggest_rule(const struct usb_device *d);

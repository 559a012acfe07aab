/* Test fixtures shared by the unit tests: configurations written as text,
 * USB devices written as one-line descriptions, input sinks on
 * socketpairs. */
#pragma once

#include <linux/input.h>
#include <stddef.h>

#include "conf/conf.h"
#include "usb/device.h"

/* Load a configuration from text: `global` is vmplug.conf (NULL: none),
 * then pairs of VM name and file text, ended by NULL. Fails the test on
 * any config error. */
struct conf *fixture_conf(const char *global, ...) __attribute__((sentinel));

/* A USB device from a description such as
 *   "3-10.2 dev=5 vid=046d pid=0825 serial=X class=00 if=03,0e
 *    prop=ID_SERIAL_SHORT=0001 tag=uaccess name=Webcam"
 * The first word is the port path (sysname); the bus is taken from it;
 * serial= is %XX-decoded (raw bytes, as sysfs would hold them);
 * the syspath is /sys/devices/pci0000:00/0000:00:14.0/usbBUS/... */
struct usb_device *fixture_usb(const char *desc);

struct reconcile;
/* Tell the reconciler the device `desc` (as fixture_usb()) was plugged
 * in, or went away. */
void fixture_plug(struct reconcile *rc, const char *desc);
void fixture_unplug(struct reconcile *rc, const char *desc);

/* Input events as text, one word each: "MSC_SCAN:4 KEY_A:1 SYN_REPORT"
 * (EV_SYN events by their code's name alone). A new string. */
char *fixture_events_text(const struct input_event *ev, size_t n);

struct libevdev;
struct input_sink;
/* The sinks' other ends, to read what reaches them (-1: none yet): that of
 * the first VM sink, and that of the host's ("vmplug-host-..."; one at a
 * time); the test closes them. */
extern int fixture_sink_peer;
extern int fixture_host_peer;
/* A sink factory for input_manager_new_with(): a sink on one end of a
 * socketpair, the other end in fixture_sink_peer or fixture_host_peer,
 * or for further VM sinks in fixture_peer_of(name) (/dev/uinput is not
 * there in tests). */
int fixture_sink_pair(const char *name, const struct libevdev *caps, struct input_sink **out);
/* The peer of a further VM sink named name (aborts when none was made),
 * and closing them all. */
int fixture_peer_of(const char *name);
void fixture_peers_close(void);

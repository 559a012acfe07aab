/* Internals of the libvirt backend that tests reach: the domain XML it
 * writes and reads. Pure functions of their arguments (libxml2 only, no
 * libvirt calls), safe to call from any thread once xmlInitParser() ran. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "backends/backend.h"

/* libvirt keeps an alias a user gives a device only when it starts with
 * this; vmplug's aliases are this + a vmplug id. */
#define BACKEND_LIBVIRT_ALIAS_PREFIX "ua-"
#define BACKEND_LIBVIRT_OUR_ALIAS BACKEND_LIBVIRT_ALIAS_PREFIX BACKEND_ID_PREFIX
/* The by-id link of a vmplug input sink is this + VM + "-" + SOURCE. */
#define BACKEND_LIBVIRT_SINK_PREFIX "/dev/input/by-id/vmplug-"
/* Bigger domain XML is refused rather than parsed. */
#define BACKEND_LIBVIRT_XML_MAX (16 * 1024 * 1024)

/* The backend: what the module vmplug-libvirt.so exports, and what the
 * tests that link the backend in take directly. */
extern const struct backend_ops backend_libvirt_ops;

/* Can id be made into a libvirt user alias (ua- + id)? vmplug's prefix,
 * then only letters, digits, '-' and '_', at most 100 characters. */
bool backend_libvirt_valid_id(const char *id);

/* The <hostdev> element that attaches dev (by bus and device number,
 * with vendor and product when known, alias ua-ID): a new string in
 * *out. 0, or -EINVAL when the id is not valid or bus or addr is 0. */
int backend_libvirt_hostdev_xml(const struct backend_usb_dev *dev, char **out);

/* What vmplug owns in a domain's live XML (len bytes, no NUL needed):
 * every USB <hostdev> whose alias is ua-vmplug-..., as a USB item with
 * the id after "ua-" and the source's bus and device, attached; and every
 * <input type='evdev'> whose source is the by-id link of one of vm's
 * sinks (BACKEND_LIBVIRT_SINK_PREFIX VM-SOURCE), as an input item
 * vmplug-in-SOURCE with that evdev. A new list in *out; 0, or -EINVAL
 * when xml is not a domain's XML (or larger than
 * BACKEND_LIBVIRT_XML_MAX). */
int backend_libvirt_parse_list(const char *xml, size_t len, const char *vm,
			       struct backend_list **out);

/* The <hostdev> element of the domain XML whose alias is ua-ID, as XML
 * (a new string in *out): what a detach hands back to libvirt. 0,
 * -ENOENT when there is none, -EINVAL when xml is not a domain's XML. */
int backend_libvirt_find_hostdev(const char *xml, size_t len, const char *id, char **out);

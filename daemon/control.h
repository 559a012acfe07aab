/* The control socket: QMP-shaped JSON, one object per line, for vmplugctl
 * and scripts. Commands query and steer the daemon; subscribed clients get
 * events. See man/vmplugctl.1 for the commands. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct daemon;
struct control;
struct usb_device;
struct reconcile_event;

#define CONTROL_MAX_REQUEST (64 * 1024)

/* Listen on path (its directory is created), mode 0660, group `group`
 * (NULL: root only). NULL with errno set on failure; EADDRINUSE when
 * another vmplugd answers on it. */
struct control *control_new(struct daemon *d, const char *path, const char *group);
void control_free(struct control *c);

/* Send an event to every subscribed client; takes data (may be NULL). */
void control_emit(struct control *c, const char *event, json_t *data);

/* Turn a reconciler event into a control event, answering the attach
 * and detach requests that waited for it. */
void control_reconcile_event(struct control *c, const struct reconcile_event *ev);

/* Tell clients waiting in `identify` about a newly plugged device. */
void control_usb_plugged(struct control *c, const struct usb_device *dev);
/* An input node appeared; usb_syspath is its USB device's, or NULL. */
void control_input_plugged(struct control *c, const char *devnode, const char *by_id,
			   const char *name, bool keyboard, bool mouse, const char *usb_syspath);

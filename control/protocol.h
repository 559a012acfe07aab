/* The control socket's protocol, shared by vmplugd and vmplugctl:
 * QMP-shaped JSON, one object per line. vmplugd greets with
 * {"vmplug": {"version": ...}}; a request is {"execute": COMMAND,
 * "arguments": {...}, "id": ANY} and gets {"return": ...} or {"error":
 * {"class": ..., "desc": ...}} with the request's id; a subscribed client
 * also gets {"event": NAME, "data": ..., "timestamp": ...}. The replies'
 * fields are in man/vmplugctl.1. */
#pragma once

/* A request is at most this long (its newline aside). */
#define CONTROL_MAX_REQUEST (64 * 1024)
/* vmplugd serves at most this many clients at once; one more is told so
 * ({"error": {"class": "TooManyClients"}} instead of the greeting) and
 * closed. */
#define CONTROL_MAX_CLIENTS 64
/* Requests whose answer comes later (attach, detach, identify) may wait at
 * most this many per client and this many in all; past either, a request
 * that could wait gets {"error": {"class": "TooManyRequests"}} at once. */
#define CONTROL_MAX_WAITING_PER_CLIENT 16
#define CONTROL_MAX_WAITING 256

/* Commands, with their arguments. */
#define CONTROL_CMD_QUERY_STATUS "query-status"
#define CONTROL_CMD_QUERY_USB "query-usb"
#define CONTROL_CMD_EXPLAIN "explain" /* device */
#define CONTROL_CMD_ATTACH "attach"   /* vm, device */
#define CONTROL_CMD_DETACH "detach"   /* vm, device */
#define CONTROL_CMD_RELOAD "reload"
#define CONTROL_CMD_SWITCH "switch"     /* target */
#define CONTROL_CMD_IDENTIFY "identify" /* timeout (seconds, optional) */
#define CONTROL_CMD_SUBSCRIBE "subscribe"
/* question, action ("attach" or "keep-on-host"), vm (attach), remember */
#define CONTROL_CMD_ANSWER "answer"
#define CONTROL_CMD_QUERY_REMEMBERED "query-remembered"
#define CONTROL_CMD_FORGET "forget" /* id */

/* Events, with their data. */
#define CONTROL_EVENT_VM_UP "VM_UP"                     /* vm */
#define CONTROL_EVENT_VM_GONE "VM_GONE"                 /* vm, reason */
#define CONTROL_EVENT_USB_ATTACHED "USB_ATTACHED"       /* vm, id, device */
#define CONTROL_EVENT_USB_DETACHED "USB_DETACHED"       /* vm, id, device */
#define CONTROL_EVENT_USB_FAILED "USB_FAILED"           /* vm, id, device, error, final */
#define CONTROL_EVENT_INPUT_ATTACHED "INPUT_ATTACHED"   /* vm, id */
#define CONTROL_EVENT_INPUT_DETACHED "INPUT_DETACHED"   /* vm, id */
#define CONTROL_EVENT_INPUT_FAILED "INPUT_FAILED"       /* vm, id, error, final */
#define CONTROL_EVENT_INPUT_FOCUS "INPUT_FOCUS"         /* from, to */
#define CONTROL_EVENT_REMOTE_ADDED "REMOTE_ADDED"       /* vm, id: a [usb-remote] slot */
#define CONTROL_EVENT_REMOTE_REMOVED "REMOTE_REMOVED"   /* vm, id */
#define CONTROL_EVENT_REMOTE_FAILED "REMOTE_FAILED"     /* vm, id, error, final */
#define CONTROL_EVENT_CONFIG_RELOADED "CONFIG_RELOADED" /* vms, inputs */
/* A device no rule claims was plugged in while a VM runs: question,
 * port, vendor, product, name, device, vms (the running ones). */
#define CONTROL_EVENT_USB_UNCLAIMED "USB_UNCLAIMED"
/* The question is settled: question, port, outcome ("attach",
 * "keep-on-host", "unplugged", "dropped"), vm, remembered. */
#define CONTROL_EVENT_USB_UNCLAIMED_CLOSED "USB_UNCLAIMED_CLOSED"

/* At most this many questions are open at once; one more drops the oldest. */
#define CONTROL_MAX_QUESTIONS 32

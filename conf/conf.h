/* vmplug's configuration as plain data: CONFDIR/vmplug.conf (global) and
 * CONFDIR/vm.d/NAME.conf (one file per VM), parsed and validated with
 * file:line errors. Knows nothing of udev, QMP or uinput.
 * The user-facing contract is man/vmplug.conf.5. */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/log.h"

#define CONF_CHORD_MAX 6

/* vmplugd's control socket when vmplug.conf does not say. */
#define CONF_DEFAULT_CONTROL_SOCKET VMPLUG_RUNDIR "/control.sock"

/* A hotkey chord: up to CONF_CHORD_MAX EV_KEY codes, all held at once. */
struct conf_chord {
	unsigned n;
	unsigned short codes[CONF_CHORD_MAX];
};

/* Where a setting came from, for messages that point at it. */
struct conf_origin {
	const char *file; /* owned by struct conf (conf->files) */
	int line;
};

struct conf_daemon {
	char *control_socket;
	char *control_group;
	char *cache_dir;
	char *state_dir;  /* vmplugd's own state: the remembered answers */
	char *qemu_group; /* no longer used (sinks belong to each VM's QEMU): NULL unless set */
	enum log_level log_level;
};

/* The [switch] cycle chord when vmplug.conf names none (and no other
 * chord uses these keys): both Ctrl keys, as QEMU's own toggle. */
#define CONF_DEFAULT_CYCLE "KEY_LEFTCTRL+KEY_RIGHTCTRL"

struct conf_switch {
	struct conf_chord cycle; /* n == 0: none (cycle = none, or the default was taken) */
	struct conf_chord host;
	struct conf_chord panic;    /* default KEY_LEFTCTRL+KEY_LEFTALT+KEY_BACKSPACE */
	char **on_switch;           /* argv (argv[0] absolute), NULL if none */
	unsigned on_switch_timeout; /* seconds */
};

struct conf_input {
	char *name;
	char *device;
	bool grab_all;
	bool repeat;
	struct conf_origin origin;
};

enum conf_backend {
	CONF_BACKEND_QMP,
	CONF_BACKEND_LIBVIRT,
};

enum conf_attach_mode {
	CONF_ATTACH_ADDRESS, /* hostbus + hostaddr */
	CONF_ATTACH_FD,      /* vmplug opens the node, add-fd, hostdevice=/dev/fdset/N */
	CONF_ATTACH_PORT,    /* hostbus + hostport */
};

enum conf_prop_op {
	CONF_PROP_EQUALS, /* NAME=VALUE */
	CONF_PROP_REGEX,  /* NAME~ERE */
};

struct conf_property {
	char *name;
	char *value; /* the exact value or the regex source */
	enum conf_prop_op op;
	regex_t regex; /* compiled when op == CONF_PROP_REGEX */
};

/* A regex runs on at most this many bytes of what a device says: a
 * longer value never matches NAME~REGEX. */
#define CONF_REGEX_SUBJECT_MAX 4096

/* One [usb "name"] or [usb-deny "name"] section: it matches a device when
 * every key given matches. Unset fields: NULL / -1 / 0 elements. */
struct conf_usb_rule {
	char *name;
	bool deny;
	char *port; /* "3-10" or its ID_PATH: this port and everything behind it */
	int bus;    /* 1..255 or -1 */
	int devnum; /* 1..127 or -1: changes on every replug */
	int vendor; /* 0..0xffff or -1 */
	int product;
	char *serial;
	struct conf_property *props;
	size_t n_props;
	char **tags;         /* NULL-terminated, may be NULL */
	int interface_class; /* 0..0xff or -1 */
	enum conf_attach_mode attach_mode;
	struct conf_origin origin;
};

/* One [usb-remote "name"] section: a usb-redir slot in the VM, on a
 * socket QEMU listens on for a usbredir peer (usbredirect on the host
 * with the device). Either host and port (numeric, normalized) or path. */
struct conf_usb_remote {
	char *name;
	char *host; /* "127.0.0.1", "::1"...; NULL for a unix socket */
	unsigned port;
	char *path; /* unix socket; NULL for TCP */
	struct conf_origin origin;
};

/* Where a [usb-remote] slot listens as QEMU's query-chardev names it
 * ("tcp:127.0.0.1:4000", "tcp:::1:4000", "unix:/run/x.sock"); a new
 * string. */
char *conf_usb_remote_address(const struct conf_usb_remote *r);
/* The listen address is not loopback (a unix socket is local). */
bool conf_usb_remote_exposed(const struct conf_usb_remote *r);

struct conf_vm {
	char *name; /* file name without .conf */
	char *file; /* full path */
	enum conf_backend backend;
	char *qmp_socket;
	char *usb_bus;
	char *uri;     /* libvirt */
	char *domain;  /* libvirt; defaults to name */
	char **inputs; /* names of [input] sections, NULL-terminated, may be NULL */
	struct conf_chord hotkey;
	bool focus_on_start;
	/* The grab toggle of its input-linux objects (a GrabToggleKeys name,
	 * static): grab-toggle =, else the one vmplugd picks for QMP VMs
	 * (conf_grab_toggle) and QEMU's default for libvirt. */
	const char *grab_toggle;
	/* Who may open its input sinks: qemu-user owns them, qemu-group may
	 * read and write them; NULL: root alone (see input_sink_owner_of). */
	char *qemu_user;
	char *qemu_group;
	struct conf_origin backend_origin;
	struct conf_usb_rule *rules; /* in file order; deny rules included */
	size_t n_rules;
	struct conf_usb_remote *remotes; /* [usb-remote] slots, in file order */
	size_t n_remotes;
};

/* An answer vmplugd remembers (conf_remembered_load): give the device
 * rule matches to vm, or keep it on the host (vm NULL). */
struct conf_remembered {
	unsigned id;
	char *vm;          /* NULL: keep on host */
	char *description; /* the device as the person who answered saw it, or NULL */
	char *added;       /* when, as ISO 8601 UTC text, or NULL */
	struct conf_usb_rule rule;
};

struct conf {
	char *dir;
	char **files; /* every file read, owning the strings origins point to */
	struct conf_daemon daemon;
	struct conf_switch sw;
	struct conf_input *inputs;
	size_t n_inputs;
	struct conf_vm *vms; /* sorted by name (file-name order) */
	size_t n_vms;
	/* the remembered answers (conf_remembered_load), in the file's order */
	struct conf_remembered *remembered;
	size_t n_remembered;
};

struct conf_load_opts {
	/* Refuse files and directories not owned by root or writable by
	 * group/others (set when running as root: files can name commands). */
	bool check_owner;
};

/* Load DIR/vmplug.conf (optional: defaults if missing) and DIR/vm.d/
 * *.conf. On success returns 0 and *out. On failure returns -EINVAL
 * (config errors) or -errno (dir unreadable). Either way *errors is set
 * to a NULL-terminated list of messages "FILE:LINE: text", empty on
 * success; the caller frees it with strv_free. */
int conf_load(const char *dir, const struct conf_load_opts *opts, struct conf **out,
	      char ***errors);

void conf_free(struct conf *conf);

/* What vmplugctl needs: the control-socket of DIR/vmplug.conf, or the
 * default when the file or the key is missing. Reads that file alone, and
 * checks only what could hide the key: the file's syntax and section
 * headers, the key names in [daemon], and control-socket's value; the
 * other keys and the VM files are the daemon's business. 0 and *path (a
 * new string); else *errors as conf_load() gives them, and -ENOENT when
 * DIR does not exist, -EACCES when vmplug.conf may not be read, -EINVAL
 * otherwise. *errors is set either way (strv_free it). */
int conf_load_control_socket(const char *dir, char **path, char ***errors);

/* The effective configuration, normalized, one line per setting group /
 * rule (what `vmplugd --check-config` prints). */
void conf_dump(const struct conf *conf, FILE *f);

/* Whether the line "key = value" reads back as exactly that key and
 * value: no control characters, no whitespace at either end of value,
 * nothing that starts a comment, not too long. For configuration written
 * for the user to paste (vmplugctl identify). */
bool conf_line_writable(const char *key, const char *value);

/* The remembered answers (conf/remembered.c): vmplugd's own file
 * STATE_DIR/remembered.json, which it writes when a control client
 * answers a plug-time question with "remember". */
#define CONF_REMEMBERED_FILE "remembered.json"
/* The file holds at most this many answers. */
#define CONF_REMEMBERED_MAX 1024

/* Load conf->daemon.state_dir's remembered answers into conf->remembered
 * and give each VM named the rules of its answers, after its own rules
 * (so the VM's [usb-deny] rules still win). An answer for a VM that is
 * not configured stays listed but claims nothing. A missing file holds
 * none. 0; or -EINVAL with *errors ("FILE: message"; the file is then
 * ignored whole), -errno when it cannot be read. *errors is set either
 * way (strv_free it). */
int conf_remembered_load(struct conf *conf, bool check_owner, char ***errors);
/* Add m (its id is chosen: *id) to the file in state_dir, written
 * atomically. 0; -ENOSPC past CONF_REMEMBERED_MAX; -EINVAL when the file
 * there cannot be read as remembered answers (it is left as it is);
 * -errno. *why (a new string) says what went wrong. */
int conf_remembered_add(const char *state_dir, const struct conf_remembered *m, unsigned *id,
			char **why);
/* Remove answer id from the file in state_dir. 0; -ENOENT: no such
 * answer; else as conf_remembered_add(). */
int conf_remembered_forget(const char *state_dir, unsigned id, char **why);
const struct conf_vm *conf_find_vm(const struct conf *conf, const char *name);
const struct conf_input *conf_find_input(const struct conf *conf, const char *name);

/* "KEY_A+KEY_B"; the result is a new string. */
char *conf_chord_to_string(const struct conf_chord *chord);
/* Parse "KEY_A+KEY_B"; 0, or -EINVAL with *bad set to the offending
 * token (a new string) when one is not a key name libevdev knows. */
int conf_chord_parse(const char *s, struct conf_chord *out, char **bad);

/* The grab-toggle for QEMU's input-linux objects (a GrabToggleKeys name)
 * that shares no key with the [switch] chords or any VM's hotkey;
 * "ctrl-ctrl" when every choice clashes. */
const char *conf_grab_toggle(const struct conf *conf);
/* QEMU's name for a grab toggle (static), NULL if QEMU has none such. */
const char *conf_grab_toggle_name(const char *name);
/* The keys of QEMU's grab toggle name, 0-terminated (ctrl-scrolllock:
 * either Ctrl key with Scroll Lock); NULL for an unknown name or NULL. */
const unsigned short *conf_grab_toggle_keys(const char *name);

const char *conf_backend_name(enum conf_backend b);
const char *conf_attach_mode_name(enum conf_attach_mode m);

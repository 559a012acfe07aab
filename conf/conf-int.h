/* Configuration internals: the parser the files of conf/ share (parse.c
 * the syntax, keys.c the key tables and checks, chord.c the chords), and
 * loading from memory for the fuzz target (tests/fuzz/fuzz-conf.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "util/util.h"

/* The name of the VM conf_load_text() reads. */
#define CONF_TEXT_VM "vm"

/* As conf_load() on a directory holding `global` (len bytes) as
 * vmplug.conf and, unless vm_text is NULL, vm_text as vm.d/vm.conf, with
 * every check but the file owner and modes. Messages name the files
 * ./vmplug.conf and ./vm.d/vm.conf. Same results as conf_load(). */
int conf_load_text(const char *global, size_t global_len, const char *vm_text, size_t vm_len,
		   struct conf **out, char ***errors);

/* ------------------------------------------------------------ the parser */

/* Section and input names: at most this long. */
#define CONF_NAME_MAX 32
/* A line: at most this long (comments and whitespace around it aside). */
#define CONF_LINE_MAX 198

enum conf_section_kind {
	CONF_SEC_NONE,
	CONF_SEC_BAD, /* an invalid header, already reported: its keys are skipped */
	CONF_SEC_DAEMON,
	CONF_SEC_SWITCH,
	CONF_SEC_INPUT,
	CONF_SEC_VM,
	CONF_SEC_USB,
	CONF_SEC_USB_DENY,
	CONF_SEC_USB_REMOTE,
};

struct conf_parser;
typedef void (*conf_key_fn)(struct conf_parser *p, const char *value);

struct conf_key {
	const char *name;
	conf_key_fn fn;
	bool repeatable;
};

struct conf_section_type {
	const char *name;
	enum conf_section_kind kind;
	bool vm_file; /* allowed in vm.d files (else in vmplug.conf) */
	bool named;   /* requires a quoted name; false: must not have one */
	bool optional_name;
	const struct conf_key *keys;
};

/* Every section type, with its keys (keys.c). */
extern const struct conf_section_type conf_section_types[];
extern const size_t conf_n_section_types;

/* Lines of keys that later checks point at. */
struct conf_vm_lines {
	int qmp_socket, uri, domain, inputs, hotkey, usb_bus, grab_toggle;
};

struct conf_parser {
	struct conf *conf;
	char ***errors;
	const char *file;
	FILE *fp;
	int line;
	char *linebuf;
	size_t linecap;
	bool vm_file;
	struct conf_vm *vm;
	struct conf_vm_lines vm_lines;

	const struct conf_section_type *sec;
	enum conf_section_kind kind;
	int sec_line;
	char *sec_label; /* "[usb \"x\"]" for messages */
	unsigned long long seen;
	size_t index; /* into conf->inputs or vm->rules */
	bool seen_daemon, seen_switch, seen_vm;
	int switch_line;
	bool cycle_set; /* [switch] cycle was given (none included) */
	const char *global_file;
	size_t sec_errors; /* errors before the current section began */
	int vm_section_line;
	/* conf_load_control_socket(): the syntax, [daemon]'s key names and
	 * the value of control-socket are checked, nothing else */
	bool socket_only;
	/* conf_load_opts.check_owner: programs named must be root's too */
	bool check_owner;
};

/* Add "FILE:LINE: message" (line 0: "FILE: message") to p->errors. */
void conf_error_at(struct conf_parser *p, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* The same, at the line being read. */
#define conf_error(p, ...) conf_error_at((p), (p)->line, __VA_ARGS__)

/* A section or VM name: 1 to CONF_NAME_MAX letters, digits, '_', '.', '-'. */
bool conf_valid_name(const char *s);
/* Free what one rule owns (not the rule itself). */
void conf_usb_rule_free(struct conf_usb_rule *r);
/* Free what one remembered answer owns (remembered.c). */
void conf_remembered_clear(struct conf_remembered *m);
/* Keep path in conf->files; the copy, for origins and messages. */
const char *conf_remember_file(struct conf *conf, const char *path);
/* sshd-style: a file that can name commands run as root must be root's. */
bool conf_check_owner(struct conf_parser *p, const char *path, const struct stat *st);
/* Parse one file; errors go to p->errors. Returns false if it could not
 * be read. */
bool conf_parse_file(struct conf_parser *p, const char *path, const struct conf_load_opts *opts);
/* Parse len bytes of text as the file p->file. */
void conf_parse_text(struct conf_parser *p, const char *text, size_t len);

/* Checks (keys.c): a [usb] or [usb-deny] section that ended; every
 * [input] once vmplug.conf is read; the VM file just read; and what
 * needs every file (lines: one conf_vm_lines per VM). */
void conf_check_rule(struct conf_parser *p);
void conf_check_inputs(struct conf_parser *p);
void conf_check_vm(struct conf_parser *p);
void conf_check_cross(struct conf_parser *p, const struct conf_vm_lines *lines);

/* Same keys, in any order (chord.c); an empty chord equals nothing. */
bool conf_chord_eq(const struct conf_chord *a, const struct conf_chord *b);
/* Once every file is read, before the checks across files (chord.c): the
 * default cycle chord unless cycle_set, and each VM's grab toggle. */
void conf_resolve_chords(struct conf *conf, bool cycle_set);

/* [usb-remote] (remote.c): its keys, the section opened (false: a
 * duplicate, reported), the section closed, and what one owns. */
extern const struct conf_key conf_usb_remote_keys[];
bool conf_open_usb_remote(struct conf_parser *p, const char *name);
void conf_check_usb_remote(struct conf_parser *p);
void conf_usb_remote_free(struct conf_usb_remote *r);
/* Checks across files: no two slots listen on one address. */
void conf_check_usb_remotes_cross(struct conf_parser *p);

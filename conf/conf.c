/* Parse and validate vmplug.conf and vm.d/NAME.conf (see conf.h). */
#include "config.h"

#include "conf/conf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <libevdev/libevdev.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "util/util.h"

#define NAME_MAX_LEN 32

enum section_kind {
	SEC_NONE,
	SEC_BAD, /* an invalid header, already reported: its keys are skipped */
	SEC_DAEMON,
	SEC_SWITCH,
	SEC_INPUT,
	SEC_VM,
	SEC_USB,
	SEC_USB_DENY,
};

struct parser;
typedef void (*key_fn)(struct parser *p, const char *value);

struct key {
	const char *name;
	key_fn fn;
	bool repeatable;
};

struct section_type {
	const char *name;
	enum section_kind kind;
	bool vm_file; /* allowed in vm.d files (else in vmplug.conf) */
	bool named;   /* requires a quoted name; false: must not have one */
	bool optional_name;
	const struct key *keys;
};

/* Lines of keys that later checks point at. */
struct vm_lines {
	int qmp_socket, uri, domain, inputs, hotkey, usb_bus;
};

struct parser {
	struct conf *conf;
	char ***errors;
	const char *file;
	FILE *fp;
	int line;
	char *linebuf;
	size_t linecap;
	bool vm_file;
	struct conf_vm *vm;
	struct vm_lines vm_lines;

	const struct section_type *sec;
	enum section_kind kind;
	int sec_line;
	char *sec_label; /* "[usb \"x\"]" for messages */
	unsigned long long seen;
	size_t index; /* into conf->inputs or vm->rules */
	bool seen_daemon, seen_switch, seen_vm;
	int switch_line;
	const char *global_file;
	size_t sec_errors; /* errors before the current section began */
	int vm_section_line;
};

static void PRINTF_LIKE(3, 4) error_at(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg, *full;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (line > 0)
		full = xasprintf("%s:%d: %s", p->file, line, msg);
	else
		full = xasprintf("%s: %s", p->file, msg);
	strv_append(p->errors, full);
	free(full);
	free(msg);
}

#define error(p, ...) error_at((p), (p)->line, __VA_ARGS__)

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_.-", *c))
			return false;
	return true;
}

/* ------------------------------------------------------------------ values */

static bool parse_bool(struct parser *p, const char *key, const char *value, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	error(p, "%s: '%s' is not a boolean; valid: yes, no (or true/false, on/off, 1/0)", key,
	      value);
	return false;
}

static bool parse_hex(struct parser *p, const char *key, const char *value, unsigned digits,
		      int *out)
{
	const char *s = value;
	unsigned long max = (1UL << (4 * digits)) - 1, v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (strlen(s) > digits || parse_uint(s, 16, max, &v) < 0 || !isxdigit((unsigned char)*s)) {
		error(p, "%s: '%s' is not a hexadecimal number of up to %u digits (e.g. %s)", key,
		      value, digits, digits == 4 ? "046d or 0x046d" : "03 or 0x03");
		return false;
	}
	*out = (int)v;
	return true;
}

static void set_path(struct parser *p, const char *key, const char *value, char **dst)
{
	if (value[0] != '/') {
		error(p, "%s: '%s' is not an absolute path", key, value);
		return;
	}
	free(*dst);
	*dst = xstrdup(value);
}

static void set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

static bool chord_parse_report(struct parser *p, const char *key, const char *value,
			       struct conf_chord *out)
{
	char *bad = NULL;
	int r = conf_chord_parse(value, out, &bad);

	if (r == 0)
		return true;
	if (bad && *bad)
		error(p,
		      "%s: '%s' is not a key name libevdev knows (e.g. KEY_LEFTCTRL, KEY_F12, "
		      "BTN_SIDE)",
		      key, bad);
	else if (bad)
		error(p, "%s: empty key name in '%s'; write keys as KEY_A+KEY_B", key, value);
	else
		error(p, "%s: '%s' is not a chord of 1 to %d distinct keys joined by '+'", key,
		      value, CONF_CHORD_MAX);
	free(bad);
	return false;
}

/* Split a command line into argv: whitespace separates, "double quotes"
 * group, backslash escapes the next character. No shell is involved. */
static int split_argv(const char *s, char ***out)
{
	char **argv = xcalloc(1, sizeof(char *));
	size_t len = strlen(s);
	char *word = xmalloc(len + 1);
	size_t n = 0;
	bool in_word = false, quoted = false;

	for (const char *c = s;; c++) {
		if (*c == '\0' || (!quoted && isspace((unsigned char)*c))) {
			if (in_word) {
				word[n] = '\0';
				strv_append(&argv, word);
				n = 0;
				in_word = false;
			}
			if (*c == '\0')
				break;
			continue;
		}
		in_word = true;
		if (*c == '"') {
			quoted = !quoted;
		} else if (*c == '\\' && c[1]) {
			word[n++] = *++c;
		} else {
			word[n++] = *c;
		}
	}
	free(word);
	if (quoted) {
		strv_free(argv);
		return -EINVAL;
	}
	*out = argv;
	return 0;
}

/* ------------------------------------------------------------ [daemon] keys */

static void key_control_socket(struct parser *p, const char *v)
{
	set_path(p, "control-socket", v, &p->conf->daemon.control_socket);
}

static void key_control_group(struct parser *p, const char *v)
{
	set_string(&p->conf->daemon.control_group, v);
}

static void key_cache_dir(struct parser *p, const char *v)
{
	set_path(p, "cache-dir", v, &p->conf->daemon.cache_dir);
}

static void key_qemu_group(struct parser *p, const char *v)
{
	set_string(&p->conf->daemon.qemu_group, v);
}

static void key_log_level(struct parser *p, const char *v)
{
	if (log_level_from_name(v, &p->conf->daemon.log_level) < 0)
		error(p, "log-level: '%s' is not valid; valid: error, warning, info, debug", v);
}

static const struct key daemon_keys[] = {
	{ "control-socket", key_control_socket, false },
	{ "control-group", key_control_group, false },
	{ "cache-dir", key_cache_dir, false },
	{ "log-level", key_log_level, false },
	{ "qemu-group", key_qemu_group, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------------ [switch] keys */

static void key_cycle(struct parser *p, const char *v)
{
	chord_parse_report(p, "cycle", v, &p->conf->sw.cycle);
}

static void key_host(struct parser *p, const char *v)
{
	chord_parse_report(p, "host", v, &p->conf->sw.host);
}

static void key_panic(struct parser *p, const char *v)
{
	chord_parse_report(p, "panic", v, &p->conf->sw.panic);
}

static void key_on_switch(struct parser *p, const char *v)
{
	char **argv;

	if (split_argv(v, &argv) < 0) {
		error(p, "on-switch: unterminated \" in '%s'", v);
		return;
	}
	if (!argv[0] || argv[0][0] != '/') {
		error(p,
		      "on-switch: '%s' must start with an absolute program path (it is run "
		      "with execve, not through a shell)",
		      v);
		strv_free(argv);
		return;
	}
	strv_free(p->conf->sw.on_switch);
	p->conf->sw.on_switch = argv;
}

static void key_on_switch_timeout(struct parser *p, const char *v)
{
	unsigned long n;

	if (parse_uint(v, 10, 3600, &n) < 0 || n == 0) {
		error(p, "on-switch-timeout: '%s' is not a number of seconds from 1 to 3600", v);
		return;
	}
	p->conf->sw.on_switch_timeout = (unsigned)n;
}

static const struct key switch_keys[] = {
	{ "cycle", key_cycle, false },
	{ "host", key_host, false },
	{ "panic", key_panic, false },
	{ "on-switch", key_on_switch, false },
	{ "on-switch-timeout", key_on_switch_timeout, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------------- [input] keys */

static struct conf_input *cur_input(struct parser *p)
{
	return &p->conf->inputs[p->index];
}

static void key_device(struct parser *p, const char *v)
{
	set_path(p, "device", v, &cur_input(p)->device);
}

static void key_grab_all(struct parser *p, const char *v)
{
	parse_bool(p, "grab-all", v, &cur_input(p)->grab_all);
}

static void key_repeat(struct parser *p, const char *v)
{
	parse_bool(p, "repeat", v, &cur_input(p)->repeat);
}

static const struct key input_keys[] = {
	{ "device", key_device, false },
	{ "grab-all", key_grab_all, false },
	{ "repeat", key_repeat, false },
	{ NULL, NULL, false },
};

/* ---------------------------------------------------------------- [vm] keys */

static void key_backend(struct parser *p, const char *v)
{
	if (streq(v, "qmp"))
		p->vm->backend = CONF_BACKEND_QMP;
	else if (streq(v, "libvirt"))
		p->vm->backend = CONF_BACKEND_LIBVIRT;
	else
		error(p, "backend: '%s' is not valid; valid: qmp, libvirt", v);
	p->vm->backend_origin.line = p->line;
}

static void key_qmp_socket(struct parser *p, const char *v)
{
	set_path(p, "qmp-socket", v, &p->vm->qmp_socket);
	p->vm_lines.qmp_socket = p->line;
}

static void key_usb_bus(struct parser *p, const char *v)
{
	for (const char *c = v; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("_.-", *c)) {
			error(p, "usb-bus: '%s' is not a QEMU bus name (e.g. xhci.0)", v);
			return;
		}
	}
	set_string(&p->vm->usb_bus, v);
	p->vm_lines.usb_bus = p->line;
}

static void key_uri(struct parser *p, const char *v)
{
	set_string(&p->vm->uri, v);
	p->vm_lines.uri = p->line;
}

static void key_domain(struct parser *p, const char *v)
{
	set_string(&p->vm->domain, v);
	p->vm_lines.domain = p->line;
}

static void key_inputs(struct parser *p, const char *v)
{
	char **names = strv_split(v, ", \t");

	if (!names[0]) {
		error(p, "inputs: empty list; name one or more [input] sections, separated by "
			 "commas");
		strv_free(names);
		return;
	}
	for (size_t i = 0; names[i]; i++) {
		for (size_t j = 0; j < i; j++) {
			if (streq(names[i], names[j])) {
				error(p, "inputs: '%s' is listed twice", names[i]);
				strv_free(names);
				return;
			}
		}
	}
	strv_free(p->vm->inputs);
	p->vm->inputs = names;
	p->vm_lines.inputs = p->line;
}

static void key_hotkey(struct parser *p, const char *v)
{
	if (chord_parse_report(p, "hotkey", v, &p->vm->hotkey))
		p->vm_lines.hotkey = p->line;
}

static void key_focus_on_start(struct parser *p, const char *v)
{
	parse_bool(p, "focus-on-start", v, &p->vm->focus_on_start);
}

static const struct key vm_keys[] = {
	{ "backend", key_backend, false },
	{ "qmp-socket", key_qmp_socket, false },
	{ "usb-bus", key_usb_bus, false },
	{ "inputs", key_inputs, false },
	{ "hotkey", key_hotkey, false },
	{ "focus-on-start", key_focus_on_start, false },
	{ "uri", key_uri, false },
	{ "domain", key_domain, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------ [usb] / [usb-deny] */

static struct conf_usb_rule *cur_rule(struct parser *p)
{
	return &p->vm->rules[p->index];
}

/* BUS-PORT[.PORT]...: the sysfs name of a USB port, e.g. 3-10 or 1-1.4.2 */
static bool valid_port(const char *s)
{
	unsigned long v;
	char *copy = xstrdup(s), *dash = strchr(copy, '-');
	bool ok = false;

	if (!dash)
		goto out;
	*dash = '\0';
	if (parse_uint(copy, 10, 255, &v) < 0 || v == 0)
		goto out;
	for (char *part = dash + 1, *dot;; part = dot + 1) {
		dot = strchr(part, '.');
		if (dot)
			*dot = '\0';
		if (parse_uint(part, 10, 255, &v) < 0 || v == 0)
			goto out;
		if (!dot)
			break;
	}
	ok = true;
out:
	free(copy);
	return ok;
}

static void key_port(struct parser *p, const char *v)
{
	if (!valid_port(v)) {
		error(p,
		      "port: '%s' is not a USB port path; write BUS-PORT[.PORT...] as in sysfs, "
		      "e.g. 3-10 or 1-1.4 (see `vmplugctl identify`)",
		      v);
		return;
	}
	set_string(&cur_rule(p)->port, v);
}

static void key_vendor(struct parser *p, const char *v)
{
	parse_hex(p, "vendor", v, 4, &cur_rule(p)->vendor);
}

static void key_product(struct parser *p, const char *v)
{
	parse_hex(p, "product", v, 4, &cur_rule(p)->product);
}

static void key_serial(struct parser *p, const char *v)
{
	set_string(&cur_rule(p)->serial, v);
}

static void key_interface_class(struct parser *p, const char *v)
{
	parse_hex(p, "interface-class", v, 2, &cur_rule(p)->interface_class);
}

static void key_attach_mode(struct parser *p, const char *v)
{
	struct conf_usb_rule *r = cur_rule(p);

	if (r->deny) {
		error(p, "attach-mode: not allowed in [usb-deny] (a deny rule attaches nothing)");
		return;
	}
	if (streq(v, "address"))
		r->attach_mode = CONF_ATTACH_ADDRESS;
	else if (streq(v, "fd"))
		r->attach_mode = CONF_ATTACH_FD;
	else if (streq(v, "port"))
		r->attach_mode = CONF_ATTACH_PORT;
	else
		error(p, "attach-mode: '%s' is not valid; valid: address, fd, port", v);
}

static void key_property(struct parser *p, const char *v)
{
	struct conf_usb_rule *r = cur_rule(p);
	size_t namelen = strcspn(v, "=~");
	struct conf_property prop = { 0 };
	int rc;

	if (v[namelen] == '\0' || namelen == 0) {
		error(p, "property: '%s' must be NAME=VALUE (exact) or NAME~REGEX (POSIX ERE)", v);
		return;
	}
	for (size_t i = 0; i < namelen; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '_') {
			error(p,
			      "property: '%.*s' is not a udev property name (letters, digits, _)",
			      (int)namelen, v);
			return;
		}
	}
	prop.op = v[namelen] == '=' ? CONF_PROP_EQUALS : CONF_PROP_REGEX;
	prop.name = xstrndup(v, namelen);
	prop.value = xstrdup(v + namelen + 1);
	if (prop.op == CONF_PROP_REGEX) {
		rc = regcomp(&prop.regex, prop.value, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char buf[256];

			regerror(rc, &prop.regex, buf, sizeof(buf));
			error(p,
			      "property: invalid regular expression '%s': %s (NAME~REGEX takes a "
			      "POSIX extended regular expression, NAME=VALUE an exact value)",
			      prop.value, buf);
			free(prop.name);
			free(prop.value);
			return;
		}
	}
	*(struct conf_property *)xappend(&r->props, &r->n_props, sizeof(prop)) = prop;
}

static void key_tag(struct parser *p, const char *v)
{
	for (const char *c = v; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("_-", *c)) {
			error(p, "tag: '%s' is not a udev tag name (letters, digits, _ and -)", v);
			return;
		}
	}
	strv_append(&cur_rule(p)->tags, v);
}

static const struct key usb_keys[] = {
	{ "port", key_port, false },
	{ "vendor", key_vendor, false },
	{ "product", key_product, false },
	{ "serial", key_serial, false },
	{ "property", key_property, true },
	{ "tag", key_tag, true },
	{ "interface-class", key_interface_class, false },
	{ "attach-mode", key_attach_mode, false },
	{ NULL, NULL, false },
};

static const struct section_type section_types[] = {
	{ "daemon", SEC_DAEMON, false, false, false, daemon_keys },
	{ "switch", SEC_SWITCH, false, false, false, switch_keys },
	{ "input", SEC_INPUT, false, true, false, input_keys },
	{ "vm", SEC_VM, true, false, false, vm_keys },
	{ "usb", SEC_USB, true, false, true, usb_keys },
	{ "usb-deny", SEC_USB_DENY, true, false, true, usb_keys },
};

/* ----------------------------------------------------------- the machinery */

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

static char *key_list(const struct key *keys)
{
	char **names = NULL, *s;

	for (const struct key *k = keys; k->name; k++)
		strv_append(&names, k->name);
	s = strv_join(names, ", ");
	strv_free(names);
	return s;
}

static void unknown_key(struct parser *p, const char *name)
{
	const struct key *best = NULL;
	size_t best_d = 3;
	char *valid = key_list(p->sec->keys);

	for (const struct key *k = p->sec->keys; k->name; k++) {
		size_t d = edit_distance(name, k->name);

		if (d < best_d) {
			best_d = d;
			best = k;
		}
	}
	if (best)
		error(p, "unknown key '%s' in %s (did you mean '%s'?); valid keys: %s", name,
		      p->sec_label, best->name, valid);
	else
		error(p, "unknown key '%s' in %s; valid keys: %s", name, p->sec_label, valid);
	free(valid);
}

static char *section_types_for(bool vm_file)
{
	char **names = NULL, *s;

	for (size_t i = 0; i < ARRAY_SIZE(section_types); i++) {
		if (section_types[i].vm_file == vm_file) {
			char *n = xasprintf("[%s]", section_types[i].name);

			strv_append(&names, n);
			free(n);
		}
	}
	s = strv_join(names, ", ");
	strv_free(names);
	return s;
}

static bool rule_has_match_keys(const struct conf_usb_rule *r)
{
	return r->port || r->vendor >= 0 || r->product >= 0 || r->serial || r->n_props || r->tags ||
	       r->interface_class >= 0;
}

/* A section ends at the next header or at the end of its file. */
static void close_section(struct parser *p)
{
	struct conf_usb_rule *r;

	if (p->kind != SEC_USB && p->kind != SEC_USB_DENY)
		return;
	r = cur_rule(p);
	/* Only when its keys were fine: a typo is reported once, as a typo. */
	if (strv_len(*p->errors) == p->sec_errors && !rule_has_match_keys(r))
		error_at(p, r->origin.line,
			 "%s has no match keys and would match every USB device; give port, "
			 "vendor, product, serial, property, tag or interface-class",
			 p->sec_label);
}

static void open_section(struct parser *p, const struct section_type *t, const char *name)
{
	p->sec_errors = strv_len(*p->errors);
	p->sec = t;
	p->kind = t->kind;
	p->sec_line = p->line;
	p->seen = 0;
	free(p->sec_label);
	p->sec_label = name ? xasprintf("[%s \"%s\"]", t->name, name) : xasprintf("[%s]", t->name);

	switch (t->kind) {
	case SEC_DAEMON:
	case SEC_SWITCH: {
		bool *seen = t->kind == SEC_DAEMON ? &p->seen_daemon : &p->seen_switch;

		if (*seen) {
			error(p, "duplicate section [%s]", t->name);
			p->kind = SEC_BAD;
		}
		*seen = true;
		if (t->kind == SEC_SWITCH)
			p->switch_line = p->line;
		break;
	}
	case SEC_VM:
		if (p->vm_section_line) {
			error(p, "duplicate section [vm]");
			p->kind = SEC_BAD;
		}
		p->vm_section_line = p->line;
		break;
	case SEC_INPUT: {
		struct conf_input *in;

		if (conf_find_input(p->conf, name)) {
			error(p, "duplicate section [input \"%s\"]", name);
			p->kind = SEC_BAD;
			break;
		}
		in = xappend(&p->conf->inputs, &p->conf->n_inputs, sizeof(*in));
		in->name = xstrdup(name);
		in->grab_all = true;
		in->repeat = true;
		in->origin.file = p->file;
		in->origin.line = p->line;
		p->index = p->conf->n_inputs - 1;
		break;
	}
	case SEC_USB:
	case SEC_USB_DENY: {
		struct conf_vm *vm = p->vm;
		struct conf_usb_rule *r;

		for (size_t i = 0; name && i < vm->n_rules; i++) {
			if (streq(vm->rules[i].name, name)) {
				error(p, "duplicate rule name \"%s\" (first at line %d)", name,
				      vm->rules[i].origin.line);
				p->kind = SEC_BAD;
				return;
			}
		}
		r = xappend(&vm->rules, &vm->n_rules, sizeof(*r));
		r->name = name ? xstrdup(name) : xasprintf("rule-%zu", vm->n_rules);
		r->deny = t->kind == SEC_USB_DENY;
		r->vendor = r->product = r->interface_class = -1;
		r->origin.file = p->file;
		r->origin.line = p->line;
		p->index = vm->n_rules - 1;
		break;
	}
	case SEC_NONE:
	case SEC_BAD:
		break;
	}
}

/* "[type]" or "[type "name"]" (line already stripped). */
static void parse_section(struct parser *p, char *s)
{
	char *end = strchr(s, ']'), *type, *name = NULL, *q;
	const struct section_type *t = NULL;

	close_section(p);
	p->kind = SEC_BAD;
	p->sec = NULL;
	if (!end || strstrip(end + 1)[0] != '\0') {
		error(p, "malformed section header; write [section] or [section \"name\"]");
		return;
	}
	*end = '\0';
	type = strstrip(s + 1);
	q = strchr(type, '"');
	if (q) {
		char *close = strchr(q + 1, '"');

		if (!close || close[1] != '\0') {
			error(p, "malformed section name; write [section \"name\"]");
			return;
		}
		*close = '\0';
		name = q + 1;
		*q = '\0';
		type = strstrip(type);
	}
	for (size_t i = 0; i < ARRAY_SIZE(section_types); i++)
		if (streq(type, section_types[i].name))
			t = &section_types[i];
	if (!t || t->vm_file != p->vm_file) {
		char *valid = section_types_for(p->vm_file);

		if (t)
			error(p, "section [%s] belongs in %s; valid here: %s", type,
			      p->vm_file ? "vmplug.conf" : "a vm.d/NAME.conf file", valid);
		else
			error(p, "unknown section [%s]; valid here: %s", type, valid);
		free(valid);
		return;
	}
	if (t->kind == SEC_VM)
		p->seen_vm = true; /* even if the header is wrong: no second error */
	if (name && !t->named && !t->optional_name) {
		error(p, "[%s] takes no name%s", t->name,
		      t->kind == SEC_VM ? " (the VM's name is its file name)" : "");
		return;
	}
	if (!name && t->named) {
		error(p, "[%s] needs a name: [%s \"NAME\"]", t->name, t->name);
		return;
	}
	if (name && !valid_name(name)) {
		error(p, "invalid name \"%s\": use 1 to %d letters, digits, '_', '.' or '-'", name,
		      NAME_MAX_LEN);
		return;
	}
	open_section(p, t, name);
}

/* inih's reader: one line per call. vmplug's own syntax rules live here:
 * line numbers, no continuation lines (leading whitespace is stripped),
 * '#' and ';' comments at line start or after whitespace, section
 * headers, and "key = value" syntax. Only key lines reach inih. */
static char *reader(char *str, int num, void *stream)
{
	struct parser *p = stream;
	ssize_t len;
	char *s;

	len = getline(&p->linebuf, &p->linecap, p->fp);
	if (len < 0)
		return NULL;
	p->line++;
	str[0] = '\0';
	s = p->linebuf;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	if (p->line == 1 && startswith(s, "\xEF\xBB\xBF"))
		s += 3;
	for (char *c = s; *c; c++) {
		if ((*c == '#' || *c == ';') && (c == s || isspace((unsigned char)c[-1]))) {
			*c = '\0';
			break;
		}
	}
	s = strstrip(s);
	if (*s == '\0')
		return str;
	if ((int)strlen(s) >= num - 1) {
		error(p, "line too long (at most %d characters)", num - 2);
		return str;
	}
	if (*s == '[') {
		parse_section(p, s);
		return str;
	}

	size_t keylen = strcspn(s, "=");

	if (s[keylen] != '=' || keylen == 0) {
		error(p, "expected 'key = value' or a [section] header, got '%s'", s);
		return str;
	}
	for (size_t i = 0; i < keylen; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && !isspace((unsigned char)s[i])) {
			error(p, "expected 'key = value', got '%s'", s);
			return str;
		}
	}
	if (p->kind == SEC_NONE) {
		char *valid = section_types_for(p->vm_file);

		error(p, "key outside of any section; start with one of %s", valid);
		free(valid);
		return str;
	}
	if (p->kind == SEC_BAD)
		return str;
	snprintf(str, (size_t)num, "%s\n", s);
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct key *k;
	size_t i = 0;

	(void)section; /* the reader tracks sections itself */
	for (k = p->sec->keys; k->name; k++, i++)
		if (streq(k->name, name))
			break;
	if (!k->name) {
		unknown_key(p, name);
		return 1;
	}
	if (!k->repeatable && (p->seen & (1ULL << i))) {
		error(p, "duplicate key '%s' in %s", name, p->sec_label);
		return 1;
	}
	p->seen |= 1ULL << i;
	if (*value == '\0') {
		error(p, "%s: empty value", name);
		return 1;
	}
	k->fn(p, value);
	return 1;
}

/* sshd-style: a file that can name commands run as root must be root's. */
static bool check_owner(struct parser *p, const char *path, const struct stat *st)
{
	if (st->st_uid != 0) {
		error_at(p, 0,
			 "refusing %s not owned by root (owner uid %u): it can name commands "
			 "vmplugd runs as root; fix with: chown root: %s",
			 S_ISDIR(st->st_mode) ? "a directory" : "a file", (unsigned)st->st_uid,
			 path);
		return false;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		error_at(p, 0,
			 "refusing %s writable by group or others (mode %04o): it can name "
			 "commands vmplugd runs as root; fix with: chmod go-w %s",
			 S_ISDIR(st->st_mode) ? "a directory" : "a file",
			 (unsigned)(st->st_mode & 07777), path);
		return false;
	}
	return true;
}

static const char *remember_file(struct conf *conf, const char *path)
{
	strv_append(&conf->files, path);
	return conf->files[strv_len(conf->files) - 1];
}

/* Parse p->fp, named p->file in messages. */
static void parse_stream(struct parser *p)
{
	p->line = 0;
	p->kind = SEC_NONE;
	p->sec = NULL;
	ini_parse_stream(reader, p, handler, p);
	close_section(p);
}

/* Parse one file; errors go to p->errors. Returns false if it could not be read. */
static bool parse_file(struct parser *p, const char *path, const struct conf_load_opts *opts)
{
	struct stat st;
	bool ok = true;

	p->file = remember_file(p->conf, path);
	p->fp = fopen(path, "re");
	if (!p->fp) {
		error_at(p, 0, "cannot open: %s", strerror(errno));
		return false;
	}
	if (fstat(fileno(p->fp), &st) == 0 && opts->check_owner && !check_owner(p, path, &st)) {
		ok = false;
		goto out;
	}
	parse_stream(p);
	if (ferror(p->fp)) {
		error_at(p, p->line, "read error: %s", strerror(errno));
		ok = false;
	}
out:
	fclose(p->fp);
	p->fp = NULL;
	return ok;
}

/* ---------------------------------------------------------------- checks */

static void check_inputs(struct parser *p)
{
	for (size_t i = 0; i < p->conf->n_inputs; i++) {
		struct conf_input *in = &p->conf->inputs[i];

		if (!in->device)
			error_at(p, in->origin.line,
				 "[input \"%s\"] needs 'device = /dev/input/...' "
				 "(a by-id link is best)",
				 in->name);
	}
}

static void check_vm(struct parser *p)
{
	struct conf_vm *vm = p->vm;
	struct vm_lines *l = &p->vm_lines;

	if (!p->seen_vm) {
		error_at(p, 1,
			 "missing [vm] section (it says how to reach the VM, e.g. "
			 "qmp-socket = /run/qemu/%s.qmp)",
			 vm->name);
		return;
	}
	if (!p->vm_section_line)
		return; /* its header was wrong, and that is reported */
	if (vm->backend == CONF_BACKEND_QMP) {
		if (!vm->qmp_socket)
			error_at(p,
				 vm->backend_origin.line ? vm->backend_origin.line
							 : p->vm_section_line,
				 "missing key 'qmp-socket' in [vm] (required with backend = qmp)");
		if (l->uri)
			error_at(p, l->uri, "uri: only used with backend = libvirt");
		if (l->domain)
			error_at(p, l->domain, "domain: only used with backend = libvirt");
	} else {
		if (l->qmp_socket)
			error_at(p, l->qmp_socket,
				 "qmp-socket: not used with backend = libvirt "
				 "(libvirt owns the monitor)");
		if (l->usb_bus)
			error_at(p, l->usb_bus, "usb-bus: not used with backend = libvirt");
		if (!vm->uri)
			vm->uri = xstrdup("qemu:///system");
		if (!vm->domain)
			vm->domain = xstrdup(vm->name);
	}
}

static bool chord_eq(const struct conf_chord *a, const struct conf_chord *b)
{
	unsigned found = 0;

	if (a->n != b->n || a->n == 0)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		for (unsigned j = 0; j < b->n; j++)
			if (a->codes[i] == b->codes[j])
				found++;
	return found == a->n;
}

/* Checks that need every file: input references and hotkey clashes. */
static void check_cross(struct parser *p, const struct vm_lines *lines)
{
	struct conf *conf = p->conf;
	struct {
		const char *what;
		const struct conf_chord *chord;
	} global[] = { { "[switch] cycle", &conf->sw.cycle },
		       { "[switch] host", &conf->sw.host },
		       { "[switch] panic", &conf->sw.panic } };

	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];

		p->file = vm->file;
		for (size_t j = 0; vm->inputs && vm->inputs[j]; j++) {
			if (conf_find_input(conf, vm->inputs[j]))
				continue;
			char **names = NULL, *defined;

			for (size_t k = 0; k < conf->n_inputs; k++)
				strv_append(&names, conf->inputs[k].name);
			defined = strv_join(names, ", ");
			error_at(p, lines[i].inputs,
				 "inputs: no [input \"%s\"] in vmplug.conf "
				 "(defined: %s)",
				 vm->inputs[j], *defined ? defined : "none");
			free(defined);
			strv_free(names);
		}
		if (!lines[i].hotkey)
			continue;
		for (size_t g = 0; g < ARRAY_SIZE(global); g++)
			if (chord_eq(&vm->hotkey, global[g].chord))
				error_at(p, lines[i].hotkey, "hotkey: same keys as %s",
					 global[g].what);
		for (size_t j = 0; j < i; j++)
			if (chord_eq(&vm->hotkey, &conf->vms[j].hotkey))
				error_at(p, lines[i].hotkey,
					 "hotkey: same keys as the hotkey of VM '%s'",
					 conf->vms[j].name);
	}
	for (size_t g = 0; g < ARRAY_SIZE(global); g++)
		for (size_t h = 0; h < g; h++)
			if (chord_eq(global[g].chord, global[h].chord)) {
				p->file = p->global_file;
				error_at(p, p->switch_line, "%s uses the same keys as %s",
					 global[g].what, global[h].what);
			}
	for (size_t i = 0; i < conf->n_vms; i++)
		for (size_t j = 0; j < i; j++)
			if (conf->vms[i].qmp_socket && conf->vms[j].qmp_socket &&
			    streq(conf->vms[i].qmp_socket, conf->vms[j].qmp_socket)) {
				p->file = conf->vms[i].file;
				error_at(p, lines[i].qmp_socket,
					 "qmp-socket: %s is also the socket of VM '%s'",
					 conf->vms[i].qmp_socket, conf->vms[j].name);
			}
}

static bool chord_has(const struct conf_chord *chord, unsigned short code)
{
	for (unsigned i = 0; i < chord->n; i++)
		if (chord->codes[i] == code)
			return true;
	return false;
}

/* Is code part of a [switch] chord or of a VM's hotkey? */
static bool chords_use(const struct conf *conf, unsigned short code)
{
	if (chord_has(&conf->sw.cycle, code) || chord_has(&conf->sw.host, code) ||
	    chord_has(&conf->sw.panic, code))
		return true;
	for (size_t i = 0; i < conf->n_vms; i++)
		if (chord_has(&conf->vms[i].hotkey, code))
			return true;
	return false;
}

/* QEMU's input-linux toggles its grab on a key combination of its own
 * (GrabToggleKeys), in QEMU's order of preference after its default. */
static const struct grab_toggle {
	const char *name;
	unsigned short keys[3]; /* 0 ends */
} grab_toggles[] = {
	{ "scrolllock", { KEY_SCROLLLOCK } },
	{ "ctrl-scrolllock", { KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_SCROLLLOCK } },
	{ "meta-meta", { KEY_LEFTMETA, KEY_RIGHTMETA } },
	{ "alt-alt", { KEY_LEFTALT, KEY_RIGHTALT } },
	{ "shift-shift", { KEY_LEFTSHIFT, KEY_RIGHTSHIFT } },
	{ "ctrl-ctrl", { KEY_LEFTCTRL, KEY_RIGHTCTRL } },
};

static bool toggle_clashes(const struct conf *conf, const struct grab_toggle *t)
{
	for (size_t k = 0; k < ARRAY_SIZE(t->keys) && t->keys[k]; k++)
		if (chords_use(conf, t->keys[k]))
			return true;
	return false;
}

/* Pick the first toggle that shares no key with vmplug's chords, so a
 * hotkey never doubles as QEMU's toggle. */
const char *conf_grab_toggle(const struct conf *conf)
{
	for (size_t t = 0; t < ARRAY_SIZE(grab_toggles); t++)
		if (!toggle_clashes(conf, &grab_toggles[t]))
			return grab_toggles[t].name;
	return "ctrl-ctrl";
}

bool conf_grab_toggle_clashes(const struct conf *conf, const char *name)
{
	for (size_t t = 0; t < ARRAY_SIZE(grab_toggles); t++)
		if (streq(grab_toggles[t].name, name))
			return toggle_clashes(conf, &grab_toggles[t]);
	return false;
}

/* ------------------------------------------------------------------ loading */

static void set_defaults(struct conf *conf)
{
	conf->daemon.control_socket = xstrdup(VMPLUG_RUNDIR "/control.sock");
	conf->daemon.cache_dir = xstrdup(VMPLUG_CACHEDIR);
	conf->daemon.qemu_group = xstrdup("kvm");
	conf->daemon.log_level = LOG_LEVEL_INFO;
	conf->sw.on_switch_timeout = 10;
	conf_chord_parse("KEY_LEFTCTRL+KEY_LEFTALT+KEY_BACKSPACE", &conf->sw.panic, NULL);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.conf files of DIR/vm.d, sorted; a missing vm.d is an empty list. */
static int list_vm_files(const char *vmdir, char ***out)
{
	DIR *d = opendir(vmdir);
	char **names = xcalloc(1, sizeof(char *));
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		*out = names;
		return errno == ENOENT ? 0 : -errno;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf"))
			continue;
		strv_append(&names, de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(char *), cmp_str);
	*out = names;
	return 0;
}

static bool check_dir(struct parser *p, const char *path, const struct conf_load_opts *opts)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		p->file = remember_file(p->conf, path);
		error_at(p, 0, "cannot read the configuration directory: %s", strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		p->file = remember_file(p->conf, path);
		error_at(p, 0, "not a directory");
		return false;
	}
	if (opts->check_owner) {
		p->file = remember_file(p->conf, path);
		return check_owner(p, path, &st);
	}
	return true;
}

int conf_load(const char *dir, const struct conf_load_opts *opts, struct conf **out, char ***errors)
{
	static const struct conf_load_opts no_opts;
	struct conf *conf = xnew(struct conf);
	struct parser p = { .conf = conf, .errors = errors };
	char *global = xasprintf("%s/vmplug.conf", dir);
	char *vmdir = xasprintf("%s/vm.d", dir);
	char **vmfiles = NULL;
	struct vm_lines *lines = NULL;
	int r = 0;

	if (!opts)
		opts = &no_opts;
	*errors = xcalloc(1, sizeof(char *));
	conf->dir = xstrdup(dir);
	set_defaults(conf);

	if (!check_dir(&p, dir, opts)) {
		r = -EINVAL;
		goto out;
	}
	if (access(global, F_OK) == 0) {
		parse_file(&p, global, opts);
		p.global_file = p.file;
	} else {
		p.global_file = remember_file(conf, global);
	}
	if (access(vmdir, F_OK) == 0 && !check_dir(&p, vmdir, opts))
		goto done;
	r = list_vm_files(vmdir, &vmfiles);
	if (r < 0) {
		p.file = remember_file(conf, vmdir);
		error_at(&p, 0, "cannot list VM files: %s", strerror(-r));
		goto done;
	}
	check_inputs(&p);
	conf->n_vms = strv_len(vmfiles);
	conf->vms = xcalloc(conf->n_vms, sizeof(struct conf_vm));
	lines = xcalloc(conf->n_vms + 1, sizeof(*lines));
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];
		char *path = xasprintf("%s/%s", vmdir, vmfiles[i]);

		vm->name = xstrndup(vmfiles[i], strlen(vmfiles[i]) - 5);
		vm->file = path;
		vm->backend_origin.file = remember_file(conf, path);
		p.vm = vm;
		p.vm_file = true;
		p.seen_vm = false;
		p.vm_section_line = 0;
		memset(&p.vm_lines, 0, sizeof(p.vm_lines));
		if (!valid_name(vm->name)) {
			p.file = vm->backend_origin.file;
			error_at(&p, 0,
				 "invalid VM name '%s' (from the file name): use 1 to %d "
				 "letters, digits, '_', '.' or '-'",
				 vm->name, NAME_MAX_LEN);
			continue;
		}
		/* "host" names the host in `vmplugctl switch host`, the
		 * on-switch hook's VMPLUG_TO and the sinks vmplug-host-*. */
		if (streq(vm->name, "host")) {
			p.file = vm->backend_origin.file;
			error_at(&p, 0,
				 "the VM name 'host' (from the file name) is reserved for the "
				 "host itself: rename the file");
			continue;
		}
		if (parse_file(&p, path, opts))
			check_vm(&p);
		lines[i] = p.vm_lines;
	}
	check_cross(&p, lines);
done:
	if (**errors)
		r = -EINVAL;
out:
	free(p.linebuf);
	free(p.sec_label);
	free(lines);
	strv_free(vmfiles);
	free(global);
	free(vmdir);
	if (r < 0) {
		conf_free(conf);
		return r;
	}
	*out = conf;
	return 0;
}

/* Parse len bytes of text as the file p->file. */
static void parse_text(struct parser *p, const char *text, size_t len)
{
	/* fmemopen() wants a buffer of at least one byte */
	char *copy = xmalloc(len + 1);

	memcpy(copy, text, len);
	copy[len] = '\0';
	p->fp = fmemopen(copy, len ? len : 1, "r");
	if (!p->fp)
		abort();
	parse_stream(p);
	fclose(p->fp);
	p->fp = NULL;
	free(copy);
}

int conf_load_text(const char *global, size_t global_len, const char *vm_text, size_t vm_len,
		   struct conf **out, char ***errors)
{
	struct conf *conf = xnew(struct conf);
	struct parser p = { .conf = conf, .errors = errors };
	struct vm_lines lines[1] = { { 0 } };

	*errors = xcalloc(1, sizeof(char *));
	conf->dir = xstrdup(".");
	set_defaults(conf);
	p.file = p.global_file = remember_file(conf, "./vmplug.conf");
	parse_text(&p, global, global_len);
	check_inputs(&p);
	if (vm_text) {
		struct conf_vm *vm;

		conf->n_vms = 1;
		conf->vms = xcalloc(1, sizeof(struct conf_vm));
		vm = &conf->vms[0];
		vm->name = xstrdup(CONF_TEXT_VM);
		vm->file = xstrdup("./vm.d/" CONF_TEXT_VM ".conf");
		vm->backend_origin.file = p.file = remember_file(conf, vm->file);
		p.vm = vm;
		p.vm_file = true;
		parse_text(&p, vm_text, vm_len);
		check_vm(&p);
		lines[0] = p.vm_lines;
	}
	check_cross(&p, lines);
	free(p.linebuf);
	free(p.sec_label);
	if (**errors) {
		conf_free(conf);
		return -EINVAL;
	}
	*out = conf;
	return 0;
}

static void usb_rule_free(struct conf_usb_rule *r)
{
	free(r->name);
	free(r->port);
	free(r->serial);
	for (size_t i = 0; i < r->n_props; i++) {
		if (r->props[i].op == CONF_PROP_REGEX)
			regfree(&r->props[i].regex);
		free(r->props[i].name);
		free(r->props[i].value);
	}
	free(r->props);
	strv_free(r->tags);
}

void conf_free(struct conf *conf)
{
	if (!conf)
		return;
	free(conf->daemon.control_socket);
	free(conf->daemon.control_group);
	free(conf->daemon.cache_dir);
	free(conf->daemon.qemu_group);
	strv_free(conf->sw.on_switch);
	for (size_t i = 0; i < conf->n_inputs; i++) {
		free(conf->inputs[i].name);
		free(conf->inputs[i].device);
	}
	free(conf->inputs);
	for (size_t i = 0; i < conf->n_vms; i++) {
		struct conf_vm *vm = &conf->vms[i];

		free(vm->name);
		free(vm->file);
		free(vm->qmp_socket);
		free(vm->usb_bus);
		free(vm->uri);
		free(vm->domain);
		strv_free(vm->inputs);
		for (size_t j = 0; j < vm->n_rules; j++)
			usb_rule_free(&vm->rules[j]);
		free(vm->rules);
	}
	free(conf->vms);
	strv_free(conf->files);
	free(conf->dir);
	free(conf);
}

/* ------------------------------------------------------------------ queries */

const struct conf_vm *conf_find_vm(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_vms; i++)
		if (streq(conf->vms[i].name, name))
			return &conf->vms[i];
	return NULL;
}

const struct conf_input *conf_find_input(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->n_inputs; i++)
		if (streq(conf->inputs[i].name, name))
			return &conf->inputs[i];
	return NULL;
}

int conf_chord_parse(const char *s, struct conf_chord *out, char **bad)
{
	struct conf_chord c = { 0 };
	const char *p = s;

	if (bad)
		*bad = NULL;
	for (;;) {
		size_t len = strcspn(p, "+");
		char *name = xstrndup(p, len);
		char *tok = strstrip(name);
		int code = *tok ? libevdev_event_code_from_name(EV_KEY, tok) : -1;

		if (code < 0) {
			if (bad)
				*bad = xstrdup(tok);
			free(name);
			return -EINVAL;
		}
		free(name);
		for (unsigned i = 0; i < c.n; i++)
			if (c.codes[i] == code)
				return -EINVAL;
		if (c.n == CONF_CHORD_MAX)
			return -EINVAL;
		c.codes[c.n++] = (unsigned short)code;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = c;
	return 0;
}

char *conf_chord_to_string(const struct conf_chord *chord)
{
	char **names = NULL, *s;

	for (unsigned i = 0; i < chord->n; i++) {
		const char *n = libevdev_event_code_get_name(EV_KEY, chord->codes[i]);

		if (n) {
			strv_append(&names, n);
		} else {
			char *num = xasprintf("%u", chord->codes[i]);

			strv_append(&names, num);
			free(num);
		}
	}
	s = strv_join(names, "+");
	strv_free(names);
	return s;
}

const char *conf_backend_name(enum conf_backend b)
{
	return b == CONF_BACKEND_LIBVIRT ? "libvirt" : "qmp";
}

const char *conf_attach_mode_name(enum conf_attach_mode m)
{
	switch (m) {
	case CONF_ATTACH_FD:
		return "fd";
	case CONF_ATTACH_PORT:
		return "port";
	case CONF_ATTACH_ADDRESS:
		break;
	}
	return "address";
}

/* ----------------------------------------------------------------- dumping */

static void put_quoted(FILE *f, const char *value)
{
	fputc('"', f);
	for (const char *c = value; *c; c++) {
		if (*c == '"' || *c == '\\')
			fputc('\\', f);
		fputc(*c, f);
	}
	fputc('"', f);
}

/* Print " key=value", quoting values that would not survive a split. */
static void put(FILE *f, const char *key, const char *value)
{
	if (!value)
		return;
	fprintf(f, " %s=", key);
	if (*value && !strpbrk(value, " \t\"\\,[]"))
		fputs(value, f);
	else
		put_quoted(f, value);
}

static void put_chord(FILE *f, const char *key, const struct conf_chord *c)
{
	char *s;

	if (!c->n)
		return;
	s = conf_chord_to_string(c);
	put(f, key, s);
	free(s);
}

static void put_hex(FILE *f, const char *key, int v, int digits)
{
	if (v >= 0)
		fprintf(f, " %s=%0*x", key, digits, v);
}

static void put_strv(FILE *f, const char *key, char *const *v, const char *sep)
{
	char *s;

	if (!v)
		return;
	s = strv_join(v, sep);
	put(f, key, s);
	free(s);
}

void conf_dump(const struct conf *conf, FILE *f)
{
	char buf[16];

	fprintf(f, "daemon");
	put(f, "control-socket", conf->daemon.control_socket);
	put(f, "control-group", conf->daemon.control_group);
	put(f, "cache-dir", conf->daemon.cache_dir);
	put(f, "log-level", log_level_name(conf->daemon.log_level));
	put(f, "qemu-group", conf->daemon.qemu_group);
	fprintf(f, "\nswitch");
	put_chord(f, "cycle", &conf->sw.cycle);
	put_chord(f, "host", &conf->sw.host);
	put_chord(f, "panic", &conf->sw.panic);
	if (conf->sw.on_switch) {
		/* argv as a list, so word boundaries stay visible */
		fprintf(f, " on-switch=[");
		for (size_t i = 0; conf->sw.on_switch[i]; i++) {
			fputs(i ? ", " : "", f);
			put_quoted(f, conf->sw.on_switch[i]);
		}
		fputc(']', f);
	}
	snprintf(buf, sizeof(buf), "%u", conf->sw.on_switch_timeout);
	put(f, "on-switch-timeout", buf);
	fputc('\n', f);
	for (size_t i = 0; i < conf->n_inputs; i++) {
		const struct conf_input *in = &conf->inputs[i];

		fprintf(f, "input %s", in->name);
		put(f, "device", in->device);
		put(f, "grab-all", in->grab_all ? "yes" : "no");
		put(f, "repeat", in->repeat ? "yes" : "no");
		fputc('\n', f);
	}
	for (size_t i = 0; i < conf->n_vms; i++) {
		const struct conf_vm *vm = &conf->vms[i];

		fprintf(f, "vm %s", vm->name);
		put(f, "backend", conf_backend_name(vm->backend));
		put(f, "qmp-socket", vm->qmp_socket);
		put(f, "usb-bus", vm->usb_bus);
		put(f, "uri", vm->uri);
		put(f, "domain", vm->domain);
		put_strv(f, "inputs", vm->inputs, ",");
		put_chord(f, "hotkey", &vm->hotkey);
		put(f, "focus-on-start", vm->focus_on_start ? "yes" : "no");
		fputc('\n', f);
		for (size_t j = 0; j < vm->n_rules; j++) {
			const struct conf_usb_rule *r = &vm->rules[j];

			fprintf(f, "vm %s %s %s", vm->name, r->deny ? "usb-deny" : "usb", r->name);
			put(f, "port", r->port);
			put_hex(f, "vendor", r->vendor, 4);
			put_hex(f, "product", r->product, 4);
			put(f, "serial", r->serial);
			for (size_t k = 0; k < r->n_props; k++) {
				char *pv = xasprintf("%s%c%s", r->props[k].name,
						     r->props[k].op == CONF_PROP_EQUALS ? '=' : '~',
						     r->props[k].value);

				put(f, "property", pv);
				free(pv);
			}
			for (size_t k = 0; r->tags && r->tags[k]; k++)
				put(f, "tag", r->tags[k]);
			put_hex(f, "interface-class", r->interface_class, 2);
			if (!r->deny)
				put(f, "attach-mode", conf_attach_mode_name(r->attach_mode));
			fputc('\n', f);
		}
	}
}

/* The key tables: each section's keys, how their values are read, and
 * the checks that need a whole section, file or configuration. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf-int.h"
#include "util/util.h"

/* ------------------------------------------------------------------ values */

/* yes/no, true/false, on/off, 1/0 (any case); false and an error otherwise. */
static bool parse_bool(struct conf_parser *p, const char *key, const char *value, bool *out)
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
	conf_error(p, "%s: '%s' is not a boolean; valid: yes, no (or true/false, on/off, 1/0)", key,
		   value);
	return false;
}

/* Up to `digits` hex digits, 0x optional; false and an error with an example otherwise. */
static bool parse_hex(struct conf_parser *p, const char *key, const char *value, unsigned digits,
		      int *out)
{
	const char *s = value;
	unsigned long max = (1UL << (4 * digits)) - 1, v;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	if (strlen(s) > digits || parse_uint(s, 16, max, &v) < 0 || !isxdigit((unsigned char)*s)) {
		conf_error(p, "%s: '%s' is not a hexadecimal number of up to %u digits (e.g. %s)",
			   key, value, digits, digits == 4 ? "046d or 0x046d" : "03 or 0x03");
		return false;
	}
	*out = (int)v;
	return true;
}

/* An absolute path, replacing an earlier value; an error otherwise. */
static void set_path(struct conf_parser *p, const char *key, const char *value, char **dst)
{
	if (value[0] != '/') {
		conf_error(p, "%s: '%s' is not an absolute path", key, value);
		return;
	}
	free(*dst);
	*dst = xstrdup(value);
}

/* Replace *dst with a copy of value. */
static void set_string(char **dst, const char *value)
{
	free(*dst);
	*dst = xstrdup(value);
}

/* conf_chord_parse() with its failure told as a config error naming the key. */
static bool chord_parse_report(struct conf_parser *p, const char *key, const char *value,
			       struct conf_chord *out)
{
	char *bad = NULL;
	int r = conf_chord_parse(value, out, &bad);

	if (r == 0)
		return true;
	if (bad && *bad)
		conf_error(p,
			   "%s: '%s' is not a key name libevdev knows (e.g. KEY_LEFTCTRL, KEY_F12, "
			   "BTN_SIDE)",
			   key, bad);
	else if (bad)
		conf_error(p, "%s: empty key name in '%s'; write keys as KEY_A+KEY_B", key, value);
	else
		conf_error(p, "%s: '%s' is not a chord of 1 to %d distinct keys joined by '+'", key,
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

static void key_control_socket(struct conf_parser *p, const char *v)
{
	set_path(p, "control-socket", v, &p->conf->daemon.control_socket);
}

static void key_control_group(struct conf_parser *p, const char *v)
{
	set_string(&p->conf->daemon.control_group, v);
}

static void key_cache_dir(struct conf_parser *p, const char *v)
{
	set_path(p, "cache-dir", v, &p->conf->daemon.cache_dir);
}

static void key_state_dir(struct conf_parser *p, const char *v)
{
	set_path(p, "state-dir", v, &p->conf->daemon.state_dir);
}

static void key_qemu_group(struct conf_parser *p, const char *v)
{
	set_string(&p->conf->daemon.qemu_group, v);
}

static void key_log_level(struct conf_parser *p, const char *v)
{
	if (log_level_from_name(v, &p->conf->daemon.log_level) < 0)
		conf_error(p, "log-level: '%s' is not valid; valid: error, warning, info, debug",
			   v);
}

static const struct conf_key daemon_keys[] = {
	{ "control-socket", key_control_socket, false },
	{ "control-group", key_control_group, false },
	{ "cache-dir", key_cache_dir, false },
	{ "log-level", key_log_level, false },
	{ "qemu-group", key_qemu_group, false },
	{ "state-dir", key_state_dir, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------------ [switch] keys */

/* A chord, or none: no cycle chord at all (not even the default). */
static void key_cycle(struct conf_parser *p, const char *v)
{
	if (streq(v, "none")) {
		p->conf->sw.cycle = (struct conf_chord){ 0 };
		p->cycle_set = true;
	} else if (chord_parse_report(p, "cycle", v, &p->conf->sw.cycle)) {
		p->cycle_set = true;
	}
}

static void key_host(struct conf_parser *p, const char *v)
{
	chord_parse_report(p, "host", v, &p->conf->sw.host);
}

static void key_panic(struct conf_parser *p, const char *v)
{
	chord_parse_report(p, "panic", v, &p->conf->sw.panic);
}

/* A command line split into argv (no shell), its program an absolute path
 * that only root can change (when vmplugd runs as root). */
static void key_on_switch(struct conf_parser *p, const char *v)
{
	char **argv, *why = NULL;
	int r;

	if (split_argv(v, &argv) < 0) {
		conf_error(p, "on-switch: unterminated \" in '%s'", v);
		return;
	}
	if (!argv[0] || argv[0][0] != '/') {
		conf_error(p,
			   "on-switch: '%s' must start with an absolute program path (it is run "
			   "with execve, not through a shell)",
			   v);
		strv_free(argv);
		return;
	}
	/* (a program not there yet is judged before each run instead) */
	if (p->check_owner && (r = path_check_trusted(argv[0], 0, &why)) < 0 && r != -ENOENT) {
		conf_error(p, "on-switch: refusing to run %s: %s", argv[0], why);
		free(why);
		strv_free(argv);
		return;
	}
	free(why);
	strv_free(p->conf->sw.on_switch);
	p->conf->sw.on_switch = argv;
}

/* How many seconds an on-switch program may run before it is killed, 1 to 3600. */
static void key_on_switch_timeout(struct conf_parser *p, const char *v)
{
	unsigned long n;

	if (parse_uint(v, 10, 3600, &n) < 0 || n == 0) {
		conf_error(p, "on-switch-timeout: '%s' is not a number of seconds from 1 to 3600",
			   v);
		return;
	}
	p->conf->sw.on_switch_timeout = (unsigned)n;
}

static const struct conf_key switch_keys[] = {
	{ "cycle", key_cycle, false },
	{ "host", key_host, false },
	{ "panic", key_panic, false },
	{ "on-switch", key_on_switch, false },
	{ "on-switch-timeout", key_on_switch_timeout, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------------- [input] keys */

/* The [input] section being read. */
static struct conf_input *cur_input(struct conf_parser *p)
{
	return &p->conf->inputs[p->index];
}

static void key_device(struct conf_parser *p, const char *v)
{
	set_path(p, "device", v, &cur_input(p)->device);
}

static void key_grab_all(struct conf_parser *p, const char *v)
{
	parse_bool(p, "grab-all", v, &cur_input(p)->grab_all);
}

static void key_repeat(struct conf_parser *p, const char *v)
{
	parse_bool(p, "repeat", v, &cur_input(p)->repeat);
}

static const struct conf_key input_keys[] = {
	{ "device", key_device, false },
	{ "grab-all", key_grab_all, false },
	{ "repeat", key_repeat, false },
	{ NULL, NULL, false },
};

/* ---------------------------------------------------------------- [vm] keys */

/* qmp or libvirt; its line is kept for errors about the VM's backend. */
static void key_backend(struct conf_parser *p, const char *v)
{
	if (streq(v, "qmp"))
		p->vm->backend = CONF_BACKEND_QMP;
	else if (streq(v, "libvirt"))
		p->vm->backend = CONF_BACKEND_LIBVIRT;
	else
		conf_error(p, "backend: '%s' is not valid; valid: qmp, libvirt", v);
	p->vm->backend_origin.line = p->line;
}

/* An absolute path; its line is kept for the later checks (vm_lines). */
static void key_qmp_socket(struct conf_parser *p, const char *v)
{
	set_path(p, "qmp-socket", v, &p->vm->qmp_socket);
	p->vm_lines.qmp_socket = p->line;
}

/* A QEMU bus id such as xhci.0: no characters that would change a device_add. */
static void key_usb_bus(struct conf_parser *p, const char *v)
{
	for (const char *c = v; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("_.-", *c)) {
			conf_error(p, "usb-bus: '%s' is not a QEMU bus name (e.g. xhci.0)", v);
			return;
		}
	}
	set_string(&p->vm->usb_bus, v);
	p->vm_lines.usb_bus = p->line;
}

/* One of QEMU's GrabToggleKeys values; its line is kept for the later checks. */
static void key_grab_toggle(struct conf_parser *p, const char *v)
{
	const char *name = conf_grab_toggle_name(v);

	if (!name) {
		conf_error(p,
			   "grab-toggle: '%s' is not one of QEMU's; valid: scrolllock, "
			   "ctrl-scrolllock, meta-meta, alt-alt, shift-shift, ctrl-ctrl",
			   v);
		return;
	}
	p->vm->grab_toggle = name;
	p->vm_lines.grab_toggle = p->line;
}

/* libvirt's connection URI; its line is kept for the later checks. */
static void key_uri(struct conf_parser *p, const char *v)
{
	set_string(&p->vm->uri, v);
	p->vm_lines.uri = p->line;
}

/* libvirt's domain name; its line is kept for the later checks. */
static void key_vm_qemu_user(struct conf_parser *p, const char *v)
{
	set_string(&p->vm->qemu_user, v);
}

static void key_vm_qemu_group(struct conf_parser *p, const char *v)
{
	set_string(&p->vm->qemu_group, v);
}

static void key_domain(struct conf_parser *p, const char *v)
{
	set_string(&p->vm->domain, v);
	p->vm_lines.domain = p->line;
}

/* A comma- or space-separated list of [input] names, each once. */
static void key_inputs(struct conf_parser *p, const char *v)
{
	char **names = strv_split(v, ", \t");

	if (!names[0]) {
		conf_error(p, "inputs: empty list; name one or more [input] sections, separated by "
			      "commas");
		strv_free(names);
		return;
	}
	for (size_t i = 0; names[i]; i++) {
		for (size_t j = 0; j < i; j++) {
			if (streq(names[i], names[j])) {
				conf_error(p, "inputs: '%s' is listed twice", names[i]);
				strv_free(names);
				return;
			}
		}
	}
	strv_free(p->vm->inputs);
	p->vm->inputs = names;
	p->vm_lines.inputs = p->line;
}

/* The chord that moves the keyboard and mouse to this VM; its line is kept for later checks. */
static void key_hotkey(struct conf_parser *p, const char *v)
{
	if (chord_parse_report(p, "hotkey", v, &p->vm->hotkey))
		p->vm_lines.hotkey = p->line;
}

static void key_focus_on_start(struct conf_parser *p, const char *v)
{
	parse_bool(p, "focus-on-start", v, &p->vm->focus_on_start);
}

static const struct conf_key vm_keys[] = {
	{ "backend", key_backend, false },
	{ "qmp-socket", key_qmp_socket, false },
	{ "usb-bus", key_usb_bus, false },
	{ "inputs", key_inputs, false },
	{ "hotkey", key_hotkey, false },
	{ "focus-on-start", key_focus_on_start, false },
	{ "grab-toggle", key_grab_toggle, false },
	{ "uri", key_uri, false },
	{ "domain", key_domain, false },
	{ "qemu-user", key_vm_qemu_user, false },
	{ "qemu-group", key_vm_qemu_group, false },
	{ NULL, NULL, false },
};

/* ------------------------------------------------------ [usb] / [usb-deny] */

/* The [usb] or [usb-deny] section being read. */
static struct conf_usb_rule *cur_rule(struct conf_parser *p)
{
	return &p->vm->rules[p->index];
}

/* PORT[.PORT]...: the ports from the root hub down, each 1 to 255. */
static bool valid_ports(char *s)
{
	unsigned long v;

	for (char *part = s, *dot;; part = dot + 1) {
		dot = strchr(part, '.');
		if (dot)
			*dot = '\0';
		if (parse_uint(part, 10, 255, &v) < 0 || v == 0)
			return false;
		if (!dot)
			return true;
	}
}

/* BUS-PORT[.PORT]...: the sysfs name of a USB port, e.g. 3-10 or 1-1.4.2;
 * or udev's ID_PATH of one, CONTROLLER-usb-0:PORT[.PORT]..., e.g.
 * pci-0000:00:14.0-usb-0:10 (the controller as udev's path_id names it:
 * a subsystem name first, no spaces). */
static bool valid_port(const char *s)
{
	unsigned long v;
	char *copy = xstrdup(s), *dash = strchr(copy, '-'), *usb;
	bool ok = false;

	if (isalpha((unsigned char)copy[0])) {
		usb = strstr(copy, "-usb-0:");
		for (char *next = usb; next; next = strstr(next + 1, "-usb-0:"))
			usb = next;
		if (!usb || usb == copy || strpbrk(copy, " \t"))
			goto out;
		ok = valid_ports(usb + strlen("-usb-0:"));
		goto out;
	}
	if (!dash)
		goto out;
	*dash = '\0';
	if (parse_uint(copy, 10, 255, &v) < 0 || v == 0)
		goto out;
	ok = valid_ports(dash + 1);
out:
	free(copy);
	return ok;
}

static void key_port(struct conf_parser *p, const char *v)
{
	if (!valid_port(v)) {
		conf_error(
		    p,
		    "port: '%s' is not a USB port path; write BUS-PORT[.PORT...] as in sysfs, "
		    "e.g. 3-10 or 1-1.4, or udev's ID_PATH, e.g. pci-0000:00:14.0-usb-0:10 (see "
		    "`vmplugctl identify`)",
		    v);
		return;
	}
	set_string(&cur_rule(p)->port, v);
}

static void key_vendor(struct conf_parser *p, const char *v)
{
	parse_hex(p, "vendor", v, 4, &cur_rule(p)->vendor);
}

static void key_product(struct conf_parser *p, const char *v)
{
	parse_hex(p, "product", v, 4, &cur_rule(p)->product);
}

/* A decimal number from 1 to max for key, or an error. */
static void parse_number(struct conf_parser *p, const char *key, const char *v, unsigned long max,
			 int *out)
{
	unsigned long n;

	if (parse_uint(v, 10, max, &n) < 0 || n == 0) {
		conf_error(p, "%s: '%s' is not a number from 1 to %lu", key, v, max);
		return;
	}
	*out = (int)n;
}

static void key_bus(struct conf_parser *p, const char *v)
{
	parse_number(p, "bus", v, 255, &cur_rule(p)->bus);
}

/* The "device" key: the device number on its bus, 1 to 127. */
static void key_devnum(struct conf_parser *p, const char *v)
{
	parse_number(p, "device", v, 127, &cur_rule(p)->devnum);
}

static void key_serial(struct conf_parser *p, const char *v)
{
	set_string(&cur_rule(p)->serial, v);
}

static void key_interface_class(struct conf_parser *p, const char *v)
{
	parse_hex(p, "interface-class", v, 2, &cur_rule(p)->interface_class);
}

/* How the device is given to QEMU: address, fd or port; not in a deny rule. */
static void key_attach_mode(struct conf_parser *p, const char *v)
{
	struct conf_usb_rule *r = cur_rule(p);

	if (r->deny) {
		conf_error(p,
			   "attach-mode: not allowed in [usb-deny] (a deny rule attaches nothing)");
		return;
	}
	if (streq(v, "address"))
		r->attach_mode = CONF_ATTACH_ADDRESS;
	else if (streq(v, "fd"))
		r->attach_mode = CONF_ATTACH_FD;
	else if (streq(v, "port"))
		r->attach_mode = CONF_ATTACH_PORT;
	else
		conf_error(p, "attach-mode: '%s' is not valid; valid: address, fd, port", v);
}

/* ------------------------------------------------- regular expressions */

/* A limit on what glibc's regcomp() builds for a property regex, in
 * nodes: it copies what a bounded repetition repeats ({n,m}: m times), so
 * "((a{255}){255}){255}", 20 characters, would take minutes and gigabytes
 * to compile. Real patterns ("^[0-9A-F]{16}$") use a few dozen. */
#define REGEX_MAX_NODES 1000
#define REGEX_CAP (1u << 30)

struct regex_scan {
	const char *p;
	bool backref;
};

/* Node counts saturate at REGEX_CAP, so nested bounds cannot overflow. */
static size_t rx_add(size_t a, size_t b)
{
	return a + b > REGEX_CAP ? REGEX_CAP : a + b;
}

/* As rx_add(), for a repetition. */
static size_t rx_mul(size_t a, size_t b)
{
	return b && a > REGEX_CAP / b ? REGEX_CAP : a * b;
}

/* A number of at most 5 digits at *p (RE_DUP_MAX is 32767), moved past. */
static size_t rx_number(const char **p)
{
	size_t n = 0;

	for (; isdigit((unsigned char)**p); (*p)++)
		n = n < 100000 ? n * 10 + (size_t)(**p - '0') : n;
	return n;
}

/* Past a bracket expression at s->p ('['): "[]a]", "[^]a]", "[[:alpha:]]". */
static void rx_bracket(struct regex_scan *s)
{
	const char *p = s->p + 1;

	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			char close[3] = { p[1], ']', '\0' };
			const char *end = strstr(p + 2, close);

			p = end ? end + 2 : p + 1;
		} else {
			p++;
		}
	}
	s->p = *p ? p + 1 : p;
}

static size_t rx_alternatives(struct regex_scan *s);

/* One atom and its repetitions: how many nodes they make. */
static size_t rx_piece(struct regex_scan *s)
{
	size_t n = 1;

	switch (*s->p) {
	case '(':
		s->p++;
		n = rx_add(rx_alternatives(s), 1);
		if (*s->p == ')')
			s->p++;
		break;
	case '\\':
		s->p++;
		if (*s->p >= '1' && *s->p <= '9')
			s->backref = true;
		if (*s->p)
			s->p++;
		break;
	case '[':
		rx_bracket(s);
		break;
	default:
		s->p++;
	}
	for (;;) {
		const char *q = s->p + 1;
		size_t lo, hi;

		if (*s->p == '*' || *s->p == '?') {
			s->p++;
		} else if (*s->p == '+') {
			s->p++;
			n = rx_mul(n, 2);
		} else if (*s->p == '{' && isdigit((unsigned char)*q)) {
			hi = lo = rx_number(&q);
			if (*q == ',') {
				q++;
				hi = isdigit((unsigned char)*q) ? rx_number(&q) : lo + 1;
			}
			if (*q != '}')
				return n;
			s->p = q + 1;
			n = rx_mul(n, hi > lo ? hi : lo > 0 ? lo : 1);
		} else {
			return n;
		}
	}
}

/* Pieces up to ')' or the end, every branch of '|' counted: an upper bound. */
static size_t rx_alternatives(struct regex_scan *s)
{
	size_t n = 0;

	while (*s->p && *s->p != ')') {
		if (*s->p == '|')
			s->p++;
		else
			n = rx_add(n, rx_piece(s));
	}
	return n;
}

/* Whether a property regex may be compiled: not too large once its
 * repetitions are expanded, and without back-references (with them,
 * matching what a device says can take exponential time). Else an
 * error names why. */
static bool regex_acceptable(struct conf_parser *p, const char *re)
{
	struct regex_scan s = { .p = re };
	size_t n = 0;

	while (*s.p) {
		n = rx_add(n, rx_alternatives(&s));
		if (*s.p == ')')
			s.p++;
	}
	if (s.backref) {
		conf_error(p,
			   "property: '%s': back-references (\\1 to \\9) are not allowed (matching "
			   "them can take exponential time)",
			   re);
		return false;
	}
	if (n > REGEX_MAX_NODES) {
		conf_error(p,
			   "property: '%s' is too large once its repetitions are expanded (%s%zu "
			   "nodes, at most %d; nested {n} bounds multiply)",
			   re, n >= REGEX_CAP ? "over " : "", n, REGEX_MAX_NODES);
		return false;
	}
	return true;
}

/* NAME=VALUE (exact) or NAME~ERE (compiled now, so a bad one is a config error). */
static void key_property(struct conf_parser *p, const char *v)
{
	struct conf_usb_rule *r = cur_rule(p);
	size_t namelen = strcspn(v, "=~");
	struct conf_property prop = { 0 };
	int rc;

	if (v[namelen] == '\0' || namelen == 0) {
		conf_error(p, "property: '%s' must be NAME=VALUE (exact) or NAME~REGEX (POSIX ERE)",
			   v);
		return;
	}
	for (size_t i = 0; i < namelen; i++) {
		if (!isalnum((unsigned char)v[i]) && v[i] != '_') {
			conf_error(
			    p, "property: '%.*s' is not a udev property name (letters, digits, _)",
			    (int)namelen, v);
			return;
		}
	}
	prop.op = v[namelen] == '=' ? CONF_PROP_EQUALS : CONF_PROP_REGEX;
	prop.name = xstrndup(v, namelen);
	prop.value = xstrdup(v + namelen + 1);
	if (prop.op == CONF_PROP_REGEX) {
		if (!regex_acceptable(p, prop.value)) {
			free(prop.name);
			free(prop.value);
			return;
		}
		rc = regcomp(&prop.regex, prop.value, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			char buf[256];

			regerror(rc, &prop.regex, buf, sizeof(buf));
			conf_error(
			    p,
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

/* A udev tag name, added to the rule's list: the key may be given more than once. */
static void key_tag(struct conf_parser *p, const char *v)
{
	for (const char *c = v; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr("_-", *c)) {
			conf_error(p, "tag: '%s' is not a udev tag name (letters, digits, _ and -)",
				   v);
			return;
		}
	}
	strv_append(&cur_rule(p)->tags, v);
}

static const struct conf_key usb_keys[] = {
	{ "port", key_port, false },
	{ "bus", key_bus, false },
	{ "device", key_devnum, false },
	{ "vendor", key_vendor, false },
	{ "product", key_product, false },
	{ "serial", key_serial, false },
	{ "property", key_property, true },
	{ "tag", key_tag, true },
	{ "interface-class", key_interface_class, false },
	{ "attach-mode", key_attach_mode, false },
	{ NULL, NULL, false },
};

const struct conf_section_type conf_section_types[] = {
	{ "daemon", CONF_SEC_DAEMON, false, false, false, daemon_keys },
	{ "switch", CONF_SEC_SWITCH, false, false, false, switch_keys },
	{ "input", CONF_SEC_INPUT, false, true, false, input_keys },
	{ "vm", CONF_SEC_VM, true, false, false, vm_keys },
	{ "usb", CONF_SEC_USB, true, false, true, usb_keys },
	{ "usb-deny", CONF_SEC_USB_DENY, true, false, true, usb_keys },
	{ "usb-remote", CONF_SEC_USB_REMOTE, true, true, false, conf_usb_remote_keys },
};

const size_t conf_n_section_types = ARRAY_SIZE(conf_section_types);

/* ---------------------------------------------------------------- checks */

/* A rule without one matches every device, which is never meant. */
static bool rule_has_match_keys(const struct conf_usb_rule *r)
{
	return r->port || r->bus >= 0 || r->devnum >= 0 || r->vendor >= 0 || r->product >= 0 ||
	       r->serial || r->n_props || r->tags || r->interface_class >= 0;
}

/* A [usb] or [usb-deny] section ended: it must match something. */
void conf_check_rule(struct conf_parser *p)
{
	struct conf_usb_rule *r = cur_rule(p);

	/* Only when its keys were fine: a typo is reported once, as a typo. */
	if (strv_len(*p->errors) == p->sec_errors && !rule_has_match_keys(r))
		conf_error_at(p, r->origin.line,
			      "%s has no match keys and would match every USB device; give port, "
			      "bus, device, vendor, product, serial, property, tag or "
			      "interface-class",
			      p->sec_label);
}

void conf_check_inputs(struct conf_parser *p)
{
	for (size_t i = 0; i < p->conf->n_inputs; i++) {
		struct conf_input *in = &p->conf->inputs[i];

		if (!in->device)
			conf_error_at(p, in->origin.line,
				      "[input \"%s\"] needs 'device = /dev/input/...' "
				      "(a by-id link is best)",
				      in->name);
	}
}

void conf_check_vm(struct conf_parser *p)
{
	struct conf_vm *vm = p->vm;
	struct conf_vm_lines *l = &p->vm_lines;

	if (!p->seen_vm) {
		conf_error_at(p, 1,
			      "missing [vm] section (it says how to reach the VM, e.g. "
			      "qmp-socket = /run/qemu/%s.qmp)",
			      vm->name);
		return;
	}
	if (!p->vm_section_line)
		return; /* its header was wrong, and that is reported */
	if (vm->backend == CONF_BACKEND_QMP) {
		if (!vm->qmp_socket)
			conf_error_at(
			    p,
			    vm->backend_origin.line ? vm->backend_origin.line : p->vm_section_line,
			    "missing key 'qmp-socket' in [vm] (required with backend = qmp)");
		if (l->uri)
			conf_error_at(p, l->uri, "uri: only used with backend = libvirt");
		if (l->domain)
			conf_error_at(p, l->domain, "domain: only used with backend = libvirt");
	} else {
		if (l->qmp_socket)
			conf_error_at(p, l->qmp_socket,
				      "qmp-socket: not used with backend = libvirt "
				      "(libvirt owns the monitor)");
		if (l->usb_bus)
			conf_error_at(p, l->usb_bus, "usb-bus: not used with backend = libvirt");
		if (!vm->uri)
			vm->uri = xstrdup("qemu:///system");
		if (!vm->domain)
			vm->domain = xstrdup(vm->name);
	}
}

/* Checks that need every file: input references and hotkey clashes. */
/* VM i's sinks are named vmplug-VM-INPUT (input/): no two (VM, input)
 * pairs may make the same name, and none may fall among the host's
 * sinks, vmplug-host-INPUT, which the desktop sees. line: its inputs. */
static void check_sink_names(struct conf_parser *p, size_t i, int line)
{
	const struct conf *conf = p->conf;
	const struct conf_vm *vm = &conf->vms[i];

	if (vm->inputs && vm->inputs[0] && startswith(vm->name, "host-")) {
		conf_error_at(
		    p, line,
		    "inputs: the sinks of VM '%s' (vmplug-%s-INPUT) would be taken for the "
		    "host's (vmplug-host-*), which the desktop sees: rename the VM file",
		    vm->name, vm->name);
		return;
	}
	for (size_t j = 0; vm->inputs && vm->inputs[j]; j++) {
		char *name = xasprintf("%s-%s", vm->name, vm->inputs[j]);

		for (size_t k = 0; k < i; k++) {
			const struct conf_vm *other = &conf->vms[k];

			for (size_t m = 0; other->inputs && other->inputs[m]; m++) {
				char *theirs = xasprintf("%s-%s", other->name, other->inputs[m]);

				if (streq(name, theirs))
					conf_error_at(
					    p, line,
					    "inputs: input '%s' of VM '%s' and input '%s' "
					    "of VM '%s' would both be the sink vmplug-%s: "
					    "rename a VM file or an input",
					    vm->inputs[j], vm->name, other->inputs[m], other->name,
					    name);
				free(theirs);
			}
		}
		free(name);
	}
}

void conf_check_cross(struct conf_parser *p, const struct conf_vm_lines *lines)
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
			conf_error_at(p, lines[i].inputs,
				      "inputs: no [input \"%s\"] in vmplug.conf "
				      "(defined: %s)",
				      vm->inputs[j], *defined ? defined : "none");
			free(defined);
			strv_free(names);
		}
		check_sink_names(p, i, lines[i].inputs);
		if (!lines[i].hotkey)
			continue;
		for (size_t g = 0; g < ARRAY_SIZE(global); g++)
			if (conf_chord_eq(&vm->hotkey, global[g].chord))
				conf_error_at(p, lines[i].hotkey, "hotkey: same keys as %s",
					      global[g].what);
		for (size_t j = 0; j < i; j++)
			if (conf_chord_eq(&vm->hotkey, &conf->vms[j].hotkey))
				conf_error_at(p, lines[i].hotkey,
					      "hotkey: same keys as the hotkey of VM '%s'",
					      conf->vms[j].name);
	}
	for (size_t g = 0; g < ARRAY_SIZE(global); g++)
		for (size_t h = 0; h < g; h++)
			if (conf_chord_eq(global[g].chord, global[h].chord)) {
				p->file = p->global_file;
				conf_error_at(p, p->switch_line, "%s uses the same keys as %s",
					      global[g].what, global[h].what);
			}
	conf_check_usb_remotes_cross(p);
	for (size_t i = 0; i < conf->n_vms; i++)
		for (size_t j = 0; j < i; j++)
			if (conf->vms[i].qmp_socket && conf->vms[j].qmp_socket &&
			    streq(conf->vms[i].qmp_socket, conf->vms[j].qmp_socket)) {
				p->file = conf->vms[i].file;
				conf_error_at(p, lines[i].qmp_socket,
					      "qmp-socket: %s is also the socket of VM '%s'",
					      conf->vms[i].qmp_socket, conf->vms[j].name);
			}
}

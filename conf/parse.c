/* The configuration's syntax: lines, comments, section headers and
 * "key = value", handed to the key tables (keys.c); files read with their
 * owner checked. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "conf/conf-int.h"
#include "util/util.h"

void conf_error_at(struct conf_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg, *full, *shown;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (line > 0)
		full = xasprintf("%s:%d: %s", p->file, line, msg);
	else
		full = xasprintf("%s: %s", p->file, msg);
	/* Errors quote the files: one line each, whatever bytes they hold,
	 * for the log, the terminal and the control socket's JSON. */
	shown = xstrdup_printable(full);
	strv_append(p->errors, shown);
	free(shown);
	free(full);
	free(msg);
}

bool conf_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONF_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_.-", *c))
			return false;
	return true;
}

/* Where the reader below ends a line's text: '#' or ';' at its start or
 * after whitespace. */
static char *comment_start(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == '#' || *c == ';') && (c == s || isspace((unsigned char)c[-1])))
			return c;
	return NULL;
}

bool conf_line_writable(const char *key, const char *value)
{
	char *line = xasprintf("%s = %s", key, value);
	bool ok = *value && !isspace((unsigned char)*value) &&
		  !isspace((unsigned char)value[strlen(value) - 1]) && !comment_start(line) &&
		  strlen(line) <= CONF_LINE_MAX;

	for (const char *c = line; ok && *c; c++)
		ok = (unsigned char)*c >= 0x20 && *c != 0x7f;
	free(line);
	return ok;
}

/* ----------------------------------------------------------- the machinery */

/* Levenshtein distance, for "did you mean"; names over 62 characters are never near. */
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

/* "a, b, c": the section's keys for an error message. */
static char *key_list(const struct conf_key *keys)
{
	char **names = NULL, *s;

	for (const struct conf_key *k = keys; k->name; k++)
		strv_append(&names, k->name);
	s = strv_join(names, ", ");
	strv_free(names);
	return s;
}

/* Report a key the section does not know, with the nearest one and the valid ones. */
static void unknown_key(struct conf_parser *p, const char *name)
{
	const struct conf_key *best = NULL;
	size_t best_d = 3;
	char *valid = key_list(p->sec->keys);

	for (const struct conf_key *k = p->sec->keys; k->name; k++) {
		size_t d = edit_distance(name, k->name);

		if (d < best_d) {
			best_d = d;
			best = k;
		}
	}
	if (best)
		conf_error(p, "unknown key '%s' in %s (did you mean '%s'?); valid keys: %s", name,
			   p->sec_label, best->name, valid);
	else
		conf_error(p, "unknown key '%s' in %s; valid keys: %s", name, p->sec_label, valid);
	free(valid);
}

/* "[daemon], [switch], [input]": the section headers valid in this kind of file. */
static char *section_types_for(bool vm_file)
{
	char **names = NULL, *s;

	for (size_t i = 0; i < conf_n_section_types; i++) {
		if (conf_section_types[i].vm_file == vm_file) {
			char *n = xasprintf("[%s]", conf_section_types[i].name);

			strv_append(&names, n);
			free(n);
		}
	}
	s = strv_join(names, ", ");
	strv_free(names);
	return s;
}

/* A section ends at the next header or at the end of its file. */
static void close_section(struct conf_parser *p)
{
	if (p->kind == CONF_SEC_USB || p->kind == CONF_SEC_USB_DENY)
		conf_check_rule(p);
	if (p->kind == CONF_SEC_USB_REMOTE)
		conf_check_usb_remote(p);
}

/* Start a section: reject duplicates, and make the input or rule its keys fill in. */
static void open_section(struct conf_parser *p, const struct conf_section_type *t, const char *name)
{
	p->sec_errors = strv_len(*p->errors);
	p->sec = t;
	p->kind = t->kind;
	p->sec_line = p->line;
	p->seen = 0;
	free(p->sec_label);
	p->sec_label = name ? xasprintf("[%s \"%s\"]", t->name, name) : xasprintf("[%s]", t->name);

	switch (t->kind) {
	case CONF_SEC_DAEMON:
	case CONF_SEC_SWITCH: {
		bool *seen = t->kind == CONF_SEC_DAEMON ? &p->seen_daemon : &p->seen_switch;

		if (*seen) {
			conf_error(p, "duplicate section [%s]", t->name);
			p->kind = CONF_SEC_BAD;
		}
		*seen = true;
		if (t->kind == CONF_SEC_SWITCH)
			p->switch_line = p->line;
		break;
	}
	case CONF_SEC_VM:
		if (p->vm_section_line) {
			conf_error(p, "duplicate section [vm]");
			p->kind = CONF_SEC_BAD;
		}
		p->vm_section_line = p->line;
		break;
	case CONF_SEC_INPUT: {
		struct conf_input *in;

		if (conf_find_input(p->conf, name)) {
			conf_error(p, "duplicate section [input \"%s\"]", name);
			p->kind = CONF_SEC_BAD;
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
	case CONF_SEC_USB:
	case CONF_SEC_USB_DENY: {
		struct conf_vm *vm = p->vm;
		struct conf_usb_rule *r;

		for (size_t i = 0; name && i < vm->n_rules; i++) {
			if (streq(vm->rules[i].name, name)) {
				conf_error(p, "duplicate rule name \"%s\" (first at line %d)", name,
					   vm->rules[i].origin.line);
				p->kind = CONF_SEC_BAD;
				return;
			}
		}
		r = xappend(&vm->rules, &vm->n_rules, sizeof(*r));
		r->name = name ? xstrdup(name) : xasprintf("rule-%zu", vm->n_rules);
		r->deny = t->kind == CONF_SEC_USB_DENY;
		r->vendor = r->product = r->interface_class = r->bus = r->devnum = -1;
		r->origin.file = p->file;
		r->origin.line = p->line;
		p->index = vm->n_rules - 1;
		break;
	}
	case CONF_SEC_USB_REMOTE:
		if (!conf_open_usb_remote(p, name))
			p->kind = CONF_SEC_BAD;
		break;
	case CONF_SEC_NONE:
	case CONF_SEC_BAD:
		break;
	}
}

/* "[type]" or "[type "name"]" (line already stripped). */
static void parse_section(struct conf_parser *p, char *s)
{
	char *end = strchr(s, ']'), *type, *name = NULL, *q;
	const struct conf_section_type *t = NULL;

	close_section(p);
	p->kind = CONF_SEC_BAD;
	p->sec = NULL;
	if (!end || strstrip(end + 1)[0] != '\0') {
		conf_error(p, "malformed section header; write [section] or [section \"name\"]");
		return;
	}
	*end = '\0';
	type = strstrip(s + 1);
	q = strchr(type, '"');
	if (q) {
		char *close = strchr(q + 1, '"');

		if (!close || close[1] != '\0') {
			conf_error(p, "malformed section name; write [section \"name\"]");
			return;
		}
		*close = '\0';
		name = q + 1;
		*q = '\0';
		type = strstrip(type);
	}
	for (size_t i = 0; i < conf_n_section_types; i++)
		if (streq(type, conf_section_types[i].name))
			t = &conf_section_types[i];
	if (!t || t->vm_file != p->vm_file) {
		char *valid = section_types_for(p->vm_file);

		if (t)
			conf_error(p, "section [%s] belongs in %s; valid here: %s", type,
				   p->vm_file ? "vmplug.conf" : "a vm.d/NAME.conf file", valid);
		else
			conf_error(p, "unknown section [%s]; valid here: %s", type, valid);
		free(valid);
		return;
	}
	if (t->kind == CONF_SEC_VM)
		p->seen_vm = true; /* even if the header is wrong: no second error */
	if (name && !t->named && !t->optional_name) {
		conf_error(p, "[%s] takes no name%s", t->name,
			   t->kind == CONF_SEC_VM ? " (the VM's name is its file name)" : "");
		return;
	}
	if (!name && t->named) {
		conf_error(p, "[%s] needs a name: [%s \"NAME\"]", t->name, t->name);
		return;
	}
	if (name && !conf_valid_name(name)) {
		conf_error(p, "invalid name \"%s\": use 1 to %d letters, digits, '_', '.' or '-'",
			   name, CONF_NAME_MAX);
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
	struct conf_parser *p = stream;
	ssize_t len;
	char *s, *c;

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
	if ((c = comment_start(s)))
		*c = '\0';
	s = strstrip(s);
	if (*s == '\0')
		return str;
	if ((int)strlen(s) >= num - 1 || strlen(s) > CONF_LINE_MAX) {
		conf_error(p, "line too long (at most %d characters)",
			   num - 2 < CONF_LINE_MAX ? num - 2 : CONF_LINE_MAX);
		return str;
	}
	if (*s == '[') {
		parse_section(p, s);
		return str;
	}

	size_t keylen = strcspn(s, "=");

	if (s[keylen] != '=' || keylen == 0) {
		conf_error(p, "expected 'key = value' or a [section] header, got '%s'", s);
		return str;
	}
	for (size_t i = 0; i < keylen; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && !isspace((unsigned char)s[i])) {
			conf_error(p, "expected 'key = value', got '%s'", s);
			return str;
		}
	}
	if (p->kind == CONF_SEC_NONE) {
		char *valid = section_types_for(p->vm_file);

		conf_error(p, "key outside of any section; start with one of %s", valid);
		free(valid);
		return str;
	}
	if (p->kind == CONF_SEC_BAD)
		return str;
	snprintf(str, (size_t)num, "%s\n", s);
	return str;
}

/* inih's callback for each "key = value": find the key in the section's table and run it. */
static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parser *p = user;
	const struct conf_key *k;
	size_t i = 0;

	(void)section; /* the reader tracks sections itself */
	if (p->socket_only && p->kind != CONF_SEC_DAEMON)
		return 1;
	for (k = p->sec->keys; k->name; k++, i++)
		if (streq(k->name, name))
			break;
	if (!k->name) {
		unknown_key(p, name);
		return 1;
	}
	if (!k->repeatable && (p->seen & (1ULL << i))) {
		conf_error(p, "duplicate key '%s' in %s", name, p->sec_label);
		return 1;
	}
	p->seen |= 1ULL << i;
	if (*value == '\0') {
		conf_error(p, "%s: empty value", name);
		return 1;
	}
	if (p->socket_only && !streq(name, "control-socket"))
		return 1;
	k->fn(p, value);
	return 1;
}

/* sshd-style: a file that can name commands run as root must be root's. */
bool conf_check_owner(struct conf_parser *p, const char *path, const struct stat *st)
{
	if (st->st_uid != 0) {
		conf_error_at(p, 0,
			      "refusing %s not owned by root (owner uid %u): it can name commands "
			      "vmplugd runs as root; fix with: chown root: %s",
			      S_ISDIR(st->st_mode) ? "a directory" : "a file", (unsigned)st->st_uid,
			      path);
		return false;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		conf_error_at(p, 0,
			      "refusing %s writable by group or others (mode %04o): it can name "
			      "commands vmplugd runs as root; fix with: chmod go-w %s",
			      S_ISDIR(st->st_mode) ? "a directory" : "a file",
			      (unsigned)(st->st_mode & 07777), path);
		return false;
	}
	return true;
}

const char *conf_remember_file(struct conf *conf, const char *path)
{
	strv_append(&conf->files, path);
	return conf->files[strv_len(conf->files) - 1];
}

/* Parse p->fp, named p->file in messages. */
static void parse_stream(struct conf_parser *p)
{
	p->line = 0;
	p->kind = CONF_SEC_NONE;
	p->sec = NULL;
	ini_parse_stream(reader, p, handler, p);
	close_section(p);
}

/* Parse one file; errors go to p->errors. Returns false if it could not be read. */
bool conf_parse_file(struct conf_parser *p, const char *path, const struct conf_load_opts *opts)
{
	struct stat st;
	bool ok = true;

	p->file = conf_remember_file(p->conf, path);
	p->check_owner = opts->check_owner;
	p->fp = fopen(path, "re");
	if (!p->fp) {
		conf_error_at(p, 0, "cannot open: %s", strerror(errno));
		return false;
	}
	if (fstat(fileno(p->fp), &st) == 0 && opts->check_owner &&
	    !conf_check_owner(p, path, &st)) {
		ok = false;
		goto out;
	}
	parse_stream(p);
	if (ferror(p->fp)) {
		conf_error_at(p, p->line, "read error: %s", strerror(errno));
		ok = false;
	}
out:
	fclose(p->fp);
	p->fp = NULL;
	return ok;
}

/* Parse len bytes of text as the file p->file. */
void conf_parse_text(struct conf_parser *p, const char *text, size_t len)
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

/* vmplugctl: see and steer vmplugd through its control socket. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "control/protocol.h"
#include "util/util.h"

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
};

static volatile sig_atomic_t interrupted;

struct ctl {
	const char *socket;
	bool json;
	int fd;
	char *buf;
	size_t len;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmplugctl [OPTION]... COMMAND [ARG]...\n"
		"See and steer vmplugd.\n"
		"\n"
		"Commands:\n"
		"  status                  the daemon, each VM and what it has attached\n"
		"  usb                     every host USB device and where it goes\n"
		"  usb DEVICE              everything a rule can match on in DEVICE\n"
		"  explain DEVICE          which rules match DEVICE, key by key\n"
		"  attach VM DEVICE        give DEVICE to VM (until it is unplugged or the\n"
		"                          configuration is reloaded)\n"
		"  detach VM DEVICE        take DEVICE away from VM (likewise)\n"
		"  reload                  re-read the configuration\n"
		"  switch TARGET           give the keyboard and mouse to TARGET: a VM,\n"
		"                          host, or next (as the cycle hotkey)\n"
		"  monitor                 print events as they happen, until Ctrl-C\n"
		"  identify [--timeout S]  wait for a device to be plugged in and print a\n"
		"                          configuration section for it (default 30 s)\n"
		"  answer Q attach VM [--remember]\n"
		"  answer Q keep-on-host [--remember]\n"
		"                          settle question Q (monitor's USB_UNCLAIMED) about\n"
		"                          a device no rule claims\n"
		"  remembered              the answers vmplugd remembers\n"
		"  forget ID               forget remembered answer ID\n"
		"\n"
		"DEVICE is a port path (3-10.2), VID:PID (046d:0825), VID:PID:SERIAL, or\n"
		"udev's ID_PATH of the port (pci-0000:00:14.0-usb-0:10.2).\n"
		"\n"
		"Options:\n"
		"  -s, --socket=PATH       vmplugd's control socket (default: control-socket\n"
		"                          in %s/vmplug.conf, else %s/control.sock)\n"
		"  -c, --config-dir=DIR    read control-socket from DIR/vmplug.conf\n"
		"  -j, --json              print vmplugd's JSON replies as they are\n"
		"  -h, --help              show this help and exit\n"
		"  -V, --version           show the version and exit\n"
		"\n"
		"Exit status: 0 done, 1 the command failed, 2 usage error, 3 vmplugd is not\n"
		"reachable. See vmplugctl(1).\n",
		VMPLUG_CONFDIR, VMPLUG_RUNDIR);
}

/* Print a usage error and the hint to --help; returns EXIT_USAGE. */
static int PRINTF_LIKE(1, 2) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vmplugctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vmplugctl --help' for more information.\n");
	return EXIT_USAGE;
}

/* ------------------------------------------------------------ transport */

/* Connect to c->socket, explaining a failure (exit status). */
static int ctl_connect(struct ctl *c)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(c->socket) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "vmplugctl: socket path too long: %s\n", c->socket);
		return EXIT_USAGE;
	}
	strcpy(addr.sun_path, c->socket);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;

		fprintf(stderr, "vmplugctl: cannot reach vmplugd at %s: %s\n", c->socket,
			strerror(e));
		if (e == ENOENT || e == ECONNREFUSED)
			fprintf(stderr, "vmplugctl: is vmplugd running? (or give its socket with "
					"-s)\n");
		else if (e == EACCES)
			fprintf(stderr, "vmplugctl: only root and members of vmplugd's "
					"control-group may use it\n");
		return EXIT_UNREACHABLE;
	}
	return EXIT_OK;
}

/* What vmplugd says is printed as text: every string in v is made
 * printable where it is (control characters and bytes that are not
 * UTF-8 as \xNN), so nothing printed below can drive the terminal or
 * forge a line. An error's "desc" and identify's "suggestion" keep their
 * newlines; every other string is one line. key: v's key, if any. */
static void escape_strings(json_t *v, const char *key)
{
	const char *k;
	json_t *x;
	size_t i;

	if (json_is_string(v)) {
		bool lines = key && (streq(key, "desc") || streq(key, "suggestion"));
		char *s = xstrescape(json_string_value(v),
				     STR_ESCAPE_CONTROL | (lines ? STR_ESCAPE_KEEP_NEWLINE : 0));

		json_string_set(v, s);
		free(s);
	} else if (json_is_object(v)) {
		json_object_foreach(v, k, x)
			escape_strings(x, k);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, x)
			escape_strings(x, key);
	}
}

/* An error from vmplugd on stderr: its first line after "vmplugctl: ",
 * the others indented under it (a line of it can never pass for one of
 * vmplugctl's own). */
static void print_error(const char *desc)
{
	char *shown = xstrescape(desc ? desc : "(no description)",
				 STR_ESCAPE_CONTROL | STR_ESCAPE_KEEP_NEWLINE);
	const char *p = shown;

	fputs("vmplugctl: ", stderr);
	for (;;) {
		size_t n = strcspn(p, "\n");

		fprintf(stderr, "%.*s\n", (int)n, p);
		if (!p[n])
			break;
		p += n + 1;
		fputs("  ", stderr);
	}
	free(shown);
}

/* The next JSON object from vmplugd, NULL when it closed the connection;
 * its strings escaped unless it is to be printed as JSON. */
static json_t *ctl_read(struct ctl *c)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		char chunk[65536];
		ssize_t n;

		if (nl) {
			json_error_t err;
			size_t linelen = (size_t)(nl - c->buf);
			json_t *obj = json_loadb(c->buf, linelen, 0, &err);

			memmove(c->buf, nl + 1, c->len - linelen - 1);
			c->len -= linelen + 1;
			if (!obj) {
				char *why = xstrdup_printable(err.text);

				fprintf(stderr, "vmplugctl: vmplugd sent invalid JSON: %s\n", why);
				free(why);
				continue;
			}
			if (!c->json)
				escape_strings(obj, NULL);
			return obj;
		}
		n = read(c->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR && !interrupted)
			continue;
		if (n <= 0)
			return NULL;
		c->buf = xrealloc(c->buf, c->len + (size_t)n);
		memcpy(c->buf + c->len, chunk, (size_t)n);
		c->len += (size_t)n;
	}
}

/* Connect and read the greeting, or the refusal that replaces it (exit status). */
static int ctl_open(struct ctl *c)
{
	json_t *greeting;
	int r = ctl_connect(c);

	if (r != EXIT_OK)
		return r;
	greeting = ctl_read(c);
	if (!greeting) {
		fprintf(stderr, "vmplugctl: vmplugd at %s closed the connection\n", c->socket);
		return EXIT_UNREACHABLE;
	}
	if (json_object_get(greeting, "error")) {
		print_error(
		    json_string_value(json_object_get(json_object_get(greeting, "error"), "desc")));
		json_decref(greeting);
		return EXIT_UNREACHABLE;
	}
	json_decref(greeting);
	return EXIT_OK;
}

/* Send a command and wait for its reply (events in between are skipped).
 * On success *ret is the "return" value (owned by the caller). */
static int ctl_call(struct ctl *c, const char *cmd, json_t *args, json_t **ret)
{
	json_t *req = json_pack("{s:s,s:i}", "execute", cmd, "id", 1), *resp;
	char *text;

	if (args)
		json_object_set_new(req, "arguments", args);
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (write_all(c->fd, text, strlen(text)) < 0 || write_all(c->fd, "\n", 1) < 0) {
		free(text);
		fprintf(stderr, "vmplugctl: lost the connection to vmplugd\n");
		return EXIT_UNREACHABLE;
	}
	free(text);
	while ((resp = ctl_read(c))) {
		json_t *err = json_object_get(resp, "error");

		if (json_object_get(resp, "event")) {
			json_decref(resp);
			continue;
		}
		if (c->json) {
			char *out = json_dumps(resp, JSON_INDENT(2) | JSON_ENSURE_ASCII);

			puts(out);
			free(out);
		}
		if (err) {
			if (!c->json)
				print_error(json_string_value(json_object_get(err, "desc")));
			json_decref(resp);
			return EXIT_FAILED;
		}
		*ret = json_incref(json_object_get(resp, "return"));
		json_decref(resp);
		return EXIT_OK;
	}
	fprintf(stderr, "vmplugctl: vmplugd closed the connection\n");
	return EXIT_UNREACHABLE;
}

/* ---------------------------------------------------------------- tables */

struct table {
	size_t cols;
	char **cells; /* rows * cols */
	size_t rows;
};

/* Add a row of t->cols strings (NULL shows as "-"), made printable. */
static void table_row(struct table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	t->cells = xrealloc(t->cells, (t->rows + 1) * t->cols * sizeof(char *));
	for (size_t i = 0; i < t->cols; i++) {
		const char *s = va_arg(ap, const char *);

		/* one row, one line: vmplugd escapes what devices say, and
		 * so does this side, whoever is on the other end */
		t->cells[t->rows * t->cols + i] = xstrdup_printable(s ? s : "-");
	}
	va_end(ap);
	t->rows++;
}

/* Print the rows in columns as wide as their widest cell, then empty t. */
static void table_print(struct table *t, const char *indent)
{
	size_t *w = xcalloc(t->cols, sizeof(size_t));

	for (size_t r = 0; r < t->rows; r++)
		for (size_t i = 0; i < t->cols; i++) {
			size_t l = strlen(t->cells[r * t->cols + i]);

			if (l > w[i])
				w[i] = l;
		}
	for (size_t r = 0; r < t->rows; r++) {
		fputs(indent, stdout);
		for (size_t i = 0; i < t->cols; i++) {
			const char *cell = t->cells[r * t->cols + i];

			if (i + 1 == t->cols)
				printf("%s\n", cell);
			else
				printf("%-*s  ", (int)w[i], cell);
		}
	}
	for (size_t i = 0; i < t->rows * t->cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
	t->cells = NULL;
	t->rows = 0;
}

/* A string member of o, NULL when absent or not a string. */
static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* "VVVV:PPPP" of a device in vmplugd's JSON. */
static char *ids(json_t *dev)
{
	const char *v = jstr(dev, "vendor"), *p = jstr(dev, "product");

	return xasprintf("%s:%s", v ? v : "????", p ? p : "????");
}

/* ------------------------------------------------------------- commands */

/* A VM's items in status: USB devices, then inputs. */
static void print_vm_usb(json_t *vm)
{
	struct table t = { .cols = 5 };
	size_t i;
	json_t *u;

	json_array_foreach(json_object_get(vm, "usb"), i, u) {
		json_t *dev = json_object_get(u, "device");
		char *id = json_is_object(dev) ? ids(dev) : NULL;
		const char *err = jstr(u, "error");
		char *what = err ? xasprintf("(%s)", err) : NULL;

		table_row(&t, jstr(u, "id"), jstr(u, "state"),
			  json_is_object(dev) ? jstr(dev, "port") : "(gone)", id,
			  what                  ? what
			  : json_is_object(dev) ? jstr(dev, "product-name")
						: NULL);
		free(id);
		free(what);
	}
	json_array_foreach(json_object_get(vm, "inputs"), i, u) {
		const char *err = jstr(u, "error");
		char *what = err ? xasprintf("(%s)", err) : NULL;

		table_row(&t, jstr(u, "id"), jstr(u, "state"), "input", NULL,
			  what ? what : jstr(u, "evdev"));
		free(what);
	}
	/* [usb-remote] slots: "listening" on their address once added */
	json_array_foreach(json_object_get(vm, "remotes"), i, u) {
		const char *err = jstr(u, "error");
		char *what = err ? xasprintf("(%s)", err) : NULL;
		bool added = jstr(u, "state") && streq(jstr(u, "state"), "attached");

		table_row(&t, jstr(u, "id"), added ? "listening" : jstr(u, "state"), "remote",
			  jstr(u, "listen"), what);
		free(what);
	}
	if (t.rows == 0) {
		printf("  nothing attached\n");
		return;
	}
	table_print(&t, "  ");
}

/* The printers below turn each command's reply into text (EXIT_* status). */
static int cmd_status(struct ctl *c, json_t *ret)
{
	struct table t = { .cols = 6 };
	json_t *vms = json_object_get(ret, "vms"), *vm;
	size_t i;

	printf("vmplugd %s, configuration %s, device events from %s\n", jstr(ret, "version"),
	       jstr(ret, "config-dir"), jstr(ret, "udev"));
	if (json_array_size(vms) == 0) {
		printf("\nNo VM is configured: add a file to %s/vm.d/ (see vmplug.conf(5)).\n",
		       jstr(ret, "config-dir"));
		return EXIT_OK;
	}
	if (json_is_true(json_object_get(ret, "input-released")))
		printf("keyboard and mouse: with the host, ungrabbed after a panic (vmplugctl "
		       "switch takes them back)\n");
	else if (jstr(ret, "focus"))
		printf("keyboard and mouse: %s\n", jstr(ret, "focus"));
	table_row(&t, "VM", "BACKEND", "STATE", "USB", "PENDING", "REACHED THROUGH");
	json_array_foreach(vms, i, vm) {
		char usb[16], pending[16];

		snprintf(usb, sizeof(usb), "%zu", json_array_size(json_object_get(vm, "usb")));
		snprintf(pending, sizeof(pending), "%d",
			 (int)json_integer_value(json_object_get(vm, "pending")));
		table_row(&t, jstr(vm, "name"), jstr(vm, "backend"), jstr(vm, "state"), usb,
			  pending, jstr(vm, "target"));
	}
	putchar('\n');
	table_print(&t, "");
	json_array_foreach(vms, i, vm) {
		const char *err = jstr(vm, "last-error");

		printf("\n%s (%s)%s%s\n", jstr(vm, "name"), jstr(vm, "state"), err ? ": " : "",
		       err ? err : "");
		print_vm_usb(vm);
	}
	return EXIT_OK;
}

/* "a,b": a JSON array of strings joined. */
static char *join_array(json_t *a)
{
	char **v = NULL, *s;
	size_t i;
	json_t *x;

	json_array_foreach(a, i, x)
		strv_append(&v, json_string_value(x));
	s = strv_join(v, ",");
	strv_free(v);
	return s;
}

/* Where a device of query-usb goes: "alpha [desk]", "(denied by beta)"... */
static char *goes_to(json_t *d)
{
	char *claimed = join_array(json_object_get(d, "claimed-by"));
	char *denied = join_array(json_object_get(d, "denied-by"));
	json_t *ov = json_object_get(d, "override");
	char *goes;

	if (json_is_true(json_object_get(d, "hub")))
		goes = xstrdup("(hub: never)");
	else if (json_is_object(ov))
		goes = xasprintf("%s (by hand: %s)", jstr(d, "owner") ? jstr(d, "owner") : "-",
				 jstr(ov, "action"));
	else if (jstr(d, "owner") && json_array_size(json_object_get(d, "claimed-by")) > 1)
		goes = xasprintf("%s [%s] (conflict: %s)", jstr(d, "owner"), jstr(d, "rule"),
				 claimed);
	else if (jstr(d, "owner"))
		goes = xasprintf("%s [%s]", jstr(d, "owner"), jstr(d, "rule"));
	else if (json_array_size(json_object_get(d, "denied-by")))
		goes = xasprintf("(denied by %s)", denied);
	else
		goes = xstrdup("-");
	free(claimed);
	free(denied);
	return goes;
}

/* "KEY = VALUE" on a line of its own, made printable (NULL: no line). */
static void rule_line(const char *key, const char *value)
{
	char *v;

	if (!value)
		return;
	v = xstrdup_printable(value);
	printf("%s = %s\n", key, v);
	free(v);
}

/* usb DEVICE: everything a rule can match on, as the lines of a rule. */
static int cmd_usb_device(struct ctl *c, json_t *ret)
{
	json_t *d, *x;
	size_t i, j;

	json_array_foreach(json_object_get(ret, "devices"), i, d) {
		char *id = ids(d), *goes = goes_to(d), *head, *num;
		const char *serial = jstr(d, "serial"), *udev = jstr(d, "serial-udev");

		if (i)
			putchar('\n');
		head = jstr(d, "product-name")
			   ? xasprintf("%s %s \"%s\"", jstr(d, "port"), id, jstr(d, "product-name"))
			   : xasprintf("%s %s", jstr(d, "port"), id);
		num = xstrdup_printable(head);
		puts(num);
		free(num);
		rule_line("port", jstr(d, "port"));
		rule_line("port", jstr(d, "id-path"));
		num = xasprintf("%d", (int)json_integer_value(json_object_get(d, "bus")));
		rule_line("bus", num);
		free(num);
		num = xasprintf("%d", (int)json_integer_value(json_object_get(d, "devnum")));
		rule_line("device", num);
		free(num);
		rule_line("vendor", jstr(d, "vendor"));
		rule_line("product", jstr(d, "product"));
		rule_line("serial", serial);
		if (udev && !(serial && streq(serial, udev)))
			rule_line("serial", udev);
		json_array_foreach(json_object_get(d, "interface-classes"), j, x)
			rule_line("interface-class", json_string_value(x));
		json_array_foreach(json_object_get(d, "properties"), j, x)
			rule_line("property", json_string_value(x));
		json_array_foreach(json_object_get(d, "tags"), j, x)
			rule_line("tag", json_string_value(x));
		if (jstr(d, "device-class")) {
			num = xstrdup_printable(jstr(d, "device-class"));
			printf("# device class %s%s\n", num,
			       json_is_true(json_object_get(d, "hub")) ? " (a hub)" : "");
			free(num);
		}
		num = xstrdup_printable(goes);
		printf("goes to: %s\n", num);
		free(num);
		free(head);
		free(id);
		free(goes);
	}
	return EXIT_OK;
}

/* usb: one row per device (root hubs left out), where it goes and where it is. */
static int cmd_usb(struct ctl *c, json_t *ret)
{
	struct table t = { .cols = 6 };
	json_t *devs = json_object_get(ret, "devices"), *d;
	size_t i;

	table_row(&t, "PORT", "ID", "SERIAL", "PRODUCT", "GOES TO", "ATTACHED TO");
	json_array_foreach(devs, i, d) {
		if (startswith(jstr(d, "port"), "usb"))
			continue; /* root hubs: nothing to decide there */
		char *id = ids(d), *goes, *attached;
		json_t *att = json_object_get(d, "attached"), *a;
		char **where = NULL;
		size_t j;

		goes = goes_to(d);
		json_array_foreach(att, j, a) {
			char *s = strcmp(jstr(a, "state"), "attached")
				      ? xasprintf("%s (%s)", jstr(a, "vm"), jstr(a, "state"))
				      : xstrdup(jstr(a, "vm"));

			strv_append(&where, s);
			free(s);
		}
		attached = where ? strv_join(where, ", ") : xstrdup("-");
		table_row(&t, jstr(d, "port"), id, jstr(d, "serial"), jstr(d, "product-name"), goes,
			  attached);
		strv_free(where);
		free(attached);
		free(goes);
		free(id);
	}
	if (t.rows == 1) {
		table_print(&t, "");
		printf("(no USB devices are plugged in)\n");
		return EXIT_OK;
	}
	table_print(&t, "");
	return EXIT_OK;
}

/* explain DEVICE: who gets it, and for each VM every rule and key that matched or not. */
static int cmd_explain(struct ctl *c, json_t *ret)
{
	json_t *devs = json_object_get(ret, "devices"), *d;
	size_t i;

	json_array_foreach(devs, i, d) {
		json_t *dev = json_object_get(d, "device"), *vm;
		char *id = ids(dev);
		size_t j;

		if (i)
			putchar('\n');
		printf("%s %s", jstr(dev, "port"), id);
		if (jstr(dev, "product-name"))
			printf(" \"%s\"", jstr(dev, "product-name"));
		if (jstr(dev, "serial"))
			printf(" serial %s", jstr(dev, "serial"));
		putchar('\n');
		free(id);
		if (json_is_true(json_object_get(dev, "hub")))
			printf(
			    "goes to: nobody (a hub is never attached; devices behind it can be)\n");
		else if (jstr(d, "owner"))
			printf("goes to: %s (rule \"%s\")%s\n", jstr(d, "owner"), jstr(d, "rule"),
			       json_integer_value(json_object_get(d, "claimers")) > 1
				   ? ", the first in file-name order of the VMs that claim it"
				   : "");
		else
			printf("goes to: nobody\n");
		json_array_foreach(json_object_get(d, "vms"), j, vm) {
			struct table t = { .cols = 2 };
			json_t *r, *key, *deny = json_object_get(vm, "deny-rule");
			size_t k, l;

			if (deny)
				printf("%s: denied by [usb-deny \"%s\"] at %s:%d; no request can "
				       "attach it, only the configuration\n",
				       jstr(vm, "vm"), jstr(deny, "rule"), jstr(deny, "file"),
				       (int)json_integer_value(json_object_get(deny, "line")));
			else
				printf("%s: %s\n", jstr(vm, "vm"), jstr(vm, "verdict"));
			json_array_foreach(json_object_get(vm, "rules"), k, r) {
				char *head = xasprintf(
				    "[%s \"%s\"]",
				    json_is_true(json_object_get(r, "deny")) ? "usb-deny" : "usb",
				    jstr(r, "rule"));
				char *verdict = json_is_true(json_object_get(r, "matched"))
						    ? xstrdup("matches")
						    : xasprintf("no: %s", jstr(r, "missed"));

				table_row(&t, head, verdict);
				free(head);
				free(verdict);
				json_array_foreach(json_object_get(r, "keys"), l, key) {
					char *line = xasprintf("  %s = %s", jstr(key, "key"),
							       jstr(key, "value"));

					table_row(&t, line,
						  json_is_true(json_object_get(key, "matched"))
						      ? "yes"
						      : "no");
					free(line);
				}
			}
			if (t.rows)
				table_print(&t, "  ");
			else
				printf("  (no USB rules)\n");
		}
	}
	return EXIT_OK;
}

/* attach and detach: where the device stands now. */
static int cmd_changed(struct ctl *c, json_t *ret)
{
	const char *state = jstr(ret, "state");

	if (state)
		printf("%s: %s %s\n", jstr(ret, "vm"),
		       jstr(ret, "port") ? jstr(ret, "port") : jstr(ret, "id"), state);
	return EXIT_OK;
}

/* switch: where the keyboard and mouse went, or that they were there already. */
static int cmd_switched(struct ctl *c, json_t *ret)
{
	if (streq(jstr(ret, "from"), jstr(ret, "to")))
		printf("keyboard and mouse: %s\n", jstr(ret, "to"));
	else
		printf("keyboard and mouse: %s -> %s\n", jstr(ret, "from"), jstr(ret, "to"));
	return EXIT_OK;
}

static int cmd_reload(struct ctl *c, json_t *ret)
{
	printf("reloaded: %d VM(s), %d input(s)\n",
	       (int)json_integer_value(json_object_get(ret, "vms")),
	       (int)json_integer_value(json_object_get(ret, "inputs")));
	return EXIT_OK;
}

/* identify: the daemon's suggested rule for what was plugged in, as is. */
static int cmd_identify(struct ctl *c, json_t *ret)
{
	fputs(jstr(ret, "suggestion"), stdout);
	return EXIT_OK;
}

/* answer's arguments: Q attach VM, or Q keep-on-host. */
static int answer_args(int n, char **argv, bool remember, json_t **args)
{
	unsigned long q;

	/* --remember after the answer too (options stop at the first word) */
	if (n > 0 && streq(argv[n - 1], "--remember")) {
		remember = true;
		n--;
	}

	if (n < 2 || parse_uint(argv[0], 10, 0x7fffffff, &q) < 0 || q == 0 ||
	    !(streq(argv[1], "attach") ? n == 3 : streq(argv[1], "keep-on-host") && n == 2))
		return usage_error("%s", "'answer' needs a question and an answer: Q attach VM, "
					 "or Q keep-on-host");
	*args = json_pack("{s:I,s:s,s:b}", "question", (json_int_t)q, "action", argv[1], "remember",
			  remember);
	if (*args && n == 3 && json_object_set_new(*args, "vm", json_string(argv[2])) < 0) {
		json_decref(*args);
		*args = NULL;
	}
	return *args ? EXIT_OK : usage_error("the arguments must be valid UTF-8");
}

/* answer: where the device went, and the remembered answer's ID. */
static int cmd_answered(struct ctl *c, json_t *ret)
{
	if (jstr(ret, "vm"))
		cmd_changed(c, ret);
	else
		printf("%s: %s\n", jstr(ret, "port"), jstr(ret, "state"));
	if (json_integer_value(json_object_get(ret, "remembered")))
		printf("remembered as %d (see: vmplugctl remembered)\n",
		       (int)json_integer_value(json_object_get(ret, "remembered")));
	return EXIT_OK;
}

/* remembered: one line per answer. */
static int cmd_remembered(struct ctl *c, json_t *ret)
{
	json_t *list = json_object_get(ret, "remembered"), *m;
	size_t i;

	if (json_array_size(list) == 0) {
		printf("no remembered answers\n");
		return EXIT_OK;
	}
	printf("%-4s %-22s %-9s %-24s %s\n", "ID", "GOES TO", "VID:PID", "SERIAL/PORT", "DEVICE");
	json_array_foreach(list, i, m) {
		char *to = jstr(m, "vm") ? xasprintf("vm %s%s", jstr(m, "vm"),
						     json_is_true(json_object_get(m, "active"))
							 ? ""
							 : " (not configured)")
					 : xstrdup("host");
		char *id = xasprintf("%s:%s", jstr(m, "vendor"), jstr(m, "product"));

		printf("%-4d %-22s %-9s %-24s %s\n",
		       (int)json_integer_value(json_object_get(m, "id")), to, id,
		       jstr(m, "serial") ? jstr(m, "serial")
		       : jstr(m, "port") ? jstr(m, "port")
					 : "-",
		       jstr(m, "description") ? jstr(m, "description") : "-");
		free(to);
		free(id);
	}
	return EXIT_OK;
}

static int cmd_forgotten(struct ctl *c, json_t *ret)
{
	printf("forgot %d\n", (int)json_integer_value(json_object_get(ret, "id")));
	return EXIT_OK;
}

/* One event as a line: time, name, and what it concerns. */
static void print_event(json_t *ev)
{
	json_t *data = json_object_get(ev, "data"), *dev = json_object_get(data, "device");
	json_t *ts = json_object_get(ev, "timestamp");
	time_t secs = (time_t)json_integer_value(json_object_get(ts, "seconds"));
	struct tm tm;
	char when[32];

	localtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	printf("%s.%03d %-14s", when,
	       (int)(json_integer_value(json_object_get(ts, "microseconds")) / 1000),
	       jstr(ev, "event"));
	if (json_is_integer(json_object_get(data, "question")))
		printf(" question %d", (int)json_integer_value(json_object_get(data, "question")));
	if (jstr(data, "outcome"))
		printf(" %s %s", jstr(data, "port"), jstr(data, "outcome"));
	if (jstr(data, "vm"))
		printf(" %s", jstr(data, "vm"));
	if (jstr(data, "id"))
		printf(" %s", jstr(data, "id"));
	if (json_is_object(dev)) {
		char *id = ids(dev);

		printf(" %s %s", jstr(dev, "port"), id);
		free(id);
	}
	if (jstr(data, "reason"))
		printf(" (%s)", jstr(data, "reason"));
	if (jstr(data, "error"))
		printf(": %s", jstr(data, "error"));
	if (jstr(data, "from"))
		printf(" %s -> %s", jstr(data, "from"), jstr(data, "to"));
	putchar('\n');
}

/* SIGINT and SIGTERM end monitor cleanly. */
static void on_sigint(int sig)
{
	interrupted = 1;
}

/* monitor: subscribe and print events until interrupted. */
static int run_monitor(struct ctl *c)
{
	struct sigaction sa = { .sa_handler = on_sigint };
	json_t *ret = NULL, *ev;
	int r = ctl_call(c, CONTROL_CMD_SUBSCRIBE, NULL, &ret);

	if (r != EXIT_OK)
		return r;
	json_decref(ret);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!c->json)
		fprintf(stderr, "vmplugctl: watching vmplugd's events (Ctrl-C to stop)\n");
	while (!interrupted && (ev = ctl_read(c))) {
		if (c->json) {
			char *text = json_dumps(ev, JSON_COMPACT | JSON_ENSURE_ASCII);

			puts(text);
			free(text);
		} else if (json_object_get(ev, "event")) {
			print_event(ev);
		}
		fflush(stdout);
		json_decref(ev);
	}
	if (interrupted)
		return EXIT_OK;
	fprintf(stderr, "vmplugctl: vmplugd closed the connection\n");
	return EXIT_UNREACHABLE;
}

/* The socket when -s is not given: control-socket in DIR/vmplug.conf, read
 * alone (the VM files are the daemon's business), else the default; a
 * default DIR that does not exist means the default socket too, and so
 * does a vmplug.conf this user may not read (said). NULL once the reason
 * is printed. */
static char *find_socket(const char *confdir, bool confdir_given)
{
	char **errors = NULL, *path = NULL;
	int r = conf_load_control_socket(confdir, &path, &errors);

	if (r == -ENOENT && !confdir_given) {
		path = xstrdup(CONF_DEFAULT_CONTROL_SOCKET);
	} else if (r == -EACCES) {
		fprintf(stderr, "vmplugctl: %s; trying the default socket %s\n", errors[0],
			CONF_DEFAULT_CONTROL_SOCKET);
		path = xstrdup(CONF_DEFAULT_CONTROL_SOCKET);
	} else if (r < 0) {
		for (size_t i = 0; errors[i]; i++)
			fprintf(stderr, "vmplugctl: %s\n", errors[i]);
		fprintf(stderr,
			"vmplugctl: cannot tell where vmplugd's control socket is from %s; give "
			"it with -s\n",
			confdir);
	}
	strv_free(errors);
	return path;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "config-dir", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "remember", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .fd = -1 };
	const char *confdir = VMPLUG_CONFDIR, *cmd;
	bool confdir_given = false;
	char *socket_path = NULL;
	unsigned long timeout = 30;
	json_t *args = NULL, *ret = NULL;
	int (*print)(struct ctl *, json_t *) = NULL;
	const char *execute = NULL;
	int opt, r;
	size_t want;
	bool remember = false;

	while ((opt = getopt_long(argc, argv, "+s:c:jt:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			c.socket = optarg;
			break;
		case 'c':
			confdir = optarg;
			confdir_given = true;
			break;
		case 'j':
			c.json = true;
			break;
		case 't':
			if (parse_uint(optarg, 10, 3600, &timeout) < 0 || timeout == 0)
				return usage_error("--timeout: '%s' is not a number of seconds "
						   "from 1 to 3600",
						   optarg);
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("vmplugctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fprintf(stderr, "Try 'vmplugctl --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("%s", "no command given");
	cmd = argv[optind++];
	/* options after the command (identify --timeout S, status --json) */
	while ((opt = getopt_long(argc, argv, "jt:", longopts, NULL)) != -1) {
		if (opt == 'r' && streq(cmd, "answer")) {
			remember = true;
		} else if (opt == 'j') {
			c.json = true;
		} else if (opt == 't') {
			if (parse_uint(optarg, 10, 3600, &timeout) < 0 || timeout == 0)
				return usage_error("--timeout: '%s' is not a number of seconds "
						   "from 1 to 3600",
						   optarg);
		} else {
			return usage_error("%s", "unknown option");
		}
	}
	want = 0;
	if (streq(cmd, "status")) {
		execute = CONTROL_CMD_QUERY_STATUS;
		print = cmd_status;
	} else if (streq(cmd, "usb")) {
		execute = CONTROL_CMD_QUERY_USB;
		print = cmd_usb;
		if (argc - optind == 1) {
			want = 1;
			print = cmd_usb_device;
		}
	} else if (streq(cmd, "explain")) {
		want = 1;
		execute = CONTROL_CMD_EXPLAIN;
		print = cmd_explain;
	} else if (streq(cmd, "attach") || streq(cmd, "detach")) {
		want = 2;
		execute = streq(cmd, "attach") ? CONTROL_CMD_ATTACH : CONTROL_CMD_DETACH;
		print = cmd_changed;
	} else if (streq(cmd, "reload")) {
		execute = CONTROL_CMD_RELOAD;
		print = cmd_reload;
	} else if (streq(cmd, "switch")) {
		want = 1;
		execute = CONTROL_CMD_SWITCH;
		print = cmd_switched;
	} else if (streq(cmd, "identify")) {
		execute = CONTROL_CMD_IDENTIFY;
		print = cmd_identify;
	} else if (streq(cmd, "answer")) {
		r = answer_args(argc - optind, argv + optind, remember, &args);
		if (r != EXIT_OK)
			return r;
		execute = CONTROL_CMD_ANSWER;
		print = cmd_answered;
		want = (size_t)(argc - optind);
	} else if (streq(cmd, "remembered")) {
		execute = CONTROL_CMD_QUERY_REMEMBERED;
		print = cmd_remembered;
	} else if (streq(cmd, "forget")) {
		unsigned long id;

		if (argc - optind != 1 || parse_uint(argv[optind], 10, 0x7fffffff, &id) < 0 ||
		    id == 0)
			return usage_error("%s", "'forget' needs the ID of a remembered answer "
						 "(see: vmplugctl remembered)");
		args = json_pack("{s:I}", "id", (json_int_t)id);
		execute = CONTROL_CMD_FORGET;
		print = cmd_forgotten;
		want = 1;
	} else if (!streq(cmd, "monitor")) {
		return usage_error("unknown command '%s'", cmd);
	}
	if ((size_t)(argc - optind) != want) {
		if (want == 0)
			return usage_error(streq(cmd, "usb") ? "'%s' takes one DEVICE at most"
							     : "'%s' takes no arguments",
					   cmd);
		if (streq(cmd, "switch"))
			return usage_error("'%s' needs a TARGET: a VM, host or next", cmd);
		return usage_error(
		    want == 1 ? "'%s' needs a DEVICE" : "'%s' needs a VM and a DEVICE", cmd);
	}
	if (args)
		; /* built with the command */
	else if (want == 1)
		args = json_pack("{s:s}", streq(cmd, "switch") ? "target" : "device", argv[optind]);
	else if (want == 2)
		args = json_pack("{s:s,s:s}", "vm", argv[optind], "device", argv[optind + 1]);
	else if (streq(cmd, "identify"))
		args = json_pack("{s:I}", "timeout", (json_int_t)timeout);
	if (want && !args)
		return usage_error("the arguments must be valid UTF-8");

	if (!c.socket)
		c.socket = socket_path = find_socket(confdir, confdir_given);
	r = c.socket ? ctl_open(&c) : EXIT_UNREACHABLE;
	if (r == EXIT_OK) {
		if (!execute) {
			r = run_monitor(&c);
		} else {
			if (streq(cmd, "identify") && !c.json)
				fprintf(stderr,
					"vmplugctl: plug the device in now (waiting up to %lu "
					"s)...\n",
					timeout);
			r = ctl_call(&c, execute, args, &ret);
			args = NULL;
			if (r == EXIT_OK && !c.json)
				r = print(&c, ret);
		}
	}
	json_decref(args);
	json_decref(ret);
	closep(&c.fd);
	free(c.buf);
	free(socket_path);
	return r;
}

/* The remembered answers: vmplugd's own state file of plug-time choices
 * (STATE_DIR/remembered.json), read into plain data and rules like the
 * configuration, and changed by rewriting it whole (see conf.h). */
#include "config.h"

#include "conf/conf.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "util/util.h"

/* The file is vmplugd's: never more than this is read. */
#define MAX_FILE_SIZE (4 * 1024 * 1024)

void conf_remembered_clear(struct conf_remembered *m)
{
	free(m->vm);
	free(m->description);
	free(m->added);
	conf_usb_rule_free(&m->rule);
	memset(m, 0, sizeof(*m));
}

/* The rule of answer id: vendor and product, and the serial or else the port. */
static void make_rule(struct conf_usb_rule *r, unsigned id, int vendor, int product,
		      const char *serial, const char *port, const char *file)
{
	*r = (struct conf_usb_rule){
		.name = xasprintf("remembered-%u", id),
		.port = port ? xstrdup(port) : NULL,
		.bus = -1,
		.devnum = -1,
		.vendor = vendor,
		.product = product,
		.serial = serial ? xstrdup(serial) : NULL,
		.interface_class = -1,
		.attach_mode = CONF_ATTACH_ADDRESS,
		.origin = { .file = file, .line = 0 },
	};
}

/* A 4-digit hex id of o's key; -1 and false when absent or bad. */
static bool hex_id(json_t *o, const char *key, int *out)
{
	const char *s = json_string_value(json_object_get(o, key));
	unsigned long v;

	if (!s || strlen(s) != 4 || parse_uint(s, 16, 0xffff, &v) < 0)
		return false;
	*out = (int)v;
	return true;
}

/* An optional string of o: NULL when absent; false when not a string. */
static bool opt_string(json_t *o, const char *key, const char **out)
{
	json_t *v = json_object_get(o, key);

	*out = json_string_value(v);
	return !v || json_is_null(v) || json_is_string(v);
}

/* The file in state_dir: its JSON (an object with "remembered", an
 * array), a new one when there is no file; NULL with *why otherwise. */
static json_t *read_file(const char *path, char **why, int *err)
{
	json_error_t jerr;
	json_t *root, *list;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0) {
		if (errno == ENOENT)
			return json_pack("{s:[]}", "remembered");
		*err = -errno;
		*why = xasprintf("%s: cannot be read: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
		*err = -EINVAL;
		*why = xasprintf("%s: not a regular file of at most %d bytes", path, MAX_FILE_SIZE);
		close(fd);
		return NULL;
	}
	if (st.st_size == 0) { /* a power loss after the rename: no answers */
		close(fd);
		return json_pack("{s:[]}", "remembered");
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!root) {
		*err = -EINVAL;
		*why = xasprintf("%s:%d: not JSON: %s", path, jerr.line, jerr.text);
		return NULL;
	}
	list = json_object_get(root, "remembered");
	if (!json_is_object(root) || !json_is_array(list)) {
		*err = -EINVAL;
		*why = xasprintf("%s: needs {\"remembered\": [...]}", path);
		json_decref(root);
		return NULL;
	}
	return root;
}

/* Entry i of the file into *m; false with *why. */
static bool parse_entry(json_t *e, size_t i, const char *path, const char *file,
			struct conf_remembered *m, char **why)
{
	const char *action = json_string_value(json_object_get(e, "action"));
	const char *vm, *serial, *port, *desc, *added;
	json_t *id = json_object_get(e, "id");
	int vendor, product;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(e) || !json_is_integer(id) || json_integer_value(id) < 1 ||
	    json_integer_value(id) > 0x7fffffff || !action ||
	    (!streq(action, "attach") && !streq(action, "keep-on-host")) ||
	    !hex_id(e, "vendor", &vendor) || !hex_id(e, "product", &product) ||
	    !opt_string(e, "vm", &vm) || !opt_string(e, "serial", &serial) ||
	    !opt_string(e, "port", &port) || !opt_string(e, "description", &desc) ||
	    !opt_string(e, "added", &added) || (streq(action, "attach") != (vm != NULL)) ||
	    (vm && !conf_valid_name(vm))) {
		*why = xasprintf("%s: answer %zu: needs id (a number), action (attach with vm, or "
				 "keep-on-host), vendor and product (4 hex digits)",
				 path, i + 1);
		return false;
	}
	m->id = (unsigned)json_integer_value(id);
	m->vm = vm ? xstrdup(vm) : NULL;
	m->description = desc ? xstrdup(desc) : NULL;
	m->added = added ? xstrdup(added) : NULL;
	make_rule(&m->rule, m->id, vendor, product, serial, port, file);
	return true;
}

int conf_remembered_load(struct conf *conf, bool check_owner, char ***errors)
{
	char *path = xasprintf("%s/%s", conf->daemon.state_dir, CONF_REMEMBERED_FILE);
	const char *file = conf_remember_file(conf, path);
	char *why = NULL;
	json_t *root, *list, *e;
	struct stat st;
	size_t i, n;
	int r = 0;

	*errors = xcalloc(1, sizeof(char *));
	if (check_owner && stat(path, &st) == 0 && (st.st_uid != 0 || (st.st_mode & 022))) {
		why = xasprintf("%s: not root's, or writable by group or others: ignored", path);
		r = -EINVAL;
		goto out;
	}
	root = read_file(path, &why, &r);
	if (!root)
		goto out;
	list = json_object_get(root, "remembered");
	n = json_array_size(list);
	if (n > CONF_REMEMBERED_MAX) {
		why = xasprintf("%s: %zu answers, more than %d: ignored", path, n,
				CONF_REMEMBERED_MAX);
		r = -EINVAL;
		json_decref(root);
		goto out;
	}
	conf->remembered = n ? xcalloc(n, sizeof(*conf->remembered)) : NULL;
	json_array_foreach(list, i, e) {
		if (!parse_entry(e, i, path, file, &conf->remembered[i], &why))
			break;
		conf->n_remembered++;
	}
	json_decref(root);
	if (why) {
		for (i = 0; i < conf->n_remembered; i++)
			conf_remembered_clear(&conf->remembered[i]);
		free(conf->remembered);
		conf->remembered = NULL;
		conf->n_remembered = 0;
		r = -EINVAL;
		goto out;
	}
	/* each VM's answers after its own rules: its [usb-deny] rules win */
	for (i = 0; i < conf->n_remembered; i++) {
		const struct conf_remembered *m = &conf->remembered[i];
		const struct conf_usb_rule *mr = &m->rule;
		struct conf_vm *vm = m->vm ? (struct conf_vm *)conf_find_vm(conf, m->vm) : NULL;

		if (!vm)
			continue;
		vm->rules = xrealloc(vm->rules, (vm->n_rules + 1) * sizeof(*vm->rules));
		make_rule(&vm->rules[vm->n_rules++], m->id, mr->vendor, mr->product, mr->serial,
			  mr->port, file);
	}
out:
	if (why)
		strv_append(errors, why);
	free(why);
	free(path);
	return r;
}

/* Read, change with fn, write back: the one way the file changes. */
static int rewrite(const char *state_dir, int (*fn)(json_t *list, void *data, char **why),
		   void *data, char **why)
{
	char *path = xasprintf("%s/%s", state_dir, CONF_REMEMBERED_FILE), *text = NULL;
	json_t *root, *e;
	size_t i;
	int r = 0;

	if (mkdir_p(state_dir, 0755) < 0) {
		r = -errno;
		*why = xasprintf("%s: cannot be made: %s", state_dir, strerror(errno));
		goto out;
	}
	root = read_file(path, why, &r);
	if (!root) {
		if (r == -EINVAL) {
			char *fix = xasprintf("%s (fix or remove the file)", *why);

			free(*why);
			*why = fix;
		}
		goto out;
	}
	/* a file the loader would ignore is not added to: its answers
	 * would stay ignored, and the new one with them */
	json_array_foreach(json_object_get(root, "remembered"), i, e) {
		struct conf_remembered m;

		if (!parse_entry(e, i, path, path, &m, why)) {
			char *fix = xasprintf("%s (fix or remove the file)", *why);

			free(*why);
			*why = fix;
			json_decref(root);
			r = -EINVAL;
			goto out;
		}
		conf_remembered_clear(&m);
	}
	r = fn(json_object_get(root, "remembered"), data, why);
	if (r == 0) {
		text = json_dumps(root, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		r = text ? write_file_atomic(path, text, strlen(text), 0644) : -ENOMEM;
		if (r < 0)
			*why = xasprintf("%s: cannot be written: %s", path, strerror(-r));
	}
	json_decref(root);
out:
	free(text);
	free(path);
	return r;
}

struct add_ctx {
	const struct conf_remembered *m;
	unsigned id;
};

/* json_pack's "s?" for a string that may be NULL. */
static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static int add_entry(json_t *list, void *data, char **why)
{
	struct add_ctx *a = data;
	const struct conf_usb_rule *r = &a->m->rule;
	char vendor[8], product[8], added[32];
	unsigned next = 1;
	time_t now = time(NULL);
	struct tm tm;
	json_t *e;
	size_t i;

	if (json_array_size(list) >= CONF_REMEMBERED_MAX) {
		*why = xasprintf("%d answers are remembered already: forget some first",
				 CONF_REMEMBERED_MAX);
		return -ENOSPC;
	}
	json_array_foreach(list, i, e) {
		json_int_t id = json_integer_value(json_object_get(e, "id"));

		if (id >= next)
			next = (unsigned)id + 1;
	}
	snprintf(vendor, sizeof(vendor), "%04x", r->vendor & 0xffff);
	snprintf(product, sizeof(product), "%04x", r->product & 0xffff);
	gmtime_r(&now, &tm);
	strftime(added, sizeof(added), "%Y-%m-%dT%H:%M:%SZ", &tm);
	e = json_pack("{s:I,s:s,s:o,s:s,s:s,s:o,s:o,s:o,s:s}", "id", (json_int_t)next, "action",
		      a->m->vm ? "attach" : "keep-on-host", "vm", str_or_null(a->m->vm), "vendor",
		      vendor, "product", product, "serial", str_or_null(r->serial), "port",
		      str_or_null(r->port), "description", str_or_null(a->m->description), "added",
		      added);
	if (!e) {
		*why = xstrdup("the answer cannot be written as JSON (text that is not UTF-8)");
		return -EINVAL;
	}
	json_array_append_new(list, e);
	a->id = next;
	return 0;
}

int conf_remembered_add(const char *state_dir, const struct conf_remembered *m, unsigned *id,
			char **why)
{
	struct add_ctx a = { m, 0 };
	int r = rewrite(state_dir, add_entry, &a, why);

	if (r == 0)
		*id = a.id;
	return r;
}

static int forget_entry(json_t *list, void *data, char **why)
{
	unsigned id = *(unsigned *)data;
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e) {
		if (json_integer_value(json_object_get(e, "id")) == (json_int_t)id) {
			json_array_remove(list, i);
			return 0;
		}
	}
	*why = xasprintf("no remembered answer %u (see: vmplugctl remembered)", id);
	return -ENOENT;
}

int conf_remembered_forget(const char *state_dir, unsigned id, char **why)
{
	return rewrite(state_dir, forget_entry, &id, why);
}

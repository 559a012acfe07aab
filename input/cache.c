/* The input capability cache: JSON files, fallback sets, comparisons (see cache.h). */
#include "config.h"

#include "input/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libevdev/libevdev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define FORMAT_VERSION 1
#define MISSING_NAMED 20

/* A code by its name when the name reads back as the same code: libevdev
 * names EV_FF 0 and 1 (FF_STATUS_*) but does not take those names back. */
static json_t *code_json(unsigned type, unsigned code)
{
	const char *name = libevdev_event_code_get_name(type, code);

	if (name && libevdev_event_code_from_name(type, name) == (int)code)
		return json_string(name);
	return json_integer(code);
}

/* An event type's key in the file: its name, or its number when libevdev has none. */
static char *type_key(unsigned type)
{
	const char *name = libevdev_event_type_get_name(type);

	return name ? xstrdup(name) : xasprintf("%u", type);
}

char *input_cache_format(const struct libevdev *dev, const char *source)
{
	json_t *root = json_object(), *events = json_object(), *props = json_array();
	int delay, period;
	char *text, *out;

	json_object_set_new(root, "format", json_integer(FORMAT_VERSION));
	if (source)
		json_object_set_new(root, "source", json_string(source));
	json_object_set_new(root, "name", json_string(libevdev_get_name(dev)));
	json_object_set_new(root, "id",
			    json_pack("{s:i,s:i,s:i,s:i}", "bustype", libevdev_get_id_bustype(dev),
				      "vendor", libevdev_get_id_vendor(dev), "product",
				      libevdev_get_id_product(dev), "version",
				      libevdev_get_id_version(dev)));
	for (unsigned p = 0; p <= INPUT_PROP_MAX; p++) {
		if (!libevdev_has_property(dev, p))
			continue;
		const char *name = libevdev_property_get_name(p);

		json_array_append_new(props, name ? json_string(name) : json_integer(p));
	}
	json_object_set_new(root, "properties", props);
	for (unsigned type = 1; type <= EV_MAX; type++) {
		int max = libevdev_event_type_get_max(type);
		json_t *codes;
		char *key;

		if (max < 0 || !libevdev_has_event_type(dev, type))
			continue;
		if (type == EV_REP) {
			if (libevdev_get_repeat(dev, &delay, &period) < 0)
				continue;
			codes = json_pack("{s:i,s:i}", "delay", delay, "period", period);
		} else if (type == EV_ABS) {
			codes = json_object();
			for (unsigned code = 0; code <= (unsigned)max; code++) {
				const struct input_absinfo *a = libevdev_get_abs_info(dev, code);
				const char *name = libevdev_event_code_get_name(EV_ABS, code);
				char *num = NULL;

				if (!a || !libevdev_has_event_code(dev, EV_ABS, code))
					continue;
				if (!name)
					name = num = xasprintf("%u", code);
				json_object_set_new(codes, name,
						    json_pack("{s:i,s:i,s:i,s:i,s:i}", "minimum",
							      a->minimum, "maximum", a->maximum,
							      "fuzz", a->fuzz, "flat", a->flat,
							      "resolution", a->resolution));
				free(num);
			}
		} else {
			codes = json_array();
			for (unsigned code = 0; code <= (unsigned)max; code++)
				if (libevdev_has_event_code(dev, type, code))
					json_array_append_new(codes, code_json(type, code));
		}
		key = type_key(type);
		json_object_set_new(events, key, codes);
		free(key);
	}
	json_object_set_new(root, "events", events);
	text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	out = xasprintf("%s\n", text);
	free(text);
	return out;
}

/* ------------------------------------------------------------------ parsing */

struct parse {
	char *error;
};

/* Record the first error only, and return -EINVAL. */
static int fail(struct parse *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int fail(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->error) {
		va_start(ap, fmt);
		if (vasprintf(&p->error, fmt, ap) < 0)
			abort();
		va_end(ap);
	}
	return -EINVAL;
}

/* An integer member in [lo, hi]; absent: *out = def if !required. */
static int get_int(struct parse *p, json_t *obj, const char *where, const char *key, long long lo,
		   long long hi, bool required, long long def, int *out)
{
	json_t *v = json_object_get(obj, key);
	long long n;

	if (!v) {
		if (required)
			return fail(p, "%s: \"%s\" is missing", where, key);
		*out = (int)def;
		return 0;
	}
	if (!json_is_integer(v))
		return fail(p, "%s.%s: not an integer", where, key);
	n = json_integer_value(v);
	if (n < lo || n > hi)
		return fail(p, "%s.%s: %lld is out of range [%lld, %lld]", where, key, n, lo, hi);
	*out = (int)n;
	return 0;
}

/* A type or code given as a name or a number in [0, max]; -1 if unknown. */
static int parse_code(json_t *v, int max, int (*from_name)(unsigned, const char *), unsigned type)
{
	if (json_is_integer(v)) {
		json_int_t n = json_integer_value(v);

		return n >= 0 && n <= max ? (int)n : -1;
	}
	if (json_is_string(v)) {
		int r = from_name(type, json_string_value(v));

		return r >= 0 && r <= max ? r : -1;
	}
	return -1;
}

/* libevdev's code lookup in the shape parse_code() takes. */
static int code_from_name(unsigned type, const char *name)
{
	return libevdev_event_code_from_name(type, name);
}

/* The same for properties, which have no type. */
static int prop_from_name(unsigned type, const char *name)
{
	return libevdev_property_from_name(name);
}

/* An "events" key as a type: its name, or a number libevdev knows; -1 if neither. */
static int type_from_key(const char *key)
{
	unsigned long n;
	int t = libevdev_event_type_from_name(key);

	if (t >= 0)
		return t;
	if (parse_uint(key, 10, EV_MAX, &n) == 0 && libevdev_event_type_get_max((unsigned)n) >= 0)
		return (int)n;
	return -1;
}

/* EV_ABS: each code with its range, which libevdev needs to enable it. */
static int parse_abs(struct parse *p, struct libevdev *dev, json_t *codes)
{
	const char *key;
	json_t *v;

	if (!json_is_object(codes))
		return fail(p, "events.EV_ABS: not an object");
	json_object_foreach(codes, key, v) {
		struct input_absinfo a = { 0 };
		char *where = xasprintf("events.EV_ABS.%s", key);
		int code = libevdev_event_code_from_name(EV_ABS, key);
		unsigned long n;
		int r = 0;

		if (code < 0 && parse_uint(key, 10, ABS_MAX, &n) == 0)
			code = (int)n;
		if (code < 0)
			r = fail(p, "%s: unknown code", where);
		else if (!json_is_object(v))
			r = fail(p, "%s: not an object", where);
		if (r == 0)
			r = get_int(p, v, where, "minimum", INT32_MIN, INT32_MAX, true, 0,
				    &a.minimum);
		if (r == 0)
			r = get_int(p, v, where, "maximum", INT32_MIN, INT32_MAX, true, 0,
				    &a.maximum);
		if (r == 0)
			r = get_int(p, v, where, "fuzz", INT32_MIN, INT32_MAX, false, 0, &a.fuzz);
		if (r == 0)
			r = get_int(p, v, where, "flat", INT32_MIN, INT32_MAX, false, 0, &a.flat);
		if (r == 0)
			r = get_int(p, v, where, "resolution", INT32_MIN, INT32_MAX, false, 0,
				    &a.resolution);
		if (r == 0 && a.minimum > a.maximum)
			r = fail(p, "%s: minimum %d is above maximum %d", where, a.minimum,
				 a.maximum);
		if (r == 0 && libevdev_enable_event_code(dev, EV_ABS, (unsigned)code, &a) < 0)
			r = fail(p, "%s: libevdev refused it", where);
		free(where);
		if (r < 0)
			return r;
	}
	return 0;
}

/* EV_REP: the delay and period, both required. */
static int parse_rep(struct parse *p, struct libevdev *dev, json_t *v)
{
	int delay, period;

	if (!json_is_object(v))
		return fail(p, "events.EV_REP: not an object");
	if (get_int(p, v, "events.EV_REP", "delay", 0, INT32_MAX, true, 0, &delay) < 0 ||
	    get_int(p, v, "events.EV_REP", "period", 0, INT32_MAX, true, 0, &period) < 0)
		return -EINVAL;
	if (libevdev_enable_event_code(dev, EV_REP, REP_DELAY, &delay) < 0 ||
	    libevdev_enable_event_code(dev, EV_REP, REP_PERIOD, &period) < 0)
		return fail(p, "events.EV_REP: libevdev refused it");
	return 0;
}

/* A type whose codes are a plain list (keys, buttons, relative axes, ...). */
static int parse_list(struct parse *p, struct libevdev *dev, const char *key, unsigned type,
		      json_t *codes)
{
	int max = libevdev_event_type_get_max(type);
	size_t i;
	json_t *v;

	if (!json_is_array(codes))
		return fail(p, "events.%s: not an array", key);
	json_array_foreach(codes, i, v) {
		int code = parse_code(v, max, code_from_name, type);

		if (code < 0) {
			if (json_is_string(v))
				return fail(p, "events.%s[%zu]: unknown code \"%s\"", key, i,
					    json_string_value(v));
			return fail(p, "events.%s[%zu]: not a code name or a number in [0, %d]",
				    key, i, max);
		}
		if (libevdev_enable_event_code(dev, type, (unsigned)code, NULL) < 0)
			return fail(p, "events.%s[%zu]: libevdev refused it", key, i);
	}
	return 0;
}

/* The whole file into dev; the first error found is in p->error. */
static int parse_root(struct parse *p, json_t *root, struct libevdev *dev)
{
	json_t *v, *events, *props, *id;
	const char *key;
	int n, r;
	size_t i;

	if (!json_is_object(root))
		return fail(p, "not a JSON object");
	r = get_int(p, root, "cache", "format", 0, INT32_MAX, true, 0, &n);
	if (r < 0)
		return r;
	if (n != FORMAT_VERSION)
		return fail(p, "format %d is not supported (this vmplug reads format %d)", n,
			    FORMAT_VERSION);
	v = json_object_get(root, "name");
	if (!json_is_string(v))
		return fail(p, "name: %s", v ? "not a string" : "missing");
	libevdev_set_name(dev, json_string_value(v));
	id = json_object_get(root, "id");
	if (!json_is_object(id))
		return fail(p, "id: %s", id ? "not an object" : "missing");
	if (get_int(p, id, "id", "bustype", 0, 0xffff, true, 0, &n) < 0)
		return -EINVAL;
	libevdev_set_id_bustype(dev, n);
	if (get_int(p, id, "id", "vendor", 0, 0xffff, true, 0, &n) < 0)
		return -EINVAL;
	libevdev_set_id_vendor(dev, n);
	if (get_int(p, id, "id", "product", 0, 0xffff, true, 0, &n) < 0)
		return -EINVAL;
	libevdev_set_id_product(dev, n);
	if (get_int(p, id, "id", "version", 0, 0xffff, true, 0, &n) < 0)
		return -EINVAL;
	libevdev_set_id_version(dev, n);
	props = json_object_get(root, "properties");
	if (props && !json_is_array(props))
		return fail(p, "properties: not an array");
	json_array_foreach(props, i, v) {
		int prop = parse_code(v, INPUT_PROP_MAX, prop_from_name, 0);

		if (prop < 0 || libevdev_enable_property(dev, (unsigned)prop) < 0)
			return fail(p,
				    "properties[%zu]: not a property name or a number in [0, %d]",
				    i, INPUT_PROP_MAX);
	}
	events = json_object_get(root, "events");
	if (!json_is_object(events))
		return fail(p, "events: %s", events ? "not an object" : "missing");
	libevdev_enable_event_code(dev, EV_SYN, SYN_REPORT, NULL);
	json_object_foreach(events, key, v) {
		int type = type_from_key(key);

		if (type < 0)
			return fail(p, "events.%s: unknown event type", key);
		if (type == EV_SYN)
			continue;
		if (type == EV_ABS)
			r = parse_abs(p, dev, v);
		else if (type == EV_REP)
			r = parse_rep(p, dev, v);
		else
			r = parse_list(p, dev, key, (unsigned)type, v);
		if (r < 0)
			return r;
	}
	return 0;
}

int input_cache_parse(const char *json, size_t len, struct libevdev **out, char **error)
{
	struct parse p = { 0 };
	struct libevdev *dev;
	json_error_t jerr;
	json_t *root;
	int r;

	if (len > INPUT_CACHE_MAX_SIZE) {
		if (error)
			*error = xasprintf("larger than %d bytes", INPUT_CACHE_MAX_SIZE);
		return -EINVAL;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (error)
			*error = xasprintf("line %d: %s", jerr.line, jerr.text);
		return -EINVAL;
	}
	dev = libevdev_new();
	if (!dev)
		abort();
	r = parse_root(&p, root, dev);
	json_decref(root);
	if (r < 0) {
		libevdev_free(dev);
		if (error)
			*error = p.error;
		else
			free(p.error);
		return r;
	}
	*out = dev;
	return 0;
}

/* -------------------------------------------------------------- copy, compare */

struct libevdev *input_cache_copy(const struct libevdev *dev)
{
	struct libevdev *c = libevdev_new();
	int delay, period;

	if (!c)
		abort();
	libevdev_set_name(c, libevdev_get_name(dev));
	libevdev_set_id_bustype(c, libevdev_get_id_bustype(dev));
	libevdev_set_id_vendor(c, libevdev_get_id_vendor(dev));
	libevdev_set_id_product(c, libevdev_get_id_product(dev));
	libevdev_set_id_version(c, libevdev_get_id_version(dev));
	for (unsigned p = 0; p <= INPUT_PROP_MAX; p++)
		if (libevdev_has_property(dev, p))
			libevdev_enable_property(c, p);
	libevdev_enable_event_code(c, EV_SYN, SYN_REPORT, NULL);
	for (unsigned type = 1; type <= EV_MAX; type++) {
		int max = libevdev_event_type_get_max(type);

		if (max < 0 || !libevdev_has_event_type(dev, type))
			continue;
		if (type == EV_REP) {
			if (libevdev_get_repeat(dev, &delay, &period) == 0) {
				libevdev_enable_event_code(c, EV_REP, REP_DELAY, &delay);
				libevdev_enable_event_code(c, EV_REP, REP_PERIOD, &period);
			}
			continue;
		}
		for (unsigned code = 0; code <= (unsigned)max; code++) {
			if (!libevdev_has_event_code(dev, type, code))
				continue;
			libevdev_enable_event_code(c, type, code,
						   type == EV_ABS ? libevdev_get_abs_info(dev, code)
								  : NULL);
		}
	}
	return c;
}

bool input_cache_equal(const struct libevdev *a, const struct libevdev *b)
{
	char *ja = input_cache_format(a, NULL), *jb = input_cache_format(b, NULL);
	bool eq = streq(ja, jb);

	free(ja);
	free(jb);
	return eq;
}

struct missing {
	char **parts;
	char *cur; /* codes of the type being listed */
	unsigned named, more;
};

/* Name one more missing code, only counting those past MISSING_NAMED. */
static void missing_add(struct missing *m, const char *name)
{
	char *s;

	if (m->named >= MISSING_NAMED) {
		m->more++;
		return;
	}
	m->named++;
	s = xasprintf("%s %s", m->cur, name);
	free(m->cur);
	m->cur = s;
}

/* End the type being listed: keep its part unless nothing was missing. */
static void missing_flush(struct missing *m, const char *label)
{
	if (m->cur && !streq(m->cur, label))
		strv_append(&m->parts, m->cur);
	free(m->cur);
	m->cur = NULL;
}

char *input_cache_missing(const struct libevdev *have, const struct libevdev *want)
{
	struct missing m = { 0 };
	char *out;

	m.cur = xstrdup("properties:");
	for (unsigned p = 0; p <= INPUT_PROP_MAX; p++)
		if (libevdev_has_property(want, p) && !libevdev_has_property(have, p))
			missing_add(&m, libevdev_property_get_name(p)
					    ? libevdev_property_get_name(p)
					    : "?");
	missing_flush(&m, "properties:");
	for (unsigned type = 1; type <= EV_MAX; type++) {
		int max = libevdev_event_type_get_max(type);
		char *key, *label;

		if (max < 0 || !libevdev_has_event_type(want, type))
			continue;
		key = type_key(type);
		label = xasprintf("%s:", key);
		m.cur = xstrdup(label);
		if (type == EV_REP) {
			if (!libevdev_has_event_type(have, EV_REP))
				missing_add(&m, "(key repeat)");
		} else {
			for (unsigned code = 0; code <= (unsigned)max; code++) {
				if (!libevdev_has_event_code(want, type, code) ||
				    libevdev_has_event_code(have, type, code))
					continue;
				const char *name = libevdev_event_code_get_name(type, code);
				char *num = name ? NULL : xasprintf("%u", code);

				missing_add(&m, name ? name : num);
				free(num);
			}
		}
		missing_flush(&m, label);
		free(label);
		free(key);
	}
	if (!m.parts)
		return NULL;
	out = strv_join(m.parts, "; ");
	if (m.more) {
		char *s = xasprintf("%s and %u more", out, m.more);

		free(out);
		out = s;
	}
	strv_free(m.parts);
	return out;
}

/* ------------------------------------------------------------------- files */

char *input_cache_path(const char *dir, const char *source)
{
	return xasprintf("%s/%s.json", dir, source);
}

/* The cache directory, opened, when it may be trusted: vmplugd running as
 * root takes the capabilities of the sinks QEMU reads from it, so a
 * directory another user owns or others may write to is refused (-EPERM,
 * *why says which). With create, a missing directory is made (root's,
 * 0755). The descriptor or -errno. */
static int open_dir(const char *dir, bool create, char **why)
{
	struct stat st;
	int fd;

	*why = NULL;
	if (create) {
		int r = mkdir_p(dir, 0755);

		if (r < 0)
			return r;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	if (geteuid() != 0)
		return fd;
	if (st.st_uid != 0)
		*why = xasprintf("it is owned by uid %u, not root", (unsigned)st.st_uid);
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		*why = xasprintf("it is writable by %s (mode %04o)",
				 st.st_mode & S_IWOTH ? "others" : "its group",
				 (unsigned)(st.st_mode & 07777));
	if (*why) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

/* A regular file of at most INPUT_CACHE_MAX_SIZE in dirfd, NUL-terminated.
 * Never a link followed, never a FIFO or device waited on (-EINVAL). */
static int read_file(int dirfd, const char *name, char **out, size_t *len)
{
	struct stat st;
	size_t n = 0;
	char *buf;
	int fd, r = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (st.st_size > INPUT_CACHE_MAX_SIZE) {
		r = -EFBIG;
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (n < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			free(buf);
			goto out;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
out:
	close(fd);
	return r;
}

int input_cache_load(const char *dir, const char *source, struct libevdev **out)
{
	char *path = input_cache_path(dir, source), *text = NULL, *error = NULL, *why;
	char *name = xasprintf("%s.json", source);
	size_t len = 0;
	int dfd, r;

	dfd = open_dir(dir, false, &why);
	if (dfd == -EPERM) {
		log_error("input %s: refusing the capability cache directory %s: %s, and whoever "
			  "writes there chooses what the sinks are; nothing is read from it or "
			  "written to it (sinks start as a generic keyboard or mouse)",
			  source, dir, why);
		free(why);
		r = -EPERM;
		goto out;
	}
	r = dfd < 0 ? dfd : read_file(dfd, name, &text, &len);
	if (dfd >= 0)
		close(dfd);
	if (r == -ENOENT)
		goto out;
	if (r == -EFBIG || r == -EINVAL) {
		log_warning("input %s: capability cache %s is %s; ignoring it", source, path,
			    r == -EFBIG ? "too large" : "not a regular file");
		r = -EINVAL;
		goto out;
	}
	if (r < 0) {
		log_warning("input %s: cannot read capability cache %s: %s", source, path,
			    strerror(-r));
		goto out;
	}
	r = input_cache_parse(text, len, out, &error);
	if (r < 0)
		log_warning("input %s: capability cache %s is corrupt (%s); ignoring it", source,
			    path, error ? error : "?");
out:
	free(error);
	free(text);
	free(name);
	free(path);
	return r;
}

int input_cache_save(const char *dir, const char *source, const struct libevdev *dev)
{
	char *name, *text, *why;
	int dfd, r;

	dfd = open_dir(dir, true, &why);
	free(why);
	if (dfd < 0)
		return dfd;
	name = xasprintf("%s.json", source);
	text = input_cache_format(dev, source);
	r = write_file_atomic_at(dfd, name, text, strlen(text), 0644);
	close(dfd);
	free(text);
	free(name);
	return r;
}

/* ---------------------------------------------------------------- fallbacks */

/* Case-insensitive substring (not a whole word); false for a NULL s. */
static bool contains_word(const char *s, const char *word)
{
	return s && strcasestr(s, word);
}

enum input_cache_kind input_cache_guess_kind(const char *source, const char *device,
					     const char **why)
{
	const char *base = device ? strrchr(device, '/') : NULL;

	base = base ? base + 1 : device;
	if (base && strstr(base, "-event-mouse")) {
		*why = "its device path ends in -event-mouse";
		return INPUT_CACHE_MOUSE;
	}
	if (base && strstr(base, "-event-kbd")) {
		*why = "its device path ends in -event-kbd";
		return INPUT_CACHE_KEYBOARD;
	}
	if (contains_word(base, "mouse") || contains_word(base, "pointer") ||
	    contains_word(base, "trackball")) {
		*why = "its device path names a mouse";
		return INPUT_CACHE_MOUSE;
	}
	if (contains_word(base, "kbd") || contains_word(base, "keyboard")) {
		*why = "its device path names a keyboard";
		return INPUT_CACHE_KEYBOARD;
	}
	if (contains_word(source, "mouse") || contains_word(source, "pointer") ||
	    contains_word(source, "trackball")) {
		*why = "its name says mouse";
		return INPUT_CACHE_MOUSE;
	}
	*why = "nothing in its name or path says mouse, and keyboard is the default";
	return INPUT_CACHE_KEYBOARD;
}

const char *input_cache_kind_name(enum input_cache_kind kind)
{
	return kind == INPUT_CACHE_MOUSE ? "mouse" : "keyboard";
}

struct libevdev *input_cache_fallback(enum input_cache_kind kind)
{
	struct libevdev *dev = libevdev_new();
	static const unsigned rel[] = {
		REL_X, REL_Y, REL_HWHEEL, REL_WHEEL, REL_WHEEL_HI_RES, REL_HWHEEL_HI_RES
	};
	static const unsigned leds[] = { LED_NUML, LED_CAPSL, LED_SCROLLL, LED_COMPOSE, LED_KANA };
	int delay = 250, period = 33;

	if (!dev)
		abort();
	libevdev_set_id_bustype(dev, BUS_VIRTUAL);
	libevdev_enable_event_code(dev, EV_SYN, SYN_REPORT, NULL);
	libevdev_enable_event_code(dev, EV_MSC, MSC_SCAN, NULL);
	if (kind == INPUT_CACHE_MOUSE) {
		libevdev_set_name(dev, "vmplug generic mouse");
		libevdev_enable_property(dev, INPUT_PROP_POINTER);
		for (unsigned code = BTN_LEFT; code <= BTN_TASK; code++)
			libevdev_enable_event_code(dev, EV_KEY, code, NULL);
		for (size_t i = 0; i < ARRAY_SIZE(rel); i++)
			libevdev_enable_event_code(dev, EV_REL, rel[i], NULL);
		return dev;
	}
	libevdev_set_name(dev, "vmplug generic keyboard");
	for (unsigned code = KEY_ESC; code <= 255; code++)
		libevdev_enable_event_code(dev, EV_KEY, code, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(leds); i++)
		libevdev_enable_event_code(dev, EV_LED, leds[i], NULL);
	libevdev_enable_event_code(dev, EV_REP, REP_DELAY, &delay);
	libevdev_enable_event_code(dev, EV_REP, REP_PERIOD, &period);
	return dev;
}

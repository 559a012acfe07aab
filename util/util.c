/* Small helpers every vmplug module uses (see util.h). */
#include "config.h"

#include "util/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Allocation failed: say how much, and abort. */
static NORETURN void oom(size_t size)
{
	fprintf(stderr, "vmplug: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		oom(size);
	return p;
}

void *xzalloc(size_t size)
{
	return xcalloc(1, size);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom(n * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		oom(size);
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom(strlen(s));
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom(n);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom(strlen(fmt));
	return s;
}

void *xappend(void *arr_ptr, size_t *n, size_t elsize)
{
	void **arr = arr_ptr;
	char *base;

	base = xrealloc(*arr, (*n + 1) * elsize);
	memset(base + *n * elsize, 0, elsize);
	*arr = base;
	return base + (*n)++ * elsize;
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

char **strv_copy(char *const *v)
{
	size_t n = strv_len(v);
	char **c = xcalloc(n + 1, sizeof(char *));

	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

void strv_append(char ***v, const char *s)
{
	size_t n = strv_len(*v);

	*v = xrealloc(*v, (n + 2) * sizeof(char *));
	(*v)[n] = xstrdup(s);
	(*v)[n + 1] = NULL;
}

bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

char **strv_split(const char *s, const char *seps)
{
	char **v = xcalloc(1, sizeof(char *));

	while (*s) {
		size_t skip = strspn(s, seps);
		size_t len;

		s += skip;
		len = strcspn(s, seps);
		if (len) {
			char *field = xstrndup(s, len);

			strv_append(&v, field);
			free(field);
		}
		s += len;
	}
	return v;
}

char *strv_join(char *const *v, const char *sep)
{
	size_t len = 1, seplen = strlen(sep);
	char *out, *p;

	for (size_t i = 0; v && v[i]; i++)
		len += strlen(v[i]) + seplen;
	out = p = xmalloc(len);
	*p = '\0';
	for (size_t i = 0; v && v[i]; i++) {
		if (i) {
			memcpy(p, sep, seplen);
			p += seplen;
		}
		strcpy(p, v[i]);
		p += strlen(v[i]);
	}
	return out;
}

char *strstrip(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

uint32_t str_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Length of the valid UTF-8 sequence at s (1 to 4), 0 if there is none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Whether the character at p (n bytes of valid UTF-8) is written escaped. */
static bool escaped(const unsigned char *p, size_t n, unsigned how)
{
	if (n == 0)
		return true; /* not UTF-8 */
	if (!(how & STR_ESCAPE_CONTROL))
		return false;
	if (*p == '\n')
		return !(how & STR_ESCAPE_KEEP_NEWLINE);
	/* C0, DEL, and C1 (U+0080 to U+009F: a terminal may take U+009B for CSI) */
	return *p < 0x20 || *p == 0x7f || (n == 2 && p[0] == 0xc2 && p[1] < 0xa0);
}

size_t strescape(char *out, size_t size, const char *s, unsigned how)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	while (*p) {
		size_t n = utf8_len(p), bytes = n ? n : 1;
		bool esc = escaped(p, n, how);

		if (o + (esc ? 4 * bytes : bytes) >= size)
			break;
		for (size_t i = 0; i < bytes; i++) {
			if (esc) {
				snprintf(out + o, 5, "\\x%02x", p[i]);
				o += 4;
			} else {
				out[o++] = (char)p[i];
			}
		}
		p += bytes;
	}
	out[o] = '\0';
	return o;
}

char *xstrescape(const char *s, unsigned how)
{
	size_t size = strlen(s) * 4 + 1;
	char *out = xmalloc(size);

	strescape(out, size, s, how);
	return out;
}

char *xstrdup_printable(const char *s)
{
	return xstrescape(s, STR_ESCAPE_CONTROL);
}

uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

void closep(int *fd)
{
	int saved = errno;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
	errno = saved;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t r = write(fd, p, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

int parse_uint(const char *s, int base, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (!*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, base);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

ssize_t read_small_file(const char *dir, const char *name, void *buf, size_t size)
{
	char *path = xasprintf("%s/%s", dir, name);
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

int mkdir_p(const char *path, unsigned mode)
{
	char *copy = xstrdup(path);
	int r = 0;

	for (char *p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			r = -errno;
			break;
		}
		*p = saved;
		if (!saved)
			break;
	}
	free(copy);
	return r;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, unsigned mode)
{
	char *tmp = NULL;
	int fd = -1, r;

	/* mkostemp has no *at form: a name of our own, made exclusively */
	for (unsigned i = 0; fd < 0 && i < 100; i++) {
		free(tmp);
		tmp = xasprintf("%s.tmp.%u.%" PRIu64 ".%u", name, (unsigned)getpid(), now_usec(),
				i);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = write_all(fd, data, len);
	if (r == 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
out:
	free(tmp);
	return r;
}

/* One step of path_check_trusted(): st (of path) is safe, or *why says why not. */
static bool trusted_inode(const char *path, const struct stat *st, uid_t owner, char **why)
{
	bool dir = S_ISDIR(st->st_mode);
	const char *what = dir ? "directory" : "file";

	if (st->st_uid != 0 && st->st_uid != owner) {
		*why = xasprintf(
		    "%s %s is not owned by root (owner uid %u); fix with: chown root: %s", what,
		    path, (unsigned)st->st_uid, path);
		return false;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) &&
	    !(dir && (st->st_mode & S_ISVTX) && st->st_uid == 0)) {
		*why = xasprintf("%s %s is writable by group or others (mode %04o); fix with: "
				 "chmod go-w %s",
				 what, path, (unsigned)(st->st_mode & 07777), path);
		return false;
	}
	return true;
}

int path_check_trusted(const char *path, uid_t owner, char **why)
{
	char *real = realpath(path, NULL), *slash;
	struct stat st;
	int r = 0;

	*why = NULL;
	if (!real) {
		r = -errno;
		*why = xasprintf("cannot resolve %s: %s", path, strerror(errno));
		return r;
	}
	if (stat(real, &st) < 0) {
		r = -errno;
		*why = xasprintf("cannot stat %s: %s", real, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EACCES;
		*why = xasprintf("%s is not a regular file", real);
		goto out;
	}
	if (!trusted_inode(real, &st, owner, why)) {
		r = -EPERM;
		goto out;
	}
	/* each directory up to /: cut the last component, then check */
	while ((slash = strrchr(real, '/'))) {
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(real, &st) < 0) {
			r = -errno;
			*why = xasprintf("cannot stat %s: %s", real, strerror(errno));
			goto out;
		}
		if (!trusted_inode(real, &st, owner, why)) {
			r = -EPERM;
			goto out;
		}
		if (streq(real, "/"))
			break;
	}
out:
	free(real);
	return r;
}

int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode)
{
	return write_file_atomic_at(AT_FDCWD, path, data, len, mode);
}

char *path_normalize(const char *path)
{
	char **parts = strv_split(path, "/"), **out = NULL, *joined, *s;

	for (size_t i = 0; parts && parts[i]; i++) {
		size_t n = strv_len(out);

		if (streq(parts[i], "."))
			continue;
		if (streq(parts[i], "..")) {
			if (n > 0) {
				free(out[n - 1]);
				out[n - 1] = NULL;
			}
			continue;
		}
		strv_append(&out, parts[i]);
	}
	joined = out ? strv_join(out, "/") : xstrdup("");
	s = xasprintf("/%s", joined);
	free(joined);
	strv_free(out);
	strv_free(parts);
	return s;
}

char *path_link_target(const char *path)
{
	char target[4096], *dir, *next, *r;
	ssize_t n = readlink(path, target, sizeof(target) - 1);

	if (n < 0)
		return NULL;
	target[n] = '\0';
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	next = target[0] == '/' ? xstrdup(target) : xasprintf("%s/%s", dir, target);
	r = path_normalize(next);
	free(dir);
	free(next);
	return r;
}

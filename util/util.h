/* Small helpers every vmplug module uses: allocation that aborts on
 * failure, string vectors, monotonic time, fd and file helpers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define streq(a, b) (strcmp((a), (b)) == 0)
/* Equal strings, or both NULL. */
#define streq_null(a, b) ((a) == (b) || ((a) && (b) && streq((a), (b))))
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#define UNUSED __attribute__((unused))

/* Allocation failure is not recoverable for a daemon of this size: these
 * print a message and abort() instead of returning NULL. */
void *xmalloc(size_t size);
void *xzalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

#define xnew(type) ((type *)xzalloc(sizeof(type)))

/* Grow *arr (of *n elements of size elsize) by one zeroed element and return it. */
void *xappend(void *arr_ptr, size_t *n, size_t elsize);

/* NULL-terminated string vectors. */
size_t strv_len(char *const *v);
void strv_free(char **v);
char **strv_copy(char *const *v);
void strv_append(char ***v, const char *s);
bool strv_contains(char *const *v, const char *s);
/* Split s at runs of any char in seps; empty fields are dropped. */
char **strv_split(const char *s, const char *seps);
/* Join with sep; the result is always a new string ("" for an empty vector). */
char *strv_join(char *const *v, const char *sep);

/* Strip leading and trailing whitespace in place; returns s (moved forward). */
char *strstrip(char *s);
bool startswith(const char *s, const char *prefix);
/* What strescape() writes as \xNN (the way udev escapes). Bytes that are
 * not valid UTF-8 always are: the text can then go into JSON. */
enum str_escape {
	STR_ESCAPE_INVALID = 0,
	/* Control characters too (C0 with newlines, DEL, C1): the text is
	 * one line that cannot move a terminal's cursor or start a log line. */
	STR_ESCAPE_CONTROL = 1 << 0,
	STR_ESCAPE_KEEP_NEWLINE = 1 << 1, /* with _CONTROL: '\n' stays */
};
/* s written into out (size > 0 bytes, NUL included) escaped as `how`
 * (enum str_escape) says; cut before a character that does not fit. The
 * length written. */
size_t strescape(char *out, size_t size, const char *s, unsigned how);
/* The same, whole, in a new string; a string that is fine is copied as is. */
char *xstrescape(const char *s, unsigned how);
/* FNV-1a of s: for lists of strings that share long prefixes (syspaths),
 * compared by hash first and in full only on a match. */
uint32_t str_hash(const char *s);
/* xstrescape(s, STR_ESCAPE_CONTROL): for strings from devices and peers
 * that go to logs, JSON or a terminal. */
char *xstrdup_printable(const char *s);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t now_usec(void);

/* Close *fd if >= 0 and set it to -1. Keeps errno. */
void closep(int *fd);

/* write() all of buf, retrying on EINTR/short writes; 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);

/* Parse a non-negative integer in base (0 = auto) that fits in max; 0 or -EINVAL/-ERANGE. */
int parse_uint(const char *s, int base, unsigned long max, unsigned long *out);

/* Read at most size bytes of the file dir/name (one read(): sysfs
 * attributes come whole); the count, or -errno. */
ssize_t read_small_file(const char *dir, const char *name, void *buf, size_t size);

/* Create directory path and its parents with mode; 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);

/* Write data to path atomically: a temp file in the same directory,
 * renamed over path, so a reader sees the old file or the new one, never
 * a part. No fsync (it can block for seconds on a busy disk): after a
 * power loss the file may be empty, which its readers must take as no
 * file. 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* The same for name in the directory dirfd (AT_FDCWD: path as above). */
int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, unsigned mode);

/* path (absolute) with "." and ".." resolved lexically; a new string. */
char *path_normalize(const char *path);
/* Where the symlink at path (absolute) leads, one hop, normalized
 * (path_normalize); NULL if path is no symlink. Link chains are followed
 * hop by hop rather than with realpath() where a hop may be the answer:
 * a harness that fakes /dev (umockdev) makes a device node a link too,
 * and knows it only by its own name. */
char *path_link_target(const char *path);

/* Whether root may run the program at path, the way sshd judges an
 * AuthorizedKeysCommand: its real path, a regular file, and every
 * directory from there up to / are owned by root (or by `owner`) and not
 * writable by group or others. A directory with the sticky bit (/tmp)
 * may be writable by all when root owns it: nobody else can rename or
 * remove root's entries there. 0, or -errno and *why (a new string: what
 * is wrong, naming the file, and the fix). */
int path_check_trusted(const char *path, uid_t owner, char **why);

/* Helpers the C tests share (see testlib.h). */
#include "config.h"

#include "tests/lib/testlib.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/util.h"

char *test_percent_decode(char *s)
{
	char *start = s, *o = s;

	for (; *s; s++) {
		if (s[0] == '%' && s[1] && s[2]) {
			char hexbyte[3] = { s[1], s[2], 0 };

			*o++ = (char)strtoul(hexbyte, NULL, 16);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
	return start;
}

char *scratch_new(const char *tag)
{
	char *dir = xasprintf("/tmp/vmplug-%s.XXXXXX", tag);

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	chmod(dir, 0755);
	return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

void scratch_remove(char *dir)
{
	if (!dir)
		return;
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **list_dir(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	char **names = xcalloc(1, sizeof(char *));
	size_t n = strlen(suffix);
	struct dirent *de;

	if (!d) {
		fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
		exit(EXIT_FAILURE);
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (de->d_name[0] != '.' && len >= n && streq(de->d_name + len - n, suffix))
			strv_append(&names, de->d_name);
	}
	closedir(d);
	qsort(names, strv_len(names), sizeof(char *), compare_names);
	return names;
}

unsigned test_wait_scale(void)
{
	const char *env = getenv("VMPLUG_WAIT_SCALE");
	char *end;
	unsigned long v;

	if (!env || !*env)
		return 3;
	errno = 0;
	v = strtoul(env, &end, 10);
	if (errno || *end || v < 1 || v > 1000) {
		fprintf(stderr, "VMPLUG_WAIT_SCALE=%s: want a whole number from 1 to 1000\n", env);
		abort();
	}
	return (unsigned)v;
}

uint64_t test_scaled_usec(uint64_t usec)
{
	return usec * test_wait_scale();
}

static bool run_until_usec(struct loop *loop, bool (*cond)(void *arg), void *arg, uint64_t usec)
{
	uint64_t end = now_usec() + usec;

	while (!cond(arg)) {
		uint64_t now = now_usec();

		if (now >= end)
			return cond(arg);
		if (loop_dispatch(loop, (int)((end - now) / USEC_PER_MSEC) + 1) < 0)
			return cond(arg);
	}
	return true;
}

bool run_until(struct loop *loop, bool (*cond)(void *arg), void *arg, unsigned timeout_ms)
{
	return run_until_usec(loop, cond, arg, test_scaled_usec(timeout_ms * USEC_PER_MSEC));
}

static bool never(void *arg)
{
	return false;
}

void run_for(struct loop *loop, unsigned ms)
{
	run_until_usec(loop, never, NULL, ms * USEC_PER_MSEC);
}

static char **captured;
static enum log_level captured_level[4096];
static enum log_level saved_level;
static bool capturing;

static void capture(enum log_level level, const char *msg, void *data)
{
	const char *env = getenv("VMPLUG_TEST_LOG");

	if (env && streq(env, "1"))
		fprintf(stderr, "log %s: %s\n", log_level_name(level), msg);
	if (strv_len(captured) < ARRAY_SIZE(captured_level)) {
		captured_level[strv_len(captured)] = level;
		strv_append(&captured, msg);
	}
}

void log_capture_start(enum log_level level)
{
	if (!capturing)
		saved_level = log_get_level();
	capturing = true;
	log_set_level(level);
	log_set_handler(capture, NULL);
}

void log_capture_stop(void)
{
	if (!capturing)
		return;
	capturing = false;
	log_set_handler(NULL, NULL);
	log_set_level(saved_level);
	strv_free(captured);
	captured = NULL;
}

unsigned log_captured_count(enum log_level level)
{
	unsigned n = 0;

	for (size_t i = 0; captured && captured[i]; i++)
		n += captured_level[i] == level;
	return n;
}

unsigned log_captured_count_text(const char *text)
{
	unsigned n = 0;

	for (size_t i = 0; captured && captured[i]; i++)
		n += strstr(captured[i], text) != NULL;
	return n;
}

const char *log_captured_find(const char *text)
{
	for (size_t i = 0; captured && captured[i]; i++)
		if (strstr(captured[i], text))
			return captured[i];
	return NULL;
}

bool log_captured_has(void *text)
{
	return log_captured_find(text) != NULL;
}

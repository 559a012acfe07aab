/* Logging to stderr, the journal, syslog or a test hook, with a rate limiter. */
#include "config.h"

#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static enum log_level log_level = LOG_LEVEL_INFO;
static enum log_target log_target = LOG_TARGET_STDERR;
static bool stderr_copy;
static log_handler_fn log_handler;
static void *log_handler_data;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_set_target(enum log_target target)
{
	if (target == LOG_TARGET_SYSLOG && log_target != LOG_TARGET_SYSLOG)
		openlog("vmplugd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (target != LOG_TARGET_SYSLOG && log_target == LOG_TARGET_SYSLOG)
		closelog();
	log_target = target;
}

bool log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!env || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_stderr_copy(bool on)
{
	stderr_copy = on;
}

void log_set_handler(log_handler_fn fn, void *data)
{
	log_handler = fn;
	log_handler_data = data;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= ARRAY_SIZE(level_names))
		return NULL;
	return level_names[level];
}

int log_level_from_name(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++) {
		if (streq(name, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int syslog_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_ERROR:
		return LOG_ERR;
	case LOG_LEVEL_WARNING:
		return LOG_WARNING;
	case LOG_LEVEL_INFO:
		return LOG_INFO;
	case LOG_LEVEL_DEBUG:
		break;
	}
	return LOG_DEBUG;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char raw[2048], buf[4 * sizeof(raw)];
	va_list ap;
	int saved = errno;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Here, so that no caller can forget: what a device, a guest, QEMU
	 * or a client says stays on its line and cannot drive a terminal. */
	strescape(buf, sizeof(buf), raw, STR_ESCAPE_CONTROL);

	if (log_handler) {
		log_handler(level, buf, log_handler_data);
	} else if (log_target == LOG_TARGET_SYSLOG) {
		syslog(syslog_priority(level), "%s", buf);
		if (stderr_copy && level == LOG_LEVEL_ERROR)
			fprintf(stderr, "vmplugd: %s: %s\n", level_names[level], buf);
	} else if (log_target == LOG_TARGET_JOURNAL) {
		fprintf(stderr, "<%d>%s\n", syslog_priority(level), buf);
	} else {
		fprintf(stderr, "vmplugd: %s: %s\n", level_names[level], buf);
	}
	errno = saved;
}

bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now)
{
	if (rl->begin == 0 || now - rl->begin >= rl->interval_usec) {
		if (rl->suppressed)
			log_msg(LOG_LEVEL_WARNING, "%u similar messages suppressed",
				rl->suppressed);
		rl->begin = now ? now : 1;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < rl->burst) {
		rl->count++;
		return true;
	}
	rl->suppressed++;
	return false;
}

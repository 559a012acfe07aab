/* Logging: levels, stderr, the journal or syslog, a capture hook for
 * tests, and a rate limiter for anything a device or a guest can repeat. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_target {
	LOG_TARGET_STDERR,  /* "vmplugd: LEVEL: message" */
	LOG_TARGET_SYSLOG,  /* ident "vmplugd", facility daemon */
	LOG_TARGET_JOURNAL, /* stderr read by journald: "<PRIORITY>message" */
};

typedef void (*log_handler_fn)(enum log_level level, const char *msg, void *data);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Where messages go; syslog is opened with ident "vmplugd". */
void log_set_target(enum log_target target);
/* True when stderr is the stream systemd connected to the journal: the
 * JOURNAL_STREAM variable names stderr's device and inode. Then the
 * journal adds the name and time itself and reads the priority from a
 * "<N>" prefix (sd-daemon(3)). */
bool log_stderr_is_journal(void);
/* With the syslog target, also copy errors to stderr: while vmplugd
 * starts in the background its stderr is still the terminal of whoever
 * started it, which should see why a start fails. */
void log_set_stderr_copy(bool on);
/* Replace the output with a callback (tests); NULL restores the target. */
void log_set_handler(log_handler_fn fn, void *data);

/* "error", "warning", "info", "debug"; NULL for anything else. */
const char *log_level_name(enum log_level level);
/* 0 and *out set, or -EINVAL. */
int log_level_from_name(const char *name, enum log_level *out);

/* One line, at most 2047 bytes before escaping: newlines, control
 * characters and bytes that are not UTF-8 in the message are written as
 * \xNN (xstrdup_printable()), whoever supplied them. */
void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_LEVEL_DEBUG)                                            \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                     \
	} while (0)

/* At most `burst` messages per `interval_usec`; when a new interval starts
 * after drops, the next allowed message is preceded by a line saying how
 * many were suppressed. Initialise with LOG_RATELIMIT_INIT. */
struct log_ratelimit {
	uint64_t interval_usec;
	unsigned burst;
	uint64_t begin;
	unsigned count;
	unsigned suppressed;
};

#define LOG_RATELIMIT_INIT(interval, n)                                                            \
	{                                                                                          \
		.interval_usec = (interval), .burst = (n)                                          \
	}

/* True if a message may be logged now; counts it. */
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now);

#define log_ratelimited(rl, level, ...)                                                            \
	do {                                                                                       \
		if (log_ratelimit_allow((rl), now_usec()))                                         \
			log_msg((level), __VA_ARGS__);                                             \
	} while (0)

/* Small shared bits of the e2e helper programs: clock, deadlines, number parsing. */
#ifndef E2E_HELPER_UTIL_H
#define E2E_HELPER_UTIL_H

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC. */
static inline int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, as a poll() timeout (0 once it passed). */
static inline int ms_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Parse a non-negative decimal int; returns 0 or -EINVAL. */
static inline int parse_uint(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < 0 || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Block the signals of mask and return a signalfd that reads them, or -1
 * after a message naming prog. */
static inline int signals_to_fd(const char *prog, const sigset_t *mask)
{
	int fd;

	sigprocmask(SIG_BLOCK, mask, NULL);
	fd = signalfd(-1, mask, SFD_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "%s: signalfd: %s\n", prog, strerror(errno));
	return fd;
}

#endif

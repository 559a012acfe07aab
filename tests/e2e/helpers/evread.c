/* evread: print an evdev node's identity, key state and events, for e2e scenarios. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <libevdev/libevdev.h>

#include "helper-util.h"

#define BIT_SET(bits, n) ((bits)[(n) / 8] & (1u << ((n) % 8)))

struct until {
	bool set;
	unsigned int type;
	unsigned int code;
	int value;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: evread [-k] [-g] [-w CODE:VALUE]... [-n COUNT] [-u CODE:VALUE] [-t MS] "
		   "DEVICE\n"
		   "Prints DEVICE's name and ids, with -k the keys held down (EVIOCGKEY),\n"
		   "then \"ready\" and one line per event (\"EV_KEY KEY_A 1\").\n"
		   "  -n COUNT       stop after COUNT events other than EV_SYN\n"
		   "  -u CODE:VALUE  stop after the event CODE (e.g. KEY_A) with VALUE\n"
		   "  -t MS          give up after MS milliseconds (default 5000)\n"
		   "  -g             grab the device (EVIOCGRAB) while reading\n"
		   "  -w CODE:VALUE  write this event (e.g. LED_CAPSL:1) to the device, as a\n"
		   "                 desktop or QEMU sets lights; all -w in one frame, before\n"
		   "                 \"ready\" (after the grab with -g)\n"
		   "SIGTERM stops it once it has printed the events already queued for it\n"
		   "(\"stopped after N events\").\n"
		   "Exit status: 0 when a stop condition was met (or, with neither -n nor -u,\n"
		   "at the time limit, or on SIGTERM), 3 on timeout, 1 on errors, 2 on bad\n"
		   "usage.\n");
}

#define MAX_WRITES 16

/* Parse "KEY_A:0" into an event type, code and value. */
static int parse_until(const char *arg, struct until *u)
{
	const char *colon = strchr(arg, ':');
	int type, code, value;

	if (!colon || colon == arg)
		return -EINVAL;
	type = libevdev_event_type_from_code_name_n(arg, (size_t)(colon - arg));
	code = libevdev_event_code_from_code_name_n(arg, (size_t)(colon - arg));
	if (type < 0 || code < 0)
		return -EINVAL;
	if (parse_uint(colon + 1, &value) < 0)
		return -EINVAL;
	u->type = (unsigned int)type;
	u->code = (unsigned int)code;
	u->value = value;
	u->set = true;
	return 0;
}

static void print_keys(int fd)
{
	unsigned char keys[KEY_MAX / 8 + 1];
	bool any = false;

	memset(keys, 0, sizeof(keys));
	if (ioctl(fd, EVIOCGKEY(sizeof(keys)), keys) < 0) {
		printf("keys: error %s\n", strerror(errno));
		return;
	}
	printf("keys:");
	for (unsigned int k = 0; k <= KEY_MAX; k++) {
		if (!BIT_SET(keys, k))
			continue;
		const char *n = libevdev_event_code_get_name(EV_KEY, k);

		if (n)
			printf(" %s", n);
		else
			printf(" %u", k);
		any = true;
	}
	printf("%s\n", any ? "" : " (none)");
}

static void print_event(const struct input_event *ev)
{
	const char *t = libevdev_event_type_get_name(ev->type);
	const char *c = libevdev_event_code_get_name(ev->type, ev->code);

	if (t)
		printf("%s ", t);
	else
		printf("%u ", ev->type);
	if (c)
		printf("%s ", c);
	else
		printf("%u ", ev->code);
	printf("%d\n", ev->value);
}

/* Read events until a stop condition, the deadline or SIGTERM (on sigfd);
 * returns 0, 1 on timeout, 2 on SIGTERM once every queued event is
 * printed, or -errno. */
static int read_events(int fd, int sigfd, int max, const struct until *u, int64_t deadline,
		       int *count)
{
	bool stopping = false;

	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = sigfd, .events = POLLIN } };
		struct input_event ev;
		ssize_t n;
		int r;

		r = stopping ? 1 : poll(p, 2, ms_left(deadline));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return 1;
		if (p[1].revents & POLLIN)
			stopping = true;
		n = read(fd, &ev, sizeof(ev));
		if (n < 0) {
			if (errno == EAGAIN && stopping)
				return 2;
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n != sizeof(ev))
			return -EIO;
		print_event(&ev);
		if (ev.type == EV_SYN)
			continue;
		(*count)++;
		if (u->set && ev.type == u->type && ev.code == u->code && ev.value == u->value)
			return 0;
		if (max > 0 && *count >= max)
			return 0;
	}
}

int main(int argc, char **argv)
{
	struct until until = { .set = false };
	struct input_event writes[MAX_WRITES + 1];
	size_t n_writes = 0;
	bool want_keys = false, grab = false;
	int max = 0, timeout = 5000, count = 0;
	char name[256] = "";
	struct input_id id;
	int opt, fd, sigfd, r;
	sigset_t term;

	while ((opt = getopt(argc, argv, "kgw:n:u:t:h")) != -1) {
		switch (opt) {
		case 'k':
			want_keys = true;
			break;
		case 'g':
			grab = true;
			break;
		case 'w': {
			struct until w;

			if (n_writes == MAX_WRITES || parse_until(optarg, &w) < 0) {
				fprintf(stderr, "evread: bad -w '%s' (want e.g. LED_CAPSL:1)\n",
					optarg);
				return 2;
			}
			writes[n_writes++] = (struct input_event){
				.type = (unsigned short)w.type,
				.code = (unsigned short)w.code,
				.value = w.value,
			};
			break;
		}
		case 'n':
			if (parse_uint(optarg, &max) < 0)
				goto bad_usage;
			break;
		case 'u':
			if (parse_until(optarg, &until) < 0) {
				fprintf(stderr, "evread: bad -u '%s' (want e.g. KEY_A:1)\n",
					optarg);
				return 2;
			}
			break;
		case 't':
			if (parse_uint(optarg, &timeout) < 0)
				goto bad_usage;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (optind != argc - 1)
		goto bad_usage;

	/* Output goes to files that scenarios poll: flush every line. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* SIGTERM through a descriptor: read_events() finishes the queue first. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigfd = signals_to_fd("evread", &term);
	if (sigfd < 0)
		return 1;

	fd = open(argv[optind], (n_writes ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "evread: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	memset(&id, 0, sizeof(id));
	if (ioctl(fd, EVIOCGNAME(sizeof(name) - 1), name) < 0 || ioctl(fd, EVIOCGID, &id) < 0) {
		fprintf(stderr, "evread: %s: not an evdev node: %s\n", argv[optind],
			strerror(errno));
		close(fd);
		return 1;
	}
	printf("device %s name=\"%s\" bus=0x%04x vendor=0x%04x product=0x%04x\n", argv[optind],
	       name, id.bustype, id.vendor, id.product);
	if (grab && ioctl(fd, EVIOCGRAB, (void *)1) < 0) {
		fprintf(stderr, "evread: EVIOCGRAB: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	if (n_writes) {
		size_t len = (n_writes + 1) * sizeof(writes[0]);

		writes[n_writes] = (struct input_event){ .type = EV_SYN, .code = SYN_REPORT };
		if (write(fd, writes, len) != (ssize_t)len) {
			fprintf(stderr, "evread: write: %s\n", strerror(errno));
			close(fd);
			return 1;
		}
	}
	if (want_keys)
		print_keys(fd);
	printf("ready\n");

	r = read_events(fd, sigfd, max, &until, now_ms() + timeout, &count);
	close(fd);
	close(sigfd);
	if (r < 0) {
		fprintf(stderr, "evread: read: %s\n", strerror(-r));
		return 1;
	}
	if (r == 2) {
		printf("stopped after %d events\n", count);
		return 0;
	}
	if (r == 1 && (max > 0 || until.set)) {
		printf("timeout after %d events\n", count);
		return 3;
	}
	printf("done after %d events\n", count);
	return 0;

bad_usage:
	usage(stderr);
	return 2;
}

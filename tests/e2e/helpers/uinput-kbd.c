/* uinput-kbd: a uinput keyboard that types given keys on SIGUSR1, for e2e scenarios. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/uinput.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <libevdev/libevdev.h>

#include "helper-util.h"

#define MAX_KEYS 32

static void usage(FILE *f)
{
	fprintf(f,
		"usage: uinput-kbd [-N NAME] [-t SECONDS] KEY...\n"
		"Creates a uinput keyboard and prints \"node /dev/input/eventN\" and \"ready\".\n"
		"Each SIGUSR1 types the KEYs (press and release each, e.g. KEY_A) and\n"
		"prints \"typed\". SIGTERM or SIGINT, or SECONDS (default 60) passing,\n"
		"destroys the device; then it prints \"destroyed\" and exits 0.\n");
}

static int emit(int fd, unsigned int type, unsigned int code, int value)
{
	struct input_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = (unsigned short)type;
	ev.code = (unsigned short)code;
	ev.value = value;
	if (write(fd, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
		return -errno;
	return 0;
}

static int type_keys(int fd, const int *keys, int nkeys)
{
	int r = 0;

	for (int i = 0; i < nkeys && r == 0; i++) {
		r = emit(fd, EV_KEY, (unsigned int)keys[i], 1);
		if (r == 0)
			r = emit(fd, EV_SYN, SYN_REPORT, 0);
		if (r == 0)
			r = emit(fd, EV_KEY, (unsigned int)keys[i], 0);
		if (r == 0)
			r = emit(fd, EV_SYN, SYN_REPORT, 0);
	}
	return r;
}

/* Find the eventN child of /sys/devices/virtual/input/SYSNAME; returns 0 or -errno. */
static int find_event_node(const char *sysname, char *out, size_t size)
{
	char path[128];
	struct dirent *de;
	DIR *dir;
	int r = -ENOENT;

	snprintf(path, sizeof(path), "/sys/devices/virtual/input/%s", sysname);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "event", 5) == 0) {
			snprintf(out, size, "/dev/input/%s", de->d_name);
			r = 0;
			break;
		}
	}
	closedir(dir);
	return r;
}

static int create_device(const char *name)
{
	struct uinput_setup setup;
	int fd;

	fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UI_SET_EVBIT, EV_KEY) < 0 || ioctl(fd, UI_SET_EVBIT, EV_SYN) < 0)
		goto fail;
	for (int k = KEY_ESC; k <= KEY_MICMUTE; k++)
		if (ioctl(fd, UI_SET_KEYBIT, k) < 0)
			goto fail;
	memset(&setup, 0, sizeof(setup));
	setup.id.bustype = BUS_VIRTUAL;
	setup.id.vendor = 0x1209;
	setup.id.product = 0x0001;
	setup.id.version = 1;
	snprintf(setup.name, sizeof(setup.name), "%s", name);
	if (ioctl(fd, UI_DEV_SETUP, &setup) < 0 || ioctl(fd, UI_DEV_CREATE) < 0)
		goto fail;
	return fd;
fail : {
	int err = -errno;

	close(fd);
	return err;
}
}

int main(int argc, char **argv)
{
	const char *name = "vmplug-e2e uinput keyboard";
	int keys[MAX_KEYS], nkeys = 0, lifetime = 60, opt, fd, sfd, r;
	char sysname[64] = "", node[300];
	int64_t deadline;
	sigset_t mask;

	while ((opt = getopt(argc, argv, "N:t:h")) != -1) {
		switch (opt) {
		case 'N':
			name = optarg;
			break;
		case 't':
			if (parse_uint(optarg, &lifetime) < 0)
				goto bad_usage;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	for (int i = optind; i < argc; i++) {
		int code = libevdev_event_code_from_name(EV_KEY, argv[i]);

		if (code < 0 || nkeys == MAX_KEYS) {
			fprintf(stderr, "uinput-kbd: bad key '%s'\n", argv[i]);
			return 2;
		}
		keys[nkeys++] = code;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Block the signals before the device exists so none is lost to a fast caller. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sfd = signals_to_fd("uinput-kbd", &mask);
	if (sfd < 0)
		return 1;

	fd = create_device(name);
	if (fd < 0) {
		fprintf(stderr, "uinput-kbd: cannot create the device: %s\n", strerror(-fd));
		return 1;
	}
	r = ioctl(fd, UI_GET_SYSNAME(sizeof(sysname)), sysname) < 0 ? -errno : 0;
	if (r == 0)
		r = find_event_node(sysname, node, sizeof(node));
	if (r < 0) {
		fprintf(stderr, "uinput-kbd: cannot find the event node of '%s'\n", sysname);
		ioctl(fd, UI_DEV_DESTROY);
		close(fd);
		return 1;
	}
	printf("node %s\n", node);
	printf("ready\n");

	deadline = now_ms() + (int64_t)lifetime * 1000;
	for (;;) {
		struct pollfd p = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;

		r = poll(&p, 1, ms_left(deadline));
		if (r == 0)
			break;
		if (r < 0 || read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
			continue;
		if (si.ssi_signo != SIGUSR1)
			break;
		r = type_keys(fd, keys, nkeys);
		if (r < 0)
			fprintf(stderr, "uinput-kbd: write: %s\n", strerror(-r));
		else
			printf("typed\n");
	}
	ioctl(fd, UI_DEV_DESTROY);
	close(fd);
	close(sfd);
	printf("destroyed\n");
	return 0;

bad_usage:
	usage(stderr);
	return 2;
}

/* uevmon: print device events from a libudev monitor ("udev" or "kernel" source). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libudev.h>

#include "helper-util.h"

#define MAX_PROPS 16

static const char *default_props[] = { "DEVNAME", "BUSNUM", "DEVNUM" };

static void usage(FILE *f)
{
	fprintf(f, "usage: uevmon [-s udev|kernel] [-n COUNT] [-t MS] [-p PROPERTY]...\n"
		   "              [SUBSYSTEM[/DEVTYPE]]...\n"
		   "Prints \"ready\" once listening, then one line per event:\n"
		   "  ACTION SUBSYSTEM/DEVTYPE SYSNAME DEVNAME=... BUSNUM=... DEVNUM=...\n"
		   "  -s SOURCE    monitor source (default udev, which needs systemd-udevd)\n"
		   "  -n COUNT     stop after COUNT events\n"
		   "  -t MS        give up after MS milliseconds (default 10000)\n"
		   "  -p PROPERTY  also print PROPERTY when the event has it\n"
		   "Exit status: 0 when COUNT events arrived (or, without -n, at the time\n"
		   "limit), 3 on timeout, 1 on errors, 2 on bad usage.\n");
}

static const char *or_dash(const char *s)
{
	return s ? s : "-";
}

static void print_prop(struct udev_device *d, const char *key)
{
	const char *v = udev_device_get_property_value(d, key);

	if (v)
		printf(" %s=%s", key, v);
}

static void print_event(struct udev_device *d, char **props, int nprops)
{
	const char *devtype = udev_device_get_devtype(d);

	printf("%s %s%s%s %s", or_dash(udev_device_get_action(d)),
	       or_dash(udev_device_get_subsystem(d)), devtype ? "/" : "", devtype ? devtype : "",
	       or_dash(udev_device_get_sysname(d)));
	for (size_t i = 0; i < sizeof(default_props) / sizeof(default_props[0]); i++)
		print_prop(d, default_props[i]);
	for (int i = 0; i < nprops; i++)
		print_prop(d, props[i]);
	printf("\n");
}

/* Add "SUBSYSTEM[/DEVTYPE]" as a monitor filter; returns 0 or a negative errno. */
static int add_filter(struct udev_monitor *mon, char *spec)
{
	char *slash = strchr(spec, '/');

	if (slash)
		*slash = '\0';
	return udev_monitor_filter_add_match_subsystem_devtype(mon, spec, slash ? slash + 1 : NULL);
}

int main(int argc, char **argv)
{
	const char *source = "udev";
	char *props[MAX_PROPS];
	int nprops = 0, max = 0, timeout = 10000, count = 0, opt, r, status = 1;
	struct udev *udev = NULL;
	struct udev_monitor *mon = NULL;
	int64_t deadline;

	while ((opt = getopt(argc, argv, "s:n:t:p:h")) != -1) {
		switch (opt) {
		case 's':
			source = optarg;
			break;
		case 'n':
			if (parse_uint(optarg, &max) < 0)
				goto bad_usage;
			break;
		case 't':
			if (parse_uint(optarg, &timeout) < 0)
				goto bad_usage;
			break;
		case 'p':
			if (nprops == MAX_PROPS)
				goto bad_usage;
			props[nprops++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad_usage;
		}
	}
	if (strcmp(source, "udev") != 0 && strcmp(source, "kernel") != 0)
		goto bad_usage;

	setvbuf(stdout, NULL, _IOLBF, 0);

	udev = udev_new();
	if (!udev) {
		fprintf(stderr, "uevmon: udev_new failed\n");
		goto out;
	}
	mon = udev_monitor_new_from_netlink(udev, source);
	if (!mon) {
		fprintf(stderr, "uevmon: cannot open the \"%s\" monitor\n", source);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		r = add_filter(mon, argv[i]);
		if (r < 0) {
			fprintf(stderr, "uevmon: filter %s: %s\n", argv[i], strerror(-r));
			goto out;
		}
	}
	r = udev_monitor_enable_receiving(mon);
	if (r < 0) {
		fprintf(stderr, "uevmon: enable receiving: %s\n", strerror(-r));
		goto out;
	}
	printf("ready\n");

	deadline = now_ms() + timeout;
	while (max == 0 || count < max) {
		struct pollfd p = { .fd = udev_monitor_get_fd(mon), .events = POLLIN };
		struct udev_device *d;

		r = poll(&p, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "uevmon: poll: %s\n", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		d = udev_monitor_receive_device(mon);
		if (!d)
			continue;
		print_event(d, props, nprops);
		udev_device_unref(d);
		count++;
	}
	if (max > 0 && count < max) {
		printf("timeout after %d events\n", count);
		status = 3;
	} else {
		printf("done after %d events\n", count);
		status = 0;
	}
out:
	udev_monitor_unref(mon);
	udev_unref(udev);
	return status;

bad_usage:
	usage(stderr);
	return 2;
}

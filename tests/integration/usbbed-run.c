/* Run a test script on a fake USB tree (umockdev):
 *
 *   usbbed-run [--buses N] -- COMMAND [ARG]...
 *       creates the testbed, runs COMMAND with UMOCKDEV_DIR, LD_PRELOAD and
 *       USBBED_SOCKET set, serves plug/unplug requests until it exits, and
 *       exits with its status;
 *   usbbed plug PORT dev=N vid=HEX pid=HEX [serial=S] [name=S] [class=HEX] [if=HEX]
 *   usbbed unplug PORT
 *   usbbed iface PORT CLASS
 *   usbbed flap PORT COUNT dev=N vid=HEX pid=HEX [every=USEC] [...]
 *       (PORT, plugged in with device number N, is removed and added
 *       again COUNT times, see usbbed_flap())
 *       (the same program, called as "usbbed" or with the command first)
 *       asks the running testbed to change the tree, and waits until done.
 *
 * Values of serial= and name= may be %XX-encoded (any bytes: quotes,
 * newlines, control characters). So shell tests drive vmplugd, vmplugctl
 * and QEMU, all under the same testbed, and plug devices in and out as
 * they go. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/usbbed.h"
#include "tests/lib/testlib.h"
#include "util/util.h"

static int usage(void)
{
	fprintf(stderr, "usage: usbbed-run [--buses N] -- COMMAND [ARG]...\n"
			"       usbbed plug PORT dev=N vid=HEX pid=HEX [serial=S] [name=S] "
			"[class=HEX] [if=HEX]\n"
			"       usbbed unplug PORT\n"
			"       usbbed iface PORT CLASS\n"
			"       usbbed flap PORT COUNT dev=N vid=HEX pid=HEX [every=USEC] [...]\n");
	return 2;
}

static unsigned hex(const char *s)
{
	return (unsigned)strtoul(s, NULL, 16);
}

/* Carry out one request line; returns NULL or an error text. */
static const char *serve(struct usbbed *bed, char *line)
{
	char **w = strv_split(line, " \n");
	const char *err = NULL;
	unsigned long count = 0, every = 0;

	if (!w[0] || !w[1]) {
		err = "bad request";
	} else if (streq(w[0], "plug") || (streq(w[0], "flap") && w[2])) {
		struct usbbed_dev d = { .port = w[1], .if_class = 0xff };
		size_t first = 2;

		if (streq(w[0], "flap")) {
			count = strtoul(w[2], NULL, 10);
			first = 3;
		}
		for (size_t i = first; w[i]; i++) {
			char *v = strchr(w[i], '=');

			if (!v) {
				err = "bad word";
				break;
			}
			*v++ = '\0';
			if (streq(w[i], "dev"))
				d.devnum = (unsigned)atoi(v);
			else if (streq(w[i], "vid"))
				d.vendor = hex(v);
			else if (streq(w[i], "pid"))
				d.product = hex(v);
			else if (streq(w[i], "serial"))
				d.serial = test_percent_decode(v);
			else if (streq(w[i], "name"))
				d.name = test_percent_decode(v);
			else if (streq(w[i], "every"))
				every = strtoul(v, NULL, 10);
			else if (streq(w[i], "class"))
				d.dev_class = hex(v);
			else if (streq(w[i], "if"))
				d.if_class = hex(v);
			else
				err = "unknown word";
		}
		if (!err && !count)
			usbbed_plug(bed, &d);
		else if (!err)
			usbbed_flap(bed, &d, count, every);
	} else if (streq(w[0], "unplug")) {
		usbbed_unplug(bed, w[1]);
	} else if (streq(w[0], "iface") && w[2]) {
		usbbed_add_interface(bed, w[1], hex(w[2]));
	} else {
		err = "unknown request";
	}
	strv_free(w);
	return err;
}

static int client(int argc, char **argv)
{
	const char *path = getenv("USBBED_SOCKET");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char *words = strv_join(argv, " "), *line = xasprintf("%s\n", words), reply[256];
	ssize_t n;
	int fd, r;

	free(words);

	if (!path) {
		fprintf(stderr, "usbbed: USBBED_SOCKET is not set (run under usbbed-run)\n");
		free(line);
		return 2;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("usbbed: connect");
		free(line);
		return 1;
	}
	/* one write: the testbed reads up to the newline and then answers */
	r = write_all(fd, line, strlen(line));
	free(line);
	if (r < 0) {
		fprintf(stderr, "usbbed: write: %s\n", strerror(-r));
		close(fd);
		return 1;
	}
	n = read(fd, reply, sizeof(reply) - 1);
	close(fd);
	if (n <= 0) {
		fprintf(stderr, "usbbed: no answer\n");
		return 1;
	}
	reply[n] = '\0';
	if (!startswith(reply, "ok")) {
		fprintf(stderr, "usbbed: %s", reply);
		return 1;
	}
	(void)argc;
	return 0;
}

/* Read one request, up to its newline (it may come in pieces). */
static ssize_t read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	unsigned buses = 4;
	char sockpath[] = "/tmp/usbbed-XXXXXX";
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct usbbed *bed;
	int lfd, status = 0;
	pid_t child;
	int i = 1;

	if (streq(base, "usbbed"))
		return argc < 2 ? usage() : client(argc - 1, argv + 1);
	if (argc > 1 && (streq(argv[1], "plug") || streq(argv[1], "unplug") ||
			 streq(argv[1], "iface") || streq(argv[1], "flap")))
		return client(argc - 1, argv + 1);
	if (i < argc && streq(argv[i], "--buses") && i + 1 < argc) {
		buses = (unsigned)atoi(argv[i + 1]);
		i += 2;
	}
	if (i >= argc || !streq(argv[i], "--") || i + 1 >= argc)
		return usage();
	usbbed_reexec(argv);

	bed = usbbed_new(buses);
	if (!mkdtemp(sockpath)) {
		perror("usbbed-run: mkdtemp");
		return 99;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/sock", sockpath);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(lfd, 4) < 0) {
		perror("usbbed-run: socket");
		return 99;
	}
	setenv("USBBED_SOCKET", addr.sun_path, 1);
	setenv("UMOCKDEV_DIR", usbbed_dir(bed), 1);
	child = fork();
	if (child == 0) {
		execvp(argv[i + 1], argv + i + 1);
		perror("usbbed-run: exec");
		_exit(127);
	}
	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		pid_t done = waitpid(child, &status, WNOHANG);

		if (done == child)
			break;
		if (poll(&p, 1, 100) > 0) {
			int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			static char line[65536];
			size_t n = 0;

			if (cfd < 0)
				continue;
			n = read_line(cfd, line, sizeof(line));
			if (n > 0) {
				const char *err;

				err = serve(bed, line);
				if (err)
					dprintf(cfd, "error: %s\n", err);
				else
					dprintf(cfd, "ok\n");
			}
			close(cfd);
		}
	}
	close(lfd);
	unlink(addr.sun_path);
	rmdir(sockpath);
	usbbed_free(bed);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

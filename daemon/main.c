/* vmplugd: command line, daemonizing, and handing over to daemon.c. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmplugd [OPTION]...\n"
		"Give QEMU virtual machines the host's USB and input devices.\n"
		"\n"
		"  -c, --config-dir=DIR  read DIR/vmplug.conf and DIR/vm.d/*.conf\n"
		"                        (default %s)\n"
		"  -f, --foreground      stay in the foreground and log to stderr\n"
		"                        (otherwise: run in the background, log to syslog)\n"
		"  -v, --verbose         log more; repeat for more (overrides log-level)\n"
		"      --check-config    print the effective configuration, or its errors,\n"
		"                        and exit 0 (valid) or 1 (invalid)\n"
		"  -h, --help            show this help and exit\n"
		"  -V, --version         show the version and exit\n"
		"\n"
		"Signals: SIGHUP reloads the configuration, SIGTERM/SIGINT stop vmplugd.\n"
		"See vmplugd(8) and vmplug.conf(5).\n",
		VMPLUG_CONFDIR);
}

/* Classic double fork: no controlling terminal, not a session leader,
 * stdio on /dev/null. Returns in the daemon; the parents exit. */
static int daemonize(void)
{
	pid_t pid;
	int fd;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	umask(022);
	if (chdir("/") < 0)
		return -errno;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK_CONFIG = 256 };
	static const struct option longopts[] = {
		{ "config-dir", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_opts opts = { .confdir = VMPLUG_CONFDIR };
	bool foreground = false, check = false;
	struct daemon *d;
	int c, code;

	while ((c = getopt_long(argc, argv, "c:fvhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			opts.confdir = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 'v':
			opts.verbose++;
			break;
		case OPT_CHECK_CONFIG:
			check = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vmplugd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			fprintf(stderr, "Try 'vmplugd --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"vmplugd: unexpected argument '%s'\n"
			"Try 'vmplugd --help' for more information.\n",
			argv[optind]);
		return 2;
	}
	if (check)
		return daemon_check_config(opts.confdir, stdout, stderr) == 0 ? 0 : 1;

	/* Load the configuration before going to the background so that
	 * errors reach the terminal and the exit code. */
	d = daemon_new(&opts);
	if (!d)
		return 1;
	if (!foreground) {
		int r = daemonize();

		if (r < 0) {
			fprintf(stderr, "vmplugd: cannot run in the background: %s\n",
				strerror(-r));
			daemon_free(d);
			return 1;
		}
		log_set_target(LOG_TARGET_SYSLOG);
	}
	if (daemon_start(d) < 0) {
		daemon_free(d);
		return 1;
	}
	code = daemon_run(d);
	daemon_free(d);
	log_set_target(LOG_TARGET_STDERR);
	return code;
}

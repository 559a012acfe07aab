/* vmplugd: command line, daemonizing, and handing over to daemon.c. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/notify.h"
#include "daemon/service.h"
#include "util/log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmplugd [OPTION]...\n"
		"Give QEMU virtual machines the host's USB and input devices.\n"
		"\n"
		"  -c, --config-dir=DIR  read DIR/vmplug.conf and DIR/vm.d/*.conf\n"
		"                        (default %s)\n"
		"  -f, --foreground      stay in the foreground and log to stderr, or to the\n"
		"                        journal when started by systemd (otherwise: run in\n"
		"                        the background once ready, and log to syslog)\n"
		"      --pid-file=PATH   write the daemon's pid to PATH once it is ready,\n"
		"                        remove it on exit; refuse to start while the\n"
		"                        vmplugd it names runs\n"
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

/* vmplugd holds an fd per VM, per input source and per sink (a few per VM
 * with inputs): a couple of hundred VMs with four inputs each pass the
 * usual soft limit of 1024. It uses epoll, never select(), so it may take
 * all that the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug("cannot raise the open files limit: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	enum { OPT_CHECK_CONFIG = 256, OPT_PID_FILE };
	static const struct option longopts[] = {
		{ "config-dir", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon_opts opts = { .confdir = VMPLUG_CONFDIR };
	bool foreground = false, check = false;
	const char *pid_file = NULL;
	struct service_pidfile *pidfile = NULL;
	struct daemon *d;
	int c, r, code, ready_fd = -1;
	pid_t running;

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
		case OPT_PID_FILE:
			pid_file = optarg;
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

	if (pid_file) {
		r = service_pidfile_running(pid_file, &running);
		if (r > 0) {
			fprintf(stderr,
				"vmplugd: not started: vmplugd %d is running (pid file %s)\n",
				(int)running, pid_file);
			return 1;
		}
		if (r < 0) {
			fprintf(stderr, "vmplugd: cannot read the pid file %s: %s\n", pid_file,
				strerror(-r));
			return 1;
		}
	}
	if (foreground && log_stderr_is_journal())
		log_set_target(LOG_TARGET_JOURNAL);
	raise_fd_limit();

	/* Load the configuration before going to the background so that
	 * errors reach the terminal and the exit code. */
	d = daemon_new(&opts);
	if (!d)
		return 1;
	if (!foreground) {
		r = service_daemonize(&ready_fd, &code);
		if (r != 0) {
			if (r < 0)
				fprintf(stderr, "vmplugd: cannot run in the background: %s\n",
					strerror(-r));
			daemon_free(d);
			return r > 0 ? code : 1;
		}
		/* Until it is ready, the terminal still sees what goes wrong. */
		log_set_target(LOG_TARGET_SYSLOG);
		log_set_stderr_copy(true);
	}
	if (daemon_start(d) < 0)
		goto failed;
	if (pid_file) {
		pidfile = service_pidfile_write(pid_file);
		if (!pidfile) {
			log_error("cannot write the pid file %s: %s", pid_file, strerror(errno));
			goto failed;
		}
	}
	notify_ready();
	service_started(&ready_fd, 0);
	log_set_stderr_copy(false);
	code = daemon_run(d);
	daemon_free(d);
	service_pidfile_remove(pidfile);
	log_set_target(LOG_TARGET_STDERR);
	return code;

failed:
	daemon_free(d);
	service_started(&ready_fd, 1);
	log_set_target(LOG_TARGET_STDERR);
	return 1;
}

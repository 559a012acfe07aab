/* flood: does vmplugd still answer while it is flooded? The build tree's
 * vmplugd runs with one VM, played by a fake QEMU (a child process) that
 * answers every command and, between them, writes events and replies to
 * ids never sent as fast as vmplugd reads them; a control client (another
 * child) keeps sending `identify` requests, which wait, so it holds as many
 * waiting requests as vmplugd allows and is refused past that
 * (TooManyRequests), without pause. A second control client sends
 * `query-status` every 2 ms and times each round trip: without a flood
 * (the baseline), with the QEMU flooding, with the client flooding, and
 * with both.
 *
 * A key frame through the router needs a sink, and a sink /dev/uinput,
 * which the machines here lack: that half of the measure is not taken
 * here (tests/integration/test-faults.c times frames through the input
 * manager, on socketpair sinks, while a QEMU floods events).
 *
 * Usage: flood [--short] [--requests N] (default 2000 query-status in
 * each of the four; --short: 100). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "qmp/qmp-int.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 30000
/* between two query-status of the measuring client */
#define PAUSE_USEC 2000

/* ------------------------------------------------------ the fake QEMU */

/* What the fake QEMU floods with: events and replies to ids vmplugd never
 * sent, about 64 KiB of them. */
static char *flood_text(size_t *len)
{
	char *s = xstrdup("");

	while (strlen(s) < 64 * 1024) {
		char *next = xasprintf(
		    "%s{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": "
		    "\"RTC_CHANGE\", \"data\": {\"offset\": 0, \"qom-path\": \"/machine/rtc\"}}\r\n"
		    "{\"return\": {}, \"id\": %zu}\r\n",
		    s, 1000000 + strlen(s));

		free(s);
		s = next;
	}
	*len = strlen(s);
	return s;
}

/* Serve the QMP socket until killed; flood from SIGUSR1 to SIGUSR2. */
static volatile sig_atomic_t flooding;

static void on_usr(int sig)
{
	flooding = sig == SIGUSR1;
}

static NORETURN void serve_qemu(int listener)
{
	struct qmp_framer *framer = qmp_framer_new(QMP_MAX_MESSAGE);
	size_t flood_len, flood_off = 0;
	char *flood = flood_text(&flood_len);
	json_t *pending = json_array();
	int fd = -1;

	signal(SIGUSR1, on_usr);
	signal(SIGUSR2, on_usr);
	for (;;) {
		struct pollfd p[2] = { { .fd = listener, .events = POLLIN },
				       { .fd = fd, .events = POLLIN | (flooding ? POLLOUT : 0) } };
		char buf[65536];
		ssize_t n;
		json_t *j;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		if (p[0].revents & POLLIN) {
			closep(&fd);
			fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
			qmp_framer_reset(framer);
			json_array_clear(pending);
			flood_off = 0;
			if (fd >= 0 &&
			    write_all(fd, bench_qmp_greeting, strlen(bench_qmp_greeting)) < 0)
				closep(&fd);
			continue;
		}
		if (fd < 0)
			continue;
		if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			n = read(fd, buf, sizeof(buf));
			if (n <= 0) {
				closep(&fd);
				continue;
			}
			qmp_framer_feed(framer, buf, (size_t)n);
			while (qmp_framer_next(framer, &j, NULL, NULL, NULL, 0) == 1)
				json_array_append_new(pending, j);
		}
		if ((p[1].revents & POLLOUT) && flood_off < flood_len) {
			/* flood_text() ends with a whole message: answers go
			 * between two of its rounds, never into a message */
			n = send(fd, flood + flood_off, flood_len - flood_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				flood_off += (size_t)n;
		}
		if (flood_off == flood_len || flood_off == 0) {
			size_t i;

			json_array_foreach(pending, i, j)
				if (bench_qmp_answer(fd, j) < 0)
					_exit(1);
			json_array_clear(pending);
			flood_off = 0;
		}
	}
}

/* ---------------------------------------------- the flooding client */

static NORETURN void flood_control(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned long id = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(1);
	for (;;) {
		char buf[65536];
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			_exit(1);
		/* read every reply, or vmplugd drops a client that does not */
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
				_exit(0);
		if (p.revents & POLLOUT) {
			char req[128];
			int n = snprintf(req, sizeof(req),
					 "{\"execute\": \"identify\", \"arguments\": {\"timeout\": "
					 "3600}, \"id\": %lu}\n",
					 id++);

			if (write_all(fd, req, (size_t)n) < 0)
				_exit(0);
		}
	}
}

/* Run fn(arg) in a child that dies with this program. */
static pid_t spawn(void (*fn)(const void *), const void *arg)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		fn(arg);
		_exit(0);
	}
	return pid;
}

static void run_qemu(const void *arg)
{
	serve_qemu(*(const int *)arg);
}

static void run_flooder(const void *arg)
{
	flood_control(arg);
}

/* -------------------------------------------------------- measuring */

static void measure(struct bench_ctl *ctl, const char *what, unsigned n)
{
	uint64_t *v = xcalloc(n, sizeof(*v));

	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_usec();
		json_t *st = bench_ctl_call(ctl, "query-status", NULL);

		if (!st)
			bench_fail("query-status was not answered (%s)", what);
		v[i] = now_usec() - t0;
		json_decref(st);
		usleep(PAUSE_USEC);
	}
	bench_report(what, v, n);
	free(v);
}

/* The VM is connected and listed. */
static bool vm_running(struct bench_ctl *ctl)
{
	json_t *st = bench_ctl_call(ctl, "query-status", NULL);
	json_t *vm = json_array_get(json_object_get(st, "vms"), 0);
	bool ok = vm && streq(json_string_value(json_object_get(vm, "state")) ?: "", "running");

	json_decref(st);
	return ok;
}

int main(int argc, char **argv)
{
	char *dir = scratch_new("bench-flood");
	char *conf = xasprintf("%s/conf", dir), *vmd = xasprintf("%s/conf/vm.d", dir);
	char *sock = xasprintf("%s/control.sock", dir), *log = xasprintf("%s/vmplugd.log", dir);
	char *qmp = xasprintf("%s/vm0.qmp", dir), *path;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	unsigned n = 2000;
	pid_t qemu, flooder, vmplugd;
	struct bench_ctl *ctl;
	uint64_t end;
	int listener;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			n = 100;
		} else if (streq(argv[i], "--requests") && i + 1 < argc) {
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: %s [--short] [--requests N]\n", argv[0]);
			return 2;
		}
	}
	if (!n)
		bench_fail("--requests must be at least 1");
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_print_machine(stdout);

	mkdir_p(vmd, 0755);
	path = xasprintf("%s/vmplug.conf", conf);
	bench_write_file(path, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n", sock, dir);
	free(path);
	path = xasprintf("%s/vm0.conf", vmd);
	bench_write_file(path, "[vm]\nqmp-socket = %s\n", qmp);
	free(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", qmp);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listener, 4) < 0)
		bench_fail("%s: %s", qmp, strerror(errno));
	qemu = spawn(run_qemu, &listener);
	close(listener);
	ctl = bench_vmplugd_up(conf, sock, log, &vmplugd);
	end = now_usec() + WAIT_MS * USEC_PER_MSEC;
	while (!vm_running(ctl)) {
		if (now_usec() > end)
			bench_fail("vmplugd did not connect to the VM (see %s)", log);
		usleep(20000);
	}
	printf("query-status every %u ms on a second control client; %u in each phase\n",
	       PAUSE_USEC / 1000, n);
	measure(ctl, "query-status, no flood", n);
	kill(qemu, SIGUSR1);
	measure(ctl, "query-status, QEMU floods", n);
	kill(qemu, SIGUSR2);
	flooder = spawn(run_flooder, sock);
	measure(ctl, "query-status, a client floods", n);
	kill(qemu, SIGUSR1);
	measure(ctl, "query-status, both flood", n);
	if (!vm_running(ctl))
		bench_fail("the VM is no longer running after the flood (see %s)", log);
	printf("vmplugd CPU %" PRIu64 " ms in all\n", bench_proc_cpu_usec(vmplugd) / 1000);
	bench_ctl_free(ctl);
	kill(flooder, SIGKILL);
	waitpid(flooder, NULL, 0);
	if (bench_vmplugd_stop(vmplugd) != 0)
		fprintf(stderr, "flood: vmplugd did not exit cleanly (see %s)\n", log);
	kill(qemu, SIGKILL);
	waitpid(qemu, NULL, 0);
	bench_scratch_done(dir);
	free(conf);
	free(vmd);
	free(sock);
	free(log);
	free(qmp);
	return 0;
}

/* Benchmark P5: vmplugd's memory with 1, 8 and 64 VMs and 4 inputs each
 * (two keyboards and two mice, every VM listing all four).
 *
 * The VMs are QMP peers this program plays itself (a child process
 * answering every command the way a QEMU with nothing in it would:
 * qom-list and query-fdsets with an empty list, anything else with
 * {}), so vmplugd connects, lists, and adds an input-linux object for
 * each of its sinks; what it keeps for a VM is the same as with a real
 * QEMU, and 64 QEMUs are too heavy where uinput exists (the e2e guest,
 * under TCG). The inputs' devices are absent, so each sink is made from
 * the generic keyboard or mouse; a sink needs /dev/uinput, and where
 * there is none (most CI hosts) vmplugd runs without sinks: the output
 * says how many sinks exist, and only with all of them is the figure
 * the whole one.
 *
 * For each size it starts the build tree's vmplugd, waits until every VM
 * is connected and has nothing pending, and reads /proc: peak RSS
 * (VmHWM), RSS, open fds, CPU time so far, and whether libvirt or
 * libxml2 is mapped (it should not be: every VM here speaks QMP).
 *
 * First it times vmplugd's start with nothing to attach (no VM, no
 * input): from fork to its READY=1 on a NOTIFY_SOCKET, by the kernel's
 * receive timestamp, the median of START_RUNS starts.
 *
 * Usage: memory [--short] [--vms 1,8,64]
 * vmplugd comes from $VMPLUGD (default: the build tree's). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "qmp/qmp-int.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define INPUTS 4
#define WAIT_MS 60000

#define START_RUNS 5

static const char *const input_names[INPUTS] = { "kbd0", "kbd1", "mouse0", "mouse1" };

/* ------------------------------------------------------ the QMP peers */

struct conn {
	int fd;
	struct qmp_framer *framer;
};

/* Serve n listening sockets until killed. */
static NORETURN void serve(int *listeners, unsigned n)
{
	struct pollfd *p = xcalloc(2 * (size_t)n, sizeof(*p));
	struct conn *c = xcalloc(n, sizeof(*c));

	for (unsigned i = 0; i < n; i++) {
		c[i].fd = -1;
		c[i].framer = qmp_framer_new(QMP_MAX_MESSAGE);
	}
	for (;;) {
		for (unsigned i = 0; i < n; i++) {
			p[2 * i] = (struct pollfd){ .fd = listeners[i], .events = POLLIN };
			p[2 * i + 1] = (struct pollfd){ .fd = c[i].fd, .events = POLLIN };
		}
		if (poll(p, 2 * (nfds_t)n, -1) < 0 && errno != EINTR)
			_exit(1);
		for (unsigned i = 0; i < n; i++) {
			char buf[65536];
			json_t *j;
			ssize_t len;

			if (p[2 * i].revents & POLLIN) {
				int fd = accept4(listeners[i], NULL, NULL, SOCK_CLOEXEC);

				if (fd >= 0) {
					/* one client at a time, as QEMU's monitor */
					closep(&c[i].fd);
					c[i].fd = fd;
					qmp_framer_reset(c[i].framer);
					if (write_all(fd, bench_qmp_greeting,
						      strlen(bench_qmp_greeting)) < 0)
						closep(&c[i].fd);
				}
				continue;
			}
			if (!(p[2 * i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			len = read(c[i].fd, buf, sizeof(buf));
			if (len <= 0) {
				closep(&c[i].fd);
				continue;
			}
			qmp_framer_feed(c[i].framer, buf, (size_t)len);
			while (qmp_framer_next(c[i].framer, &j, NULL, NULL, NULL, 0) == 1) {
				if (bench_qmp_answer(c[i].fd, j) < 0)
					fprintf(stderr, "memory: fake QEMU: write: %s\n",
						strerror(errno));
				json_decref(j);
			}
		}
	}
}

static pid_t start_peers(const char *dir, unsigned n)
{
	int *l = xcalloc(n, sizeof(*l));
	pid_t parent = getpid(), pid;

	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vm%03u.qmp", dir, i);
		l[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l[i] < 0 || bind(l[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(l[i], 4) < 0)
			bench_fail("%s: %s", sa.sun_path, strerror(errno));
	}
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		serve(l, n);
	}
	for (unsigned i = 0; i < n; i++)
		close(l[i]);
	free(l);
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	return pid;
}

/* ---------------------------------------------------------- a size */

struct result {
	unsigned vms;
	long hwm_kb, rss_kb, anon_kb;
	unsigned fds, sinks, inputs_attached;
	uint64_t cpu_ms, ready_ms;
	bool libvirt_mapped;
};

/* Does pid map libvirt or libxml2? */
static bool maps_libvirt(pid_t pid)
{
	char *path = xasprintf("/proc/%d/maps", (int)pid), line[4096];
	FILE *f = fopen(path, "re");
	bool found = false;

	while (f && fgets(line, sizeof(line), f))
		found |= strstr(line, "/libvirt.so") || strstr(line, "/libxml2.so");
	if (f)
		fclose(f);
	free(path);
	return found;
}

/* The kernel's receive time of the next datagram on fd saying READY=1,
 * in CLOCK_REALTIME microseconds; 0 if none comes within wait_ms. */
static uint64_t ready_received(int fd, int wait_ms)
{
	uint64_t end = now_usec() + (uint64_t)wait_ms * USEC_PER_MSEC;

	while (now_usec() < end) {
		char buf[4096], cbuf[CMSG_SPACE(sizeof(struct timeval))];
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		struct pollfd p = { fd, POLLIN, 0 };
		struct cmsghdr *c;
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (!strstr(buf, "READY=1"))
			continue;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMP) {
				struct timeval tv;

				memcpy(&tv, CMSG_DATA(c), sizeof(tv));
				return (uint64_t)tv.tv_sec * USEC_PER_SEC + (uint64_t)tv.tv_usec;
			}
	}
	return 0;
}

/* Fork to READY=1, START_RUNS times, with nothing to attach: the
 * durations in microseconds into v; how many starts were timed. */
static size_t time_starts(uint64_t *v)
{
	char *dir = scratch_new("bench-start");
	char *conf = xasprintf("%s/conf", dir), *vmd = xasprintf("%s/conf/vm.d", dir);
	char *sock = xasprintf("%s/control.sock", dir), *log = xasprintf("%s/vmplugd.log", dir);
	char *path = xasprintf("%s/vmplug.conf", conf), *notify = xasprintf("%s/notify", dir);
	char *env_notify = xasprintf("NOTIFY_SOCKET=%s", notify);
	char *const env[] = { env_notify, NULL };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	size_t n = 0;

	mkdir_p(vmd, 0755);
	bench_write_file(path, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n", sock, dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_TIMESTAMP, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		bench_fail("notify socket %s: %s", notify, strerror(errno));
	for (unsigned i = 0; i < START_RUNS; i++) {
		uint64_t t0 = bench_realtime_usec(), t1;
		pid_t pid = bench_vmplugd_start(conf, sock, log, env);

		if (pid < 0)
			bench_fail("vmplugd did not start (see %s)", log);
		t1 = ready_received(fd, WAIT_MS);
		if (t1 > t0)
			v[n++] = t1 - t0;
		if (bench_vmplugd_stop(pid) != 0)
			fprintf(stderr, "memory: vmplugd did not exit cleanly (see %s)\n", log);
	}
	close(fd);
	bench_scratch_done(dir);
	free(env_notify);
	free(notify);
	free(path);
	free(conf);
	free(vmd);
	free(sock);
	free(log);
	return n;
}

/* Every VM connected with nothing pending; counts the VMs' input
 * objects in QEMU. */
static bool ready(struct bench_ctl *ctl, unsigned vms, unsigned *inputs_attached)
{
	json_t *st = bench_ctl_call(ctl, "query-status", NULL), *vm;
	bool ok = json_array_size(json_object_get(st, "vms")) == vms;
	size_t i;

	*inputs_attached = 0;
	json_array_foreach(json_object_get(st, "vms"), i, vm) {
		json_t *in;
		size_t j;

		if (!streq(json_string_value(json_object_get(vm, "state")) ?: "", "running") ||
		    json_integer_value(json_object_get(vm, "pending")) != 0)
			ok = false;
		json_array_foreach(json_object_get(vm, "inputs"), j, in)
			*inputs_attached += streq(
			    json_string_value(json_object_get(in, "state")) ?: "", "attached");
	}
	json_decref(st);
	return ok;
}

/* Sinks vmplugd made, from its log ("... is /dev/input/eventN (from
 * the generic capabilities)"). */
static unsigned count_sinks(const char *log)
{
	FILE *f = fopen(log, "re");
	char line[4096];
	unsigned n = 0;

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, " capabilities)") && strstr(line, " is /dev/");
	if (f)
		fclose(f);
	return n;
}

static void run_size(unsigned vms, struct result *res)
{
	char *dir = scratch_new("bench-memory");
	char *conf = xasprintf("%s/conf", dir), *vmd = xasprintf("%s/conf/vm.d", dir);
	char *sock = xasprintf("%s/control.sock", dir), *log = xasprintf("%s/vmplugd.log", dir);
	char *path;
	struct bench_ctl *ctl;
	pid_t peers, vmplugd;
	uint64_t t0, end;
	FILE *f;

	mkdir_p(vmd, 0755);
	path = xasprintf("%s/vmplug.conf", conf);
	f = fopen(path, "we");
	if (!f)
		bench_fail("%s: %s", path, strerror(errno));
	fprintf(f, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n", sock, dir);
	for (unsigned i = 0; i < INPUTS; i++)
		fprintf(f, "[input \"%s\"]\ndevice = /dev/input/by-id/bench-%s-event-%s\n",
			input_names[i], input_names[i],
			startswith(input_names[i], "kbd") ? "kbd" : "mouse");
	fclose(f);
	free(path);
	for (unsigned v = 0; v < vms; v++) {
		path = xasprintf("%s/vm%03u.conf", vmd, v);
		bench_write_file(path, "[vm]\nqmp-socket = %s/vm%03u.qmp\ninputs = %s,%s,%s,%s\n",
				 dir, v, input_names[0], input_names[1], input_names[2],
				 input_names[3]);
		free(path);
	}
	peers = start_peers(dir, vms);
	t0 = now_usec();
	ctl = bench_vmplugd_up(conf, sock, log, &vmplugd);
	end = now_usec() + WAIT_MS * USEC_PER_MSEC;
	while (!ready(ctl, vms, &res->inputs_attached)) {
		if (now_usec() > end)
			bench_fail("vmplugd did not connect to every VM (see %s)", log);
		usleep(20000);
	}
	res->ready_ms = (now_usec() - t0) / USEC_PER_MSEC;
	res->vms = vms;
	res->sinks = count_sinks(log);
	res->hwm_kb = bench_proc_status_kb(vmplugd, "VmHWM");
	res->rss_kb = bench_proc_status_kb(vmplugd, "VmRSS");
	/* RSS less the pages of mapped files (libraries): vmplugd's own */
	res->anon_kb = bench_proc_status_kb(vmplugd, "RssAnon");
	res->fds = bench_proc_fd_count(vmplugd);
	res->libvirt_mapped = maps_libvirt(vmplugd);
	res->cpu_ms = bench_proc_cpu_usec(vmplugd) / USEC_PER_MSEC;
	bench_ctl_free(ctl);
	if (bench_vmplugd_stop(vmplugd) != 0)
		fprintf(stderr, "memory: vmplugd did not exit cleanly (see %s)\n", log);
	kill(peers, SIGKILL);
	waitpid(peers, NULL, 0);
	bench_scratch_done(dir);
	free(conf);
	free(vmd);
	free(sock);
	free(log);
}

int main(int argc, char **argv)
{
	unsigned sizes[8] = { 1, 8, 64 }, n = 3;
	struct result res[8] = { 0 };

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			sizes[0] = 1;
			sizes[1] = 4;
			n = 2;
		} else if (streq(argv[i], "--vms") && i + 1 < argc) {
			char **w = strv_split(argv[++i], ",");

			n = 0;
			for (size_t j = 0; w[j] && n < ARRAY_SIZE(sizes); j++)
				sizes[n++] = (unsigned)strtoul(w[j], NULL, 10);
			strv_free(w);
		} else {
			fprintf(stderr, "usage: %s [--short] [--vms 1,8,64]\n", argv[0]);
			return 2;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (!sizes[i] || sizes[i] > 999) {
			fprintf(stderr, "memory: VM counts are 1 to 999\n");
			return 2;
		}
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_print_machine(stdout);
	printf("/dev/uinput: %s; VMs are fake QMP peers; %d inputs each (2 keyboards, 2 mice, "
	       "devices absent)\n",
	       access("/dev/uinput", W_OK) == 0 ? "present" : "absent, so no sinks", INPUTS);
	{
		uint64_t v[START_RUNS];
		size_t timed = time_starts(v);

		bench_report("start to READY=1, nothing to attach:", v, timed);
	}
	for (unsigned i = 0; i < n; i++) {
		struct result *r = &res[i];

		run_size(sizes[i], r);
		printf("%3u VMs: peak RSS %6ld kB  RSS %6ld kB (anonymous %6ld kB)  %4u fds  "
		       "sinks %u of %u  input objects in QEMU %u  (ready after %" PRIu64
		       " ms, CPU %" PRIu64 " ms)  libvirt mapped: %s\n",
		       r->vms, r->hwm_kb, r->rss_kb, r->anon_kb, r->fds, r->sinks,
		       r->vms * INPUTS + INPUTS, r->inputs_attached, r->ready_ms, r->cpu_ms,
		       r->libvirt_mapped ? "yes" : "no");
	}
	if (n > 1 && res[n - 1].vms > res[0].vms)
		printf("per VM beyond the first: %.1f kB peak RSS, %.1f kB anonymous, %.2f fds\n",
		       (double)(res[n - 1].hwm_kb - res[0].hwm_kb) / (res[n - 1].vms - res[0].vms),
		       (double)(res[n - 1].anon_kb - res[0].anon_kb) /
			   (res[n - 1].vms - res[0].vms),
		       (double)((int)res[n - 1].fds - (int)res[0].fds) /
			   (res[n - 1].vms - res[0].vms));
	return 0;
}

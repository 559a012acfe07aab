/* idle: what vmplugd costs while nothing happens (issue 11, P4).
 *
 * Starts N real QEMUs (TCG, paused, 64 MiB, no default devices, an xhci
 * controller each), a vmplugd of the build tree with one VM per QEMU, waits
 * until every VM is connected and listed, shows what the next 6 s cost
 * (the tail of the start), then watches
 * vmplugd for a window in which nothing happens:
 *   - wake-ups: the scheduler's count of times its threads were put on a
 *     CPU (/proc/PID/task/TID/schedstat, third field) and its context
 *     switches (voluntary, nonvoluntary) from /proc/PID/task/TID/status;
 *   - its CPU time;
 *   - then, for a second window of the same length when strace is
 *     installed, its system calls (`strace -c -f -p PID`), as strace
 *     prints them.
 * The goal is 0 of everything: vmplugd sleeps in epoll_wait until a fd or
 * its one timer says something.
 *
 * Usage: idle [--short] [--seconds N] [--vms N] [--no-strace]
 * (default 60 s, 8 VMs; --short: 3 s, 2 VMs). QEMU comes from
 * $QEMU_SYSTEM (default /usr/bin/qemu-system-x86_64), vmplugd from
 * $VMPLUGD or the build tree, strace from $STRACE or PATH. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "tests/lib/qemu.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 30000
#define SETTLE_S 6

struct sample {
	uint64_t cpu_us;
	unsigned long long slices, vol, invol;
	unsigned threads;
};

static void fail(const char *what)
{
	fprintf(stderr, "idle: %s\n", what);
	exit(1);
}

/* The third field of every thread's schedstat: how many times it was put
 * on a CPU, i.e. woke up or was resumed after preemption. */
static void sample(pid_t pid, struct sample *s)
{
	char *dir = xasprintf("/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	struct dirent *e;

	*s = (struct sample){ .cpu_us = bench_proc_cpu_usec(pid) };
	bench_proc_ctxt(pid, &s->vol, &s->invol);
	while (d && (e = readdir(d))) {
		unsigned long long run, wait, slices;
		char *path;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s/schedstat", dir, e->d_name);
		f = fopen(path, "re");
		if (f && fscanf(f, "%llu %llu %llu", &run, &wait, &slices) == 3)
			s->slices += slices;
		if (f)
			fclose(f);
		s->threads++;
		free(path);
	}
	if (d)
		closedir(d);
	free(dir);
}

static void print_diff(const struct sample *a, const struct sample *b, unsigned seconds)
{
	printf("  wake-ups (times put on a CPU)   %llu  (%.2f/s)\n", b->slices - a->slices,
	       (double)(b->slices - a->slices) / seconds);
	printf("  context switches                %llu voluntary, %llu nonvoluntary\n",
	       b->vol - a->vol, b->invol - a->invol);
	printf("  CPU time                        %.3f ms\n",
	       (double)(b->cpu_us - a->cpu_us) / 1000);
}

static void wait_connected(struct bench_ctl *ctl, unsigned vms, const char *log)
{
	uint64_t end = now_usec() + WAIT_MS * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *st = bench_ctl_call(ctl, "query-status", NULL), *vm;
		unsigned up = 0;
		size_t i;

		json_array_foreach(json_object_get(st, "vms"), i, vm)
			up += streq(json_string_value(json_object_get(vm, "state")) ?: "",
				    "running");
		json_decref(st);
		if (up == vms)
			return;
		usleep(20000);
	}
	fprintf(stderr, "idle: vmplugd did not connect to every QEMU; its errors (%s):\n", log);
	{
		FILE *f = fopen(log, "re");
		char line[512];

		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, ": error: "))
				fputs(line, stderr);
		if (f)
			fclose(f);
	}
	exit(1);
}

static const char *find_strace(void)
{
	const char *s = getenv("STRACE");

	if (s && *s)
		return access(s, X_OK) == 0 ? s : NULL;
	if (access("/usr/bin/strace", X_OK) == 0)
		return "/usr/bin/strace";
	if (access("/bin/strace", X_OK) == 0)
		return "/bin/strace";
	return NULL;
}

/* strace -c -f -p pid for `seconds`, its summary copied to stdout. */
static int run_strace(const char *strace, pid_t pid, unsigned seconds, const char *out)
{
	char *spid = xasprintf("%d", (int)pid);
	pid_t child = fork();
	int status;
	FILE *f;
	char line[256];
	unsigned lines = 0;

	if (child == 0) {
		execl(strace, strace, "-q", "-c", "-f", "-p", spid, "-o", out, (char *)NULL);
		_exit(127);
	}
	free(spid);
	if (child < 0)
		return -errno;
	/* strace attaches within a fraction of a second; the window starts
	 * once it has, then SIGINT makes it detach, write its table and die
	 * of the signal. */
	usleep(300000);
	sleep(seconds);
	kill(child, SIGINT);
	if (waitpid(child, &status, 0) != child)
		return -ECHILD;
	f = fopen(out, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		printf("  %s", line);
		lines++;
	}
	if (!lines)
		printf("  (none: strace's table is empty)\n");
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned seconds = 60, vms = 8;
	bool use_strace = true;
	struct qemu **qemus;
	struct sample a, b;
	struct bench_ctl *ctl;
	const char *strace;
	char *dir, *qdir, *conf, *vmd, *sock, *log, *path;
	pid_t vmplugd;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			seconds = 3;
			vms = 2;
		} else if (streq(argv[i], "--seconds") && i + 1 < argc) {
			seconds = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--vms") && i + 1 < argc) {
			vms = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--no-strace")) {
			use_strace = false;
		} else {
			fprintf(stderr,
				"usage: %s [--short] [--seconds N] [--vms N] [--no-strace]\n",
				argv[0]);
			return 2;
		}
	}
	if (!seconds || !vms || vms > 64) {
		fprintf(stderr, "idle: --seconds must be positive, --vms 1 to 64\n");
		return 2;
	}
	if (!bench_have_qemu("idle"))
		return 77;
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);
	strace = use_strace ? find_strace() : NULL;

	dir = scratch_new("bench-idle");
	conf = xasprintf("%s/conf", dir);
	vmd = xasprintf("%s/vm.d", conf);
	sock = xasprintf("%s/control.sock", dir);
	log = xasprintf("%s/vmplugd.log", dir);
	/* QEMU's sockets in a directory of their own: vmplugd watches it
	 * (inotify) and would hear of the files made here, strace's output. */
	qdir = xasprintf("%s/qemu", dir);
	mkdir_p(qdir, 0755);
	mkdir_p(vmd, 0755);
	path = xasprintf("%s/vmplug.conf", conf);
	bench_write_file(path, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n", sock, dir);
	free(path);

	qemus = xcalloc(vms, sizeof(*qemus));
	for (unsigned i = 0; i < vms; i++) {
		char *name = xasprintf("vm%u", i);

		qemus[i] = qemu_start(qdir, name, NULL);
		if (!qemus[i])
			fail("QEMU did not start");
		/* A rule per VM for a device that is not there: the matcher
		 * and the reconciler have something to judge. */
		path = xasprintf("%s/%s.conf", vmd, name);
		bench_write_file(path,
				 "[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n"
				 "[usb \"absent\"]\nvendor = 1d6b\nproduct = %04x\n",
				 qemus[i]->qmp_path, 0xf000 + i);
		free(path);
		free(name);
	}

	bench_print_machine(stdout);
	{
		json_t *ver = qemu_check_return(qemus[0], "query-version", NULL);
		json_t *q = json_object_get(ver, "qemu");

		printf("QEMU %lld.%lld.%lld (%s), -M q35 -accel tcg -S -nodefaults -m 64; "
		       "%u VMs connected, %u s idle\n",
		       json_integer_value(json_object_get(q, "major")),
		       json_integer_value(json_object_get(q, "minor")),
		       json_integer_value(json_object_get(q, "micro")),
		       json_string_value(json_object_get(ver, "package")) ?: "", vms, seconds);
		json_decref(ver);
	}

	vmplugd = bench_vmplugd_start(conf, sock, log, NULL);
	if (vmplugd < 0)
		fail("vmplugd did not start");
	ctl = bench_ctl_connect(sock);
	if (!ctl)
		fail("cannot reach vmplugd's control socket");
	wait_connected(ctl, vms, log);
	bench_ctl_free(ctl);

	/* What is left of the start: the watcher enumerates once more a
	 * second after start, and each QMP client's command timeout timer
	 * fires once, finding nothing, 5 s after its last command (it is not
	 * moved when a command completes). Shown apart from the idle window. */
	sample(vmplugd, &a);
	sleep(SETTLE_S);
	sample(vmplugd, &b);
	printf("vmplugd in the %u s after every VM was connected:\n", SETTLE_S);
	print_diff(&a, &b, SETTLE_S);

	a = b;
	sleep(seconds);
	sample(vmplugd, &b);
	printf("vmplugd over %u s idle with %u VMs connected (%u threads), after that:\n", seconds,
	       vms, b.threads);
	print_diff(&a, &b, seconds);

	if (strace) {
		char *out = xasprintf("%s/strace.txt", dir);

		printf("system calls over a further %u s (strace -c -f -p):\n", seconds);
		if (run_strace(strace, vmplugd, seconds, out) < 0)
			printf("  (strace failed: is ptrace allowed here?)\n");
		free(out);
	} else {
		printf("system calls: not counted (%s)\n",
		       use_strace ? "no strace; apt-get install strace" : "--no-strace");
	}

	if (bench_vmplugd_stop(vmplugd) != 0)
		fprintf(stderr, "idle: vmplugd did not exit cleanly (see %s)\n", log);
	for (unsigned i = 0; i < vms; i++)
		qemu_free(qemus[i]);
	free(qemus);
	if (!getenv("BENCH_KEEP"))
		scratch_remove(dir);
	else
		free(dir);
	free(qdir);
	free(conf);
	free(vmd);
	free(sock);
	free(log);
	return 0;
}

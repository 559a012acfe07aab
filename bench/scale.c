/* Benchmark P6: vmplugd at scale. Many real QEMUs (paused, TCG, 32 MiB),
 * hundreds of fake USB devices (umockdev, tests/integration/usbbed), and
 * a storm of add and remove uevents; how long until every VM has what
 * its rules claim, what vmplugd spent on it, and a check in QEMU itself
 * (qom-list and qom-get of each usb-host device) that the final state is
 * right. Run at 1x, 2x and 4x the size to see how the cost grows.
 *
 * Layout: VM n owns one hub port (rule `port = B-H`, attach-mode port)
 * with --per-vm devices behind it (B-H.1, B-H.2, ...), eight VMs per
 * bus. All devices are plugged in before vmplugd starts (the "start"
 * phase: vmplugd attaches them all), then each storm event picks a
 * device slot at random (fixed seed) and unplugs it, or plugs it in
 * with a new device number. The testbed sends uevents as fast as
 * vmplugd takes them (a full listener queue makes it wait, see
 * sendmsg below).
 *
 * The QEMUs do not run under the testbed: with attach-mode port a paused
 * QEMU never opens the device (it would only once the VM runs), so the
 * usb-host objects vmplugd adds are the whole truth to check, and QEMU's
 * own libusb does not also take every uevent of the storm.
 *
 * Usage: scale [--short] [--sizes 1,2,4] [--vms N] [--per-vm N] [--events N]
 * (defaults: sizes 1,2,4 of 64 VMs, 8 devices each, 10000 events).
 * QEMU comes from $QEMU_SYSTEM (default /usr/bin/qemu-system-x86_64),
 * vmplugd from $VMPLUGD (default: the build tree's). Exit 77 when it
 * cannot run here, 1 when QEMU's final state is wrong. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "tests/integration/usbbed.h"
#include "tests/lib/qemu.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define VMS_PER_BUS 8
#define VENDOR 0x1234
#define PRODUCT 0x5678
#define QUIET_MS 300
#define CONVERGE_TIMEOUT_MS (600 * 1000)

static bool private_mounts; /* in a mount namespace of our own */

/* umockdev sends each uevent to each listener with a non-blocking
 * sendmsg() and gives up when the listener's queue is full. A storm
 * outruns any listener: here the sender waits for room instead, so the
 * storm goes as fast as vmplugd reads it. */
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	ssize_t r;

	if (!real)
		real = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
	while ((r = real(fd, msg, flags)) < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (poll(&p, 1, 1) < 0 && errno != EINTR)
			break;
	}
	return r;
}

struct slot {
	unsigned vm, bus;
	char port[32];
	unsigned devnum; /* 0: unplugged */
};

struct run {
	unsigned vms, per_vm, events;
	unsigned buses;
	char *dir, *conf, *sock, *log;
	struct usbbed *bed;
	struct qemu **qemu;
	struct slot *slots;
	size_t n_slots;
	bool (*used)[128]; /* per bus: device numbers in use */
	unsigned *next;    /* per bus: the next device number to try */
	pid_t vmplugd;
	struct bench_ctl *ctl;
	uint64_t last_event; /* realtime of the last USB_* event seen */
	unsigned attached, detached, failed;
};

struct result {
	unsigned vms, devices, events;
	uint64_t start_ms, start_cpu_ms;
	uint64_t storm_ms, converge_ms, storm_cpu_ms;
	uint64_t qemu_cpu_ms, self_cpu_ms;
	long hwm_kb;
	unsigned present, attached, detached, failed, fds;
	bool correct;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static unsigned take_devnum(struct run *r, unsigned bus)
{
	for (unsigned i = 0; i < 126; i++) {
		unsigned d = r->next[bus];

		r->next[bus] = d >= 127 ? 2 : d + 1;
		if (!r->used[bus][d]) {
			r->used[bus][d] = true;
			return d;
		}
	}
	bench_fail("bus %u has no free device number", bus);
}

static void plug(struct run *r, struct slot *s)
{
	struct usbbed_dev d = { .port = s->port,
				.vendor = VENDOR,
				.product = PRODUCT,
				.if_class = 0xff,
				.no_node = true };

	s->devnum = d.devnum = take_devnum(r, s->bus);
	usbbed_plug(r->bed, &d);
}

static void unplug(struct run *r, struct slot *s)
{
	usbbed_unplug(r->bed, s->port);
	r->used[s->bus][s->devnum] = false;
	s->devnum = 0;
}

/* Take vmplugd's events that are already there, counting USB ones. */
static void note_event(struct run *r, json_t *ev)
{
	const char *name = bench_event_name(ev);

	if (!startswith(name, "USB_"))
		return;
	r->last_event = bench_event_time(ev);
	if (streq(name, "USB_ATTACHED"))
		r->attached++;
	else if (streq(name, "USB_DETACHED"))
		r->detached++;
	else if (streq(name, "USB_FAILED"))
		r->failed++;
}

static void drain_events(struct run *r, unsigned timeout_ms)
{
	json_t *ev;

	while ((ev = bench_ctl_event(r->ctl, timeout_ms))) {
		note_event(r, ev);
		json_decref(ev);
		timeout_ms = 0;
	}
}

static char *usb_id(unsigned bus, unsigned devnum)
{
	return xasprintf("vmplug-usbport-%u-%u", bus, devnum);
}

/* Does the slot of VM vm with this id exist (plugged in)? */
static const struct slot *expected_slot(const struct run *r, unsigned vm, const char *id)
{
	for (unsigned k = 0; k < r->per_vm; k++) {
		const struct slot *s = &r->slots[vm * r->per_vm + k];
		char *want;
		bool match;

		if (!s->devnum)
			continue;
		want = usb_id(s->bus, s->devnum);
		match = streq(want, id);
		free(want);
		if (match)
			return s;
	}
	return NULL;
}

static unsigned vm_present(const struct run *r, unsigned vm)
{
	unsigned n = 0;

	for (unsigned k = 0; k < r->per_vm; k++)
		n += r->slots[vm * r->per_vm + k].devnum != 0;
	return n;
}

/* vmplugd says every VM runs, nothing is pending and each VM has exactly
 * its devices attached. */
static bool vmplugd_converged(struct run *r)
{
	json_t *st = bench_ctl_call(r->ctl, "query-status", NULL), *vm;
	bool ok = st != NULL;
	size_t i;

	json_array_foreach(json_object_get(st, "vms"), i, vm) {
		json_t *usb = json_object_get(vm, "usb"), *it;
		unsigned n;
		size_t j;

		if (!ok)
			break;
		if (sscanf(json_string_value(json_object_get(vm, "name")) ?: "", "vm%u", &n) != 1 ||
		    n >= r->vms ||
		    !streq(json_string_value(json_object_get(vm, "state")) ?: "", "running") ||
		    json_integer_value(json_object_get(vm, "pending")) != 0 ||
		    json_array_size(usb) != vm_present(r, n)) {
			ok = false;
			break;
		}
		json_array_foreach(usb, j, it)
			if (!streq(json_string_value(json_object_get(it, "state")) ?: "",
				   "attached") ||
			    !expected_slot(r, n,
					   json_string_value(json_object_get(it, "id")) ?: ""))
				ok = false;
	}
	json_decref(st);
	return ok;
}

/* Wait until vmplugd has converged: its events went quiet and its status
 * is the expected one. Returns the realtime it got there: its last USB
 * event, or `since` when there was none after it. */
static uint64_t wait_converged(struct run *r, uint64_t since)
{
	uint64_t end = now_usec() + CONVERGE_TIMEOUT_MS * USEC_PER_MSEC;

	for (;;) {
		unsigned before = r->attached + r->detached + r->failed;

		drain_events(r, QUIET_MS);
		if (r->attached + r->detached + r->failed == before && vmplugd_converged(r))
			break;
		if (now_usec() > end)
			bench_fail("vmplugd did not converge in %d s (see %s)",
				   CONVERGE_TIMEOUT_MS / 1000, r->log);
	}
	return r->last_event > since ? r->last_event : since;
}

/* QEMU's own view: each VM's vmplug- usb-host devices, their hostbus and
 * hostport, against the slots. Returns the number of differences. */
static unsigned check_qemu(struct run *r, unsigned *seen)
{
	unsigned wrong = 0;

	*seen = 0;
	for (unsigned v = 0; v < r->vms; v++) {
		json_t *list = qemu_check_return(r->qemu[v], "qom-list",
						 json_pack("{s:s}", "path", "/machine/peripheral"));
		json_t *o;
		unsigned found = 0;
		size_t i;

		if (!list)
			bench_fail("vm%03u: qom-list failed", v);
		json_array_foreach(list, i, o) {
			const char *name = json_string_value(json_object_get(o, "name")) ?: "";
			const struct slot *s;
			char *path;
			json_t *bus, *port;

			if (!streq(json_string_value(json_object_get(o, "type")) ?: "",
				   "child<usb-host>") ||
			    !startswith(name, "vmplug-"))
				continue;
			s = expected_slot(r, v, name);
			if (!s) {
				fprintf(stderr, "scale: vm%03u has %s, which it should not\n", v,
					name);
				wrong++;
				continue;
			}
			path = xasprintf("/machine/peripheral/%s", name);
			bus = qemu_check_return(
			    r->qemu[v], "qom-get",
			    json_pack("{s:s,s:s}", "path", path, "property", "hostbus"));
			port = qemu_check_return(
			    r->qemu[v], "qom-get",
			    json_pack("{s:s,s:s}", "path", path, "property", "hostport"));
			if (json_integer_value(bus) != (json_int_t)s->bus ||
			    !streq(json_string_value(port) ?: "", strchr(s->port, '-') + 1)) {
				fprintf(stderr, "scale: vm%03u: %s is not on port %s\n", v, name,
					s->port);
				wrong++;
			}
			found++;
			json_decref(bus);
			json_decref(port);
			free(path);
		}
		if (found != vm_present(r, v)) {
			fprintf(stderr, "scale: vm%03u has %u of its %u devices\n", v, found,
				vm_present(r, v));
			wrong++;
		}
		*seen += found;
		json_decref(list);
	}
	return wrong;
}

static uint64_t self_cpu_usec(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * USEC_PER_SEC +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void write_conf(struct run *r)
{
	char *vmd = xasprintf("%s/vm.d", r->conf), *path;

	mkdir_p(vmd, 0755);
	path = xasprintf("%s/vmplug.conf", r->conf);
	bench_write_file(path, "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n", r->sock,
			 r->dir);
	free(path);
	for (unsigned v = 0; v < r->vms; v++) {
		path = xasprintf("%s/vm%03u.conf", vmd, v);
		bench_write_file(path,
				 "[vm]\nqmp-socket = %s\nusb-bus = xhci.0\n"
				 "[usb \"hub\"]\nport = %u-%u\nattach-mode = port\n",
				 r->qemu[v]->qmp_path, 1 + v / VMS_PER_BUS, 1 + v % VMS_PER_BUS);
		free(path);
	}
	free(vmd);
}

static void start_qemus(struct run *r)
{
	/* not under the testbed (see the top); 32 MiB; ports enough for
	 * every device a VM may hold */
	char *const env[] = { (char *)"LD_PRELOAD=", (char *)"UMOCKDEV_DIR=", NULL };
	char *const args[] = { (char *)"-m",
			       (char *)"32",
			       (char *)"-global",
			       (char *)"qemu-xhci.p2=15",
			       (char *)"-global",
			       (char *)"qemu-xhci.p3=15",
			       NULL };

	r->qemu = xcalloc(r->vms, sizeof(*r->qemu));
	for (unsigned v = 0; v < r->vms; v++) {
		char *name = xasprintf("vm%03u", v);

		r->qemu[v] = qemu_start_args(r->dir, name, env, args);
		if (!r->qemu[v])
			bench_fail("QEMU %s did not start", name);
		free(name);
	}
}

static void run_size(unsigned vms, unsigned per_vm, unsigned events, struct result *res)
{
	struct run r = { .vms = vms, .per_vm = per_vm, .events = events };
	char *const env[] = { NULL };
	uint64_t t0, t1, cpu0, cpu1, self0, qcpu0 = 0, qcpu1 = 0;
	unsigned seen, wrong, present = 0;
	char *tree;
	bool mounted = false;

	r.buses = (vms + VMS_PER_BUS - 1) / VMS_PER_BUS;
	r.dir = scratch_new("bench-scale");
	r.conf = xasprintf("%s/conf", r.dir);
	r.sock = xasprintf("%s/control.sock", r.dir);
	r.log = xasprintf("%s/vmplugd.log", r.dir);
	r.used = xcalloc(r.buses + 1, sizeof(*r.used));
	r.next = xcalloc(r.buses + 1, sizeof(*r.next));
	/* The tree on tmpfs, for speed (umockdev fsyncs every attribute),
	 * but not under /dev/shm: the preload counts every file opened under
	 * /dev in a small fixed table, and writing the attributes of hundreds
	 * of devices there overflows it. As root, a tmpfs of our own (in our
	 * own mount namespace, see main); else the scratch directory. */
	tree = xasprintf("%s/tree", r.dir);
	mkdir_p(tree, 0755);
	if (private_mounts && mount("tmpfs", tree, "tmpfs", 0, "mode=0755") == 0)
		mounted = true;
	setenv("USBBED_TMPDIR", tree, 1);
	r.bed = usbbed_new(r.buses);
	setenv("UMOCKDEV_DIR", usbbed_dir(r.bed), 1);
	for (unsigned b = 1; b <= r.buses; b++) {
		r.used[b][1] = true; /* the root hub */
		r.next[b] = 2;
	}
	/* the hubs, then every device plugged in */
	for (unsigned v = 0; v < vms; v++) {
		unsigned bus = 1 + v / VMS_PER_BUS;
		char *port = xasprintf("%u-%u", bus, 1 + v % VMS_PER_BUS);
		struct usbbed_dev hub = { .port = port,
					  .vendor = 0x05e3,
					  .product = 0x0610,
					  .dev_class = 0x09,
					  .if_class = 0x09,
					  .no_node = true };

		hub.devnum = take_devnum(&r, bus);
		usbbed_plug(r.bed, &hub);
		free(port);
	}
	r.n_slots = (size_t)vms * per_vm;
	r.slots = xcalloc(r.n_slots, sizeof(*r.slots));
	for (size_t i = 0; i < r.n_slots; i++) {
		struct slot *s = &r.slots[i];

		s->vm = (unsigned)(i / per_vm);
		s->bus = 1 + s->vm / VMS_PER_BUS;
		snprintf(s->port, sizeof(s->port), "%u-%u.%zu", s->bus, 1 + s->vm % VMS_PER_BUS,
			 1 + i % per_vm);
		plug(&r, s);
	}
	start_qemus(&r);
	write_conf(&r);

	/* start: vmplugd finds every device and attaches it */
	t0 = bench_realtime_usec();
	r.vmplugd = bench_vmplugd_start(r.conf, r.sock, r.log, env);
	if (r.vmplugd < 0)
		bench_fail("vmplugd did not start");
	r.ctl = bench_ctl_connect(r.sock);
	{
		json_t *ok = r.ctl ? bench_ctl_call(r.ctl, "subscribe", NULL) : NULL;

		if (!ok)
			bench_fail("cannot subscribe to vmplugd's events");
		json_decref(ok);
	}
	t1 = wait_converged(&r, t0);
	res->start_ms = (t1 - t0) / USEC_PER_MSEC;
	res->start_cpu_ms = bench_proc_cpu_usec(r.vmplugd) / USEC_PER_MSEC;

	/* the storm */
	for (unsigned v = 0; v < vms; v++)
		qcpu0 += bench_proc_cpu_usec(r.qemu[v]->pid);
	r.attached = r.detached = r.failed = 0;
	cpu0 = bench_proc_cpu_usec(r.vmplugd);
	self0 = self_cpu_usec();
	t0 = bench_realtime_usec();
	for (unsigned e = 0; e < events; e++) {
		struct slot *s = &r.slots[rng() % r.n_slots];

		if (s->devnum)
			unplug(&r, s);
		else
			plug(&r, s);
		drain_events(&r, 0);
	}
	t1 = bench_realtime_usec();
	res->self_cpu_ms = (self_cpu_usec() - self0) / USEC_PER_MSEC;
	res->storm_ms = (t1 - t0) / USEC_PER_MSEC;
	res->converge_ms = (wait_converged(&r, t1) - t1) / USEC_PER_MSEC;
	cpu1 = bench_proc_cpu_usec(r.vmplugd);
	for (unsigned v = 0; v < vms; v++)
		qcpu1 += bench_proc_cpu_usec(r.qemu[v]->pid);
	res->storm_cpu_ms = (cpu1 - cpu0) / USEC_PER_MSEC;
	res->qemu_cpu_ms = (qcpu1 - qcpu0) / USEC_PER_MSEC;
	res->hwm_kb = bench_proc_status_kb(r.vmplugd, "VmHWM");
	for (size_t i = 0; i < r.n_slots; i++)
		present += r.slots[i].devnum != 0;

	wrong = check_qemu(&r, &seen);
	res->vms = vms;
	res->devices = (unsigned)r.n_slots;
	res->events = events;
	res->present = present;
	res->correct = wrong == 0 && seen == present;

	res->attached = r.attached;
	res->detached = r.detached;
	res->failed = r.failed;
	res->fds = bench_proc_fd_count(r.vmplugd);
	bench_ctl_free(r.ctl);
	if (bench_vmplugd_stop(r.vmplugd) != 0)
		fprintf(stderr, "scale: vmplugd did not exit cleanly (see %s)\n", r.log);
	for (unsigned v = 0; v < vms; v++)
		qemu_free(r.qemu[v]);
	free(r.qemu);
	usbbed_free(r.bed);
	unsetenv("USBBED_TMPDIR");
	if (mounted)
		umount2(tree, MNT_DETACH);
	free(tree);
	if (!getenv("BENCH_KEEP") && res->correct)
		scratch_remove(r.dir);
	else
		free(r.dir);
	free(r.conf);
	free(r.sock);
	free(r.log);
	free(r.slots);
	free(r.used);
	free(r.next);
}

/* Each size in a process of its own: a fresh testbed (umockdev keeps
 * state per process) and nothing left over from the size before. */
static void run_isolated(unsigned vms, unsigned per_vm, unsigned events, struct result *res)
{
	int fds[2], status;
	pid_t pid;

	if (pipe(fds) < 0)
		bench_fail("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		run_size(vms, per_vm, events, res);
		_exit(write(fds[1], res, sizeof(*res)) == (ssize_t)sizeof(*res) ? 0 : 1);
	}
	close(fds[1]);
	if (read(fds[0], res, sizeof(*res)) != (ssize_t)sizeof(*res))
		bench_fail("the run of %u VMs did not finish", vms);
	close(fds[0]);
	waitpid(pid, &status, 0);
}

static unsigned work(const struct result *r)
{
	return r->events + r->attached + r->detached;
}

/* vmplugd's CPU per uevent or QMP device command, in microseconds. */
static double per_work(const struct result *r)
{
	return (double)r->storm_cpu_ms * 1000 / work(r);
}

static void print_result(unsigned size, const struct result *r)
{
	printf("%ux: %u VMs, %u devices, %u events\n", size, r->vms, r->devices, r->events);
	printf("  start: all %u devices attached %" PRIu64 " ms after vmplugd started "
	       "(vmplugd CPU %" PRIu64 " ms)\n",
	       r->devices, r->start_ms, r->start_cpu_ms);
	printf("  storm: %u uevents sent in %" PRIu64 " ms (the testbed's CPU %" PRIu64 " ms)\n",
	       r->events, r->storm_ms, r->self_cpu_ms);
	printf("  converged %" PRIu64 " ms after the last uevent; %u device_add and %u "
	       "device_del done, %u failed\n",
	       r->converge_ms, r->attached, r->detached, r->failed);
	printf("  vmplugd CPU, storm to converged: %" PRIu64 " ms (%.1f us per event); "
	       "QEMUs' CPU: %" PRIu64 " ms\n",
	       r->storm_cpu_ms, (double)r->storm_cpu_ms * 1000 / r->events, r->qemu_cpu_ms);
	printf("  vmplugd peak RSS %ld kB, %u open fds\n", r->hwm_kb, r->fds);
	printf("  QEMU check: %s (%u VMs, %u devices present)\n",
	       r->correct ? "every VM has exactly the devices its rules claim" : "WRONG", r->vms,
	       r->present);
}

int main(int argc, char **argv)
{
	unsigned vms = 64, per_vm = 8, events = 10000;
	unsigned sizes[8] = { 1, 2, 4 }, n_sizes = 3;
	struct result res[8] = { 0 };
	bool all_ok = true;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			vms = 2;
			per_vm = 4;
			events = 200;
			sizes[0] = 1;
			sizes[1] = 2;
			n_sizes = 2;
		} else if (streq(argv[i], "--vms") && i + 1 < argc) {
			vms = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--per-vm") && i + 1 < argc) {
			per_vm = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--events") && i + 1 < argc) {
			events = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (streq(argv[i], "--sizes") && i + 1 < argc) {
			char **w = strv_split(argv[++i], ",");

			n_sizes = 0;
			for (size_t j = 0; w[j] && n_sizes < ARRAY_SIZE(sizes); j++)
				sizes[n_sizes++] = (unsigned)strtoul(w[j], NULL, 10);
			strv_free(w);
		} else {
			fprintf(stderr,
				"usage: %s [--short] [--sizes 1,2,4] [--vms N] [--per-vm N] "
				"[--events N]\n",
				argv[0]);
			return 2;
		}
	}
	for (unsigned i = 0; i < n_sizes; i++) {
		if (!sizes[i] || !vms || !events || !per_vm || per_vm > 15) {
			fprintf(stderr, "scale: sizes, --vms and --events must be positive, "
					"--per-vm 1 to 15\n");
			return 2;
		}
	}
	if (!bench_have_qemu("scale"))
		return 77;
	usbbed_reexec(argv);
	if (geteuid() == 0 && unshare(CLONE_NEWNS) == 0 &&
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
		private_mounts = true;
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_print_machine(stdout);
	printf("QEMU -M q35 -accel tcg -S -m 32, not opening the devices (attach-mode port); "
	       "%u devices per VM, %u VMs per bus\n",
	       per_vm, VMS_PER_BUS);
	for (unsigned i = 0; i < n_sizes; i++) {
		run_isolated(vms * sizes[i], per_vm, events * sizes[i], &res[i]);
		print_result(sizes[i], &res[i]);
		all_ok &= res[i].correct;
	}
	printf("how it grows (each size against %ux):\n", sizes[0]);
	/* Per unit of work: a uevent read and judged, or a device_add or
	 * device_del sent and answered. How many of the latter a storm
	 * causes depends on how fast each port flaps (the debounce holds
	 * back ports that change more than three times in 2 s), and a
	 * bigger storm on this machine is slower per port. */
	printf("  %-5s %5s %7s %7s %10s %10s %12s %8s %8s %10s\n", "size", "VMs", "devices",
	       "events", "start ms", "storm ms", "converge ms", "QMP ops", "CPU ms", "CPU/work");
	for (unsigned i = 0; i < n_sizes; i++) {
		const struct result *r = &res[i];
		char size[16];

		snprintf(size, sizeof(size), "%ux", sizes[i]);
		printf("  %-5s %5u %7u %7u %10" PRIu64 " %10" PRIu64 " %12" PRIu64 " %8u %8" PRIu64
		       " %7.1f us  (CPU x%.2f, work x%.2f, for size x%.2f)\n",
		       size, r->vms, r->devices, r->events, r->start_ms, r->storm_ms,
		       r->converge_ms, r->attached + r->detached, r->storm_cpu_ms, per_work(r),
		       res[0].storm_cpu_ms ? (double)r->storm_cpu_ms / (double)res[0].storm_cpu_ms
					   : 0.0,
		       (double)work(r) / (double)work(&res[0]), (double)sizes[i] / sizes[0]);
	}
	return all_ok ? 0 : 1;
}

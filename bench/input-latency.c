/* input-latency: what vmplugd adds per input frame, source to sink, and
 * the CPU it spends per 1000 frames (issue 11, P2 and P3).
 *
 * Needs /dev/uinput (a real kernel: run it in the e2e guest or as root on
 * a machine). A uinput device stands in for the physical one: a keyboard
 * (MSC_SCAN and a key, pressed then released) or a gaming mouse (REL_X
 * and REL_Y every frame, a button now and then, the wheel with its
 * high-resolution event). A thread writes its frames at a steady rate
 * (125, 1000 and 8000 frames/s), one write() per frame, noting the
 * CLOCK_MONOTONIC time just before each write.
 *
 * The kernel stamps every event with the time it was injected; a reader
 * that asks for CLOCK_MONOTONIC stamps (EVIOCSCLOCKID) sees when each
 * frame entered its device. So per frame:
 *   - floor: note to the source's stamp, read straight from the source
 *     before vmplugd runs (the write system call itself);
 *   - through vmplugd: note to the stamp of the same frame on the sink
 *     vmplugd made for the host (vmplug-host-src; the focus starts on the
 *     host): vmplugd's epoll wake-up, read, router and write, plus the
 *     floor. Each frame says which one it is (the keyboard's MSC_SCAN,
 *     the mouse's REL_X and REL_Y) and is checked whole; frames lost to
 *     a reader that fell behind (SYN_DROPPED) are counted, not timed.
 *   - added: through minus floor, median and p99 of each distribution.
 * What the final reader (QEMU) does after that is the same with or
 * without vmplugd, so it is left out.
 * CPU: vmplugd's own (all threads, /proc/PID/task/TID/schedstat) over the
 * run at each rate (until the last frame is through), per 1000 frames sent
 * and as a share of a core over that time.
 *
 * vmplugd is the one of the build tree ($VMPLUGD), started with a VM whose
 * QEMU never comes (it waits without polling) and one input, the source;
 * its capability cache is written first so its sinks match the source.
 * It runs with the real-time priority vmplugd.service gives it (SCHED_FIFO
 * 1, reset on fork), or with --normal-priority as a plain process: the
 * kernel drops a source's events when vmplugd has not read them for a few
 * dozen events, and only their key state comes back, so frames arrive
 * changed (merged, without their scan code). The first such frame is
 * shown.
 *
 * Usage: input-latency [--short] [--normal-priority]
 *                      [--device keyboard|mouse]... [--rates R,R,...]
 *                      [--seconds S]
 * (default: both devices, 125,1000,8000 frames/s, 5 s at each rate;
 * --short: 0.5 s at each). Exit status 77 when /dev/uinput is missing. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev-uinput.h>
#include <libevdev/libevdev.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "input/cache.h"
#include "tests/lib/testlib.h"
#include "util/log.h"
#include "util/util.h"

#define MAX_RATES 8

enum kind { KEYBOARD, MOUSE };

struct gen {
	enum kind kind;
	int fd;         /* the source's uinput fd */
	unsigned rate;  /* frames per second */
	size_t frames;  /* to send */
	uint64_t *sent; /* monotonic ns before each write */
	atomic_size_t n_sent;
};

static void die(const char *what, int err)
{
	fprintf(stderr, "input-latency: %s: %s\n", what, strerror(err));
	exit(err == ENOENT || err == EACCES ? 77 : 1);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Frame i of kind into ev (with its SYN_REPORT); the number of events.
 * Its values say which frame it is (see frame_index()). */
static size_t make_frame(enum kind kind, size_t i, struct input_event *ev)
{
	size_t n = 0;

#define PUT(t, c, v)                                                                               \
	ev[n++] = (struct input_event)                                                             \
	{                                                                                          \
		.type = (t), .code = (c), .value = (v)                                             \
	}
	if (kind == KEYBOARD) {
		/* press then release, KEY_1 .. KEY_0 in turn; the scan code
		 * says which frame it is */
		PUT(EV_MSC, MSC_SCAN, (int)i);
		PUT(EV_KEY, KEY_1 + i / 2 % 10, (int)(~i & 1));
	} else {
		/* which frame it is; never 0: the kernel drops a relative
		 * event of 0 */
		PUT(EV_REL, REL_X, 1 + (int)(i % 1000));
		PUT(EV_REL, REL_Y, -1 - (int)(i / 1000));
		if (i % 64 == 10)
			PUT(EV_KEY, BTN_LEFT, 1);
		else if (i % 64 == 20)
			PUT(EV_KEY, BTN_LEFT, 0);
		else if (i % 64 == 40) {
			PUT(EV_REL, REL_WHEEL, 1);
			PUT(EV_REL, REL_WHEEL_HI_RES, 120);
		}
	}
	PUT(EV_SYN, SYN_REPORT, 0);
#undef PUT
	return n;
}

/* The frame a received one is, from its first events; -1 if unknown. */
static long frame_index(enum kind kind, const struct input_event *ev, size_t n)
{
	if (kind == KEYBOARD)
		return n && ev[0].type == EV_MSC ? ev[0].value : -1;
	if (n < 2 || ev[0].code != REL_X || ev[1].code != REL_Y)
		return -1;
	return (long)(-ev[1].value - 1) * 1000 + ev[0].value - 1;
}

static void *generate(void *arg)
{
	struct gen *g = arg;
	uint64_t period = 1000000000ULL / g->rate, start = mono_ns() + 1000000;
	struct input_event ev[8];

	for (size_t i = 0; i < g->frames; i++) {
		uint64_t due = start + i * period;
		struct timespec ts = { .tv_sec = (time_t)(due / 1000000000ULL),
				       .tv_nsec = (long)(due % 1000000000ULL) };
		size_t n = make_frame(g->kind, i, ev);

		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		g->sent[i] = mono_ns();
		atomic_store(&g->n_sent, i + 1);
		if (write(g->fd, ev, n * sizeof(*ev)) != (ssize_t)(n * sizeof(*ev)))
			die("writing to the source", errno);
	}
	return NULL;
}

struct run {
	uint64_t *lat; /* ns, per frame received */
	size_t n, mismatched, dropped;
	char *example; /* the first frame not as sent */
};

/* A frame as text, for the report: "MSC_SCAN 4, KEY_3 1". */
static char *frame_text(const struct input_event *ev, size_t n)
{
	char *text = xstrdup("");

	for (size_t i = 0; i < n; i++) {
		const char *code = libevdev_event_code_get_name(ev[i].type, ev[i].code);
		char *more = xasprintf("%s%s%s %d", text, i ? ", " : "", code ? code : "?",
				       ev[i].value);

		free(text);
		text = more;
	}
	return text;
}

static bool memcmp_events(const struct input_event *a, const struct input_event *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].type != b[i].type || a[i].code != b[i].code || a[i].value != b[i].value)
			return false;
	return true;
}

/* Send g->frames frames on g while reading reader (a device fd with
 * monotonic stamps): for each frame, its stamp minus the time it was
 * sent. Stops reading once all were sent and nothing came for 1 s. */
static void measure(struct gen *g, int reader, struct run *r)
{
	struct input_event buf[64], got[8], want[8];
	size_t n = 0;
	pthread_t t;
	uint64_t last = mono_ns();

	*r = (struct run){ .lat = xcalloc(g->frames, sizeof(uint64_t)) };
	atomic_store(&g->n_sent, 0);
	if (pthread_create(&t, NULL, generate, g) != 0)
		die("pthread_create", EAGAIN);
	for (;;) {
		struct pollfd p = { .fd = reader, .events = POLLIN };
		ssize_t len;

		if (atomic_load(&g->n_sent) == g->frames && mono_ns() - last > 1000000000ULL)
			break; /* all sent, and nothing came for a second */
		if (poll(&p, 1, 100) <= 0)
			continue;
		last = mono_ns();
		len = read(reader, buf, sizeof(buf));
		if (len < 0 && errno == EAGAIN)
			continue;
		if (len < 0)
			die("reading the device", errno);
		for (size_t k = 0; k < (size_t)len / sizeof(*buf); k++) {
			const struct input_event *e = &buf[k];
			uint64_t stamp;
			long i;

			if (e->type == EV_SYN && e->code == SYN_DROPPED) {
				r->dropped++;
				n = 0;
				continue;
			}
			if (e->type != EV_SYN) {
				if (n < ARRAY_SIZE(got))
					got[n++] = *e;
				continue;
			}
			if (e->code != SYN_REPORT)
				continue;
			/* A frame: which one, and is it what was sent? */
			stamp = (uint64_t)e->input_event_sec * 1000000000ULL +
				(uint64_t)e->input_event_usec * 1000ULL;
			i = frame_index(g->kind, got, n);
			if (i >= 0 && (size_t)i < atomic_load(&g->n_sent) &&
			    make_frame(g->kind, (size_t)i, want) == n + 1 &&
			    memcmp_events(want, got, n))
				r->lat[r->n++] = stamp > g->sent[i] ? stamp - g->sent[i] : 0;
			else if (r->mismatched++ == 0)
				r->example = frame_text(got, n);
			n = 0;
		}
	}
	pthread_join(t, NULL);
}

/* Microseconds from nanoseconds, for the report. */
static void to_usec(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		r->lat[i] /= 1000;
}

static int open_stamped(const char *node)
{
	int fd = open(node, O_RDONLY | O_NONBLOCK | O_CLOEXEC), clk = CLOCK_MONOTONIC;

	if (fd < 0)
		die(node, errno);
	if (ioctl(fd, EVIOCSCLOCKID, &clk) < 0)
		die("EVIOCSCLOCKID", errno);
	return fd;
}

/* The event node of the input device called name, NULL if none yet. */
static char *find_node(const char *name)
{
	for (int i = 0; i < 1024; i++) {
		char *path = xasprintf("/sys/class/input/event%d/device/name", i), buf[256];
		FILE *f = fopen(path, "re");
		bool match = false;

		free(path);
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			buf[strcspn(buf, "\n")] = '\0';
			match = streq(buf, name);
		}
		fclose(f);
		if (match)
			return xasprintf("/dev/input/event%d", i);
	}
	return NULL;
}

static void report_line(const char *what, uint64_t *v, size_t n)
{
	if (!n) {
		printf("  %-34s no frames\n", what);
		return;
	}
	printf("  %-34s median %7.1f us  p99 %7.1f us  max %8.1f us  (n=%zu)\n", what,
	       (double)bench_pct(v, n, 0.5), (double)bench_pct(v, n, 0.99),
	       (double)bench_pct(v, n, 1.0), n);
}

/* How many frames a run at rate sends: an even number, so that every
 * key pressed is released and the next run starts with none down (the
 * kernel would drop its first press as a repeat of the state). */
static size_t frames_at(double seconds, unsigned rate)
{
	return ((size_t)(seconds * rate) + 1) & ~(size_t)1;
}

static void bench_device(enum kind kind, const unsigned *rates, size_t n_rates, double seconds,
			 bool realtime)
{
	const char *kname = kind == KEYBOARD ? "keyboard" : "mouse";
	struct libevdev *caps = input_cache_fallback(kind == KEYBOARD ? INPUT_CACHE_KEYBOARD
								      : INPUT_CACHE_MOUSE);
	struct libevdev_uinput *src;
	struct run floor[MAX_RATES], thru[MAX_RATES];
	uint64_t cpu[MAX_RATES], elapsed[MAX_RATES];
	char *dir, *conf, *vmd, *sock, *log, *path, *node = NULL, *srcname;
	int ufd, direct, sink;
	pid_t vmplugd;
	int r;

	srcname = xasprintf("vmplug bench %s", kname);
	libevdev_set_name(caps, srcname);
	libevdev_disable_event_type(caps, EV_REP); /* no autorepeat during the load */
	ufd = open("/dev/uinput", O_RDWR | O_CLOEXEC);
	if (ufd < 0)
		die("/dev/uinput", errno);
	r = libevdev_uinput_create_from_device(caps, ufd, &src);
	if (r < 0)
		die("creating the source", -r);
	usleep(200000); /* let udev see it */

	/* The floor: the source read directly, before vmplugd grabs it. */
	direct = open_stamped(libevdev_uinput_get_devnode(src));
	for (size_t i = 0; i < n_rates; i++) {
		struct gen g = { .kind = kind, .fd = ufd, .rate = rates[i] };

		g.frames = frames_at(seconds, rates[i]);
		g.sent = xcalloc(g.frames, sizeof(uint64_t));
		measure(&g, direct, &floor[i]);
		free(g.sent);
	}
	close(direct);

	dir = scratch_new("bench-input");
	conf = xasprintf("%s/conf", dir);
	vmd = xasprintf("%s/vm.d", conf);
	sock = xasprintf("%s/control.sock", dir);
	log = xasprintf("%s/vmplugd.log", dir);
	mkdir_p(vmd, 0755);
	/* As after vmplugd's first run: the cache holds the source's
	 * capabilities, so the sinks have exactly them. */
	path = xasprintf("%s/cache", dir);
	r = input_cache_save(path, "src", caps);
	if (r < 0)
		die("writing the capability cache", -r);
	free(path);
	path = xasprintf("%s/vmplug.conf", conf);
	bench_write_file(path,
			 "[daemon]\ncontrol-socket = %s\ncache-dir = %s/cache\n"
			 "[input \"src\"]\ndevice = %s\n",
			 sock, dir, libevdev_uinput_get_devnode(src));
	free(path);
	path = xasprintf("%s/bench.conf", vmd);
	bench_write_file(path, "[vm]\nqmp-socket = %s/never.qmp\ninputs = src\n", dir);
	free(path);
	vmplugd = bench_vmplugd_start(conf, sock, log, NULL);
	if (vmplugd < 0)
		die("vmplugd did not start", EIO);
	if (realtime) {
		struct sched_param sp = { .sched_priority = 1 };

		if (sched_setscheduler(vmplugd, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0)
			die("giving vmplugd real-time priority", errno);
	}
	for (int i = 0; i < 100 && !node; i++) {
		node = find_node("vmplug-host-src");
		if (!node)
			usleep(50000);
	}
	if (!node)
		die("vmplugd made no vmplug-host-src sink", ENODEV);
	sink = open_stamped(node);
	usleep(500000); /* the source opened and grabbed */

	for (size_t i = 0; i < n_rates; i++) {
		struct gen g = { .kind = kind, .fd = ufd, .rate = rates[i] };
		uint64_t cpu0 = bench_proc_cpu_usec(vmplugd), t0 = now_usec();

		g.frames = frames_at(seconds, rates[i]);
		g.sent = xcalloc(g.frames, sizeof(uint64_t));
		measure(&g, sink, &thru[i]);
		cpu[i] = bench_proc_cpu_usec(vmplugd) - cpu0;
		elapsed[i] = now_usec() - t0;
		free(g.sent);
	}
	close(sink);
	if (bench_vmplugd_stop(vmplugd) != 0)
		fprintf(stderr, "input-latency: vmplugd did not exit cleanly (see %s)\n", log);

	for (size_t i = 0; i < n_rates; i++) {
		size_t sent = frames_at(seconds, rates[i]);

		to_usec(&floor[i]);
		to_usec(&thru[i]);
		printf("%s at %u frames/s, %zu frames:\n", kname, rates[i], sent);
		report_line("floor (write to source stamp)", floor[i].lat, floor[i].n);
		report_line("through vmplugd (to sink stamp)", thru[i].lat, thru[i].n);
		if (floor[i].n && thru[i].n)
			printf("  %-34s median %+7.1f us  p99 %+7.1f us\n", "added by vmplugd",
			       (double)bench_pct(thru[i].lat, thru[i].n, 0.5) -
				   (double)bench_pct(floor[i].lat, floor[i].n, 0.5),
			       (double)bench_pct(thru[i].lat, thru[i].n, 0.99) -
				   (double)bench_pct(floor[i].lat, floor[i].n, 0.99));
		printf("  %-34s %.3f ms per 1000 frames (%.1f%% of a core)\n", "vmplugd CPU",
		       (double)cpu[i] / (double)sent, 100.0 * (double)cpu[i] / (double)elapsed[i]);
		if (thru[i].n < sent || floor[i].n < sent)
			printf("  %-34s floor %zu of %zu (%zu SYN_DROPPED), through %zu of %zu "
			       "(%zu SYN_DROPPED)\n",
			       "frames timed", floor[i].n, sent, floor[i].dropped, thru[i].n, sent,
			       thru[i].dropped);
		if (thru[i].example)
			printf("  %-34s %s\n", "first frame not as sent", thru[i].example);
		free(thru[i].example);
		free(floor[i].example);
		free(floor[i].lat);
		free(thru[i].lat);
	}

	libevdev_uinput_destroy(src);
	close(ufd);
	libevdev_free(caps);
	if (!getenv("BENCH_KEEP"))
		scratch_remove(dir);
	else
		free(dir);
	free(node);
	free(conf);
	free(vmd);
	free(sock);
	free(log);
	free(srcname);
}

int main(int argc, char **argv)
{
	unsigned rates[MAX_RATES] = { 125, 1000, 8000 };
	size_t n_rates = 3;
	double seconds = 5;
	bool kinds[2] = { false, false }, realtime = true;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			seconds = 0.5;
		} else if (streq(argv[i], "--normal-priority")) {
			realtime = false;
		} else if (streq(argv[i], "--device") && i + 1 < argc) {
			i++;
			if (streq(argv[i], "keyboard"))
				kinds[KEYBOARD] = true;
			else if (streq(argv[i], "mouse"))
				kinds[MOUSE] = true;
			else
				goto usage;
		} else if (streq(argv[i], "--rates") && i + 1 < argc) {
			char **w = strv_split(argv[++i], ",");

			n_rates = 0;
			for (size_t k = 0; w[k] && n_rates < MAX_RATES; k++)
				rates[n_rates++] = (unsigned)strtoul(w[k], NULL, 10);
			strv_free(w);
			for (size_t k = 0; k < n_rates; k++)
				if (!rates[k] || rates[k] > 100000)
					goto usage;
		} else if (streq(argv[i], "--seconds") && i + 1 < argc) {
			seconds = strtod(argv[++i], NULL);
			if (!(seconds > 0 && seconds <= 600))
				goto usage;
		} else {
			goto usage;
		}
	}
	if (!n_rates)
		goto usage;
	if (!kinds[KEYBOARD] && !kinds[MOUSE])
		kinds[KEYBOARD] = kinds[MOUSE] = true;
	if (access("/dev/uinput", W_OK) < 0)
		die("/dev/uinput", errno);
	log_set_level(LOG_LEVEL_WARNING);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_print_machine(stdout);
	printf("vmplugd source to host sink, %.1f s at each rate; times are kernel event stamps "
	       "(CLOCK_MONOTONIC) minus the time just before the source's write()\n",
	       seconds);
	printf("vmplugd runs %s\n", realtime ? "with real-time priority as vmplugd.service "
					       "runs it (SCHED_FIFO 1)"
					     : "with normal priority (--normal-priority)");
	if (kinds[KEYBOARD])
		bench_device(KEYBOARD, rates, n_rates, seconds, realtime);
	if (kinds[MOUSE])
		bench_device(MOUSE, rates, n_rates, seconds, realtime);
	return 0;

usage:
	fprintf(stderr,
		"usage: %s [--short] [--normal-priority] [--device keyboard|mouse]... "
		"[--rates R,R,...] [--seconds S]\n",
		argv[0]);
	return 2;
}

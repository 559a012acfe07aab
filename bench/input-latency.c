/* input-latency: what the input path adds per frame, source to sink.
 *
 * Needs /dev/uinput (a real kernel: run it in the e2e guest or as root on
 * a machine). A uinput keyboard stands in for the physical device; the
 * input manager (the code vmplugd runs) grabs it and forwards to its
 * sink, which this program reads. Prints:
 *   - the kernel's own latency, source write to a reader of the source
 *     (before the manager grabs it): the baseline;
 *   - source write to a reader of the sink, through the manager;
 *   - what vmplug adds: the difference of the two distributions' median
 *     and p99 (one frame cannot take both paths at once);
 *   - the manager's CPU time at a steady 1000 frames/s.
 * Usage: input-latency [FRAMES] [SECONDS-AT-1000/s] */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libevdev/libevdev-uinput.h>
#include <libevdev/libevdev.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "daemon/loop.h"
#include "daemon/watch.h"
#include "input/cache.h"
#include "input/input.h"
#include "util/log.h"
#include "util/util.h"

static uint64_t thread_cpu_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "input-latency: %s: %s\n", what, strerror(err));
	exit(err == ENOENT || err == EACCES ? 77 : 1);
}

static void press(struct libevdev_uinput *src, int value)
{
	libevdev_uinput_write_event(src, EV_KEY, KEY_A, value);
	libevdev_uinput_write_event(src, EV_SYN, SYN_REPORT, 0);
}

/* Wait for a KEY_A event on fd (dispatching loop meanwhile if given). */
static void wait_key(int fd, struct loop *loop)
{
	struct input_event ev;

	for (;;) {
		if (loop)
			loop_dispatch(loop, 0);
		while (read(fd, &ev, sizeof(ev)) == sizeof(ev))
			if (ev.type == EV_KEY && ev.code == KEY_A)
				return;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (!loop)
			poll(&p, 1, 1000);
	}
}

static void on_usb_add(void *data, struct usb_device *d)
{
	usb_device_free(d);
}

static void on_usb_remove(void *data, const char *syspath)
{
}

static void on_input(void *data, const char *action, struct udev_device *dev)
{
	input_manager_udev(data, action, dev);
}

static const struct watch_hooks hooks = { .usb_add = on_usb_add,
					  .usb_remove = on_usb_remove,
					  .input = on_input };

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i];
}

int main(int argc, char **argv)
{
	size_t frames = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	unsigned seconds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 3;
	struct libevdev *caps = input_cache_fallback(INPUT_CACHE_KEYBOARD);
	uint64_t *base = xcalloc(frames, sizeof(*base)), *thru = xcalloc(frames, sizeof(*thru));
	char dir[] = "/tmp/vmplug-bench-XXXXXX", *text, *path, *cmd;
	struct libevdev_uinput *src;
	struct input_vm_sink *vs;
	struct input_manager *m;
	struct watch *w;
	struct conf *conf;
	char **errors = NULL;
	struct loop *loop;
	int fd, r, sink;
	uint64_t cpu0, t0, sent = 0;

	log_set_level(LOG_LEVEL_WARNING);
	libevdev_set_name(caps, "vmplug bench source");
	libevdev_disable_event_type(caps, EV_REP); /* no autorepeat during the load */
	fd = open("/dev/uinput", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("/dev/uinput", errno);
	r = libevdev_uinput_create_from_device(caps, fd, &src);
	if (r < 0)
		die("creating the source", -r);
	usleep(200000); /* let udev see it */

	/* Baseline: the kernel alone, source to a reader of the source. */
	int direct = open(libevdev_uinput_get_devnode(src), O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (direct < 0)
		die(libevdev_uinput_get_devnode(src), errno);
	for (size_t i = 0; i < frames; i++) {
		t0 = now_usec();
		press(src, (int)(~i & 1));
		wait_key(direct, NULL);
		base[i] = now_usec() - t0;
	}
	close(direct);

	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	path = xasprintf("%s/vm.d", dir);
	mkdir_p(path, 0755);
	free(path);
	path = xasprintf("%s/vmplug.conf", dir);
	text = xasprintf("[daemon]\ncache-dir = %s/cache\n[input \"src\"]\ndevice = %s\n", dir,
			 libevdev_uinput_get_devnode(src));
	write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	free(path);
	path = xasprintf("%s/vm.d/bench.conf", dir);
	text = xstrdup("[vm]\nqmp-socket = /run/vmplug-bench.qmp\ninputs = src\n");
	write_file_atomic(path, text, strlen(text), 0644);
	free(text);
	free(path);
	if (conf_load(dir, NULL, &conf, &errors) < 0)
		die(errors && errors[0] ? errors[0] : "config", EINVAL);
	strv_free(errors);

	loop = loop_new();
	m = input_manager_new(loop, conf, NULL, NULL);
	if (input_manager_vm_sinks(m, "bench", &vs) != 1)
		die("no sink was made", ENODEV);
	sink = open(vs[0].evdev, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (sink < 0)
		die(vs[0].evdev, errno);
	/* The watcher's coldplug reports the source: the manager opens it. */
	w = watch_new(loop, &hooks, m);
	if (!w)
		die("udev watcher", errno);
	for (int i = 0; i < 100; i++)
		loop_dispatch(loop, 10);

	for (size_t i = 0; i < frames; i++) {
		t0 = now_usec();
		press(src, (int)(~i & 1));
		wait_key(sink, loop);
		thru[i] = now_usec() - t0;
	}

	/* CPU at a steady 1000 frames/s (press or release each ms). */
	uint64_t start = now_usec(), end = start + seconds * USEC_PER_SEC, cpu = 0;
	struct input_event drain[64];

	while (now_usec() < end) {
		uint64_t due = start + sent * 1000;

		if (now_usec() >= due) {
			press(src, (int)(~sent & 1));
			sent++;
		}
		cpu0 = thread_cpu_usec();
		loop_dispatch(loop, 1);
		cpu += thread_cpu_usec() - cpu0;
		while (read(sink, drain, sizeof(drain)) > 0)
			;
	}

	qsort(base, frames, sizeof(*base), cmp);
	qsort(thru, frames, sizeof(*thru), cmp);
	printf("frames %zu\n", frames);
	printf("kernel only (source to its reader): median %llu us, p99 %llu us\n",
	       (unsigned long long)pct(base, frames, 0.5),
	       (unsigned long long)pct(base, frames, 0.99));
	printf("through vmplug (source to sink reader): median %llu us, p99 %llu us\n",
	       (unsigned long long)pct(thru, frames, 0.5),
	       (unsigned long long)pct(thru, frames, 0.99));
	printf("added by vmplug: median %llu us, p99 %llu us\n",
	       (unsigned long long)(pct(thru, frames, 0.5) - pct(base, frames, 0.5)),
	       (unsigned long long)(pct(thru, frames, 0.99) > pct(base, frames, 0.99)
					? pct(thru, frames, 0.99) - pct(base, frames, 0.99)
					: 0));
	printf("cpu at %.0f frames/s: %.1f ms per s (%.1f%% of a core)\n", (double)sent / seconds,
	       (double)cpu / 1000.0 / seconds, (double)cpu / 10000.0 / seconds);

	close(sink);
	input_vm_sinks_free(vs, 1);
	watch_free(w);
	input_manager_free(m);
	loop_free(loop);
	conf_free(conf);
	libevdev_uinput_destroy(src);
	close(fd);
	libevdev_free(caps);
	cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		perror("input-latency: cleanup");
	free(cmd);
	free(base);
	free(thru);
	return 0;
}

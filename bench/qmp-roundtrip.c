/* Benchmark: QMP round trips against the real QEMU through vmplug's own
 * client and backend. Measures a query-status round trip, and attaching
 * a port-mode usb-host device (device_add) then detaching it (device_del
 * until DEVICE_DELETED). Prints median, p99, min and max in ms.
 *
 * Usage: qmp-roundtrip [--short] [--iterations N]
 * QEMU comes from $QEMU_SYSTEM (default /usr/bin/qemu-system-x86_64).
 * --short runs a few iterations, so the tests can check it still works. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "backends/backend.h"
#include "bench/benchlib.h"
#include "qmp/qmp.h"
#include "tests/lib/qemu.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "util/util.h"

#define WAIT_MS 10000

struct bench {
	struct loop *loop;
	struct qemu *qemu;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n)
{
	size_t p99 = (n * 99 + 99) / 100;

	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%-34s median %8.3f ms  p99 %8.3f ms  min %8.3f ms  max %8.3f ms  (n=%zu)\n", what,
	       (n % 2 ? (double)v[n / 2] : (double)(v[n / 2 - 1] + v[n / 2]) / 2) / 1000,
	       (double)v[p99 - 1] / 1000, (double)v[0] / 1000, (double)v[n - 1] / 1000, n);
}

/* Wait for a completion; false (and why on stderr) on failure. */
static bool wait_done(struct bench *b, bool (*done)(void *), void *arg, const int *err,
		      const char *what)
{
	if (!run_until(b->loop, done, arg, WAIT_MS)) {
		fprintf(stderr, "qmp-roundtrip: %s: no completion\n", what);
		return false;
	}
	if (*err) {
		fprintf(stderr, "qmp-roundtrip: %s: %s\n", what, strerror(-*err));
		return false;
	}
	return true;
}

/* Wait until the client or backend reports up for the nth time. */
static bool wait_up(struct bench *b, int n)
{
	return run_until(b->loop, rec_up_n, &n, WAIT_MS);
}

static int query_status(struct bench *b, size_t n)
{
	struct qmp_opts opts = { .name = "bench", .socket_path = b->qemu->qmp_path };
	uint64_t *t = xcalloc(n, sizeof(*t));
	struct qmp *q = qmp_new(b->loop, &opts, &rec_qmp_callbacks, NULL);
	int r = -1;

	if (!q || !wait_up(b, rec.up + 1))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct rec_reply reply = { 0 };
		uint64_t start = now_usec();

		if (qmp_command(q, "query-status", NULL, NULL, rec_qmp_reply, &reply) < 0 ||
		    !wait_done(b, rec_reply_done, &reply, &reply.err, "query-status"))
			goto out;
		t[i] = now_usec() - start;
	}
	report("query-status round trip", t, n);
	r = 0;
out:
	qmp_free(q);
	free(t);
	return r;
}

static int usb_cycle(struct bench *b, size_t n)
{
	struct conf_vm vm = qemu_conf_vm(b->qemu, "bench");
	struct backend_usb_dev dev = {
		.id = "vmplug-bench", .mode = CONF_ATTACH_PORT, .bus = 1, .port = "2"
	};
	const struct backend_ops *ops = backend_find("qmp");
	uint64_t *add = xcalloc(n, sizeof(*add)), *del = xcalloc(n, sizeof(*del));
	uint64_t *both = xcalloc(n, sizeof(*both));
	struct backend_vm *bv;
	int r = -1;

	bv = ops->create(b->loop, &vm, &rec_backend_events, NULL);
	if (!bv || !wait_up(b, rec.up + 1))
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct rec_done attached = { 0 }, detached = { 0 };
		uint64_t start = now_usec(), mid;

		if (ops->usb_attach(bv, &dev, rec_backend_done, &attached) < 0 ||
		    !wait_done(b, rec_done_called, &attached, &attached.err, "device_add"))
			goto out;
		mid = now_usec();
		if (ops->usb_detach(bv, dev.id, rec_backend_done, &detached) < 0 ||
		    !wait_done(b, rec_done_called, &detached, &detached.err,
			       "device_del until DEVICE_DELETED"))
			goto out;
		add[i] = mid - start;
		del[i] = now_usec() - mid;
		both[i] = add[i] + del[i];
	}
	report("device_add (port mode)", add, n);
	report("device_del until DEVICE_DELETED", del, n);
	report("device_add + DEVICE_DELETED", both, n);
	r = 0;
out:
	if (bv)
		ops->destroy(bv);
	free(add);
	free(del);
	free(both);
	return r;
}

int main(int argc, char **argv)
{
	size_t status_n = 1000, usb_n = 1000;
	struct bench b = { 0 };
	char *dir;
	int r;

	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "--short")) {
			status_n = 50;
			usb_n = 3;
		} else if (streq(argv[i], "--iterations") && i + 1 < argc) {
			status_n = usb_n = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: %s [--short] [--iterations N]\n", argv[0]);
			return 2;
		}
	}
	if (!status_n || !usb_n) {
		fprintf(stderr, "qmp-roundtrip: the iteration count must be positive\n");
		return 2;
	}
	if (!bench_have_qemu("qmp-roundtrip"))
		return 77;
	log_set_level(LOG_LEVEL_WARNING);
	dir = scratch_new("bench");
	b.loop = loop_new();
	b.qemu = qemu_start(dir, "bench", NULL);
	if (!b.qemu) {
		fprintf(stderr, "qmp-roundtrip: QEMU did not start\n");
		r = 1;
		goto out;
	}
	{
		json_t *ver = qemu_check_return(b.qemu, "query-version", NULL);
		json_t *qemu = json_object_get(ver, "qemu");

		printf("QEMU %lld.%lld.%lld (%s), -M q35 -accel tcg -S, %zu query-status, %zu "
		       "device cycles\n",
		       json_integer_value(json_object_get(qemu, "major")),
		       json_integer_value(json_object_get(qemu, "minor")),
		       json_integer_value(json_object_get(qemu, "micro")),
		       json_string_value(json_object_get(ver, "package")) ?: "", status_n, usb_n);
		json_decref(ver);
	}
	r = query_status(&b, status_n) < 0 || usb_cycle(&b, usb_n) < 0;
out:
	qemu_free(b.qemu);
	loop_free(b.loop);
	scratch_remove(dir);
	return r;
}

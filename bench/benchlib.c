/* What the benchmarks share (see benchlib.h). */
#include "config.h"

#include "bench/benchlib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/qemu.h"
#include "tests/lib/testlib.h"

#define CTL_TIMEOUT_MS 10000

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", program_invocation_short_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

uint64_t bench_realtime_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_pct(uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)(p * (double)n + 0.999999);

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	if (rank < 1)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

void bench_report(const char *what, uint64_t *v, size_t n)
{
	double median;

	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	median = n % 2 ? (double)v[n / 2] : (double)(v[n / 2 - 1] + v[n / 2]) / 2;
	printf("%-40s median %8.3f ms  p99 %8.3f ms  min %8.3f ms  max %8.3f ms  (n=%zu)\n", what,
	       median / 1000, (double)bench_pct(v, n, 0.99) / 1000, (double)v[0] / 1000,
	       (double)v[n - 1] / 1000, n);
}

void bench_report_diff(const char *what, double median_us, double p99_us)
{
	printf("%-40s median %+8.3f ms  p99 %+8.3f ms\n", what, median_us / 1000, p99_us / 1000);
}

/* The value of "key : value" or "KEY=value" in a file, a new string. */
static char *file_value(const char *path, const char *key, char sep)
{
	FILE *f = fopen(path, "re");
	char line[512], *found = NULL;
	size_t klen = strlen(key);

	if (!f)
		return NULL;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = line + klen;

		if (strncmp(line, key, klen) != 0)
			continue;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p++ != sep)
			continue;
		p = strstrip(p);
		if (*p == '"' && p[strlen(p) - 1] == '"') {
			p[strlen(p) - 1] = '\0';
			p++;
		}
		found = xstrdup(p);
	}
	fclose(f);
	return found;
}

void bench_print_machine(FILE *f)
{
	char *cpu = file_value("/proc/cpuinfo", "model name", ':');
	char *distro = file_value("/etc/os-release", "PRETTY_NAME", '=');
	struct utsname u;
	char date[64];
	time_t t = time(NULL);

	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&t));
	fprintf(f, "machine: %s, %ld cores, kernel %s, %s; %s\n", cpu ? cpu : "unknown CPU",
		sysconf(_SC_NPROCESSORS_ONLN), u.release, distro ? distro : "unknown distribution",
		date);
	free(cpu);
	free(distro);
}

bool bench_have_qemu(const char *prog)
{
	if (!getenv("QEMU_SYSTEM"))
		setenv("QEMU_SYSTEM", "/usr/bin/qemu-system-x86_64", 1);
	if (qemu_binary())
		return true;
	fprintf(stderr, "%s: no QEMU at %s\n", prog, getenv("QEMU_SYSTEM"));
	return false;
}

char *bench_vmplugd_path(void)
{
	const char *env = getenv("VMPLUGD");
	char self[4096];
	ssize_t n;

	if (env && *env)
		return xstrdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup("vmplugd");
	self[n] = '\0';
	*strrchr(self, '/') = '\0'; /* .../bench */
	if (strrchr(self, '/'))
		*strrchr(self, '/') = '\0';
	return xasprintf("%s/vmplugd", self);
}

pid_t bench_vmplugd_start(const char *confdir, const char *control_socket, const char *log,
			  char *const *extra_env)
{
	char *path = bench_vmplugd_path();
	pid_t parent = getpid(), pid;
	uint64_t end, wait_s;

	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int err = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : null;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || null < 0 || err < 0 || dup2(null, 0) < 0 ||
		    dup2(null, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		for (size_t i = 0; extra_env && extra_env[i]; i++)
			putenv(extra_env[i]);
		execl(path, path, "-f", "-c", confdir, (char *)NULL);
		_exit(127);
	}
	if (pid < 0) {
		perror("bench: fork");
		free(path);
		return -1;
	}
	/* 30 s, or $BENCH_START_SECONDS (many sinks under TCG take longer) */
	wait_s = getenv("BENCH_START_SECONDS") ? strtoull(getenv("BENCH_START_SECONDS"), NULL, 10)
					       : 30;
	end = now_usec() + wait_s * USEC_PER_SEC;
	for (;;) {
		struct bench_ctl *c = bench_ctl_connect(control_socket);
		int status;

		if (c) {
			bench_ctl_free(c);
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid || now_usec() > end) {
			fprintf(stderr, "bench: %s did not start (see %s)\n", path,
				log ? log : "its log");
			if (now_usec() > end)
				bench_vmplugd_stop(pid);
			free(path);
			return -1;
		}
		usleep(10000);
	}
	free(path);
	return pid;
}

int bench_vmplugd_stop(pid_t pid)
{
	int status;

	if (pid <= 0 || kill(pid, SIGTERM) < 0)
		return -1;
	for (int i = 0; i < 1000; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

/* ------------------------------------------------------ control client */

struct bench_ctl {
	int fd;
	char *buf;
	size_t len, size;
	json_t *queue; /* events read while waiting for a reply */
	unsigned next_id;
};

/* The next JSON line, waiting until `end` (monotonic µs); NULL if none. */
static json_t *read_line(struct bench_ctl *c, uint64_t end)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		uint64_t now;
		ssize_t n;

		if (nl) {
			json_t *j = json_loadb(c->buf, (size_t)(nl - c->buf), 0, NULL);

			c->len -= (size_t)(nl + 1 - c->buf);
			memmove(c->buf, nl + 1, c->len);
			if (j)
				return j;
			continue;
		}
		now = now_usec();
		if (poll(&p, 1, now >= end ? 0 : (int)((end - now + 999) / 1000)) <= 0)
			return NULL;
		if (c->size - c->len < 65536) {
			c->size = c->size * 2 + 65536;
			c->buf = xrealloc(c->buf, c->size);
		}
		n = read(c->fd, c->buf + c->len, c->size - c->len);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

struct bench_ctl *bench_ctl_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bench_ctl *c;
	json_t *greeting;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		closep(&fd);
		return NULL;
	}
	c = xnew(struct bench_ctl);
	c->fd = fd;
	c->queue = json_array();
	greeting = read_line(c, now_usec() + CTL_TIMEOUT_MS * USEC_PER_MSEC);
	if (!json_object_get(greeting, "vmplug")) {
		json_decref(greeting);
		bench_ctl_free(c);
		errno = EPROTO;
		return NULL;
	}
	json_decref(greeting);
	return c;
}

void bench_ctl_free(struct bench_ctl *c)
{
	if (!c)
		return;
	closep(&c->fd);
	free(c->buf);
	json_decref(c->queue);
	free(c);
}

json_t *bench_ctl_call(struct bench_ctl *c, const char *command, json_t *args)
{
	unsigned id = ++c->next_id;
	json_t *msg = json_pack("{s:s,s:I}", "execute", command, "id", (json_int_t)id), *j;
	uint64_t end = now_usec() + CTL_TIMEOUT_MS * USEC_PER_MSEC;
	char *text;
	int r;

	if (args)
		json_object_set_new(msg, "arguments", args);
	text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	r = write_all(c->fd, text, strlen(text));
	if (r == 0)
		r = write_all(c->fd, "\n", 1);
	free(text);
	if (r < 0)
		return NULL;
	while ((j = read_line(c, end))) {
		json_t *ret;

		if (json_object_get(j, "event")) {
			json_array_append_new(c->queue, j);
			continue;
		}
		if (json_integer_value(json_object_get(j, "id")) != (json_int_t)id) {
			json_decref(j);
			continue;
		}
		ret = json_incref(json_object_get(j, "return"));
		json_decref(j);
		return ret;
	}
	return NULL;
}

json_t *bench_ctl_event(struct bench_ctl *c, unsigned timeout_ms)
{
	uint64_t end = now_usec() + timeout_ms * USEC_PER_MSEC;
	json_t *j;

	if (json_array_size(c->queue)) {
		j = json_incref(json_array_get(c->queue, 0));
		json_array_remove(c->queue, 0);
		return j;
	}
	while ((j = read_line(c, end))) {
		if (json_object_get(j, "event"))
			return j;
		json_decref(j);
	}
	return NULL;
}

uint64_t bench_event_time(const json_t *ev)
{
	const json_t *ts = json_object_get(ev, "timestamp");
	json_int_t s = json_integer_value(json_object_get(ts, "seconds"));
	json_int_t us = json_integer_value(json_object_get(ts, "microseconds"));

	return s > 0 ? (uint64_t)s * USEC_PER_SEC + (uint64_t)us : 0;
}

uint64_t bench_qemu_deleted_at(struct qemu *q, const char *id, unsigned wait_ms)
{
	uint64_t end = now_usec() + wait_ms * USEC_PER_MSEC;

	while (now_usec() < end) {
		json_t *ev = qemu_next_event(q, wait_ms);
		const char *dev = json_string_value(
		    json_object_get(json_object_get(ev, "data"), "device"));
		uint64_t t = 0;

		if (ev &&
		    streq(json_string_value(json_object_get(ev, "event")) ?: "",
			  "DEVICE_DELETED") &&
		    dev && streq(dev, id))
			t = bench_event_time(ev);
		json_decref(ev);
		if (t || !ev)
			return t;
	}
	return 0;
}

const char *bench_event_name(const json_t *ev)
{
	return json_string_value(json_object_get(ev, "event")) ?: "";
}

const char *bench_event_str(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(json_object_get(ev, "data"), key)) ?: "";
}

/* ------------------------------------------------------------------ /proc */

/* Call fn with the path of each /proc/PID/task/TID directory. */
static void each_task(pid_t pid, void (*fn)(const char *dir, void *data), void *data)
{
	char *path = xasprintf("/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char *dir;

		if (e->d_name[0] == '.')
			continue;
		dir = xasprintf("%s/%s", path, e->d_name);
		fn(dir, data);
		free(dir);
	}
	if (d)
		closedir(d);
	free(path);
}

static void add_schedstat(const char *dir, void *data)
{
	char *path = xasprintf("%s/schedstat", dir);
	unsigned long long ns = 0;
	FILE *f = fopen(path, "re");

	if (f && fscanf(f, "%llu", &ns) == 1)
		*(uint64_t *)data += ns / 1000;
	if (f)
		fclose(f);
	free(path);
}

uint64_t bench_proc_cpu_usec(pid_t pid)
{
	uint64_t us = 0;

	each_task(pid, add_schedstat, &us);
	return us;
}

long bench_proc_status_kb(pid_t pid, const char *field)
{
	char *path = xasprintf("/proc/%d/status", (int)pid);
	char *v = file_value(path, field, ':');
	long kb = v ? strtol(v, NULL, 10) : -1;

	free(v);
	free(path);
	return kb;
}

unsigned bench_proc_fd_count(pid_t pid)
{
	char *path = xasprintf("/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	free(path);
	return n;
}

struct ctxt {
	unsigned long long vol, invol;
};

static void add_ctxt(const char *dir, void *data)
{
	struct ctxt *c = data;
	char *path = xasprintf("%s/status", dir);
	char *v = file_value(path, "voluntary_ctxt_switches", ':');
	char *i = file_value(path, "nonvoluntary_ctxt_switches", ':');

	c->vol += v ? strtoull(v, NULL, 10) : 0;
	c->invol += i ? strtoull(i, NULL, 10) : 0;
	free(v);
	free(i);
	free(path);
}

void bench_proc_ctxt(pid_t pid, unsigned long long *voluntary, unsigned long long *involuntary)
{
	struct ctxt c = { 0 };

	each_task(pid, add_ctxt, &c);
	*voluntary = c.vol;
	*involuntary = c.invol;
}

void bench_write_file(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "we");
	va_list ap;

	if (!f) {
		fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f) != 0) {
		fprintf(stderr, "bench: cannot write %s: %s\n", path, strerror(errno));
		abort();
	}
}

const char bench_qmp_greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";

int bench_qmp_answer(int fd, json_t *cmd)
{
	const char *what = json_string_value(json_object_get(cmd, "execute")) ?: "";
	json_t *reply = json_object();
	char *text;
	int r;

	json_object_set_new(reply, "return",
			    streq(what, "qom-list") || streq(what, "query-fdsets") ? json_array()
										   : json_object());
	if (json_object_get(cmd, "id"))
		json_object_set(reply, "id", json_object_get(cmd, "id"));
	text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	r = write_all(fd, text, strlen(text));
	if (r >= 0)
		r = write_all(fd, "\r\n", 2);
	free(text);
	return r;
}

void bench_scratch_done(char *dir)
{
	if (!getenv("BENCH_KEEP"))
		scratch_remove(dir);
	else
		free(dir);
}

struct bench_ctl *bench_vmplugd_up(const char *confdir, const char *control_socket, const char *log,
				   pid_t *pid)
{
	char *const env[] = { NULL };
	struct bench_ctl *ctl;

	*pid = bench_vmplugd_start(confdir, control_socket, log, env);
	if (*pid < 0)
		bench_fail("vmplugd did not start (see %s)", log);
	ctl = bench_ctl_connect(control_socket);
	if (!ctl)
		bench_fail("cannot reach vmplugd's control socket");
	return ctl;
}

/* A throwaway QEMU for tests and benchmarks (see qemu.h). */
#include "config.h"

#include "tests/lib/qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qmp/qmp-int.h"
#include "util/util.h"

#define CHECK_TIMEOUT_MS 10000

const char *qemu_binary(void)
{
	const char *q = getenv("QEMU_SYSTEM");

	if (!q || !*q || access(q, X_OK) < 0)
		return NULL;
	return q;
}

static pid_t spawn(struct qemu *q, char *const *env)
{
	char *qmp = xasprintf("unix:%s,server=on,wait=off", q->qmp_path);
	char *chk = xasprintf("socket,id=chk,path=%s,server=on,wait=off", q->check_path);
	/* clang-format off */
	const char *base[] = {
		qemu_binary(),
		"-M", "q35", "-accel", "tcg", "-S", "-nodefaults", "-display", "none", "-m", "64",
		"-device", "qemu-xhci,id=xhci",
		"-qmp", qmp,
		"-chardev", chk, "-mon", "chardev=chk,mode=control",
	};
	/* clang-format on */
	size_t n = ARRAY_SIZE(base), extra = strv_len(q->args);
	const char **argv = xcalloc(n + extra + 1, sizeof(*argv));
	pid_t parent = getpid();
	pid_t pid;

	memcpy(argv, base, sizeof(base));
	for (size_t i = 0; i < extra; i++)
		argv[n + i] = q->args[i];
	pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int err = open(q->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* Die with the test, even if it crashes before its teardown. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (null < 0 || err < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(err, 2) < 0)
			_exit(127);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	free(argv);
	free(qmp);
	free(chk);
	return pid;
}

static bool alive(struct qemu *q)
{
	int status;

	if (q->pid <= 0)
		return false;
	if (waitpid(q->pid, &status, WNOHANG) == q->pid) {
		q->pid = -1;
		return false;
	}
	return true;
}

static void send_line(struct qemu *q, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (write_all(q->check_fd, text, strlen(text)) < 0)
		fprintf(stderr, "qemu check monitor: write: %s\n", strerror(errno));
	free(text);
}

/* Read one message (events are queued); NULL on timeout or EOF. With
 * timeout_ms 0 only what is already there is read. */
static json_t *read_message(struct qemu *q, unsigned timeout_ms)
{
	uint64_t end = now_usec() + timeout_ms * USEC_PER_MSEC;

	for (;;) {
		struct pollfd pfd = { .fd = q->check_fd, .events = POLLIN };
		char buf[65536];
		json_t *j = NULL;
		uint64_t now;
		ssize_t n;

		if (qmp_framer_next(q->framer, &j, NULL, NULL, NULL, 0) == 1)
			return j;
		now = now_usec();
		if (poll(&pfd, 1, now >= end ? 0 : (int)((end - now) / USEC_PER_MSEC) + 1) <= 0)
			return NULL;
		n = read(q->check_fd, buf, sizeof(buf));
		if (n <= 0)
			return NULL;
		qmp_framer_feed(q->framer, buf, (size_t)n);
	}
}

static json_t *read_reply(struct qemu *q)
{
	json_t *j;

	while ((j = read_message(q, CHECK_TIMEOUT_MS))) {
		if (!json_object_get(j, "event"))
			return j;
		json_array_append_new(q->events, j);
	}
	return NULL;
}

static int connect_check(struct qemu *q)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t end = now_usec() + CHECK_TIMEOUT_MS * USEC_PER_MSEC;
	json_t *j;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", q->check_path);
	for (;;) {
		struct stat st;

		q->check_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		/* Both sockets exist once the second one answers. */
		if (stat(q->qmp_path, &st) == 0 &&
		    connect(q->check_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		closep(&q->check_fd);
		if (!alive(q) || now_usec() > end) {
			fprintf(stderr, "QEMU did not start; see %s\n", q->stderr_path);
			return -1;
		}
		usleep(2000);
	}
	qmp_framer_reset(q->framer);
	j = read_message(q, CHECK_TIMEOUT_MS); /* the greeting */
	if (!j || !json_object_get(j, "QMP")) {
		json_decref(j);
		fprintf(stderr, "QEMU sent no greeting on %s\n", q->check_path);
		return -1;
	}
	json_decref(j);
	j = qemu_check(q, "qmp_capabilities", NULL);
	if (!j || !json_object_get(j, "return")) {
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
}

struct qemu *qemu_start(const char *dir, const char *name, char *const *extra_env)
{
	return qemu_start_args(dir, name, extra_env, NULL);
}

struct qemu *qemu_start_args(const char *dir, const char *name, char *const *extra_env,
			     char *const *extra_args)
{
	struct qemu *q = xnew(struct qemu);

	q->check_fd = -1;
	q->qmp_path = xasprintf("%s/%s.qmp", dir, name);
	q->check_path = xasprintf("%s/%s.check", dir, name);
	q->stderr_path = xasprintf("%s/%s.stderr", dir, name);
	q->framer = qmp_framer_new(QMP_MAX_MESSAGE);
	q->events = json_array();
	q->env = extra_env ? strv_copy(extra_env) : NULL;
	q->args = extra_args ? strv_copy(extra_args) : NULL;
	if (!qemu_binary() || qemu_restart(q) < 0) {
		qemu_free(q);
		return NULL;
	}
	return q;
}

struct qemu *qemu_attach(const char *qmp_path, const char *check_path)
{
	struct qemu *q = xnew(struct qemu);

	q->check_fd = -1;
	q->qmp_path = xstrdup(qmp_path);
	q->check_path = xstrdup(check_path);
	q->stderr_path = xstrdup("(QEMU's stderr)");
	q->framer = qmp_framer_new(QMP_MAX_MESSAGE);
	q->events = json_array();
	if (connect_check(q) < 0) {
		qemu_free(q);
		return NULL;
	}
	return q;
}

int qemu_restart(struct qemu *q)
{
	closep(&q->check_fd);
	json_array_clear(q->events);
	q->pid = spawn(q, q->env);
	if (q->pid < 0)
		return -1;
	return connect_check(q);
}

static int reap(struct qemu *q, unsigned timeout_ms)
{
	uint64_t end = now_usec() + timeout_ms * USEC_PER_MSEC;
	int status;

	if (q->pid <= 0)
		return -1;
	for (;;) {
		pid_t r = waitpid(q->pid, &status, WNOHANG);

		if (r == q->pid)
			break;
		if (r < 0 || now_usec() > end)
			return -1;
		usleep(1000);
	}
	q->pid = -1;
	closep(&q->check_fd);
	return status;
}

int qemu_kill(struct qemu *q, int sig)
{
	if (q->pid <= 0)
		return -1;
	kill(q->pid, sig);
	return reap(q, CHECK_TIMEOUT_MS);
}

int qemu_wait(struct qemu *q, unsigned timeout_ms)
{
	return reap(q, timeout_ms);
}

void qemu_free(struct qemu *q)
{
	if (!q)
		return;
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	closep(&q->check_fd);
	qmp_framer_free(q->framer);
	json_decref(q->events);
	strv_free(q->env);
	strv_free(q->args);
	free(q->qmp_path);
	free(q->check_path);
	free(q->stderr_path);
	free(q);
}

json_t *qemu_check(struct qemu *q, const char *command, json_t *args)
{
	json_t *msg = json_pack("{s:s}", "execute", command);

	if (args)
		json_object_set_new(msg, "arguments", args);
	if (q->check_fd < 0) {
		json_decref(msg);
		return NULL;
	}
	send_line(q, msg);
	return read_reply(q);
}

json_t *qemu_check_return(struct qemu *q, const char *command, json_t *args)
{
	json_t *reply = qemu_check(q, command, args);
	json_t *ret = json_incref(json_object_get(reply, "return"));

	json_decref(reply);
	return ret;
}

bool qemu_event_seen(struct qemu *q, const char *name, const char *device)
{
	json_t *j, *ev;
	size_t i;

	while (q->check_fd >= 0 && (j = read_message(q, 0)))
		json_array_append_new(q->events, j);
	json_array_foreach(q->events, i, ev) {
		json_t *dev = json_object_get(json_object_get(ev, "data"), "device");

		if (!streq(json_string_value(json_object_get(ev, "event")) ?: "", name))
			continue;
		if (!device || (json_is_string(dev) && streq(json_string_value(dev), device)))
			return true;
	}
	return false;
}

json_t *qemu_next_event(struct qemu *q, unsigned timeout_ms)
{
	json_t *j;

	if (json_array_size(q->events)) {
		j = json_incref(json_array_get(q->events, 0));
		json_array_remove(q->events, 0);
		return j;
	}
	while (q->check_fd >= 0 && (j = read_message(q, timeout_ms))) {
		if (json_object_get(j, "event"))
			return j;
		json_decref(j); /* a reply nobody waits for */
	}
	return NULL;
}

bool qemu_has_child(struct qemu *q, const char *path, const char *id)
{
	json_t *list = qemu_check_return(q, "qom-list", json_pack("{s:s}", "path", path));
	json_t *entry;
	bool found = false;
	size_t i;

	json_array_foreach(list, i, entry) {
		json_t *n = json_object_get(entry, "name");

		if (json_is_string(n) && streq(json_string_value(n), id))
			found = true;
	}
	json_decref(list);
	return found;
}

struct conf_vm qemu_conf_vm(const struct qemu *q, const char *name)
{
	return (struct conf_vm){ .name = (char *)name,
				 .backend = CONF_BACKEND_QMP,
				 .qmp_socket = q->qmp_path,
				 .usb_bus = (char *)"xhci.0" };
}

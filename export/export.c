/* [usb-export]: one supervised usbredirect per present device a section
 * claims (see export.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export/export.h"
#include "usb/rules.h"
#include "util/log.h"
#include "util/util.h"

/* How often a child is asked after with waitpid where there is no
 * pidfd_open (Linux before 5.3; valgrind 3.19 does not know it). */
#define WATCH_POLL_USEC (100 * 1000)

typedef void (*child_exit_fn)(void *data, int status);

/* A child's end, seen on the loop: its pidfd, or else a timer asking
 * waitpid. The callback gets the child reaped, with its wait status. */
struct child_watch {
	pid_t pid; /* 0: none */
	int pidfd;
	struct loop_source *src;
	struct loop_timer *poll;
	child_exit_fn fn;
	void *data;
};

/* A child on its way out, no longer anyone's export. */
struct stopping {
	struct exporter *x;
	struct child_watch child;
	struct loop_timer *kill_timer;
};

struct export
{
	struct exporter *x;
	struct export_info info; /* its strings owned here */
	char *syspath;
	struct child_watch child; /* pid 0: none running */
	struct loop_timer *retry;
	uint64_t started_usec;
	uint64_t backoff_usec; /* the next wait */
	time_t outage_since;   /* the first exit of the current outage */
};

struct exporter {
	struct loop *loop;
	export_event_fn fn;
	void *data;
	const struct conf *conf;
	struct usb_device **devs;
	size_t n_devs;
	struct export **exports;
	size_t n_exports;
	struct stopping **stopping;
	size_t n_stopping;
};

static void tell(struct export *e, enum export_event ev)
{
	if (e->x->fn)
		e->x->fn(e->x->data, ev, &e->info);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child_exec(char *const argv[])
{
	sigset_t none;
	int fd;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the loop blocks what it reads */
	signal(SIGPIPE, SIG_DFL);
	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, 0) < 0)
		_exit(127);
	/* Only 0, 1 and 2 go on, whatever a library opened without O_CLOEXEC. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U) < 0) {
		for (long i = 3, max = sysconf(_SC_OPEN_MAX); i < max; i++)
			close((int)i);
	}
	execv(argv[0], argv);
	_exit(127);
}

/* Reap pid (it has exited); its wait status. */
static int reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* Stop watching (the child is not reaped here). */
static void watch_end(struct child_watch *w)
{
	loop_source_remove(w->src);
	w->src = NULL;
	loop_timer_free(w->poll);
	w->poll = NULL;
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	w->pid = 0;
}

static void watch_exited(struct child_watch *w, int status)
{
	child_exit_fn fn = w->fn;
	void *data = w->data;

	watch_end(w);
	fn(data, status);
}

static void on_pidfd(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct child_watch *w = data;

	(void)src;
	(void)fd;
	(void)revents;
	watch_exited(w, reap(w->pid));
}

static void on_watch_poll(struct loop_timer *t, void *data)
{
	struct child_watch *w = data;
	int st = 0;
	pid_t r = waitpid(w->pid, &st, WNOHANG);

	(void)t;
	if (r == w->pid || (r < 0 && errno == ECHILD))
		watch_exited(w, st);
	else
		loop_timer_arm_in(w->poll, WATCH_POLL_USEC);
}

/* Watch pid: 0, or -errno with nothing watched. */
static int watch_start(struct loop *loop, struct child_watch *w, pid_t pid, child_exit_fn fn,
		       void *data)
{
	*w = (struct child_watch){ .pid = pid, .pidfd = -1, .fn = fn, .data = data };
	w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec by the kernel */
	if (w->pidfd >= 0) {
		w->src = loop_add_fd(loop, w->pidfd, EPOLLIN, on_pidfd, w);
		if (w->src)
			return 0;
	} else if (errno == ENOSYS) {
		w->poll = loop_timer_new(loop, on_watch_poll, w);
		loop_timer_arm_in(w->poll, WATCH_POLL_USEC);
		return 0;
	}
	{
		int r = -errno;

		watch_end(w);
		return r;
	}
}

static void on_child_exit(void *data, int status);

/* Start e's child and watch it. 0 or -errno (logged by the caller). */
static int start_child(struct export *e)
{
	char *argv[] = { e->x->conf->daemon.usbredirect,
			 (char *)"--device",
			 (char *)e->info.device,
			 (char *)"--to",
			 (char *)e->info.to,
			 NULL };
	pid_t pid;
	int r;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_exec(argv);
	r = watch_start(e->x->loop, &e->child, pid, on_child_exit, e);
	if (r < 0) {
		kill(pid, SIGKILL);
		reap(pid);
		return r;
	}
	e->started_usec = now_usec();
	e->info.running = true;
	return 0;
}

static char *describe_status(int st)
{
	if (WIFSIGNALED(st))
		return xasprintf("killed by signal %d", WTERMSIG(st));
	return xasprintf("exited with status %d", WEXITSTATUS(st));
}

/* Wait, then start again; the first failure of an outage is logged. */
static void schedule_retry(struct export *e, const char *what)
{
	uint64_t delay;

	if (e->info.failures == 0 || now_usec() - e->started_usec >= EXPORT_UP_USEC)
		e->info.failures = 0, e->backoff_usec = EXPORT_RETRY_FIRST_USEC;
	delay = e->backoff_usec;
	e->backoff_usec = delay * 2 > EXPORT_RETRY_MAX_USEC ? EXPORT_RETRY_MAX_USEC : delay * 2;
	if (e->info.failures++ == 0) {
		e->outage_since = time(NULL);
		log_warning("usb-export %s: usbredirect for %s to %s %s, retrying in %llu s "
			    "(further tries logged at debug level until it stays up)",
			    e->info.name, e->info.device, e->info.to, what,
			    (unsigned long long)(delay / 1000000));
	} else {
		log_debug("usb-export %s: usbredirect for %s to %s %s again, retrying in %llu s",
			  e->info.name, e->info.device, e->info.to, what,
			  (unsigned long long)(delay / 1000000));
	}
	e->info.running = false;
	e->info.since = e->outage_since;
	e->info.retry_in_usec = delay;
	loop_timer_arm_in(e->retry, delay);
}

static void on_child_exit(void *data, int status)
{
	struct export *e = data;
	char *what = describe_status(status);

	schedule_retry(e, what);
	free(what);
	tell(e, EXPORT_EXITED);
}

static void on_retry(struct loop_timer *t, void *data)
{
	struct export *e = data;
	int r;

	(void)t;
	r = start_child(e);
	if (r < 0) {
		char *what = xasprintf("could not be started (%s)", strerror(-r));

		schedule_retry(e, what);
		free(what);
		return;
	}
	e->info.since = time(NULL);
	log_debug("usb-export %s: usbredirect for %s to %s started again (pid %d)", e->info.name,
		  e->info.device, e->info.to, (int)e->child.pid);
	tell(e, EXPORT_STARTED);
}

struct exporter *export_new(struct loop *loop, export_event_fn fn, void *data)
{
	struct exporter *x = xzalloc(sizeof(*x));

	x->loop = loop;
	x->fn = fn;
	x->data = data;
	return x;
}

/* ------------------------------------------------------------ stopping */

static void stopping_free(struct stopping *s)
{
	struct exporter *x = s->x;

	for (size_t i = 0; i < x->n_stopping; i++) {
		if (x->stopping[i] == s) {
			x->stopping[i] = x->stopping[--x->n_stopping];
			break;
		}
	}
	watch_end(&s->child);
	loop_timer_free(s->kill_timer);
	free(s);
}

static void on_stopped_exit(void *data, int status)
{
	(void)status;
	stopping_free(data);
}

static void on_kill_timer(struct loop_timer *t, void *data)
{
	struct stopping *s = data;

	(void)t;
	log_warning("usbredirect (pid %d) did not stop on SIGTERM: killed", (int)s->child.pid);
	kill(s->child.pid, SIGKILL);
}

/* Stop e's child (if any), told and freed. */
static void export_stop(struct export *e, bool tell_it)
{
	struct exporter *x = e->x;

	if (e->child.pid > 0) {
		struct stopping *s = xzalloc(sizeof(*s));
		pid_t pid = e->child.pid;

		s->x = x;
		watch_end(&e->child);
		kill(pid, SIGTERM);
		if (watch_start(x->loop, &s->child, pid, on_stopped_exit, s) < 0) {
			kill(pid, SIGKILL);
			reap(pid);
			free(s);
		} else {
			s->kill_timer = loop_timer_new(x->loop, on_kill_timer, s);
			loop_timer_arm_in(s->kill_timer, EXPORT_KILL_USEC);
			*(struct stopping **)xappend(&x->stopping, &x->n_stopping, sizeof(s)) = s;
		}
	}
	log_info("usb-export %s: %s to %s stopped", e->info.name, e->info.device, e->info.to);
	if (tell_it)
		tell(e, EXPORT_STOPPED);
	loop_timer_free(e->retry);
	free((char *)e->info.name);
	free((char *)e->info.device);
	free((char *)e->info.port);
	free((char *)e->info.to);
	free(e->syspath);
	free(e);
}

/* ------------------------------------------------------- what is wanted */

/* The section that claims d: the first in the file whose rule matches. */
static const struct conf_usb_export *claim(const struct conf *conf, const struct usb_device *d)
{
	for (size_t i = 0; conf && i < conf->n_exports; i++)
		if (usb_rule_matches(&conf->exports[i].rule, d, NULL))
			return &conf->exports[i];
	return NULL;
}

/* e still says what d and its section say. */
static bool same(const struct export *e, const struct usb_device *d,
		 const struct conf_usb_export *c, const char *device)
{
	return streq(e->syspath, d->syspath) && streq(e->info.name, c->name) &&
	       streq(e->info.to, c->to) && streq(e->info.device, device);
}

static void start_export(struct exporter *x, const struct usb_device *d,
			 const struct conf_usb_export *c, const char *device)
{
	struct export *e = xzalloc(sizeof(*e));
	int r;

	e->x = x;
	e->child.pidfd = -1;
	e->syspath = xstrdup(d->syspath);
	e->info.name = xstrdup(c->name);
	e->info.device = xstrdup(device);
	e->info.port = xstrdup(d->sysname);
	e->info.to = xstrdup(c->to);
	e->retry = loop_timer_new(x->loop, on_retry, e);
	*(struct export **)xappend(&x->exports, &x->n_exports, sizeof(e)) = e;
	r = start_child(e);
	if (r < 0) {
		char *what = xasprintf("could not be started (%s)", strerror(-r));

		schedule_retry(e, what);
		free(what);
		tell(e, EXPORT_EXITED);
		return;
	}
	e->info.since = time(NULL);
	log_info("usb-export %s: exporting %s (%s) to %s (usbredirect pid %d)", e->info.name,
		 e->info.device, e->info.port, e->info.to, (int)e->child.pid);
	tell(e, EXPORT_STARTED);
}

/* Make the exports what the devices and the sections say. */
static void update(struct exporter *x)
{
	/* stop what is no longer wanted */
	for (size_t i = 0; i < x->n_exports;) {
		struct export *e = x->exports[i];
		const struct usb_device *d = NULL;
		const struct conf_usb_export *c;
		bool keep = false;

		for (size_t j = 0; j < x->n_devs && !d; j++)
			if (streq(x->devs[j]->syspath, e->syspath))
				d = x->devs[j];
		if (d && (c = claim(x->conf, d))) {
			char *device = xasprintf("%u-%u", d->bus, d->devnum);

			keep = same(e, d, c, device);
			free(device);
		}
		if (keep) {
			i++;
			continue;
		}
		x->exports[i] = x->exports[--x->n_exports];
		export_stop(e, true);
	}
	/* start what is wanted and missing */
	for (size_t j = 0; j < x->n_devs; j++) {
		const struct usb_device *d = x->devs[j];
		const struct conf_usb_export *c = claim(x->conf, d);
		char *device;
		bool have = false;

		if (!c)
			continue;
		device = xasprintf("%u-%u", d->bus, d->devnum);
		for (size_t i = 0; i < x->n_exports && !have; i++)
			have = same(x->exports[i], d, c, device);
		if (!have)
			start_export(x, d, c, device);
		free(device);
	}
}

void export_set_conf(struct exporter *x, const struct conf *conf)
{
	x->conf = conf;
	update(x);
}

void export_device_add(struct exporter *x, const struct usb_device *dev)
{
	size_t i;

	for (i = 0; i < x->n_devs; i++)
		if (streq(x->devs[i]->syspath, dev->syspath))
			break;
	if (i < x->n_devs)
		usb_device_free(x->devs[i]);
	else
		xappend(&x->devs, &x->n_devs, sizeof(*x->devs));
	x->devs[i] = usb_device_copy(dev);
	update(x);
}

void export_device_remove(struct exporter *x, const char *syspath)
{
	for (size_t i = 0; i < x->n_devs; i++) {
		if (streq(x->devs[i]->syspath, syspath)) {
			usb_device_free(x->devs[i]);
			x->devs[i] = x->devs[--x->n_devs];
			update(x);
			return;
		}
	}
}

void export_foreach(struct exporter *x, void (*fn)(void *ctx, const struct export_info *info),
		    void *ctx)
{
	for (size_t i = 0; i < x->n_exports; i++)
		fn(ctx, &x->exports[i]->info);
}

/* At exit: each child gets SIGTERM, then up to 2 s in all, then SIGKILL. */
void export_free(struct exporter *x)
{
	uint64_t deadline;

	if (!x)
		return;
	while (x->n_exports)
		export_stop(x->exports[--x->n_exports], false);
	deadline = now_usec() + 2000000;
	while (x->n_stopping) {
		struct stopping *s = x->stopping[x->n_stopping - 1];
		pid_t pid = s->child.pid;

		/* they were sent SIGTERM: up to 2 s in all, then SIGKILL */
		while (waitpid(pid, NULL, WNOHANG) == 0) {
			if (now_usec() >= deadline) {
				kill(pid, SIGKILL);
				reap(pid);
				break;
			}
			usleep(10000);
		}
		stopping_free(s);
	}
	for (size_t i = 0; i < x->n_devs; i++)
		usb_device_free(x->devs[i]);
	free(x->devs);
	free(x->exports);
	free(x->stopping);
	free(x);
}

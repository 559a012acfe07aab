/* The libvirt backend: USB host devices through libvirt's API, behind the
 * same interface as QMP (see DESIGN.md, "libvirt").
 *
 * Threads. libvirt's API blocks, so the daemon's loop makes no libvirt
 * call at all:
 * - every backend instance has a worker thread that owns its connection
 *   and makes all of its calls, one job at a time, in order;
 * - one thread for the whole process runs libvirt's default event loop
 *   (domain events, keepalive, the close callback); those callbacks only
 *   queue a job for the instance's worker, so events, state checks and
 *   completions reach the loop in one order;
 * - results come back to the loop through the instance's mailbox and its
 *   eventfd.
 * The mailbox is all the threads share: a mutex, the two queues, the
 * eventfd and copies of the URI and names. It is reference-counted (the
 * loop side, the worker, each registered domain event callback, released
 * by libvirt's free callback once it cannot run any more), so a worker
 * stuck in a hung libvirtd outlives its backend without harm. Workers of
 * destroyed backends are joined when they finish, and at exit (for a short
 * while).
 *
 * State. The worker reports the domain as (connected, active, domain id)
 * after connecting and after every lifecycle event; the loop side calls
 * vm_up when it becomes active, and vm_gone when it stops being active or
 * its id changes (stopped and started again). A domain that is not
 * defined or not running is down, logged once. A lost connection is
 * retried with backoff (RETRY_MIN_USEC doubling to RETRY_MAX_USEC).
 *
 * Completions: msg is libvirt's own message. -ENOTCONN when the domain is
 * not running or the connection is gone; -EIO for any other refusal. A
 * detach completes when libvirt's DEVICE_REMOVED event names the alias
 * (-ETIMEDOUT after DETACH_TIMEOUT_USEC without it), or at once when the
 * domain has no such device. Only hostdevs whose alias is ua-vmplug-...
 * are ever detached or listed. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>

#include "backends/backend.h"
#include "backends/base.h"
#include "backends/libvirt-int.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

#define RETRY_MIN_USEC (100 * USEC_PER_MSEC)
#define RETRY_MAX_USEC (5 * USEC_PER_SEC)
#define DETACH_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* A dead or wedged libvirtd is noticed after about 5 s * (3 + 1). */
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_COUNT 3
/* How long exit waits for workers to close their connections. */
#define EXIT_WAIT_USEC (2 * USEC_PER_SEC)
/* A problem that repeats unchanged is logged again at most this often. */
#define REPEAT_LOG_USEC (10 * 60 * USEC_PER_SEC)

/* ------------------------------------------------------------ mailbox */

enum job_kind {
	JOB_STATE,   /* text: the lifecycle event that asked, or NULL */
	JOB_ATTACH,  /* text: the hostdev XML */
	JOB_DETACH,  /* text: the id */
	JOB_LIST,    /* (nothing more) */
	JOB_REMOVED, /* text: the alias libvirt reported */
	JOB_CLOSED,  /* libvirt closed the connection */
};

struct job {
	struct list link;
	enum job_kind kind;
	unsigned long seq;
	int reason; /* closed: a virConnectCloseReason */
	char *text;
};

enum result_kind {
	RES_STATE,   /* connected, active, dom_id; text: why not up */
	RES_EVENT,   /* text: a backend_events event name */
	RES_DONE,    /* seq, err, text: libvirt's words; gone: nothing to detach */
	RES_LIST,    /* seq, err, list */
	RES_REMOVED, /* text: the vmplug id */
};

struct result {
	struct list link;
	enum result_kind kind;
	unsigned long seq;
	int err;
	char *text;
	bool connected, active, gone;
	unsigned dom_id;
	struct backend_list *list;
};

struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job arrived, or quit */
	unsigned refs;
	bool quit;
	struct list jobs;
	struct list results;
	int efd;
	/* Copies, read-only once the worker runs. */
	char *uri;
	char *domain;
	char *vm;
};

/* The loop side's reference; NULL with errno set when no eventfd. */
static struct mailbox *mailbox_new(const struct conf_vm *vm)
{
	struct mailbox *mb = xnew(struct mailbox);
	pthread_condattr_t attr;

	mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mb->efd < 0) {
		free(mb);
		return NULL;
	}
	pthread_mutex_init(&mb->lock, NULL);
	/* The worker's timed waits are on the monotonic clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&mb->cond, &attr);
	pthread_condattr_destroy(&attr);
	mb->refs = 1;
	list_init(&mb->jobs);
	list_init(&mb->results);
	mb->uri = xstrdup(vm->uri ? vm->uri : "qemu:///system");
	mb->domain = xstrdup(vm->domain ? vm->domain : vm->name);
	mb->vm = xstrdup(vm->name);
	return mb;
}

/* One more holder (a worker, a registered event callback). */
static void mailbox_ref(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->refs++;
	pthread_mutex_unlock(&mb->lock);
}

/* Free a job (ran, or dropped after quit). */
static void job_free(struct job *j)
{
	free(j->text);
	free(j);
}

/* Free a result (handled, or left when the mailbox goes). */
static void result_free(struct result *r)
{
	free(r->text);
	backend_list_free(r->list);
	free(r);
}

/* A holder lets go; the last one frees (also libvirt's free callback). */
static void mailbox_unref(void *opaque)
{
	struct mailbox *mb = opaque;
	struct job *j, *jt;
	struct result *r, *rt;
	bool last;

	pthread_mutex_lock(&mb->lock);
	last = --mb->refs == 0;
	pthread_mutex_unlock(&mb->lock);
	if (!last)
		return;
	list_for_each_safe(j, jt, &mb->jobs, link)
		job_free(j);
	list_for_each_safe(r, rt, &mb->results, link)
		result_free(r);
	closep(&mb->efd);
	pthread_cond_destroy(&mb->cond);
	pthread_mutex_destroy(&mb->lock);
	free(mb->uri);
	free(mb->domain);
	free(mb->vm);
	free(mb);
}

/* Queue a job for the worker (any thread); dropped after quit. */
static void queue_job(struct mailbox *mb, struct job *j)
{
	pthread_mutex_lock(&mb->lock);
	if (mb->quit) {
		pthread_mutex_unlock(&mb->lock);
		job_free(j);
		return;
	}
	list_insert_tail(&mb->jobs, &j->link);
	pthread_cond_signal(&mb->cond);
	pthread_mutex_unlock(&mb->lock);
}

/* Queue a job with a copy of text. */
static void push_job(struct mailbox *mb, enum job_kind kind, unsigned long seq, const char *text)
{
	struct job *j = xnew(struct job);

	j->kind = kind;
	j->seq = seq;
	j->text = text ? xstrdup(text) : NULL;
	queue_job(mb, j);
}

/* Hand a result to the loop (worker thread). */
static void post(struct mailbox *mb, struct result *r)
{
	uint64_t one = 1;

	pthread_mutex_lock(&mb->lock);
	list_insert_tail(&mb->results, &r->link);
	pthread_mutex_unlock(&mb->lock);
	if (write(mb->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is full, so the loop is woken anyway. */
	}
}

/* A result with a copy of text. */
static struct result *result_new(enum result_kind kind, unsigned long seq, int err,
				 const char *text)
{
	struct result *r = xnew(struct result);

	r->kind = kind;
	r->seq = seq;
	r->err = err;
	r->text = text ? xstrdup(text) : NULL;
	return r;
}

/* ------------------------------------------------- process-wide threads */

struct worker {
	struct list link; /* in `retired` once its backend is gone */
	pthread_t thread;
	bool finished; /* under global_lock */
	struct mailbox *mb;
	/* The worker thread's own. */
	virConnectPtr conn;
	int cb_lifecycle;
	int cb_removed;
	bool cb_close;
	uint64_t retry_at;
	unsigned failures;
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t global_cond = PTHREAD_COND_INITIALIZER; /* a worker finished */
static struct list retired = { &retired, &retired };
static pthread_t event_thread;
static int event_quit;
static pid_t init_pid; /* a forked child has none of these threads */

/* The thread that runs libvirt's default event loop until exit. */
static void *event_main(void *arg)
{
	while (!__atomic_load_n(&event_quit, __ATOMIC_ACQUIRE))
		if (virEventRunDefaultImpl() < 0) /* not expected; never spin */
			nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	return NULL;
}

/* A timeout that only wakes the event loop to see it must quit. */
static void wake_event_loop(int timer, void *opaque)
{
	virEventRemoveTimeout(timer);
}

/* Join the retired workers that finished; with wait_usec, first wait up to
 * that long for all of them. */
static void reap(uint64_t wait_usec)
{
	struct worker *w, *tmp;
	struct timespec until;
	bool all;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(wait_usec / USEC_PER_SEC);
	until.tv_nsec += (long)(wait_usec % USEC_PER_SEC) * 1000;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&global_lock);
	do {
		all = true;
		list_for_each(w, &retired, link)
			all &= w->finished;
	} while (!all && wait_usec &&
		 pthread_cond_timedwait(&global_cond, &global_lock, &until) == 0);
	list_for_each_safe(w, tmp, &retired, link) {
		if (!w->finished)
			continue;
		list_remove(&w->link);
		pthread_join(w->thread, NULL);
		free(w);
	}
	pthread_mutex_unlock(&global_lock);
}

/* At exit: let workers close their connections, then stop the event thread. */
static void shutdown_threads(void)
{
	if (getpid() != init_pid)
		return;
	/* Workers close their connections (their callbacks are released by
	 * the event loop, so it runs until they are done). One stuck in a
	 * hung libvirtd is left behind. */
	reap(EXIT_WAIT_USEC);
	__atomic_store_n(&event_quit, 1, __ATOMIC_RELEASE);
	if (virEventAddTimeout(0, wake_event_loop, NULL, NULL) >= 0)
		pthread_join(event_thread, NULL);
}

/* libvirt's error handler: silent. */
static void quiet_errors(void *data, virErrorPtr err)
{
	/* libvirt prints every error to stderr unless told otherwise; each
	 * caller reports what matters with the VM's name. */
}

/* libvirt and the event thread, once per process (from the loop thread). */
static int global_init(void)
{
	static bool done;
	static int err;

	if (done)
		return err;
	done = true;
	xmlInitParser();
	virSetErrorFunc(NULL, quiet_errors);
	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		err = -EIO;
		return err;
	}
	if (pthread_create(&event_thread, NULL, event_main, NULL) != 0) {
		err = -EAGAIN;
		return err;
	}
	init_pid = getpid();
	atexit(shutdown_threads);
	return 0;
}

/* ------------------------------------------------------------- worker */

/* libvirt's message for the last failed call on this thread. */
static const char *last_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

/* How the domain is, for the loop. */
static struct result *state_result(bool connected, bool active, unsigned id, const char *why)
{
	struct result *r = result_new(RES_STATE, 0, 0, why);

	r->connected = connected;
	r->active = active;
	r->dom_id = id;
	return r;
}

/* libvirt's lifecycle event (event thread): the worker checks the state. */
static void on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	static const char *const names[] = {
		[VIR_DOMAIN_EVENT_SUSPENDED] = "STOP",
		[VIR_DOMAIN_EVENT_RESUMED] = "RESUME",
		[VIR_DOMAIN_EVENT_SHUTDOWN] = "SHUTDOWN",
	};
	struct mailbox *mb = opaque;
	const char *name = virDomainGetName(dom);

	if (!name || !streq(name, mb->domain))
		return;
	push_job(mb, JOB_STATE, 0,
		 event >= 0 && (size_t)event < ARRAY_SIZE(names) ? names[event] : NULL);
}

/* libvirt's DEVICE_REMOVED (event thread) for one of vmplug's aliases. */
static void on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
	struct mailbox *mb = opaque;
	const char *name = virDomainGetName(dom);

	if (name && streq(name, mb->domain) && alias &&
	    startswith(alias, BACKEND_LIBVIRT_OUR_ALIAS))
		push_job(mb, JOB_REMOVED, 0, alias);
}

/* libvirt closed the connection (event thread): the worker finds out why. */
static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct job *j = xnew(struct job);

	j->kind = JOB_CLOSED;
	j->reason = reason;
	queue_job(opaque, j);
}

/* Drop the connection and its callbacks (worker). */
static void disconnect(struct worker *w)
{
	if (!w->conn)
		return;
	if (w->cb_lifecycle >= 0)
		virConnectDomainEventDeregisterAny(w->conn, w->cb_lifecycle);
	if (w->cb_removed >= 0)
		virConnectDomainEventDeregisterAny(w->conn, w->cb_removed);
	if (w->cb_close)
		virConnectUnregisterCloseCallback(w->conn, on_close);
	w->cb_lifecycle = w->cb_removed = -1;
	w->cb_close = false;
	virConnectClose(w->conn);
	w->conn = NULL;
}

/* When to connect again: 0.1 s doubling to 5 s. */
static void retry_later(struct worker *w)
{
	uint64_t delay = RETRY_MIN_USEC << (w->failures < 6 ? w->failures : 6);

	w->failures++;
	w->retry_at = now_usec() + (delay > RETRY_MAX_USEC ? RETRY_MAX_USEC : delay);
}

/* Not connected (any more): say why, and connect again later. */
static void unconnected(struct worker *w, const char *why)
{
	disconnect(w);
	post(w->mb, state_result(false, false, 0, why));
	retry_later(w);
}

/* The connection broke. */
static void lost(struct worker *w, const char *why)
{
	char *text = xasprintf("lost the connection to libvirt: %s", why);

	unconnected(w, text);
	free(text);
}

/* After a failed call: is the connection still there? */
static bool still_connected(struct worker *w)
{
	if (virConnectIsAlive(w->conn) == 1)
		return true;
	lost(w, "the connection closed");
	return false;
}

/* The domain, or NULL with *err set (the reason in *why, a new string). */
static virDomainPtr lookup(struct worker *w, int *err, char **why)
{
	virDomainPtr dom = virDomainLookupByName(w->conn, w->mb->domain);
	virErrorPtr e;

	if (dom)
		return dom;
	e = virGetLastError();
	if (e && e->code == VIR_ERR_NO_DOMAIN)
		*why = xasprintf("domain %s is not defined", w->mb->domain);
	else
		*why = xstrdup(last_error());
	*err = -ENOTCONN;
	return NULL;
}

/* Post the domain's state (and the event that asked first). */
static void query_state(struct worker *w, const char *event)
{
	virDomainPtr dom;
	char *why = NULL, *text;
	int err, active;

	if (event)
		post(w->mb, result_new(RES_EVENT, 0, 0, event));
	dom = lookup(w, &err, &why);
	if (!dom) {
		if (still_connected(w))
			post(w->mb, state_result(true, false, 0, why));
		free(why);
		return;
	}
	active = virDomainIsActive(dom);
	if (active < 0) {
		text = xstrdup(last_error());
		if (still_connected(w))
			post(w->mb, state_result(true, false, 0, text));
		free(text);
	} else if (active == 0) {
		text = xasprintf("domain %s is not running", w->mb->domain);
		post(w->mb, state_result(true, false, 0, text));
		free(text);
	} else {
		post(w->mb, state_result(true, true, virDomainGetID(dom), NULL));
	}
	virDomainFree(dom);
}

/* Register for one kind of domain event: the callback id, or -1. The
 * callback holds a reference to the mailbox until libvirt frees it. */
static int watch_events(struct worker *w, int event, void (*cb)(void))
{
	int id;

	mailbox_ref(w->mb);
	id = virConnectDomainEventRegisterAny(w->conn, NULL, event, VIR_DOMAIN_EVENT_CALLBACK(cb),
					      w->mb, mailbox_unref);
	if (id < 0)
		mailbox_unref(w->mb);
	return id;
}

/* Connect, register for events and post the domain's state. */
static void try_connect(struct worker *w)
{
	struct mailbox *mb = w->mb;
	char *why;

	w->conn = virConnectOpen(mb->uri);
	if (!w->conn) {
		why = xasprintf("cannot connect to %s: %s", mb->uri, last_error());
		unconnected(w, why);
		free(why);
		return;
	}
	/* Not every driver has keepalives (test:///); that is fine. */
	virConnectSetKeepAlive(w->conn, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT);
	/* No reference for the close callback: drivers without one accept
	 * it and never call the free callback, and where it exists a call
	 * and the unregistering in disconnect() hold the same lock, so it
	 * cannot run once the worker is past that. */
	w->cb_close = virConnectRegisterCloseCallback(w->conn, on_close, mb, NULL) == 0;
	w->cb_lifecycle = watch_events(w, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
				       (void (*)(void))on_lifecycle);
	if (w->cb_lifecycle >= 0)
		w->cb_removed = watch_events(w, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
					     (void (*)(void))on_device_removed);
	if (w->cb_lifecycle < 0 || w->cb_removed < 0) {
		why = xasprintf("cannot get domain events from %s: %s", mb->uri, last_error());
		unconnected(w, why);
		free(why);
		return;
	}
	w->failures = 0;
	query_state(w, NULL);
}

/* A failed call on dom: its completion error. */
static int call_error(struct worker *w, virDomainPtr dom)
{
	virErrorPtr e = virGetLastError();
	int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;

	/* (code is read first: every call resets the last error) */
	if (code == VIR_ERR_NO_DOMAIN || virConnectIsAlive(w->conn) != 1)
		return -ENOTCONN;
	if (code == VIR_ERR_OPERATION_INVALID && virDomainIsActive(dom) == 0)
		return -ENOTCONN;
	return -EIO;
}

/* Finish a job's call: post its completion, and when the domain or the
 * connection went away, what the state is now. */
static void complete(struct worker *w, struct result *r)
{
	bool recheck = r->err == -ENOTCONN;

	post(w->mb, r);
	if (recheck && still_connected(w))
		query_state(w, NULL);
}

/* JOB_ATTACH: attach the hostdev XML to the live domain. */
static void do_attach(struct worker *w, struct job *j)
{
	struct result *r = result_new(RES_DONE, j->seq, 0, NULL);
	virDomainPtr dom = lookup(w, &r->err, &r->text);

	if (dom && virDomainAttachDeviceFlags(dom, j->text, VIR_DOMAIN_AFFECT_LIVE) < 0) {
		r->text = xstrdup(last_error());
		r->err = call_error(w, dom);
	}
	if (dom)
		virDomainFree(dom);
	complete(w, r);
}

/* JOB_DETACH: detach the live hostdev with that alias, if there is one. */
static void do_detach(struct worker *w, struct job *j)
{
	struct result *r = result_new(RES_DONE, j->seq, 0, NULL);
	virDomainPtr dom = lookup(w, &r->err, &r->text);
	char *xml = dom ? virDomainGetXMLDesc(dom, 0) : NULL, *hostdev = NULL;

	if (dom && !xml) {
		r->text = xstrdup(last_error());
		r->err = call_error(w, dom);
	} else if (xml && backend_libvirt_find_hostdev(xml, strlen(xml), j->text, &hostdev) < 0) {
		r->gone = true; /* nothing of that alias: detached already */
	} else if (xml && virDomainDetachDeviceFlags(dom, hostdev, VIR_DOMAIN_AFFECT_LIVE) < 0) {
		virErrorPtr e = virGetLastError();

		if (e && e->code == VIR_ERR_DEVICE_MISSING) {
			r->gone = true;
		} else {
			r->text = xstrdup(last_error());
			r->err = call_error(w, dom);
		}
	}
	free(hostdev);
	free(xml);
	if (dom)
		virDomainFree(dom);
	complete(w, r);
}

/* JOB_LIST: vmplug's devices in the live domain XML. */
static void do_list(struct worker *w, struct job *j)
{
	struct result *r = result_new(RES_LIST, j->seq, 0, NULL);
	virDomainPtr dom = lookup(w, &r->err, &r->text);
	char *xml = dom ? virDomainGetXMLDesc(dom, 0) : NULL;

	if (dom && !xml) {
		r->text = xstrdup(last_error());
		r->err = call_error(w, dom);
	} else if (xml && backend_libvirt_parse_list(xml, strlen(xml), w->mb->vm, &r->list) < 0) {
		r->text = xstrdup("libvirt sent a domain XML vmplug cannot read");
		r->err = -EPROTO;
	}
	free(xml);
	if (dom)
		virDomainFree(dom);
	complete(w, r);
}

/* A virConnectCloseReason in words. */
static const char *close_reason(int reason)
{
	switch (reason) {
	case VIR_CONNECT_CLOSE_REASON_ERROR:
		return "an error";
	case VIR_CONNECT_CLOSE_REASON_EOF:
		return "end of file";
	case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
		return "no answer to keepalives";
	case VIR_CONNECT_CLOSE_REASON_CLIENT:
		return "closed here";
	}
	return "unknown reason";
}

/* Run one job on the worker's connection (or fail it without one). */
static void run_job(struct worker *w, struct job *j)
{
	struct result *r;
	char *why;

	if (j->kind == JOB_CLOSED) {
		if (w->conn && virConnectIsAlive(w->conn) != 1) {
			why = xasprintf("closed (%s)", close_reason(j->reason));
			lost(w, why);
			free(why);
		}
		return;
	}
	if (!w->conn) {
		/* The loop side learned that already, or is about to. */
		if (j->kind == JOB_ATTACH || j->kind == JOB_DETACH || j->kind == JOB_LIST) {
			r = result_new(j->kind == JOB_LIST ? RES_LIST : RES_DONE, j->seq, -ENOTCONN,
				       NULL);
			post(w->mb, r);
		}
		return;
	}
	switch (j->kind) {
	case JOB_STATE:
		query_state(w, j->text);
		break;
	case JOB_ATTACH:
		do_attach(w, j);
		break;
	case JOB_DETACH:
		do_detach(w, j);
		break;
	case JOB_LIST:
		do_list(w, j);
		break;
	case JOB_REMOVED:
		post(w->mb,
		     result_new(RES_REMOVED, 0, 0, j->text + strlen(BACKEND_LIBVIRT_ALIAS_PREFIX)));
		break;
	case JOB_CLOSED:
		break;
	}
}

/* Wait for a job, or for the time to connect; NULL when it is time to
 * connect or to quit (*quit). */
static struct job *next_job(struct worker *w, bool *quit)
{
	struct mailbox *mb = w->mb;
	struct job *j = NULL;

	pthread_mutex_lock(&mb->lock);
	for (;;) {
		uint64_t now = now_usec();
		struct timespec ts;

		if (mb->quit || !list_empty(&mb->jobs))
			break;
		if (!w->conn && now >= w->retry_at)
			break;
		if (w->conn) {
			pthread_cond_wait(&mb->cond, &mb->lock);
			continue;
		}
		/* The cond runs on CLOCK_MONOTONIC (see mailbox_new). */
		ts.tv_sec = (time_t)(w->retry_at / USEC_PER_SEC);
		ts.tv_nsec = (long)(w->retry_at % USEC_PER_SEC) * 1000;
		pthread_cond_timedwait(&mb->cond, &mb->lock, &ts);
	}
	*quit = mb->quit;
	if (!*quit && !list_empty(&mb->jobs)) {
		j = container_of(mb->jobs.next, struct job, link);
		list_remove(&j->link);
	}
	pthread_mutex_unlock(&mb->lock);
	return j;
}

/* A worker thread: jobs in order, connecting when it has no connection. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	bool quit = false;

	while (!quit) {
		struct job *j = next_job(w, &quit);

		if (j) {
			run_job(w, j);
			job_free(j);
		} else if (!quit && !w->conn) {
			try_connect(w);
		}
	}
	disconnect(w);
	mailbox_unref(w->mb);
	pthread_mutex_lock(&global_lock);
	w->finished = true;
	pthread_cond_broadcast(&global_cond);
	pthread_mutex_unlock(&global_lock);
	return NULL;
}

/* A worker thread for the mailbox; NULL if none could start. */
static struct worker *start_worker(struct mailbox *mb)
{
	struct worker *w = xnew(struct worker);

	w->mb = mb;
	w->cb_lifecycle = w->cb_removed = -1;
	mailbox_ref(mb);
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		mailbox_unref(mb);
		free(w);
		return NULL;
	}
	return w;
}

/* ------------------------------------------------------ the loop's side */

enum op_kind {
	OP_ATTACH,
	OP_DETACH,
	OP_LIST,
};

struct lvb;

struct op {
	struct backend_op base;
	struct lvb *b;
	enum op_kind kind;
	unsigned long seq;
	char *id;
	bool acked;   /* detach: libvirt accepted it */
	bool removed; /* detach: DEVICE_REMOVED seen */
	struct loop_timer *timer;
};

struct lvb {
	struct backend_base base;
	const struct conf_vm *vm;
	struct loop *loop;
	struct mailbox *mb;
	struct worker *worker;
	struct loop_source *src;
	bool connected;
	bool up;
	unsigned dom_id;
	char *problem; /* the last reason it is not up, as logged */
	uint64_t problem_logged;
	bool mode_logged[CONF_ATTACH_PORT + 1];
	unsigned long next_seq;
};

/* The libvirt backend behind the interface's handle. */
static struct lvb *from(const struct backend_vm *b)
{
	return container_of(b, struct lvb, base.vm);
}

/* An operation for a caller, matched to its job's result by seq. */
static struct op *op_new(struct lvb *b, enum op_kind kind, const char *id, backend_done_fn done,
			 backend_list_fn list_done, void *data)
{
	struct op *op = xnew(struct op);

	op->b = b;
	op->kind = kind;
	op->seq = ++b->next_seq;
	op->id = id ? xstrdup(id) : NULL;
	backend_op_add(&b->base, &op->base, done, list_done, data);
	return op;
}

/* The backend_base's op_free: what an op owns. */
static void op_release(struct backend_op *bop)
{
	struct op *op = container_of(bop, struct op, base);

	loop_timer_free(op->timer);
	free(op->id);
	free(op);
}

/* Complete op and free it. */
static void finish(struct op *op, int err, const char *msg, const struct backend_list *list)
{
	backend_op_finish(&op->b->base, &op->base, err, msg, list);
}

/* The op that job `seq` was for, NULL when it finished already. */
static struct op *find_op(struct lvb *b, unsigned long seq)
{
	struct op *op;

	list_for_each(op, &b->base.ops, base.link)
		if (op->seq == seq)
			return op;
	return NULL;
}

/* Log why the VM is not up: once per reason, again only after a while. */
static void note_problem(struct lvb *b, const char *why)
{
	uint64_t now = now_usec();

	if (b->problem && streq(b->problem, why) && now - b->problem_logged < REPEAT_LOG_USEC) {
		log_debug("vm %s: %s", b->vm->name, why);
		return;
	}
	log_info("vm %s: %s%s", b->vm->name, why, b->connected ? "; waiting for it" : "; retrying");
	free(b->problem);
	b->problem = xstrdup(why);
	b->problem_logged = now;
	if (b->base.events->vm_down)
		b->base.events->vm_down(b->base.data, why);
}

/* The domain stopped or went: what was pending fails, then vm_gone. */
static void go_down(struct lvb *b, const char *reason)
{
	b->up = false;
	/* Said here: note_problem() need not say it again. */
	free(b->problem);
	b->problem = xstrdup(reason);
	b->problem_logged = now_usec();
	/* Pending work fails first; a detach waiting for DEVICE_REMOVED
	 * too: the device went with the domain. */
	if (!backend_base_fail_all(&b->base))
		return;
	log_info("vm %s: domain %s gone (%s)", b->vm->name, b->mb->domain, reason);
	if (b->base.events->vm_gone)
		b->base.events->vm_gone(b->base.data, reason);
}

/* The worker's report of the domain: up, gone, restarted, or why not up. */
static void on_state(struct lvb *b, const struct result *r)
{
	bool was_connected = b->connected;

	b->connected = r->connected;
	if (r->connected && !was_connected)
		log_info("vm %s: connected to libvirt at %s", b->vm->name, b->mb->uri);
	if (b->up && !r->active)
		go_down(b, r->text ? r->text : "stopped");
	else if (b->up && r->dom_id != b->dom_id)
		go_down(b, "restarted");
	if (backend_base_dead(&b->base))
		return;
	if (!r->active) {
		note_problem(b, r->text ? r->text : "not running");
		return;
	}
	if (b->up)
		return;
	free(b->problem);
	b->problem = NULL;
	b->up = true;
	b->dom_id = r->dom_id;
	log_info("vm %s: domain %s is running (id %u)", b->vm->name, b->mb->domain, r->dom_id);
	if (b->base.events->vm_up)
		b->base.events->vm_up(b->base.data);
}

/* No DEVICE_REMOVED in time: the detach fails. */
static void on_detach_timer(struct loop_timer *t, void *data)
{
	struct op *op = data;
	struct lvb *b = op->b;

	backend_base_enter(&b->base);
	log_warning("vm %s: libvirt sent no DEVICE_REMOVED for %s within %llu s", b->vm->name,
		    op->id, (unsigned long long)(DETACH_TIMEOUT_USEC / USEC_PER_SEC));
	finish(op, -ETIMEDOUT, "no DEVICE_REMOVED from libvirt", NULL);
	backend_base_leave(&b->base);
}

/* An attach or detach job ended; a detach then waits for DEVICE_REMOVED. */
static void on_done(struct lvb *b, const struct result *r)
{
	struct op *op = find_op(b, r->seq);

	if (!op)
		return; /* finished already (the VM went down meanwhile) */
	if (op->kind == OP_ATTACH || r->err || r->gone || op->removed) {
		if (r->err && r->err != -ENOTCONN)
			log_debug("vm %s: %s %s failed: %s", b->vm->name,
				  op->kind == OP_ATTACH ? "attaching" : "detaching", op->id,
				  r->text ? r->text : strerror(-r->err));
		finish(op, r->err, r->text, NULL);
		return;
	}
	op->acked = true;
	op->timer = loop_timer_new(b->loop, on_detach_timer, op);
	loop_timer_arm_in(op->timer, DETACH_TIMEOUT_USEC);
}

/* DEVICE_REMOVED: a detach waiting for it, or removed by someone else. */
static void on_removed(struct lvb *b, const char *id)
{
	struct op *op;

	list_for_each(op, &b->base.ops, base.link) {
		if (op->kind != OP_DETACH || op->removed || !streq(op->id, id))
			continue;
		op->removed = true;
		if (op->acked)
			finish(op, 0, NULL, NULL);
		return;
	}
	if (!b->up)
		return;
	log_info("vm %s: %s was removed from the domain by someone else", b->vm->name, id);
	if (b->base.events->item_gone)
		b->base.events->item_gone(b->base.data, id);
}

/* One result from the worker, on the loop. */
static void handle(struct lvb *b, struct result *r)
{
	struct op *op;

	switch (r->kind) {
	case RES_STATE:
		on_state(b, r);
		break;
	case RES_EVENT:
		if (b->up && b->base.events->vm_event)
			b->base.events->vm_event(b->base.data, r->text);
		break;
	case RES_DONE:
		on_done(b, r);
		break;
	case RES_LIST:
		op = find_op(b, r->seq);
		if (op)
			finish(op, r->err, NULL, r->list);
		break;
	case RES_REMOVED:
		on_removed(b, r->text);
		break;
	}
}

/* The eventfd: take every result posted and handle them in order. */
static void on_mailbox(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct lvb *b = data;
	struct list batch;
	struct result *r, *tmp;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: woken for results already taken */
	}
	list_init(&batch);
	pthread_mutex_lock(&b->mb->lock);
	if (!list_empty(&b->mb->results)) {
		batch = b->mb->results;
		batch.next->prev = &batch;
		batch.prev->next = &batch;
		list_init(&b->mb->results);
	}
	pthread_mutex_unlock(&b->mb->lock);
	backend_base_enter(&b->base);
	list_for_each_safe(r, tmp, &batch, link) {
		list_remove(&r->link);
		if (!backend_base_dead(&b->base))
			handle(b, r);
		result_free(r);
	}
	backend_base_leave(&b->base);
}

/* ------------------------------------------------------- the operations */

/* backend_ops.usb_attach: a JOB_ATTACH with the hostdev XML. */
static int lvb_usb_attach(struct backend_vm *bv, const struct backend_usb_dev *dev,
			  backend_done_fn done, void *data)
{
	struct lvb *b = from(bv);
	struct op *op;
	char *xml;

	if (!b->up)
		return -ENOTCONN;
	if (backend_libvirt_hostdev_xml(dev, &xml) < 0)
		return -EINVAL;
	if (dev->mode != CONF_ATTACH_ADDRESS && !b->mode_logged[dev->mode]) {
		/* libvirt names a host device by bus and device number only;
		 * replugs are followed by vmplug itself, as in address mode. */
		log_info("vm %s: attach-mode %s: libvirt attaches by bus and device number, so "
			 "vmplug does that",
			 b->vm->name, conf_attach_mode_name(dev->mode));
		b->mode_logged[dev->mode] = true;
	}
	op = op_new(b, OP_ATTACH, dev->id, done, NULL, data);
	push_job(b->mb, JOB_ATTACH, op->seq, xml);
	free(xml);
	return 0;
}

/* backend_ops.usb_detach: a JOB_DETACH. */
static int lvb_usb_detach(struct backend_vm *bv, const char *id, backend_done_fn done, void *data)
{
	struct lvb *b = from(bv);
	struct op *op;

	if (!b->up)
		return -ENOTCONN;
	if (!backend_libvirt_valid_id(id))
		return -EINVAL;
	op = op_new(b, OP_DETACH, id, done, NULL, data);
	push_job(b->mb, JOB_DETACH, op->seq, id);
	return 0;
}

/* backend_ops.list: a JOB_LIST. */
static int lvb_list(struct backend_vm *bv, backend_list_fn done, void *data)
{
	struct lvb *b = from(bv);
	struct op *op;

	if (!b->up)
		return -ENOTCONN;
	op = op_new(b, OP_LIST, NULL, NULL, done, data);
	push_job(b->mb, JOB_LIST, op->seq, NULL);
	return 0;
}

/* backend_ops.is_up. */
static bool lvb_is_up(const struct backend_vm *bv)
{
	return from(bv)->up;
}

/* backend_ops.create: the mailbox, its eventfd on the loop, a worker. */
static struct backend_vm *lvb_create(struct loop *loop, const struct conf_vm *vm,
				     const struct backend_events *events, void *data)
{
	struct lvb *b;
	int r;

	if (vm->backend != CONF_BACKEND_LIBVIRT) {
		errno = EINVAL;
		return NULL;
	}
	r = global_init();
	if (r < 0) {
		log_error("vm %s: cannot start libvirt's event loop", vm->name);
		errno = -r;
		return NULL;
	}
	reap(0);
	b = xnew(struct lvb);
	backend_base_init(&b->base, &backend_libvirt_ops, events, data, op_release);
	b->vm = vm;
	b->loop = loop;
	b->mb = mailbox_new(vm);
	if (!b->mb) {
		r = -errno;
		goto fail;
	}
	b->src = loop_add_fd(loop, b->mb->efd, EPOLLIN, on_mailbox, b);
	if (!b->src) {
		r = -errno;
		goto fail;
	}
	b->worker = start_worker(b->mb);
	if (!b->worker) {
		r = -EAGAIN;
		goto fail;
	}
	return &b->base.vm;
fail:
	log_error("vm %s: cannot start the libvirt backend: %s", vm->name, strerror(-r));
	loop_source_remove(b->src);
	if (b->mb)
		mailbox_unref(b->mb);
	free(b);
	errno = -r;
	return NULL;
}

/* backend_ops.destroy: the worker is told to quit, never waited for. */
static void lvb_destroy(struct backend_vm *bv)
{
	struct lvb *b;

	if (!bv)
		return;
	b = from(bv);
	if (backend_base_dead(&b->base))
		return;
	loop_source_remove(b->src);
	/* The worker may be stuck in a call to a hung libvirtd: it is told
	 * to quit and joined later, never waited for here. */
	pthread_mutex_lock(&b->mb->lock);
	b->mb->quit = true;
	pthread_cond_signal(&b->mb->cond);
	pthread_mutex_unlock(&b->mb->lock);
	pthread_mutex_lock(&global_lock);
	list_insert_tail(&retired, &b->worker->link);
	pthread_mutex_unlock(&global_lock);
	mailbox_unref(b->mb);
	free(b->problem);
	reap(0);
	backend_base_destroy(&b->base);
}

const struct backend_ops backend_libvirt_ops = {
	.name = "libvirt",
	.create = lvb_create,
	.destroy = lvb_destroy,
	.is_up = lvb_is_up,
	.usb_attach = lvb_usb_attach,
	.usb_detach = lvb_usb_detach,
	/* libvirt cannot hot-add <input type='evdev'>: the sinks go into the
	 * domain's XML (vmplug.conf(5)); list() reports the ones it has. */
	.input_attach = NULL,
	.input_detach = NULL,
	.list = lvb_list,
};

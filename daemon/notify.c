/* sd_notify: readiness, reloads and the status line, rate-limited. */
#include "config.h"

#include "daemon/notify.h"

#include <stdbool.h>
#include <stdlib.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "util/log.h"
#include "util/util.h"

struct notify_status {
	struct loop_timer *timer;
	uint64_t interval;
	uint64_t last_sent; /* 0: never */
	char *sent;         /* what the service manager shows */
	char *want;         /* what it should show */
};

/* Only a service manager (NOTIFY_SOCKET) reads the status: without one, keep none. */
static bool manager(void)
{
#ifdef HAVE_SYSTEMD
	return getenv("NOTIFY_SOCKET") != NULL;
#else
	return false;
#endif
}

/* sd_notify, whose failure is not worth more than a debug line. */
static void tell(const char *msg)
{
#ifdef HAVE_SYSTEMD
	int r = sd_notify(0, msg);

	if (r < 0)
		log_debug("sd_notify %s: %s", msg, strerror(-r));
#endif
}

void notify_ready(void)
{
	tell("READY=1");
}

void notify_reloading(void)
{
	tell("RELOADING=1");
}

void notify_stopping(void)
{
	tell("STOPPING=1");
}

/* Send the wanted status line unless it is what is already shown. */
static void flush(struct notify_status *s)
{
	char *msg;

	if (!s->want || (s->sent && streq(s->sent, s->want)))
		return;
	msg = xasprintf("STATUS=%s", s->want);
	tell(msg);
	free(msg);
	free(s->sent);
	s->sent = s->want;
	s->want = NULL;
	s->last_sent = now_usec();
}

static void on_timer(struct loop_timer *t, void *data)
{
	flush(data);
}

struct notify_status *notify_status_new(struct loop *loop, uint64_t interval_usec)
{
	struct notify_status *s = xnew(struct notify_status);

	s->interval = interval_usec;
	s->timer = loop_timer_new(loop, on_timer, s);
	return s;
}

void notify_status_free(struct notify_status *s)
{
	if (!s)
		return;
	loop_timer_free(s->timer);
	free(s->sent);
	free(s->want);
	free(s);
}

void notify_status_set(struct notify_status *s, const char *text)
{
	uint64_t now = now_usec();

	if (!s || !manager())
		return;
	free(s->want);
	s->want = xstrdup(text);
	if (s->sent && streq(s->sent, text)) {
		/* back to what is shown: nothing to send */
		free(s->want);
		s->want = NULL;
		loop_timer_disarm(s->timer);
		return;
	}
	if (!s->last_sent || now - s->last_sent >= s->interval)
		flush(s);
	else if (!loop_timer_armed(s->timer))
		loop_timer_arm(s->timer, s->last_sent + s->interval);
}

struct notify_watchdog {
	struct loop_timer *timer;
	uint64_t interval;
};

/* The loop turned: ping, and again in half the manager's time. */
static void on_watchdog(struct loop_timer *t, void *data)
{
	struct notify_watchdog *w = data;

	tell("WATCHDOG=1");
	loop_timer_arm_in(t, w->interval);
}

struct notify_watchdog *notify_watchdog_new(struct loop *loop)
{
#ifdef HAVE_SYSTEMD
	struct notify_watchdog *w;
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return NULL;
	w = xnew(struct notify_watchdog);
	w->interval = usec / 2;
	w->timer = loop_timer_new(loop, on_watchdog, w);
	tell("WATCHDOG=1");
	loop_timer_arm_in(w->timer, w->interval);
	log_debug("watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)(w->interval / 1000));
	return w;
#else
	(void)loop;
	return NULL;
#endif
}

void notify_watchdog_free(struct notify_watchdog *w)
{
	if (!w)
		return;
	loop_timer_free(w->timer);
	free(w);
}

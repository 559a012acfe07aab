/* The daemon's event loop: epoll + one timerfd + signalfd (see loop.h).
 * Armed timers sit in a binary min-heap by deadline, so arming, disarming
 * and each expiry cost O(log n) and finding the next deadline O(1), however
 * many timers the daemon holds. */
#include "config.h"

#include "loop/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/heap.h"
#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

struct loop_source {
	struct loop *loop;
	struct list link;
	int fd;
	uint32_t events;
	loop_fd_fn fn;
	void *data;
	bool removed;
};

struct loop_timer {
	struct loop *loop;
	struct list link;      /* the loop's timers, or its dead ones once freed */
	struct list parked;    /* due but armed during this pass: fires next pass */
	struct heap_node node; /* key: the deadline, 0 when disarmed; in the heap while waiting */
	uint64_t armed_seq;
	loop_timer_fn fn;
	void *data;
	bool removed;
	bool is_parked;
};

struct signal_handler {
	loop_signal_fn fn;
	void *data;
};

struct loop {
	int epfd;
	int timerfd;
	int sigfd;
	sigset_t sigmask;
	sigset_t saved_mask;
	bool have_signals;
	struct signal_handler signals[_NSIG];

	struct list sources;
	struct list dead_sources; /* removed during a pass, freed after it */
	struct list timers;
	struct list dead_timers;
	struct heap heap; /* armed timers, earliest deadline first */
	uint64_t timer_seq;
	uint64_t programmed; /* deadline the timerfd holds, 0 = disarmed */
	bool dispatching;
	bool need_reap;

	bool quit;
	int exit_code;
};

/* The loop's own fds are registered with these markers as epoll data. */
static char timerfd_marker, sigfd_marker;

struct loop *loop_new(void)
{
	struct loop *loop = xnew(struct loop);
	struct epoll_event ev = { .events = EPOLLIN };

	loop->epfd = loop->timerfd = loop->sigfd = -1;
	list_init(&loop->sources);
	list_init(&loop->dead_sources);
	list_init(&loop->timers);
	list_init(&loop->dead_timers);
	sigemptyset(&loop->sigmask);

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		goto fail;
	loop->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (loop->timerfd < 0)
		goto fail;
	ev.data.ptr = &timerfd_marker;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->timerfd, &ev) < 0)
		goto fail;
	return loop;
fail:
	loop_free(loop);
	return NULL;
}

static void source_destroy(struct loop_source *src)
{
	list_remove(&src->link);
	free(src);
}

static void timer_destroy(struct loop_timer *t)
{
	list_remove(&t->link);
	free(t);
}

/* Free what callbacks removed during the pass that just ended. */
static void reap(struct loop *loop)
{
	struct loop_source *src, *stmp;
	struct loop_timer *t, *ttmp;

	list_for_each_safe(src, stmp, &loop->dead_sources, link)
		source_destroy(src);
	list_for_each_safe(t, ttmp, &loop->dead_timers, link)
		timer_destroy(t);
	loop->need_reap = false;
}

/* Take t out of wherever its deadline waits (the heap, or the timers
 * parked for the next pass). */
static void timer_unqueue(struct loop_timer *t)
{
	heap_remove(&t->loop->heap, &t->node);
	if (t->is_parked) {
		list_remove(&t->parked);
		t->is_parked = false;
	}
}

void loop_free(struct loop *loop)
{
	struct loop_source *src, *stmp;
	struct loop_timer *t, *ttmp;

	if (!loop)
		return;
	list_for_each_safe(src, stmp, &loop->sources, link)
		source_destroy(src);
	list_for_each_safe(t, ttmp, &loop->timers, link)
		timer_destroy(t);
	reap(loop);
	heap_clear(&loop->heap);
	if (loop->have_signals)
		sigprocmask(SIG_SETMASK, &loop->saved_mask, NULL);
	closep(&loop->sigfd);
	closep(&loop->timerfd);
	closep(&loop->epfd);
	free(loop);
}

struct loop_source *loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn,
				void *data)
{
	struct loop_source *src = xnew(struct loop_source);
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int saved = errno;

		free(src);
		errno = saved;
		return NULL;
	}
	src->loop = loop;
	src->fd = fd;
	src->events = events;
	src->fn = fn;
	src->data = data;
	list_insert_tail(&loop->sources, &src->link);
	return src;
}

int loop_source_set_events(struct loop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	if (src->events == events)
		return 0;
	if (epoll_ctl(src->loop->epfd, EPOLL_CTL_MOD, src->fd, &ev) < 0)
		return -errno;
	src->events = events;
	return 0;
}

void loop_source_remove(struct loop_source *src)
{
	if (!src || src->removed)
		return;
	/* The fd may already be closed by its owner; ENOENT/EBADF are fine. */
	epoll_ctl(src->loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
	src->removed = true;
	if (src->loop->dispatching) {
		list_remove(&src->link);
		list_insert_tail(&src->loop->dead_sources, &src->link);
		src->loop->need_reap = true;
	} else {
		source_destroy(src);
	}
}

struct loop_timer *loop_timer_new(struct loop *loop, loop_timer_fn fn, void *data)
{
	struct loop_timer *t = xnew(struct loop_timer);

	t->loop = loop;
	t->fn = fn;
	t->data = data;
	heap_node_init(&t->node);
	list_insert_tail(&loop->timers, &t->link);
	return t;
}

void loop_timer_arm(struct loop_timer *t, uint64_t deadline_usec)
{
	if (t->removed)
		return;
	timer_unqueue(t);
	t->armed_seq = t->loop->timer_seq;
	heap_arm(&t->loop->heap, &t->node, deadline_usec ? deadline_usec : 1);
}

void loop_timer_arm_in(struct loop_timer *t, uint64_t usec)
{
	loop_timer_arm(t, now_usec() + usec);
}

void loop_timer_disarm(struct loop_timer *t)
{
	timer_unqueue(t);
	t->node.key = 0;
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->node.key != 0;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t || t->removed)
		return;
	loop_timer_disarm(t);
	t->removed = true;
	if (t->loop->dispatching) {
		list_remove(&t->link);
		list_insert_tail(&t->loop->dead_timers, &t->link);
		t->loop->need_reap = true;
	} else {
		timer_destroy(t);
	}
}

/* Point the timerfd at the earliest armed timer, or disarm it, so an idle
 * daemon has no wake-ups at all. */
static int program_timerfd(struct loop *loop)
{
	struct itimerspec its = { 0 };
	uint64_t earliest = loop->heap.len ? heap_top(&loop->heap)->key : 0;

	if (earliest == loop->programmed)
		return 0;
	its.it_value.tv_sec = (time_t)(earliest / USEC_PER_SEC);
	its.it_value.tv_nsec = (long)(earliest % USEC_PER_SEC) * 1000;
	if (timerfd_settime(loop->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	loop->programmed = earliest;
	return 0;
}

/* Run every timer that expired and was armed before this pass began, in
 * deadline order; a timer (re-)armed during the pass for "now" is parked
 * and goes back into the heap after it, so it waits for the next pass and
 * a callback cannot spin the loop. */
static int dispatch_timers(struct loop *loop)
{
	uint64_t expirations, now;
	struct loop_timer *t, *tmp;
	struct list parked;
	int n = 0;

	if (read(loop->timerfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return -errno;
	loop->programmed = 0;
	loop->timer_seq++;
	now = now_usec();
	list_init(&parked);
	while (loop->heap.len && heap_top(&loop->heap)->key <= now) {
		t = container_of(heap_top(&loop->heap), struct loop_timer, node);
		heap_remove(&loop->heap, &t->node);
		if (t->armed_seq >= loop->timer_seq) {
			list_insert_tail(&parked, &t->parked);
			t->is_parked = true;
			continue;
		}
		t->node.key = 0;
		t->fn(t, t->data);
		n++;
	}
	list_for_each_safe(t, tmp, &parked, parked) {
		list_remove(&t->parked);
		t->is_parked = false;
		heap_insert(&loop->heap, &t->node);
	}
	return n;
}

/* Run the handler of each signal read from the signalfd; returns how many ran. */
static int dispatch_signals(struct loop *loop)
{
	struct signalfd_siginfo si;
	int n = 0;

	for (;;) {
		ssize_t r = read(loop->sigfd, &si, sizeof(si));

		if (r < 0)
			return errno == EAGAIN || errno == EINTR ? n : -errno;
		if (r != sizeof(si) || si.ssi_signo >= _NSIG)
			continue;
		struct signal_handler *h = &loop->signals[si.ssi_signo];

		if (h->fn) {
			h->fn(loop, (int)si.ssi_signo, h->data);
			n++;
		}
	}
}

int loop_add_signal(struct loop *loop, int signo, loop_signal_fn fn, void *data)
{
	sigset_t one;

	if (signo <= 0 || signo >= _NSIG)
		return -EINVAL;
	if (loop->signals[signo].fn)
		return -EEXIST;
	sigemptyset(&one);
	sigaddset(&one, signo);
	if (!loop->have_signals) {
		if (sigprocmask(SIG_BLOCK, &one, &loop->saved_mask) < 0)
			return -errno;
		loop->have_signals = true;
	} else if (sigprocmask(SIG_BLOCK, &one, NULL) < 0) {
		return -errno;
	}
	sigaddset(&loop->sigmask, signo);
	if (loop->sigfd < 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &sigfd_marker };

		loop->sigfd = signalfd(-1, &loop->sigmask, SFD_CLOEXEC | SFD_NONBLOCK);
		if (loop->sigfd < 0)
			return -errno;
		if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->sigfd, &ev) < 0)
			return -errno;
	} else if (signalfd(loop->sigfd, &loop->sigmask, 0) < 0) {
		return -errno;
	}
	loop->signals[signo].fn = fn;
	loop->signals[signo].data = data;
	return 0;
}

void loop_remove_signal(struct loop *loop, int signo)
{
	if (signo > 0 && signo < _NSIG)
		loop->signals[signo] = (struct signal_handler){ 0 };
}

int loop_dispatch(struct loop *loop, int timeout_ms)
{
	struct epoll_event events[64];
	int n, r, ran = 0;

	r = program_timerfd(loop);
	if (r < 0)
		return r;
	n = epoll_wait(loop->epfd, events, (int)ARRAY_SIZE(events), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;

	loop->dispatching = true;
	for (int i = 0; i < n; i++) {
		void *ptr = events[i].data.ptr;

		if (ptr == &timerfd_marker) {
			r = dispatch_timers(loop);
		} else if (ptr == &sigfd_marker) {
			r = dispatch_signals(loop);
		} else {
			struct loop_source *src = ptr;

			/* Removed by an earlier callback of this pass: its memory
			 * is still ours until reap(), so the check is safe. */
			if (src->removed)
				continue;
			src->fn(src, src->fd, events[i].events, src->data);
			r = 1;
		}
		if (r < 0)
			log_error("event loop: %s", strerror(-r));
		else
			ran += r;
	}
	loop->dispatching = false;
	if (loop->need_reap)
		reap(loop);
	return ran;
}

int loop_run(struct loop *loop)
{
	loop->quit = false;
	while (!loop->quit) {
		int r = loop_dispatch(loop, -1);

		if (r < 0) {
			log_error("event loop failed: %s", strerror(-r));
			return 1;
		}
	}
	return loop->exit_code;
}

void loop_quit(struct loop *loop, int code)
{
	loop->quit = true;
	loop->exit_code = code;
}

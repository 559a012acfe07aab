/* Unit tests for the event loop: fds, timers, signals, removal during dispatch. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "loop/loop.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

struct rec {
	int calls;
	int order[16];
	int n;
	struct loop_source *victim_src;
	struct loop_timer *victim_timer;
	int *victim_fd;
	struct loop *loop;
};

static void on_read(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct rec *r = data;
	char buf[16];

	ck_assert(revents & EPOLLIN);
	ck_assert_int_gt(read(fd, buf, sizeof(buf)), 0);
	r->calls++;
	if (r->victim_src) {
		loop_source_remove(r->victim_src);
		closep(r->victim_fd);
		r->victim_src = NULL;
	}
}

START_TEST(fd_source_dispatches_and_changes_events)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	int p[2];
	struct loop_source *src;

	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	src = loop_add_fd(loop, p[0], EPOLLIN, on_read, &r);
	ck_assert_ptr_nonnull(src);
	/* Adding the same fd twice is refused with EEXIST. */
	ck_assert_ptr_null(loop_add_fd(loop, p[0], EPOLLIN, on_read, &r));
	ck_assert_int_eq(errno, EEXIST);

	ck_assert_int_eq(loop_dispatch(loop, 0), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(r.calls, 1);

	/* With no events wanted, a readable fd does not dispatch. */
	ck_assert_int_eq(loop_source_set_events(src, 0), 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_dispatch(loop, 0), 0);
	ck_assert_int_eq(loop_source_set_events(src, EPOLLIN), 0);
	ck_assert_int_eq(loop_dispatch(loop, 0), 1);
	ck_assert_int_eq(r.calls, 2);

	loop_source_remove(src);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_dispatch(loop, 0), 0);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}
END_TEST

START_TEST(remove_other_source_during_dispatch)
{
	struct loop *loop = loop_new();
	struct rec a = { 0 }, b = { 0 };
	int pa[2], pb[2];
	struct loop_source *sa, *sb;

	ck_assert_int_eq(pipe2(pa, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pb, O_CLOEXEC), 0);
	sa = loop_add_fd(loop, pa[0], EPOLLIN, on_read, &a);
	sb = loop_add_fd(loop, pb[0], EPOLLIN, on_read, &b);
	/* Both readable in the same pass; whichever runs first removes the
	 * other and closes its fd: the other must not be called. */
	a.victim_src = sb;
	a.victim_fd = &pb[0];
	b.victim_src = sa;
	b.victim_fd = &pa[0];
	ck_assert_int_eq(write(pa[1], "x", 1), 1);
	ck_assert_int_eq(write(pb[1], "x", 1), 1);
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(a.calls + b.calls, 1);
	/* The survivor still works after the pass. */
	if (a.calls) {
		ck_assert_int_eq(write(pa[1], "x", 1), 1);
		a.victim_src = NULL;
	} else {
		ck_assert_int_eq(write(pb[1], "x", 1), 1);
		b.victim_src = NULL;
	}
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(a.calls + b.calls, 2);
	closep(&pa[0]);
	closep(&pb[0]);
	close(pa[1]);
	close(pb[1]);
	loop_free(loop);
}
END_TEST

static void on_read_remove_self(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	struct rec *r = data;

	r->calls++;
	loop_source_remove(src);
}

START_TEST(remove_self_during_dispatch)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	loop_add_fd(loop, p[0], EPOLLIN, on_read_remove_self, &r);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(loop_dispatch(loop, 0), 0);
	ck_assert_int_eq(r.calls, 1);
	close(p[0]);
	close(p[1]);
	loop_free(loop);
}
END_TEST

struct tdata {
	int id;
	struct rec *rec;
};

static void on_timer(struct loop_timer *t, void *data)
{
	struct tdata *td = data;

	td->rec->order[td->rec->n++] = td->id;
	if (td->rec->victim_timer) {
		loop_timer_free(td->rec->victim_timer);
		td->rec->victim_timer = NULL;
	}
}

START_TEST(timers_fire_in_deadline_order)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	struct tdata d[3] = { { 1, &r }, { 2, &r }, { 3, &r } };
	struct loop_timer *t[3];
	uint64_t base = now_usec();

	for (int i = 0; i < 3; i++)
		t[i] = loop_timer_new(loop, on_timer, &d[i]);
	loop_timer_arm(t[0], base + 30000);
	loop_timer_arm(t[1], base + 10000);
	loop_timer_arm(t[2], base + 20000);
	ck_assert(loop_timer_armed(t[0]));
	while (r.n < 3)
		ck_assert_int_ge(loop_dispatch(loop, 1000), 0);
	ck_assert_int_eq(r.order[0], 2);
	ck_assert_int_eq(r.order[1], 3);
	ck_assert_int_eq(r.order[2], 1);
	ck_assert(!loop_timer_armed(t[0]));
	ck_assert_uint_ge(now_usec() - base, 30000);
	/* Nothing armed: the loop has nothing to do. */
	ck_assert_int_eq(loop_dispatch(loop, 50), 0);
	for (int i = 0; i < 3; i++)
		loop_timer_free(t[i]);
	loop_free(loop);
}
END_TEST

START_TEST(timer_disarm_and_rearm)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	struct tdata d = { 7, &r };
	struct loop_timer *t = loop_timer_new(loop, on_timer, &d);

	loop_timer_arm_in(t, 1000);
	loop_timer_disarm(t);
	ck_assert_int_eq(loop_dispatch(loop, 20), 0);
	ck_assert_int_eq(r.n, 0);
	/* Re-arming moves the deadline instead of adding a second one. */
	loop_timer_arm_in(t, 1000000);
	loop_timer_arm_in(t, 1000);
	ck_assert_int_eq(loop_dispatch(loop, 2000), 1);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(loop_dispatch(loop, 20), 0);
	ck_assert_int_eq(r.n, 1);
	loop_timer_free(t);
	loop_free(loop);
}
END_TEST

START_TEST(timer_freed_by_earlier_timer_in_same_pass)
{
	struct loop *loop = loop_new();
	struct rec r = { 0 };
	struct tdata d1 = { 1, &r }, d2 = { 2, &r };
	struct loop_timer *t1 = loop_timer_new(loop, on_timer, &d1);
	struct loop_timer *t2 = loop_timer_new(loop, on_timer, &d2);
	uint64_t past = now_usec();

	/* Both expired when the pass starts; t1 runs first and frees t2. */
	loop_timer_arm(t1, past - 2);
	loop_timer_arm(t2, past - 1);
	r.victim_timer = t2;
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.order[0], 1);
	ck_assert_int_eq(loop_dispatch(loop, 20), 0);
	loop_timer_free(t1);
	loop_free(loop);
}
END_TEST

static void on_timer_rearm_now(struct loop_timer *t, void *data)
{
	int *count = data;

	(*count)++;
	loop_timer_arm_in(t, 0);
}

START_TEST(timer_rearmed_for_now_waits_for_next_pass)
{
	struct loop *loop = loop_new();
	int count = 0;
	struct loop_timer *t = loop_timer_new(loop, on_timer_rearm_now, &count);

	loop_timer_arm_in(t, 0);
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(count, 1);
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(count, 2);
	loop_timer_free(t);
	loop_free(loop);
}
END_TEST

static void on_signal(struct loop *loop, int signo, void *data)
{
	int *got = data;

	*got = signo;
	loop_quit(loop, 42);
}

START_TEST(signals_arrive_through_the_loop)
{
	struct loop *loop = loop_new();
	int got = 0;
	sigset_t mask;

	ck_assert_int_eq(loop_add_signal(loop, SIGUSR1, on_signal, &got), 0);
	ck_assert_int_eq(loop_add_signal(loop, SIGUSR1, on_signal, &got), -EEXIST);
	ck_assert_int_eq(loop_add_signal(loop, SIGUSR2, on_signal, &got), 0);
	/* The signal is blocked, so raise() leaves it pending for the signalfd. */
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(loop_run(loop), 42);
	ck_assert_int_eq(got, SIGUSR2);
	/* A removed handler is not called; the signal is read and dropped,
	 * and another handler may take it. */
	got = 0;
	loop_remove_signal(loop, SIGUSR2);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(loop_dispatch(loop, 100), 0);
	ck_assert_int_eq(got, 0);
	ck_assert_int_eq(loop_add_signal(loop, SIGUSR2, on_signal, &got), 0);
	loop_free(loop);
	/* loop_free restores the signal mask. */
	sigprocmask(SIG_BLOCK, NULL, &mask);
	ck_assert(!sigismember(&mask, SIGUSR1));
	ck_assert(!sigismember(&mask, SIGUSR2));
}
END_TEST

static void quit_from_timer(struct loop_timer *t, void *data)
{
	loop_quit(data, 3);
}

START_TEST(run_until_quit)
{
	struct loop *loop = loop_new();
	struct loop_timer *t = loop_timer_new(loop, quit_from_timer, loop);

	loop_timer_arm_in(t, 5000);
	ck_assert_int_eq(loop_run(loop), 3);
	/* Freed with the loop if the owner did not free it. */
	loop_free(loop);
}
END_TEST

static Suite *loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("loop");

	tcase_add_test(tc, fd_source_dispatches_and_changes_events);
	tcase_add_test(tc, remove_other_source_during_dispatch);
	tcase_add_test(tc, remove_self_during_dispatch);
	tcase_add_test(tc, timers_fire_in_deadline_order);
	tcase_add_test(tc, timer_disarm_and_rearm);
	tcase_add_test(tc, timer_freed_by_earlier_timer_in_same_pass);
	tcase_add_test(tc, timer_rearmed_for_now_waits_for_next_pass);
	tcase_add_test(tc, signals_arrive_through_the_loop);
	tcase_add_test(tc, run_until_quit);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(loop_suite)

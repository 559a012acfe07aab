/* Unit tests for the event loop: fds, timers, signals, removal during dispatch. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
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

/* Many timers, armed out of order, some with equal deadlines, some moved,
 * disarmed or freed before they are due: one pass fires exactly the armed
 * ones, by deadline, equal deadlines in the order they were armed. */
#define MANY 3000

struct many {
	int fired[MANY];
	int n;
};

struct many_timer {
	int id;
	struct many *m;
};

static void on_many(struct loop_timer *t, void *data)
{
	struct many_timer *mt = data;

	(void)t;
	ck_assert_int_lt(mt->m->n, MANY);
	mt->m->fired[mt->m->n++] = mt->id;
}

START_TEST(many_timers_fire_by_deadline_then_arming_order)
{
	struct loop *loop = loop_new();
	static struct many m;
	static struct many_timer mt[MANY];
	static struct loop_timer *t[MANY];
	static uint64_t deadline[MANY], order[MANY];
	uint64_t base = now_usec() - 10 * USEC_PER_SEC, arms = 0;
	unsigned seed = 12345;
	int expect = 0;

	memset(&m, 0, sizeof(m));
	for (int i = 0; i < MANY; i++) {
		mt[i] = (struct many_timer){ i, &m };
		t[i] = loop_timer_new(loop, on_many, &mt[i]);
	}
	/* deadlines from a small range, so many are equal; every timer is
	 * armed, a third re-armed (moved), every seventh disarmed, every
	 * eleventh freed */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < MANY; i++) {
			if (round == 1 && i % 3)
				continue;
			seed = seed * 1103515245u + 12345u;
			deadline[i] = base + (seed >> 16) % 500;
			order[i] = ++arms;
			loop_timer_arm(t[i], deadline[i]);
		}
	for (int i = 0; i < MANY; i += 7)
		loop_timer_disarm(t[i]);
	for (int i = 0; i < MANY; i += 11) {
		loop_timer_free(t[i]);
		t[i] = NULL;
	}
	for (int i = 0; i < MANY; i++)
		if (i % 7 && i % 11)
			expect++;
	ck_assert_int_eq(loop_dispatch(loop, 1000), expect);
	ck_assert_int_eq(m.n, expect);
	for (int k = 1; k < m.n; k++) {
		int a = m.fired[k - 1], b = m.fired[k];

		ck_assert_msg(deadline[a] < deadline[b] ||
				  (deadline[a] == deadline[b] && order[a] < order[b]),
			      "timer %d fired before timer %d", a, b);
	}
	for (int i = 0; i < MANY; i++)
		if (t[i])
			ck_assert(!loop_timer_armed(t[i]));
	ck_assert_int_eq(loop_dispatch(loop, 20), 0);
	for (int i = 0; i < MANY; i++)
		loop_timer_free(t[i]);
	loop_free(loop);
}
END_TEST

/* A timer re-armed for "now" during a pass waits for the next one; while
 * it waits, later callbacks of the same pass may free, disarm or move it. */
struct juggle {
	struct loop_timer *self_rearm, *victim_free, *victim_disarm, *victim_move;
	int self_calls, free_calls, disarm_calls, move_calls;
};

static void on_rearm_self(struct loop_timer *t, void *data)
{
	struct juggle *j = data;

	j->self_calls++;
	loop_timer_arm(t, 1);
}

static void on_count_free(struct loop_timer *t, void *data)
{
	(void)t;
	((struct juggle *)data)->free_calls++;
}

static void on_count_disarm(struct loop_timer *t, void *data)
{
	(void)t;
	((struct juggle *)data)->disarm_calls++;
}

static void on_count_move(struct loop_timer *t, void *data)
{
	(void)t;
	((struct juggle *)data)->move_calls++;
}

/* Fires after the others in its pass: re-arms the three victims for "now"
 * (they wait for the next pass), then frees one, disarms one and moves
 * one an hour ahead. */
static void on_juggle(struct loop_timer *t, void *data)
{
	struct juggle *j = data;

	(void)t;
	loop_timer_arm(j->victim_free, 1);
	loop_timer_arm(j->victim_disarm, 1);
	loop_timer_arm(j->victim_move, 1);
	loop_timer_free(j->victim_free);
	j->victim_free = NULL;
	loop_timer_disarm(j->victim_disarm);
	loop_timer_arm_in(j->victim_move, 3600 * USEC_PER_SEC);
}

START_TEST(timers_waiting_for_the_next_pass_can_be_freed_disarmed_or_moved)
{
	struct loop *loop = loop_new();
	struct juggle j = { 0 };
	uint64_t past = now_usec() - 1000;
	struct loop_timer *juggler = loop_timer_new(loop, on_juggle, &j);

	j.self_rearm = loop_timer_new(loop, on_rearm_self, &j);
	j.victim_free = loop_timer_new(loop, on_count_free, &j);
	j.victim_disarm = loop_timer_new(loop, on_count_disarm, &j);
	j.victim_move = loop_timer_new(loop, on_count_move, &j);
	loop_timer_arm(j.self_rearm, past);
	loop_timer_arm(j.victim_free, past + 1);
	loop_timer_arm(j.victim_disarm, past + 1);
	loop_timer_arm(j.victim_move, past + 1);
	loop_timer_arm(juggler, past + 2);
	/* pass 1: self_rearm, the three victims, the juggler */
	ck_assert_int_eq(loop_dispatch(loop, 1000), 5);
	ck_assert_int_eq(j.self_calls, 1);
	ck_assert_int_eq(j.free_calls + j.disarm_calls + j.move_calls, 3);
	/* pass 2: only self_rearm, parked in pass 1; the victims do not fire */
	ck_assert_int_eq(loop_dispatch(loop, 1000), 1);
	ck_assert_int_eq(j.self_calls, 2);
	ck_assert_int_eq(j.free_calls + j.disarm_calls + j.move_calls, 3);
	ck_assert(!loop_timer_armed(j.victim_disarm));
	ck_assert(loop_timer_armed(j.victim_move));
	loop_timer_free(j.self_rearm);
	loop_timer_free(j.victim_disarm);
	loop_timer_free(j.victim_move);
	loop_timer_free(juggler);
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
	tcase_add_test(tc, many_timers_fire_by_deadline_then_arming_order);
	tcase_add_test(tc, timers_waiting_for_the_next_pass_can_be_freed_disarmed_or_moved);
	tcase_add_test(tc, signals_arrive_through_the_loop);
	tcase_add_test(tc, run_until_quit);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(loop_suite)

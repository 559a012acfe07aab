/* The debounce policy (reconcile/debounce.h) driven by text scenarios on
 * virtual time, the .scenario files of tests/data/debounce/. A scenario is lines of
 *
 *   # a comment (the lines before the first event say what it shows)
 *   MS plug PORT      a new device appeared on PORT, MS ms from the start
 *   MS unplug PORT    the device on PORT left
 *   > change N: at once          what the event before gave: the change's
 *   > change N: at MS            number in its port's burst, and for a
 *   > change N: at MS, said      plug when it may be attached ("said":
 *   > change N                   the first held back in the burst, the one
 *                                the reconciler logs); an unplug only
 *                                counts
 *   ports N           how many ports the policy remembers now
 *
 * Every event's outcome must be written out, and nothing else: a "> "
 * line that the event did not produce, or an outcome with no "> " line,
 * fails at its line. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "reconcile/debounce.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static char **scenarios;

struct run {
	const char *file;
	unsigned line;
	struct reconcile_debounce *db;
	uint64_t now_ms;
	char *pending; /* the outcome of the last event, not yet matched */
};

#define fail_at(r, ...) ck_abort_msg("%s:%u: %s", (r)->file, (r)->line, xasprintf(__VA_ARGS__))

/* The outcome not matched by a "> " line fails the scenario. */
static void expect_nothing_pending(struct run *r)
{
	if (r->pending)
		fail_at(r, "the event before gave '%s', which the scenario does not say",
			r->pending);
}

static void event(struct run *r, unsigned long ms, const char *what, const char *port)
{
	struct reconcile_debounce_verdict v;
	bool arrived = streq(what, "plug");

	if (!arrived && !streq(what, "unplug"))
		fail_at(r, "unknown event '%s' (plug, unplug)", what);
	if (ms < r->now_ms)
		fail_at(r, "time goes back from %llu to %lu ms", (unsigned long long)r->now_ms, ms);
	r->now_ms = ms;
	/* virtual time starts at 1 s, as a daemon's clock never reads 0 */
	v = reconcile_debounce_change(r->db, port, arrived, USEC_PER_SEC + ms * USEC_PER_MSEC);
	if (!arrived)
		r->pending = xasprintf("change %u", v.changes);
	else if (!v.settle_at)
		r->pending = xasprintf("change %u: at once", v.changes);
	else
		r->pending = xasprintf(
		    "change %u: at %llu%s", v.changes,
		    (unsigned long long)((v.settle_at - USEC_PER_SEC) / USEC_PER_MSEC),
		    v.first_held ? ", said" : "");
	ck_assert_msg(!arrived || !v.settle_at || v.settle_at > USEC_PER_SEC + ms * USEC_PER_MSEC,
		      "%s:%u: a held device settles in the future", r->file, r->line);
}

static void step(struct run *r, char *text)
{
	char what[16], port[64];
	unsigned long ms, n;
	int used = 0;

	if (startswith(text, ">")) {
		const char *want = strstrip(text + 1);

		if (!r->pending)
			fail_at(r, "'%s', but no event is waiting for its outcome", want);
		if (!streq(want, r->pending))
			fail_at(r, "expected '%s', got '%s'", want, r->pending);
		free(r->pending);
		r->pending = NULL;
		return;
	}
	expect_nothing_pending(r);
	if (sscanf(text, "ports %lu %n", &n, &used) == 1 && !text[used]) {
		size_t have = reconcile_debounce_ports(r->db);

		if (have != n)
			fail_at(r, "%zu ports remembered, not %lu", have, n);
		return;
	}
	if (sscanf(text, "%lu %15s %63s %n", &ms, what, port, &used) != 3 || text[used])
		fail_at(r, "cannot read '%s' (MS plug|unplug PORT, > OUTCOME, ports N)", text);
	event(r, ms, what, port);
}

START_TEST(scenario)
{
	char *path = xasprintf("%s/%s", DEBOUNCE_SCENARIOS, scenarios[_i]);
	struct run r = { .file = scenarios[_i] };
	char *buf = NULL;
	size_t cap = 0;
	unsigned events = 0;
	FILE *f = fopen(path, "re");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	r.db = reconcile_debounce_new();
	while (getline(&buf, &cap, f) > 0) {
		char *text = strstrip(buf);

		r.line++;
		if (!*text || *text == '#')
			continue;
		step(&r, text);
		events++;
	}
	expect_nothing_pending(&r);
	ck_assert_msg(events > 0, "%s: no events", r.file);
	fclose(f);
	free(buf);
	free(path);
	reconcile_debounce_free(r.db);
}
END_TEST

static Suite *debounce_suite(void)
{
	Suite *s = suite_create("reconcile-debounce");
	TCase *tc = tcase_create("scenarios");

	tcase_add_loop_test(tc, scenario, 0, (int)strv_len(scenarios));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	scenarios = list_dir(DEBOUNCE_SCENARIOS, ".scenario");
	if (!scenarios[0]) {
		fprintf(stderr, "no scenarios in %s\n", DEBOUNCE_SCENARIOS);
		return EXIT_FAILURE;
	}
	r = run_suite(debounce_suite());
	strv_free(scenarios);
	return r;
}

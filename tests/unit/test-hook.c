/* The on-switch hook runs its program with no shell and an environment of
 * its own: arguments full of shell syntax and VM names full of quotes
 * arrive as they are, nothing runs that they spell, and nothing of
 * vmplugd's environment leaks in. Its own failures (a program that
 * cannot run, one killed by a signal) are logged by name and cause. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/hook.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

static char *read_all(const char *path)
{
	char *buf = NULL;
	size_t cap = 0, len = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return xstrdup("");
	for (;;) {
		size_t n;

		buf = xrealloc(buf, cap += 4096);
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static bool done(void *data)
{
	char *path = data;

	return access(path, F_OK) == 0;
}

START_TEST(no_shell_and_its_own_environment)
{
	char *dir = scratch_new("hook");
	char *prog = xasprintf("%s/prog", dir);
	char *pwned = xasprintf("%s/pwned", dir);
	char *out_args = xasprintf("%s/args", dir), *out_env = xasprintf("%s/env", dir);
	char *finished = xasprintf("%s/done", dir);
	char *sub = xasprintf("$(touch %s)", pwned), *semi = xasprintf("; touch %s", pwned);
	char *back = xasprintf("`touch %s`", pwned);
	const char *argv[] = { prog, sub, semi, back, "a b", "|", "*", "'\"", "x\ny", NULL };
	char *script, *args, *env;
	struct loop *loop = loop_new();
	struct hook *h;
	FILE *f;

	/* The program prints what it got, one argument per NUL. */
	script = xasprintf("#!/bin/sh\n"
			   "printf '%%s\\0' \"$@\" >%s\n"
			   "tr '\\0' '\\n' </proc/$$/environ | sort >%s\n"
			   "touch %s\n",
			   out_args, out_env, finished);
	f = fopen(prog, "we");
	fputs(script, f);
	fclose(f);
	ck_assert_int_eq(chmod(prog, 0755), 0);
	setenv("VMPLUG_LEAK", "secret", 1);
	setenv("IFS", "x", 1);
	h = hook_new(loop);
	ck_assert_ptr_nonnull(h);
	hook_set(h, (char *const *)argv, 5 * USEC_PER_SEC);
	hook_switched(h, "host", "vm \"$(touch /nonexistent)\";|", true);
	ck_assert(run_until(loop, done, finished, 10000));
	args = read_all(out_args);
	{
		const char *p = args;

		for (size_t i = 1; argv[i]; i++) {
			ck_assert_str_eq(p, argv[i]);
			p += strlen(p) + 1;
		}
	}
	ck_assert_msg(access(pwned, F_OK) != 0, "something ran what an argument spelled");
	env = read_all(out_env);
	ck_assert_str_eq(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\n"
			      "VMPLUG_FROM=host\n"
			      "VMPLUG_TO=vm \"$(touch /nonexistent)\";|\n"
			      "VMPLUG_TO_TYPE=vm\n");
	unsetenv("VMPLUG_LEAK");
	unsetenv("IFS");
	hook_free(h);
	loop_free(loop);
	free(args);
	free(env);
	free(script);
	free(sub);
	free(semi);
	free(back);
	free(finished);
	free(out_args);
	free(out_env);
	free(pwned);
	free(prog);
	scratch_remove(dir);
}
END_TEST

/* The hook's own failures, as the log tells them: a program that cannot
 * be run (named, with the reason) leaves the hook ready for the next
 * switch; a program killed by a signal is named with the signal. */
START_TEST(a_program_that_cannot_run_is_named_and_the_next_switch_runs)
{
	char *dir = scratch_new("hook");
	char *finished = xasprintf("%s/done", dir);
	const char *missing[] = { "/nonexistent/on-switch", NULL };
	const char *touch[] = { "/usr/bin/touch", finished, NULL };
	struct loop *loop = loop_new();
	struct hook *h = hook_new(loop);

	log_capture_start(LOG_LEVEL_INFO);
	ck_assert_ptr_nonnull(h);
	hook_set(h, (char *const *)missing, 5 * USEC_PER_SEC);
	hook_switched(h, "host", "pc", true);
	/* a missing program is named by the check before each run */
	ck_assert_ptr_nonnull(
	    log_captured_find("on-switch: not running /nonexistent/on-switch (host -> pc): cannot "
			      "resolve /nonexistent/on-switch: No such file or directory"));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_ERROR), 1);
	hook_set(h, (char *const *)touch, 5 * USEC_PER_SEC);
	hook_switched(h, "pc", "host", false);
	ck_assert(run_until(loop, done, finished, 10000));
	ck_assert(run_until(loop, log_captured_has,
			    (char *)"on-switch: /usr/bin/touch (pc -> host) exited with status 0",
			    10000));
	hook_free(h);
	loop_free(loop);
	log_capture_stop();
	free(finished);
	scratch_remove(dir);
}
END_TEST

START_TEST(a_program_killed_by_a_signal_is_named_with_it)
{
	const char *argv[] = { "/bin/sh", "-c", "kill -KILL $$", NULL };
	struct loop *loop = loop_new();
	struct hook *h = hook_new(loop);

	log_capture_start(LOG_LEVEL_INFO);
	ck_assert_ptr_nonnull(h);
	hook_set(h, (char *const *)argv, 30 * USEC_PER_SEC);
	hook_switched(h, "host", "pc", true);
	ck_assert(run_until(
	    loop, log_captured_has,
	    (char *)"on-switch: /bin/sh (host -> pc) was killed by signal 9 (Killed)", 10000));
	ck_assert_uint_eq(log_captured_count(LOG_LEVEL_WARNING), 1);
	hook_free(h);
	loop_free(loop);
	log_capture_stop();
}
END_TEST

static Suite *hook_suite(void)
{
	Suite *s = suite_create("hook");
	TCase *tc = tcase_create("security");

	tcase_add_test(tc, no_shell_and_its_own_environment);
	tcase_add_test(tc, a_program_that_cannot_run_is_named_and_the_next_switch_runs);
	tcase_add_test(tc, a_program_killed_by_a_signal_is_named_with_it);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(hook_suite)

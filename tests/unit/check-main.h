/* Shared main() for the Check suites: TAP on stdout for automake's
 * tap-driver, one fork per test unless CK_FORK=no (valgrind runs). */
#pragma once

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Tests that cannot run here (Check has no skip of its own): reported as
 * TAP skips after the tests that ran. */
static struct {
	const char *name, *why;
} check_skipped[16];
static unsigned check_nskipped;

/* Add `test` to `tc` when `runs`, else report it skipped for `why`. */
#define tcase_add_test_if(tc, test, runs, why)                                                     \
	do {                                                                                       \
		if (runs)                                                                          \
			tcase_add_test(tc, test);                                                  \
		else                                                                               \
			check_skip(#test, why);                                                    \
	} while (0)

static inline void check_skip(const char *name, const char *why)
{
	if (check_nskipped == sizeof(check_skipped) / sizeof(check_skipped[0]))
		abort();
	check_skipped[check_nskipped].name = name;
	check_skipped[check_nskipped].why = why;
	check_nskipped++;
}

/* Copy Check's TAP from `path` to stdout, the skips before its plan. */
static inline int check_tap_with_skips(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned n = 0;

	if (!f) {
		perror(path);
		return EXIT_FAILURE;
	}
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "1..", 3) == 0) {
			n = (unsigned)strtoul(line + 3, NULL, 10);
			continue;
		}
		fputs(line, stdout);
	}
	fclose(f);
	for (unsigned i = 0; i < check_nskipped; i++)
		printf("ok %u - %s # SKIP %s\n", ++n, check_skipped[i].name, check_skipped[i].why);
	printf("1..%u\n", n);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	char tap[] = "/tmp/vmplug-tap.XXXXXX";
	int failed, r = EXIT_SUCCESS, fd = -1;

	if (check_nskipped) {
		fd = mkstemp(tap);
		if (fd < 0) {
			perror("mkstemp");
			return EXIT_FAILURE;
		}
		close(fd);
		srunner_set_tap(sr, tap);
	} else {
		srunner_set_tap(sr, "-");
	}
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (fd >= 0) {
		r = check_tap_with_skips(tap);
		unlink(tap);
	}
	/* Failures are reported in the TAP lines; the exit status is left
	 * for breakage of the test program itself (crash, valgrind). Set
	 * VMPLUG_TEST_EXIT_STATUS=1 to fail the exit status too. */
	if (failed && getenv("VMPLUG_TEST_EXIT_STATUS"))
		return EXIT_FAILURE;
	return r;
}

#define CHECK_MAIN(suite_fn)                                                                       \
	int main(void)                                                                             \
	{                                                                                          \
		return run_suite(suite_fn());                                                      \
	}

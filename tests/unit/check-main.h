/* Shared main() for the Check suites: TAP on stdout for automake's
 * tap-driver, one fork per test unless CK_FORK=no (valgrind runs). */
#pragma once

#include <check.h>
#include <stdlib.h>

static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_tap(sr, "-");
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* Failures are reported in the TAP lines; the exit status is left
	 * for breakage of the test program itself (crash, valgrind). Set
	 * VMPLUG_TEST_EXIT_STATUS=1 to fail the exit status too. */
	if (failed && getenv("VMPLUG_TEST_EXIT_STATUS"))
		return EXIT_FAILURE;
	return EXIT_SUCCESS;
}

#define CHECK_MAIN(suite_fn)                                                                       \
	int main(void)                                                                             \
	{                                                                                          \
		return run_suite(suite_fn());                                                      \
	}

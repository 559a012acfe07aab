/* main() for Check suites that need the real QEMU: without $QEMU_SYSTEM
 * the whole program is a TAP skip with the reason. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include "tests/lib/qemu.h"
#include "tests/unit/check-main.h"

#define QEMU_CHECK_MAIN(suite_fn)                                                                  \
	int main(void)                                                                             \
	{                                                                                          \
		const char *env = getenv("QEMU_SYSTEM");                                           \
                                                                                                   \
		if (!qemu_binary()) {                                                              \
			printf("1..0 # SKIP no QEMU to run (QEMU_SYSTEM='%s'; configure looks "    \
			       "for qemu-system-x86_64)\n",                                        \
			       env ? env : "");                                                    \
			return 0;                                                                  \
		}                                                                                  \
		return run_suite(suite_fn());                                                      \
	}

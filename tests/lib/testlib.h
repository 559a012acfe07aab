/* Helpers the C tests share: scratch directories, running the loop until
 * something happens, and capturing log lines. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop.h"
#include "util/log.h"

/* Decode %XX escapes in place (how tests write a device's strings, any
 * bytes at all, in one word); returns s. */
char *test_percent_decode(char *s);

/* A new private directory under /tmp (mode 0755); aborts on failure. */
char *scratch_new(const char *tag);
/* Remove dir and everything in it, then free the string. NULL is a no-op. */
void scratch_remove(char *dir);

/* The names of the files in dir that end in `suffix`, sorted; a new
 * string vector. Exits the test program when dir cannot be read (a
 * corpus that is not there is a broken build, not a pass). */
char **list_dir(const char *dir, const char *suffix);

/* The suite's wait factor, as in tests/lib/tap.sh: VMPLUG_WAIT_SCALE,
 * default 3 (tests/run-test makes it 10 under valgrind). Every wait for
 * something that should happen, and every real-time bound a test cannot
 * avoid, is multiplied by it, so a loaded machine slows the tests down
 * instead of failing them. */
unsigned test_wait_scale(void);
/* usec times test_wait_scale(). */
uint64_t test_scaled_usec(uint64_t usec);

/* Dispatch `loop` until cond(arg) is true or timeout_ms (times the wait
 * factor) passed: a guard against hangs, not a timing check. Returns
 * cond's last value. */
bool run_until(struct loop *loop, bool (*cond)(void *arg), void *arg, unsigned timeout_ms);
/* Dispatch `loop` for ms milliseconds (not scaled). */
void run_for(struct loop *loop, unsigned ms);

/* Capture every log line at `level` or more important from now on (the
 * level is set too). Lines are also copied to stderr when
 * VMPLUG_TEST_LOG=1. */
void log_capture_start(enum log_level level);
/* Stop capturing, restore the default output, the level and forget the lines. */
void log_capture_stop(void);
/* Lines captured at `level` exactly. */
unsigned log_captured_count(enum log_level level);
/* Lines captured (at any level) that contain `text`. */
unsigned log_captured_count_text(const char *text);
/* The first captured line containing `text`, NULL if none. */
const char *log_captured_find(const char *text);
/* Whether a captured line contains text (a char *): a run_until() condition. */
bool log_captured_has(void *text);

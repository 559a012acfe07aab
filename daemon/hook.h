/* The on-switch hook: after a switch of the keyboard and mouse, run the
 * configured program (execve, no shell) with VMPLUG_FROM, VMPLUG_TO and
 * VMPLUG_TO_TYPE (host or vm) in an environment of its own: those and
 * PATH=/usr/sbin:/usr/bin:/sbin:/bin, nothing inherited. Its working
 * directory is /, stdin /dev/null, stdout and stderr vmplugd's stderr; it
 * runs with no capability and no_new_privs, under a supervisor (see
 * hook.c) that kills whatever it started, even in a session of its own,
 * when it exits, at the timeout, or when vmplugd stops. The program and
 * its directories must be root's and not writable by others
 * (path_check_trusted), checked before each run.
 *
 * One at a time: a switch while the program runs is remembered, and once
 * it is done the program runs once more, from where the last run said
 * the focus went to where the focus is now (skipped when that is where
 * it already went). It is reaped through the loop (SIGCHLD read from the
 * loop's signalfd: the hook takes that signal), so it never blocks
 * input; its exit status is logged. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop.h"

#define HOOK_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

struct hook;

/* Takes SIGCHLD on loop (see loop_add_signal); one hook per loop. */
struct hook *hook_new(struct loop *loop);
/* Tell the supervisor of a run under way to kill it (never waits); free.
 * NULL is a no-op. */
void hook_free(struct hook *h);

/* The program (argv copied; NULL: none) and how long it may run. A run
 * under way keeps the program it started with. */
void hook_set(struct hook *h, char *const *argv, uint64_t timeout_usec);
/* The focus moved from `from` to `to` (to_vm: a VM, else the host). */
void hook_switched(struct hook *h, const char *from, const char *to, bool to_vm);
/* A program is running. */
bool hook_running(const struct hook *h);

/* What the benchmarks share: percentiles and their report lines, the
 * machine they ran on, a vmplugd of the build tree with its control
 * socket, and what /proc says about a process (CPU time, peak memory,
 * context switches). Benchmarks measure; they never judge a number. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/util.h"

/* "PROGRAM: " and the message on stderr, then exit 1: a benchmark that
 * cannot measure what it set out to stops. */
NORETURN void bench_fail(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* CLOCK_REALTIME in microseconds: the clock of QMP event timestamps,
 * QEMU's trace lines and vmplugd's control events. */
uint64_t bench_realtime_usec(void);

/* Sort v and return its p-quantile (0 <= p <= 1, nearest rank). */
uint64_t bench_pct(uint64_t *v, size_t n, double p);
/* One line: "WHAT median X ms  p99 X ms  min X ms  max X ms  (n=N)", the
 * values in microseconds (sorted in place). Nothing when n is 0. */
void bench_report(const char *what, uint64_t *v, size_t n);
/* The same for signed differences in microseconds ("overhead" lines). */
void bench_report_diff(const char *what, double median_us, double p99_us);

/* "machine: CPU MODEL, N cores, kernel R, DISTRIBUTION" and the date, for
 * bench/RESULTS.md. */
void bench_print_machine(FILE *f);

/* The QEMU to run: $QEMU_SYSTEM, set to Debian's qemu-system-x86_64 when
 * unset. False, said on stderr with prog's name, when it is not there
 * (the benchmark then exits 77, "cannot run here"). */
bool bench_have_qemu(const char *prog);

/* The vmplugd binary: $VMPLUGD, else the one next to the bench/ folder
 * of the running program. A new string. */
char *bench_vmplugd_path(void);
/* Run `vmplugd -f -c confdir` with its stderr appended to log (NULL:
 * /dev/null) and extra_env added ("K=V", NULL-terminated, may be NULL);
 * it dies with the benchmark. Waits (30 s at most, or
 * $BENCH_START_SECONDS) until its control
 * socket answers. Returns its pid, or -1 (and says why on stderr). */
pid_t bench_vmplugd_start(const char *confdir, const char *control_socket, const char *log,
			  char *const *extra_env);
/* bench_vmplugd_start() with no extra environment, then a control client
 * connected to it (*pid set); bench_fail() when either fails. */
struct bench_ctl;
struct bench_ctl *bench_vmplugd_up(const char *confdir, const char *control_socket, const char *log,
				   pid_t *pid);
/* SIGTERM and reap; its exit status, -1 if it was not ours. */
int bench_vmplugd_stop(pid_t pid);

/* A client of vmplugd's control socket (blocking, one request at a time;
 * events that arrive meanwhile are queued). */
struct bench_ctl;
/* Connect, read the greeting; NULL on failure (errno set). */
struct bench_ctl *bench_ctl_connect(const char *path);
void bench_ctl_free(struct bench_ctl *c);
/* Run a command: the reply's "return" (a new reference), NULL on an error
 * reply or a timeout (10 s). args is stolen, may be NULL. */
json_t *bench_ctl_call(struct bench_ctl *c, const char *command, json_t *args);
/* The next event (a new reference), waiting up to timeout_ms; NULL if
 * none came. */
json_t *bench_ctl_event(struct bench_ctl *c, unsigned timeout_ms);
/* An event's timestamp in microseconds (CLOCK_REALTIME), 0 if it has none. */
uint64_t bench_event_time(const json_t *ev);
/* QEMU's timestamp (its check monitor, tests/lib/qemu.h) of DEVICE_DELETED
 * for id, other events dropped; 0 if it did not come within wait_ms. */
struct qemu;
uint64_t bench_qemu_deleted_at(struct qemu *q, const char *id, unsigned wait_ms);
/* The event's name, "" if none. */
const char *bench_event_name(const json_t *ev);
/* A string field of the event's data, "" if none. */
const char *bench_event_str(const json_t *ev, const char *key);

/* CPU time (user + system) of every thread of pid so far, in
 * microseconds (from /proc/PID/task/TID/schedstat, nanoseconds exact);
 * 0 if it cannot be read. */
uint64_t bench_proc_cpu_usec(pid_t pid);
/* A "Name: N kB" field of /proc/PID/status in kB (VmHWM, VmRSS), -1 if none. */
long bench_proc_status_kb(pid_t pid, const char *field);
/* Open fds of pid (a leak shows as growth with size); 0 if it cannot be read. */
unsigned bench_proc_fd_count(pid_t pid);
/* Voluntary and involuntary context switches of every thread of pid. */
void bench_proc_ctxt(pid_t pid, unsigned long long *voluntary, unsigned long long *involuntary);

/* A fake QEMU's side of QMP: the greeting of QEMU 7.2.22, and a reply to
 * cmd as an empty QEMU gives it ("return" [] for qom-list and
 * query-fdsets, {} else, with cmd's id) written to fd; -errno if the
 * write failed. */
extern const char bench_qmp_greeting[];
int bench_qmp_answer(int fd, json_t *cmd);

/* Remove a scratch directory (tests/lib/testlib.h) unless $BENCH_KEEP is
 * set, and free its name. */
void bench_scratch_done(char *dir);

/* Write a file from a format (aborts on failure: a benchmark cannot go on). */
void bench_write_file(const char *path, const char *fmt, ...) PRINTF_LIKE(2, 3);

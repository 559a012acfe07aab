/* Start and stop a throwaway QEMU for tests and benchmarks: TCG, paused
 * (-S), no default devices, an xhci controller with id "xhci", its QMP
 * socket for the code under test and a second QMP monitor the test uses
 * to watch and poke QEMU while the code under test holds the first. Its
 * stderr goes to a file. QEMU dies with the process that started it
 * (PR_SET_PDEATHSIG), so a crashed test leaves no QEMU behind. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "conf/conf.h"

struct qmp_framer;

struct qemu {
	pid_t pid;
	char **env;        /* extra environment */
	char **args;       /* extra arguments */
	char *qmp_path;    /* the socket for the code under test */
	char *check_path;  /* the test's own monitor */
	char *stderr_path; /* QEMU's stderr */
	int check_fd;      /* connected to check_path once qemu_start() returns */
	struct qmp_framer *framer;
	json_t *events; /* events seen on the check monitor, oldest first */
};

/* $QEMU_SYSTEM if it names an executable, else NULL. */
const char *qemu_binary(void);

/* Start QEMU with its sockets and stderr file in `dir` (names built from
 * `name`), `extra_env` (NULL-terminated "K=V", may be NULL) added to its
 * environment, and wait until the check monitor has done its handshake.
 * Returns NULL (and says why on stderr) on failure. */
struct qemu *qemu_start(const char *dir, const char *name, char *const *extra_env);
/* The same with extra_args (NULL-terminated, may be NULL) after the usual
 * ones, e.g. "-trace" and an event name. */
struct qemu *qemu_start_args(const char *dir, const char *name, char *const *extra_env,
			     char *const *extra_args);
/* A QEMU somebody else started (pid 0: never killed here), by its two
 * QMP sockets: connects to check_path (the caller's monitor); NULL (and
 * why on stderr) if it does not answer. */
struct qemu *qemu_attach(const char *qmp_path, const char *check_path);
/* Start QEMU again with the same sockets and environment after it exited. */
int qemu_restart(struct qemu *q);
/* Send sig and reap QEMU; returns its wait status, -1 if it was not running. */
int qemu_kill(struct qemu *q, int sig);
/* Reap QEMU after it exits by itself (waits up to timeout_ms); wait status or -1. */
int qemu_wait(struct qemu *q, unsigned timeout_ms);
/* Kill QEMU if running and free everything. NULL is a no-op. */
void qemu_free(struct qemu *q);

/* Run a command on the check monitor (blocking, 10 s at most): the whole
 * reply object (a new reference: {"return": ...} or {"error": ...}), or
 * NULL if QEMU did not answer. args is stolen, may be NULL. */
json_t *qemu_check(struct qemu *q, const char *command, json_t *args);
/* Like qemu_check() but returns only "return" (new reference), NULL on error. */
json_t *qemu_check_return(struct qemu *q, const char *command, json_t *args);
/* Has the check monitor seen event `name` (whose data.device is `device`
 * when device is not NULL)? Reads what QEMU has sent so far, without
 * blocking. */
bool qemu_event_seen(struct qemu *q, const char *name, const char *device);
/* The oldest event the check monitor has sent and nobody took yet,
 * waiting up to timeout_ms for one (a new reference, NULL if none came).
 * Events taken here are no longer seen by qemu_event_seen(). */
json_t *qemu_next_event(struct qemu *q, unsigned timeout_ms);
/* Is `id` a child of `path` (qom-list)? */
bool qemu_has_child(struct qemu *q, const char *path, const char *id);

/* A VM configuration for the QMP backend on this QEMU: its socket, bus
 * xhci.0. The strings are borrowed from `name` and q. */
struct conf_vm qemu_conf_vm(const struct qemu *q, const char *name);

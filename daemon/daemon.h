/* The daemon's state: the loop, the running configuration, and the
 * modules driven from it. One instance per process. */
#pragma once

#include <stdbool.h>

#include "conf/conf.h"
#include "control/control.h"
#include "loop/loop.h"
#include "daemon/notify.h"
#include "reconcile/reconcile.h"
#include "daemon/watch.h"
#include "input/input.h"

struct focus;

struct daemon_opts {
	const char *confdir;
	int verbose; /* each -v raises the log level one step */
};

struct daemon {
	struct loop *loop;
	struct conf *conf;
	struct daemon_opts opts;
	bool check_owner;
	struct reconcile *rc;
	struct loop_timer *rc_timer;
	struct watch *watch;
	struct control *control;
	struct input_manager *input;
	struct focus *focus;              /* where the keyboard and mouse go */
	struct notify_status *status;     /* the service manager's status line */
	struct notify_watchdog *watchdog; /* WATCHDOG=1 from the loop, when asked for */
};

/* The status line changes at most this often (sd_notify STATUS=). */
#define DAEMON_STATUS_INTERVAL_USEC 1000000ULL

/* Load the configuration; NULL on failure (the reasons are logged). */
struct daemon *daemon_new(const struct daemon_opts *opts);
/* Create the loop and everything on it. Call after daemonizing: a
 * signalfd registered with epoll before fork() keeps waking for the
 * parent's signals only. 0 or -errno (logged). */
int daemon_start(struct daemon *d);
void daemon_free(struct daemon *d);
/* Run until SIGTERM/SIGINT; returns the process exit code. */
int daemon_run(struct daemon *d);
/* Re-read the configuration (SIGHUP, or a control command). A bad new
 * configuration is reported and the running one is kept: -EINVAL, and
 * *errors (if given) lists the problems (free with strv_free). */
int daemon_reload(struct daemon *d, char ***errors);

/* Load opts->confdir and print the result: the effective configuration
 * on out, or the errors on err. Returns 0 if the configuration is valid. */
int daemon_check_config(const char *confdir, FILE *out, FILE *err);

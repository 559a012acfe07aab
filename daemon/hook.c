/* The on-switch hook: one program at a time, reaped by the loop (see hook.h). */
#include "config.h"

#include "daemon/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

struct hook {
	struct loop *loop;
	char **argv;
	uint64_t timeout_usec;

	/* the run under way */
	pid_t pid; /* 0: none */
	char *prog;
	char *from, *to; /* what it was told */
	uint64_t started;
	bool timed_out;
	struct loop_timer *timer;
	bool can_reap; /* SIGCHLD comes through the loop */

	/* a switch while it ran */
	bool pending;
	char *pending_to;
	bool pending_to_vm;
};

static void start(struct hook *h, const char *from, const char *to, bool to_vm);

static void on_sigchld(struct loop *loop, int signo, void *data);

struct hook *hook_new(struct loop *loop)
{
	struct hook *h = xnew(struct hook);
	int r = loop_add_signal(loop, SIGCHLD, on_sigchld, h);

	h->loop = loop;
	h->can_reap = r == 0;
	if (r < 0)
		log_error("on-switch: cannot watch for the end of programs (SIGCHLD: %s); "
			  "on-switch programs will not run",
			  strerror(-r));
	return h;
}

/* Forget the finished or failed run, keeping argv and where the focus went (h->to). */
static void end_run(struct hook *h)
{
	loop_timer_free(h->timer);
	h->timer = NULL;
	h->pid = 0;
	free(h->prog);
	free(h->from);
	h->prog = h->from = NULL;
	h->timed_out = false;
}

void hook_free(struct hook *h)
{
	if (!h)
		return;
	if (h->pid > 0) {
		log_info("on-switch: %s (%s -> %s) killed: vmplugd stops", h->prog, h->from, h->to);
		kill(-h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
	}
	end_run(h);
	if (h->can_reap)
		loop_remove_signal(h->loop, SIGCHLD);
	strv_free(h->argv);
	free(h->to);
	free(h->pending_to);
	free(h);
}

void hook_set(struct hook *h, char *const *argv, uint64_t timeout_usec)
{
	strv_free(h->argv);
	h->argv = argv ? strv_copy(argv) : NULL;
	h->timeout_usec = timeout_usec;
}

bool hook_running(const struct hook *h)
{
	return h->pid > 0;
}

/* Log how the program ended, and how long it took. */
static void on_exit_status(struct hook *h, int status)
{
	uint64_t ms = (now_usec() - h->started) / USEC_PER_MSEC;

	if (h->timed_out)
		log_warning("on-switch: %s (%s -> %s) did not finish within %llu s: killed",
			    h->prog, h->from, h->to,
			    (unsigned long long)(h->timeout_usec / USEC_PER_SEC));
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		log_info("on-switch: %s (%s -> %s) exited with status 0 after %llu ms", h->prog,
			 h->from, h->to, (unsigned long long)ms);
	else if (WIFEXITED(status))
		log_warning("on-switch: %s (%s -> %s) exited with status %d after %llu ms", h->prog,
			    h->from, h->to, WEXITSTATUS(status), (unsigned long long)ms);
	else
		log_warning("on-switch: %s (%s -> %s) was killed by signal %d (%s) after %llu ms",
			    h->prog, h->from, h->to, WTERMSIG(status), strsignal(WTERMSIG(status)),
			    (unsigned long long)ms);
}

/* A child ended (SIGCHLD): if it was the program, log, and run the
 * switches that came meanwhile. */
static void on_sigchld(struct loop *loop, int signo, void *data)
{
	struct hook *h = data;
	int status = 0;
	pid_t r;

	if (h->pid <= 0)
		return;
	do
		r = waitpid(h->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* another child, or not yet */
	if (r < 0)
		log_error("on-switch: cannot reap %s (pid %d): %m", h->prog, (int)h->pid);
	else
		on_exit_status(h, status);
	end_run(h);
	if (h->pending) {
		h->pending = false;
		/* (a reload may have taken the program away meanwhile) */
		if (h->argv && !streq(h->pending_to, h->to))
			start(h, h->to, h->pending_to, h->pending_to_vm);
	}
}

/* The program overran on-switch-timeout: kill its process group; on_sigchld() logs it. */
static void on_timeout(struct loop_timer *t, void *data)
{
	struct hook *h = data;

	h->timed_out = true;
	kill(-h->pid, SIGKILL);
}

/* A fixed environment, not vmplugd's: PATH and the VMPLUG_* of the switch. */
static char **environment(const char *from, const char *to, bool to_vm)
{
	char **env = NULL, *s;

	strv_append(&env, HOOK_PATH);
	s = xasprintf("VMPLUG_FROM=%s", from);
	strv_append(&env, s);
	free(s);
	s = xasprintf("VMPLUG_TO=%s", to);
	strv_append(&env, s);
	free(s);
	strv_append(&env, to_vm ? "VMPLUG_TO_TYPE=vm" : "VMPLUG_TO_TYPE=host");
	return env;
}

/* Run argv in its own process group: stdin /dev/null, stdout to our stderr, in /. */
static int spawn(char *const *argv, char **env, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_init(&attr);
	/* The loop blocks the signals it reads, and SIGPIPE is ignored: the
	 * program gets neither. */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					    POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	r = posix_spawn(pid, argv[0], &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return -r;
}

/* Run the program for one switch, with a timer that kills it after the timeout. */
static void start(struct hook *h, const char *from, const char *to, bool to_vm)
{
	char **env;
	int r;

	if (!h->can_reap)
		return;
	env = environment(from, to, to_vm);
	/* from may be h->to: copied before h->to changes */
	h->from = xstrdup(from);
	free(h->to);
	h->to = xstrdup(to); /* where the last run said the focus went */
	h->prog = xstrdup(h->argv[0]);
	h->started = now_usec();
	r = spawn(h->argv, env, &h->pid);
	strv_free(env);
	if (r < 0) {
		log_error("on-switch: cannot run %s: %s", h->prog, strerror(-r));
		h->pid = 0;
		end_run(h);
		return;
	}
	h->timer = loop_timer_new(h->loop, on_timeout, h);
	loop_timer_arm_in(h->timer, h->timeout_usec);
	log_debug("on-switch: started %s (%s -> %s), pid %d", h->prog, from, to, (int)h->pid);
}

void hook_switched(struct hook *h, const char *from, const char *to, bool to_vm)
{
	if (!h->argv)
		return;
	if (h->pid > 0) {
		h->pending = true;
		free(h->pending_to);
		h->pending_to = xstrdup(to);
		h->pending_to_vm = to_vm;
		return;
	}
	start(h, from, to, to_vm);
}

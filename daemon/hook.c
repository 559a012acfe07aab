/* The on-switch hook: one program at a time, reaped by the loop (see hook.h). */
#include "config.h"

#include "daemon/hook.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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
		/* the supervisor kills the run's processes and exits on its
		 * own: nothing here waits for it */
		log_info("on-switch: %s (%s -> %s) killed: vmplugd stops", h->prog, h->from, h->to);
		kill(h->pid, SIGTERM);
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

/* The program overran on-switch-timeout: its supervisor kills the whole
 * run; on_sigchld() logs it. */
static void on_timeout(struct loop_timer *t, void *data)
{
	struct hook *h = data;

	h->timed_out = true;
	kill(h->pid, SIGTERM);
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

/* ---------------------------------------------------------- the supervisor
 * A run is two processes: a supervisor (a fork of vmplugd, which runs no
 * other program) and the program it starts. The supervisor gives up every
 * capability and sets no_new_privs before the program exists, so neither
 * it nor anything it starts can gain one, even as uid 0. It is the
 * subreaper of the run: whatever the program starts, even in a session of
 * its own (setsid), comes back to it when its parent dies, never to init.
 * When the program exits, or on SIGTERM (the timeout, vmplugd stopping, or
 * vmplugd dying: the parent-death signal), it SIGKILLs every process left
 * until it has no child, then exits as the program did. Between fork and
 * _exit it only makes system calls: no allocation, no stdio. */

/* The parent pid in /proc/PID/stat (pid's name may hold spaces and
 * parentheses: the fields start after the last ')'); -1 if unknown. */
static pid_t stat_ppid(const char *pid)
{
	char path[32] = "/proc/", buf[512], *p = NULL;
	pid_t ppid = 0;
	ssize_t n;
	int fd;

	strcat(strcat(path, pid), "/stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (char *q = buf; *q; q++)
		if (*q == ')')
			p = q;
	/* ") S PPID ..." */
	if (!p || !p[1] || !p[2] || !p[3] || !p[4])
		return -1;
	for (p += 4; *p >= '0' && *p <= '9'; p++)
		ppid = ppid * 10 + (*p - '0');
	return ppid;
}

/* SIGKILL each of our children (found in /proc: raw getdents64, no
 * allocation); how many. */
static int kill_children(pid_t self)
{
	char buf[4096];
	long n;
	int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC), killed = 0;

	if (fd < 0)
		return 0;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (void *)(buf + off);

			off += d->reclen;
			if (d->name[0] < '1' || d->name[0] > '9' || stat_ppid(d->name) != self)
				continue;
			pid_t pid = 0;

			for (const char *c = d->name; *c; c++)
				pid = pid * 10 + (*c - '0');
			if (kill(pid, SIGKILL) == 0)
				killed++;
		}
	}
	close(fd);
	return killed;
}

/* Kill every process of the run and reap them all, the program's status
 * into *status when it is among them. */
static void kill_run(pid_t prog, bool *prog_done, int *status)
{
	pid_t self = getpid();

	for (;;) {
		int st;
		pid_t r;

		/* the program's group first, while its pid cannot be reused */
		if (!*prog_done)
			kill(-prog, SIGKILL);
		kill_children(self);
		r = waitpid(-1, &st, 0);
		if (r < 0 && errno == ECHILD)
			return;
		if (r == prog) {
			*prog_done = true;
			*status = st;
		}
	}
}

/* Exit the way the program did (a signal: the same signal, no core). */
static NORETURN void exit_like(int status)
{
	sigset_t set;

	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	/* (not RLIMIT_CORE: the unit's system call filter refuses setrlimit) */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(WTERMSIG(status), SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, WTERMSIG(status));
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(WTERMSIG(status));
	_exit(128 + WTERMSIG(status));
}

/* No capabilities, and none to gain: no_new_privs, then empty sets. */
static int drop_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { { 0 } };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	return 0;
}

/* In the program's process, before execve: its own process group, every
 * signal default and unblocked, stdin /dev/null, stdout to stderr, in /.
 * On failure errno goes down err_fd. */
static NORETURN void exec_program(char *const *argv, char **env, int err_fd)
{
	sigset_t none;
	int fd, e;

	setpgid(0, 0);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0 ||
	    chdir("/") < 0)
		goto fail;
	execve(argv[0], argv, env);
fail:
	e = errno;
	(void)!write(err_fd, &e, sizeof(e));
	_exit(127);
}

/* The supervisor's life (see above); never returns. */
static NORETURN void supervise(char *const *argv, char **env, pid_t parent, int err_fd)
{
	sigset_t wait_for;
	bool done = false;
	int status = 0, r;
	pid_t prog = -1;

	sigemptyset(&wait_for);
	sigaddset(&wait_for, SIGCHLD);
	sigaddset(&wait_for, SIGTERM);
	sigprocmask(SIG_BLOCK, &wait_for, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		r = errno;
	else if (getppid() != parent)
		r = ESRCH; /* vmplugd is gone already */
	else
		r = -drop_privileges();
	if (r == 0 && (prog = fork()) < 0)
		r = errno;
	if (r != 0) {
		(void)!write(err_fd, &r, sizeof(r));
		_exit(127);
	}
	if (prog == 0)
		exec_program(argv, env, err_fd);
	close(err_fd);
	setpgid(prog, prog); /* (also in the child: whichever runs first) */
	while (!done) {
		siginfo_t si;

		if (sigwaitinfo(&wait_for, &si) < 0)
			continue;
		if (si.si_signo == SIGTERM)
			break;
		/* SIGCHLD: the program, or something it left that ended */
		while ((r = waitpid(-1, &status, WNOHANG)) > 0)
			if (r == prog) {
				done = true;
				break;
			}
	}
	{
		int prog_status = status;
		bool was_done = done;

		kill_run(prog, &done, &prog_status);
		if (!was_done) /* SIGTERM: whatever the program did, it was killed */
			prog_status = SIGKILL;
		exit_like(prog_status);
	}
}

/* Start the supervisor for argv (see above): 0 and *pid, or -errno when
 * the program could not be started. Waits only until it execs. */
static int spawn(char *const *argv, char **env, pid_t *pid)
{
	pid_t parent = getpid();
	int pipefd[2], e = 0;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	*pid = fork();
	if (*pid < 0) {
		e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return -e;
	}
	if (*pid == 0) {
		close(pipefd[0]);
		supervise(argv, env, parent, pipefd[1]);
	}
	close(pipefd[1]);
	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n == sizeof(e) && e > 0) {
		/* the supervisor exits at once: reaped here, not in on_sigchld() */
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -e;
	}
	return 0;
}

/* Run the program for one switch, with a timer that kills it after the timeout. */
static void start(struct hook *h, const char *from, const char *to, bool to_vm)
{
	char **env, *why;
	int r;

	if (!h->can_reap)
		return;
	/* checked again for each run: the file may have changed since the
	 * configuration was read */
	if (path_check_trusted(h->argv[0], geteuid(), &why) < 0) {
		log_error("on-switch: not running %s (%s -> %s): %s", h->argv[0], from, to, why);
		free(why);
		return;
	}
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

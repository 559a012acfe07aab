/* Going to the background with a readiness pipe, and the pid file. */
#include "config.h"

#include "daemon/service.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/util.h"

/* In the original process: the first child exits as soon as it has forked
 * the daemon (or failed to); then the daemon writes one byte, its exit
 * code, when start-up is over. EOF instead means it died first. */
static int wait_ready(int fd, pid_t child)
{
	unsigned char c;
	ssize_t n;
	int status = 0;

	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return c;
	fprintf(stderr, "vmplugd: the daemon exited during start-up; the system log may say why\n");
	return 1;
}

/* In a child of the double fork: say what failed and exit. The original
 * process then exits with the same status. */
_Noreturn static void child_failed(const char *what)
{
	fprintf(stderr, "vmplugd: cannot run in the background: %s: %s\n", what, strerror(errno));
	_exit(1);
}

int service_daemonize(int *ready_fd, int *code)
{
	int pipefd[2], fd, r;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	/* nothing buffered may be written twice */
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	if (pid > 0) {
		close(pipefd[1]);
		*code = wait_ready(pipefd[0], pid);
		close(pipefd[0]);
		return 1;
	}
	close(pipefd[0]);
	if (setsid() < 0)
		child_failed("setsid");
	/* not a session leader: it can never get a controlling terminal */
	pid = fork();
	if (pid < 0)
		child_failed("fork");
	if (pid > 0)
		_exit(0);
	umask(022);
	if (chdir("/") < 0)
		child_failed("chdir /");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		child_failed("/dev/null");
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	*ready_fd = pipefd[1];
	return 0;
}

void service_started(int *ready_fd, int code)
{
	unsigned char c = (unsigned char)code;

	if (*ready_fd < 0)
		return;
	if (code == 0) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
	}
	write_all(*ready_fd, &c, 1);
	closep(ready_fd);
}

struct service_pidfile {
	char *path;
	int fd; /* holds the lock */
};

int service_pidfile_running(const char *path, pid_t *pid)
{
	char buf[32];
	unsigned long v;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		close(fd);
		return 0;
	}
	if (errno != EWOULDBLOCK) {
		r = -errno;
		close(fd);
		return r;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	*pid = parse_uint(strstrip(buf), 10, INT_MAX, &v) == 0 ? (pid_t)v : 0;
	return 1;
}

struct service_pidfile *service_pidfile_write(const char *path)
{
	struct service_pidfile *p;
	char *tmp = xasprintf("%s.XXXXXX", path);
	char *pid = xasprintf("%d\n", (int)getpid());
	int fd, r = 0;

	/* Locked before it gets its name, so no one ever sees it unlocked. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else if (flock(fd, LOCK_EX | LOCK_NB) < 0 || fchmod(fd, 0644) < 0)
		r = -errno;
	else
		r = write_all(fd, pid, strlen(pid));
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	free(pid);
	if (r < 0) {
		if (fd >= 0) {
			unlink(tmp);
			close(fd);
		}
		free(tmp);
		errno = -r;
		return NULL;
	}
	free(tmp);
	p = xnew(struct service_pidfile);
	p->path = xstrdup(path);
	p->fd = fd;
	return p;
}

void service_pidfile_remove(struct service_pidfile *p)
{
	struct stat ours, now;

	if (!p)
		return;
	if (fstat(p->fd, &ours) == 0 && stat(p->path, &now) == 0 && ours.st_dev == now.st_dev &&
	    ours.st_ino == now.st_ino)
		unlink(p->path);
	close(p->fd);
	free(p->path);
	free(p);
}

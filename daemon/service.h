/* Running as a service without a service manager's help (OpenRC, runit,
 * a shell): going to the background so that the command that started
 * vmplugd returns only once the daemon is ready, or fails with the
 * daemon's start-up error and exit code; and the pid file. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Go to the background: double fork, a new session, cwd "/", umask 022,
 * stdin and stdout on /dev/null. stderr stays the caller's until
 * service_started(), so start-up errors still reach the terminal.
 *
 * In the original process it returns 1 once the daemon has called
 * service_started() or died, with *code the exit status to exit with
 * (0: the daemon is ready; an error was printed otherwise). In the daemon
 * it returns 0 with *ready_fd the write end of the readiness pipe (owned
 * by the caller until service_started()). -errno if a fork failed, in the
 * original process. */
int service_daemonize(int *ready_fd, int *code);

/* In the daemon: start-up is over. code 0 means ready: stderr goes to
 * /dev/null and the original process exits 0; anything else is the exit
 * status the original process exits with. Closes *ready_fd (and sets it
 * to -1); does nothing when it is -1 (vmplugd -f). */
void service_started(int *ready_fd, int code);

/* Is a vmplugd running under the pid file at path? A running vmplugd
 * holds a lock on its pid file for its whole life, so a file left behind
 * by one that was killed does not count. 1 with *pid set (the pid the
 * file names) if one runs, 0 if the file is absent or stale, -errno if it
 * cannot be read. */
int service_pidfile_running(const char *path, pid_t *pid);

struct service_pidfile;

/* Write this process's pid to path atomically (a temporary file renamed
 * over it, mode 0644) and hold the lock on it until
 * service_pidfile_remove(). NULL with errno set on failure. */
struct service_pidfile *service_pidfile_write(const char *path);
/* Remove the file, if it is still the one written (a newer vmplugd may
 * have replaced it), release the lock and free. NULL is a no-op. */
void service_pidfile_remove(struct service_pidfile *p);

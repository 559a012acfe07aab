/* Unit tests for daemon/notify (the service manager played by the test:
 * a datagram socket as NOTIFY_SOCKET) and the pid file of daemon/service. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/notify.h"
#include "daemon/service.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#define INTERVAL_USEC 500000ULL

struct manager {
	char *dir;
	int sock;
};

static void manager_start(struct manager *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	m->dir = scratch_new("notify");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify.sock", m->dir);
	m->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	ck_assert_int_ge(m->sock, 0);
	ck_assert_int_eq(bind(m->sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
}

static void manager_stop(struct manager *m)
{
	unsetenv("NOTIFY_SOCKET");
	close(m->sock);
	scratch_remove(m->dir);
}

/* The next message, or NULL when none is waiting (a static buffer). */
static const char *next_msg(struct manager *m)
{
	static char buf[512];
	ssize_t n = recv(m->sock, buf, sizeof(buf) - 1, 0);

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

#ifdef HAVE_SYSTEMD
START_TEST(ready_reloading_stopping)
{
	struct manager m;

	manager_start(&m);
	notify_ready();
	ck_assert_str_eq(next_msg(&m), "READY=1");
	notify_reloading();
	ck_assert_str_eq(next_msg(&m), "RELOADING=1");
	notify_stopping();
	ck_assert_str_eq(next_msg(&m), "STOPPING=1");
	ck_assert_ptr_null(next_msg(&m));
	manager_stop(&m);
}
END_TEST

START_TEST(status_is_sent_when_it_changes_at_most_once_per_interval)
{
	struct loop *loop = loop_new();
	struct notify_status *s = notify_status_new(loop, INTERVAL_USEC);
	struct manager m;

	manager_start(&m);
	notify_status_set(s, "1 VM (0 running)");
	ck_assert_str_eq(next_msg(&m), "STATUS=1 VM (0 running)");
	/* the same text again: nothing */
	notify_status_set(s, "1 VM (0 running)");
	ck_assert_ptr_null(next_msg(&m));
	/* a burst within the interval: only the last, when the interval ends */
	notify_status_set(s, "1 VM (1 running)");
	notify_status_set(s, "2 VMs (1 running)");
	notify_status_set(s, "2 VMs (2 running)");
	ck_assert_ptr_null(next_msg(&m));
	run_for(loop, INTERVAL_USEC / 1000 / 5);
	ck_assert_ptr_null(next_msg(&m));
	run_for(loop, INTERVAL_USEC / 1000);
	ck_assert_str_eq(next_msg(&m), "STATUS=2 VMs (2 running)");
	ck_assert_ptr_null(next_msg(&m));
	/* a change and back within the interval: nothing to send */
	notify_status_set(s, "2 VMs (1 running)");
	notify_status_set(s, "2 VMs (2 running)");
	run_for(loop, INTERVAL_USEC / 1000 * 2);
	ck_assert_ptr_null(next_msg(&m));
	/* after a quiet interval a change goes out at once */
	notify_status_set(s, "2 VMs (0 running)");
	ck_assert_str_eq(next_msg(&m), "STATUS=2 VMs (0 running)");
	/* freed with a change pending: nothing is sent, nothing leaks */
	notify_status_set(s, "0 VMs");
	notify_status_free(s);
	run_for(loop, INTERVAL_USEC / 1000 * 2);
	ck_assert_ptr_null(next_msg(&m));
	manager_stop(&m);
	loop_free(loop);
}
END_TEST

/* Pings come only while the loop turns, every half of WATCHDOG_USEC. */
START_TEST(watchdog_pings_come_from_the_loop)
{
	struct loop *loop = loop_new();
	struct notify_watchdog *w;
	struct manager m;
	uint64_t t[4];
	const char *msg;

	manager_start(&m);
	unsetenv("WATCHDOG_USEC");
	ck_assert_ptr_null(notify_watchdog_new(loop));
	setenv("WATCHDOG_USEC", "200000", 1);
	setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog */
	ck_assert_ptr_null(notify_watchdog_new(loop));
	unsetenv("WATCHDOG_PID");
	w = notify_watchdog_new(loop);
	ck_assert_ptr_nonnull(w);
	ck_assert_str_eq(next_msg(&m), "WATCHDOG=1");
	/* a loop that does not turn sends nothing, however long it stands */
	usleep(3 * 200000);
	ck_assert_ptr_null(next_msg(&m));
	/* turning, the pings come again, no closer than half the time */
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		while (!(msg = next_msg(&m)))
			run_for(loop, 10);
		ck_assert_str_eq(msg, "WATCHDOG=1");
		t[i] = now_usec();
	}
	for (size_t i = 1; i < ARRAY_SIZE(t); i++)
		ck_assert_uint_ge(t[i] - t[i - 1], 100000 - 20000);
	notify_watchdog_free(w);
	notify_watchdog_free(NULL);
	unsetenv("WATCHDOG_USEC");
	manager_stop(&m);
	loop_free(loop);
}
END_TEST
#endif

START_TEST(without_a_service_manager_nothing_is_sent)
{
	struct loop *loop = loop_new();
	struct notify_status *s = notify_status_new(loop, INTERVAL_USEC);

	unsetenv("NOTIFY_SOCKET");
	notify_ready();
	notify_reloading();
	notify_stopping();
	notify_status_set(s, "1 VM");
	notify_status_set(s, "2 VMs");
	run_for(loop, 10);
	notify_status_set(NULL, "x");
	notify_status_free(s);
	notify_status_free(NULL);
	loop_free(loop);
}
END_TEST

START_TEST(pidfile_written_locked_and_removed)
{
	char *dir = scratch_new("pidfile");
	char *path = xasprintf("%s/vmplugd.pid", dir);
	struct service_pidfile *p;
	char buf[32] = "";
	pid_t pid = 0;
	int fd;
	struct stat st;

	ck_assert_int_eq(service_pidfile_running(path, &pid), 0);
	p = service_pidfile_write(path);
	ck_assert_ptr_nonnull(p);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
	close(fd);
	ck_assert_int_eq(atoi(buf), getpid());
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0644);

	/* held: flock locks belong to the open file, so another open of it
	 * (here, in the same process) sees the lock */
	ck_assert_int_eq(service_pidfile_running(path, &pid), 1);
	ck_assert_int_eq(pid, getpid());

	service_pidfile_remove(p);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(service_pidfile_running(path, &pid), 0);
	free(path);
	scratch_remove(dir);
}
END_TEST

START_TEST(pidfile_stale_and_replaced)
{
	char *dir = scratch_new("pidfile");
	char *path = xasprintf("%s/vmplugd.pid", dir);
	char *other = xasprintf("%s/other", dir);
	struct service_pidfile *p;
	pid_t pid = 0;
	FILE *f;

	/* a file no one holds is stale, whatever pid it names */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	ck_assert_int_eq(service_pidfile_running(path, &pid), 0);

	/* replaced behind our back: the newer file is not removed */
	p = service_pidfile_write(path);
	ck_assert_ptr_nonnull(p);
	f = fopen(other, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(rename(other, path), 0);
	service_pidfile_remove(p);
	ck_assert_int_eq(access(path, F_OK), 0);
	service_pidfile_remove(NULL);

	/* no directory: NULL and errno */
	free(path);
	path = xasprintf("%s/no/such/dir/pid", dir);
	ck_assert_ptr_null(service_pidfile_write(path));
	ck_assert_int_eq(errno, ENOENT);
	free(path);
	free(other);
	scratch_remove(dir);
}
END_TEST

static Suite *service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("service");

#ifdef HAVE_SYSTEMD
	tcase_add_test(tc, ready_reloading_stopping);
	tcase_add_test(tc, status_is_sent_when_it_changes_at_most_once_per_interval);
	tcase_add_test(tc, watchdog_pings_come_from_the_loop);
#endif
	tcase_add_test(tc, without_a_service_manager_nothing_is_sent);
	tcase_add_test(tc, pidfile_written_locked_and_removed);
	tcase_add_test(tc, pidfile_stale_and_replaced);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(service_suite)

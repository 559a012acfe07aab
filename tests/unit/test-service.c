/* Unit tests for the pid file of daemon/service. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/service.h"
#include "tests/lib/testlib.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

START_TEST(pidfile_written_locked_and_removed)
{
	char *dir = scratch_new("pidfile");
	char *path = xasprintf("%s/vmplugd.pid", dir);
	struct service_pidfile *p;
	char buf[32] = "";
	pid_t pid = 0, child;
	int fd, status;
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

	/* another process sees it held (flock: not within one process) */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pid_t got = 0;

		_exit(service_pidfile_running(path, &got) == 1 && got == getppid() ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

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

	tcase_add_test(tc, pidfile_written_locked_and_removed);
	tcase_add_test(tc, pidfile_stale_and_replaced);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(service_suite)

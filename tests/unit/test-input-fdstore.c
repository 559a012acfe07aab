/* Unit tests for input/fdstore with the service manager played by the
 * test: LISTEN_FDS/LISTEN_FDNAMES for what is passed in at start, and a
 * datagram socket as NOTIFY_SOCKET for what is handed over. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "input/fdstore.h"
#include "tests/unit/check-main.h"
#include "util/util.h"

#ifdef HAVE_SYSTEMD
/* Put fds at 3, 4, 5 (SD_LISTEN_FDS_START) with these names. */
static void pass_fds(const char *names, int n)
{
	char pid[32], count[16];

	for (int i = 0; i < n; i++) {
		int fd = open("/dev/null", O_RDONLY);

		ck_assert_int_ge(fd, 0);
		if (fd != 3 + i) {
			ck_assert_int_eq(dup2(fd, 3 + i), 3 + i);
			close(fd);
		}
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	snprintf(count, sizeof(count), "%d", n);
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", count, 1);
	setenv("LISTEN_FDNAMES", names, 1);
}

/* Runs in a child of its own: fds 3 to 5 are taken over, and the test
 * framework may be using them. Returns the number of the first failed
 * check, 0 if all held. */
static int take_in_child(void)
{
	struct input_fdstore_entry *e = NULL;
	size_t n;

	pass_fds("vmplug-pc-kbd:control:vmplug-pc-mouse", 3);
	n = input_fdstore_take("vmplug-", &e);
	if (n != 2)
		return 1;
	if (!streq(e[0].name, "vmplug-pc-kbd") || e[0].fd != 3)
		return 2;
	if (!streq(e[1].name, "vmplug-pc-mouse") || e[1].fd != 5)
		return 3;
	if (!(fcntl(3, F_GETFD) & FD_CLOEXEC) || !(fcntl(5, F_GETFD) & FD_CLOEXEC))
		return 4;
	/* what is not ours stays open, and the environment stays */
	if (fcntl(4, F_GETFD) < 0)
		return 5;
	if (!getenv("LISTEN_FDNAMES"))
		return 6;
	input_fdstore_entries_free(e, n);
	unsetenv("LISTEN_FDS");
	if (input_fdstore_take("vmplug-", &e) != 0 || e)
		return 7;
	return 0;
}

START_TEST(take_only_our_names)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(take_in_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_msg(WEXITSTATUS(status) == 0, "check %d failed", WEXITSTATUS(status));
}
END_TEST

START_TEST(push_and_remove_talk_to_the_service_manager)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[256], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int sock, pipefd[2], got = -1;
	ssize_t n;

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(input_fdstore_push("vmplug-pc-kbd", 0), 0);
	ck_assert_int_eq(input_fdstore_remove("vmplug-pc-kbd"), 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/vmplug-notify-%d", (int)getpid());
	unlink(sa.sun_path);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	ck_assert_int_eq(pipe(pipefd), 0);

	ck_assert_int_eq(input_fdstore_push("vmplug-pc-kbd", pipefd[1]), 1);
	n = recvmsg(sock, &msg, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "FDSTORE=1\nFDNAME=vmplug-pc-kbd");
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(&got, CMSG_DATA(c), sizeof(got));
	/* the descriptor handed over is the same pipe */
	ck_assert_int_ge(got, 0);
	ck_assert_int_eq(write(got, "x", 1), 1);
	ck_assert_int_eq(read(pipefd[0], buf, 1), 1);
	ck_assert_int_eq(buf[0], 'x');

	ck_assert_int_eq(input_fdstore_remove("vmplug-pc-kbd"), 1);
	n = recv(sock, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_str_eq(buf, "FDSTOREREMOVE=1\nFDNAME=vmplug-pc-kbd");

	unsetenv("NOTIFY_SOCKET");
	unlink(sa.sun_path);
	close(got);
	close(pipefd[0]);
	close(pipefd[1]);
	close(sock);
}
END_TEST
#else
START_TEST(without_libsystemd_nothing_happens)
{
	struct input_fdstore_entry *e = NULL;

	ck_assert_int_eq(input_fdstore_push("vmplug-pc-kbd", 0), 0);
	ck_assert_int_eq(input_fdstore_remove("vmplug-pc-kbd"), 0);
	ck_assert_uint_eq(input_fdstore_take("vmplug-", &e), 0);
	ck_assert_ptr_null(e);
}
END_TEST
#endif

static Suite *fdstore_suite(void)
{
	Suite *s = suite_create("input-fdstore");
	TCase *tc = tcase_create("fdstore");

#ifdef HAVE_SYSTEMD
	tcase_add_test(tc, take_only_our_names);
	tcase_add_test(tc, push_and_remove_talk_to_the_service_manager);
#else
	tcase_add_test(tc, without_libsystemd_nothing_happens);
#endif
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(fdstore_suite)

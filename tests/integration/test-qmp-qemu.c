/* The QMP client against the real QEMU: handshake, commands, fd passing,
 * SIGKILL and restart through inotify, and `quit`. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qmp/qmp.h"
#include "tests/integration/check-qemu.h"
#include "tests/lib/recorder.h"
#include "tests/lib/testlib.h"
#include "util/util.h"

#define WAIT_MS 10000

static char *dir;
static struct loop *loop;
static struct qemu *qemu;
static struct qmp *client;

static void setup(void)
{
	dir = scratch_new("qmp-qemu");
	loop = loop_new();
	rec_reset();
	qemu = qemu_start(dir, "vm", NULL);
	ck_assert_msg(qemu != NULL, "QEMU did not start");
}

static void teardown(void)
{
	qmp_free(client);
	client = NULL;
	qemu_free(qemu);
	qemu = NULL;
	loop_free(loop);
	scratch_remove(dir);
}

static void start_client(uint64_t backoff)
{
	struct qmp_opts opts = { .name = "vm qemu",
				 .socket_path = qemu->qmp_path,
				 .backoff_min_usec = backoff,
				 .backoff_max_usec = backoff };

	client = qmp_new(loop, &opts, &rec_qmp_callbacks, NULL);
	ck_assert_ptr_nonnull(client);
}

static bool connected_n(void *n)
{
	return rec_up_n(n) && qmp_is_connected(client);
}

/* Run a command and wait for its completion. */
static void run_cmd(const char *cmd, json_t *args, struct rec_reply *p)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(qmp_command(client, cmd, args, NULL, rec_qmp_reply, p), 0);
	ck_assert(run_until(loop, rec_reply_done, p, WAIT_MS));
}

START_TEST(handshake_and_commands)
{
	const struct qmp_version *v;
	struct rec_reply p;
	int one = 1;

	start_client(0);
	ck_assert(run_until(loop, connected_n, &one, WAIT_MS));
	v = qmp_version(client);
	ck_assert_int_ge(v->major, 1);
	ck_assert(*v->package);
	printf("# QEMU %d.%d.%d (%s)\n", v->major, v->minor, v->micro, v->package);

	run_cmd("query-status", NULL, &p);
	ck_assert_int_eq(p.err, 0);
	ck_assert_str_eq(p.ret,
			 "{\"running\":false,\"singlestep\":false,\"status\":\"prelaunch\"}");

	/* QEMU's own refusals come back as -EREMOTEIO with its words. */
	run_cmd("query-usb", NULL, &p);
	ck_assert_int_eq(p.err, -EREMOTEIO);
	ck_assert_str_eq(p.desc, "CommandNotFound: The command query-usb has not been found");
	run_cmd("device_del", json_pack("{s:s}", "id", "nope"), &p);
	ck_assert_str_eq(p.desc, "DeviceNotFound: Device 'nope' not found");
	ck_assert_int_eq(rec.gone, 0);
}
END_TEST

START_TEST(add_fd_passes_a_descriptor)
{
	struct qmp_command_opts o = { .fd = -1, .ret_type = QMP_RET_OBJECT };
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct rec_reply p = { 0 };
	json_t *sets;
	char *text;
	int one = 1;

	start_client(0);
	ck_assert(run_until(loop, connected_n, &one, WAIT_MS));
	/* Without a descriptor QEMU refuses. */
	run_cmd("add-fd", NULL, &p);
	ck_assert_str_eq(p.desc, "GenericError: No file descriptor supplied via SCM_RIGHTS");

	memset(&p, 0, sizeof(p));
	o.fd = fd;
	ck_assert_int_eq(qmp_command(client, "add-fd", json_pack("{s:s}", "opaque", "vmplug-t"), &o,
				     rec_qmp_reply, &p),
			 0);
	close(fd);
	ck_assert(run_until(loop, rec_reply_done, &p, WAIT_MS));
	ck_assert_int_eq(p.err, 0);
	ck_assert(strstr(p.ret, "\"fdset-id\":"));
	sets = qemu_check_return(qemu, "query-fdsets", NULL);
	text = json_dumps(sets, JSON_COMPACT);
	ck_assert_msg(strstr(text, "\"opaque\":\"vmplug-t\""), "fdsets: %s", text);
	free(text);
	json_decref(sets);
}
END_TEST

START_TEST(sigkill_and_restart_through_inotify)
{
	int one = 1, two = 2;

	/* A reconnect delay of an hour: only inotify can bring it back. */
	start_client(3600 * USEC_PER_SEC);
	ck_assert(run_until(loop, connected_n, &one, WAIT_MS));
	ck_assert_int_ge(qemu_kill(qemu, SIGKILL), 0);
	ck_assert(run_until(loop, rec_gone_n, &one, WAIT_MS));
	ck_assert_msg(streq(rec.reason, "EOF") || streq(rec.reason, "Connection reset by peer"),
		      "reason: %s", rec.reason);
	/* The stale socket is still there; QEMU replaces it when it starts. */
	ck_assert_int_eq(access(qemu->qmp_path, F_OK), 0);
	run_for(loop, 20);
	ck_assert(!qmp_is_connected(client));
	ck_assert_int_eq(qemu_restart(qemu), 0);
	ck_assert(run_until(loop, connected_n, &two, WAIT_MS));
	ck_assert_str_eq(rec.order, "up gone up ");
}
END_TEST

START_TEST(quit_sends_shutdown_then_closes)
{
	struct rec_reply p = { 0 };
	int one = 1;
	int status;

	start_client(0);
	ck_assert(run_until(loop, connected_n, &one, WAIT_MS));
	ck_assert_int_eq(qmp_command(client, "quit", NULL, NULL, rec_qmp_reply, &p), 0);
	ck_assert(run_until(loop, rec_gone_n, &one, WAIT_MS));
	/* SHUTDOWN comes before the reply; the reply may be lost to the
	 * close (EOF or ECONNRESET), but it completes before the disconnect. */
	ck_assert(p.done);
	ck_assert_msg(p.err == 0 || p.err == -ENOTCONN, "quit: %d", p.err);
	ck_assert_str_eq(rec.order, "up ev:SHUTDOWN+data gone ");
	status = qemu_wait(qemu, WAIT_MS);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* QEMU removed its socket: the client waits for it quietly. */
	run_for(loop, 100);
	ck_assert_int_eq(rec.up, 1);
	ck_assert_int_ne(access(qemu->qmp_path, F_OK), 0);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("qmp-qemu");
	TCase *tc = tcase_create("qemu");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, handshake_and_commands);
	tcase_add_test(tc, add_fd_passes_a_descriptor);
	tcase_add_test(tc, sigkill_and_restart_through_inotify);
	tcase_add_test(tc, quit_sends_shutdown_then_closes);
	suite_add_tcase(s, tc);
	return s;
}

QEMU_CHECK_MAIN(suite)

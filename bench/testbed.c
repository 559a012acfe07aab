/* Benchmarks on a fake USB tree: setup and uevent times (see testbed.h). */
#include "config.h"

#include "bench/testbed.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench/benchlib.h"
#include "tests/integration/usbbed.h"
#include "util/util.h"

static uint64_t uevent_time;
static bool uevent_armed, uevent_holding;
static unsigned long uevent_waits;

/* A uevent held back: its bytes and the listener's socket path. */
struct held {
	char *path;
	char *data;
	size_t len;
};
static struct held *held;
static size_t n_held;

static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);

static ssize_t send_waiting(int fd, const struct msghdr *msg, int flags)
{
	ssize_t r;

	if (uevent_armed) {
		uevent_time = bench_realtime_usec();
		uevent_armed = false;
	}
	while ((r = real_sendmsg(fd, msg, flags)) < 0 && errno == EAGAIN) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		uevent_waits++;
		poll(&p, 1, 100);
	}
	return r;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	const struct sockaddr_un *to = msg->msg_name;
	struct held *h;
	size_t len = 0;

	if (!real_sendmsg)
		real_sendmsg = (ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT,
										  "sendmsg");
	if (!uevent_holding || !to || to->sun_family != AF_UNIX)
		return send_waiting(fd, msg, flags);
	h = xappend(&held, &n_held, sizeof(*held));
	h->path = xstrdup(to->sun_path);
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	h->data = xmalloc(len ? len : 1);
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		memcpy(h->data + h->len, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
		h->len += msg->msg_iov[i].iov_len;
	}
	return (ssize_t)len;
}

void bench_uevent_hold(void)
{
	uevent_holding = true;
}

void bench_uevent_release(void)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	uevent_holding = false;
	for (size_t i = 0; i < n_held; i++) {
		struct sockaddr_un to = { .sun_family = AF_UNIX };
		struct iovec iov = { held[i].data, held[i].len };
		struct msghdr m = {
			.msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1
		};

		snprintf(to.sun_path, sizeof(to.sun_path), "%s", held[i].path);
		/* a listener that went away is skipped, as umockdev does */
		if (fd >= 0)
			send_waiting(fd, &m, 0);
		free(held[i].path);
		free(held[i].data);
	}
	if (fd >= 0)
		close(fd);
	free(held);
	held = NULL;
	n_held = 0;
}

void bench_uevent_arm(void)
{
	uevent_time = 0;
	uevent_armed = true;
}

uint64_t bench_uevent_time(void)
{
	uevent_armed = false;
	return uevent_time;
}

unsigned long bench_uevent_waits(void)
{
	return uevent_waits;
}

void bench_testbed_setup(char **argv)
{
	const char *preload = getenv("LD_PRELOAD");

	if (!(preload && strstr(preload, "libumockdev-preload"))) {
		if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0) {
			int fd = open("/proc/sys/net/unix/max_dgram_qlen", O_WRONLY | O_CLOEXEC);

			if (fd < 0 || write(fd, "4096\n", 5) != 5)
				fprintf(stderr, "bench: cannot deepen the uevent queues: %s\n",
					strerror(errno));
			if (fd >= 0)
				close(fd);
		}
	}
	usbbed_reexec(argv);
}

static int pad[256];
static int n_pad;

void bench_fd_pad(int n)
{
	while (n_pad < n && n_pad < (int)(sizeof(pad) / sizeof(pad[0]))) {
		/* not /dev/null: the umockdev preload keeps a small table of /dev opens */
		int fd = open("/proc/self/exe", O_RDONLY);

		if (fd < 0)
			break;
		pad[n_pad++] = fd;
	}
}

void bench_fd_unpad(void)
{
	while (n_pad > 0)
		close(pad[--n_pad]);
}

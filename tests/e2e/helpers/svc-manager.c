/* svc-manager: play systemd's part for one Type=notify service with a
 * file descriptor store, for e2e scenarios: NOTIFY_SOCKET, FDSTORE=1 and
 * FDSTOREREMOVE=1 kept as systemd keeps them, and restarts that pass the
 * stored descriptors back with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STORED 64
#define MAX_NAMES 16
#define LISTEN_FDS_START 3

struct stored {
	char *name;
	int fd;
};

static struct stored store[MAX_STORED];
static size_t n_store;
static const char *watch_names[MAX_NAMES];
static size_t n_watch;

static void usage(FILE *f)
{
	fprintf(f, "usage: svc-manager [-n INPUT-NAME]... SOCKET COMMAND [ARG...]\n"
		   "Runs COMMAND with NOTIFY_SOCKET=SOCKET as systemd runs a Type=notify\n"
		   "service with a file descriptor store, and prints what happens:\n"
		   "  each message's lines, then \"--\"\n"
		   "  \"svc started PID FDS NAMES\" when COMMAND starts (FDS passed to it)\n"
		   "  \"svc stored NAME\" / \"svc removed NAME\" for FDSTORE=1 / FDSTOREREMOVE=1\n"
		   "  \"svc exited STATUS\" when COMMAND ends (exit code, or \"signal N\")\n"
		   "  with -n, at READY=1: \"svc at-ready NAME /dev/input/eventN\", or\n"
		   "  \"svc at-ready NAME missing\", for the input device called NAME, looked\n"
		   "  up the moment READY=1 arrives\n"
		   "SIGUSR1 restarts COMMAND (SIGTERM, wait, start again with the stored\n"
		   "descriptors at fd 3 on, as LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES say).\n"
		   "SIGTERM stops COMMAND, then svc-manager.\n");
}

/* The /dev/input/eventN of the input device called name, or NULL. */
static char *input_node(const char *name)
{
	DIR *d = opendir("/sys/class/input");
	struct dirent *e;
	char *node = NULL;

	if (!d)
		return NULL;
	while (!node && (e = readdir(d))) {
		char path[512], got[256];
		DIR *sub;
		struct dirent *s;
		FILE *f;

		if (strncmp(e->d_name, "input", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/class/input/%s/name", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(got, sizeof(got), f))
			got[0] = '\0';
		fclose(f);
		got[strcspn(got, "\n")] = '\0';
		if (strcmp(got, name) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/class/input/%s", e->d_name);
		sub = opendir(path);
		while (sub && (s = readdir(sub))) {
			struct stat st;

			if (strncmp(s->d_name, "event", 5) != 0)
				continue;
			snprintf(path, sizeof(path), "/dev/input/%s", s->d_name);
			if (stat(path, &st) == 0 && S_ISCHR(st.st_mode))
				node = strdup(path);
			break;
		}
		if (sub)
			closedir(sub);
	}
	closedir(d);
	return node;
}

/* The value of KEY= in a notify message, NULL if absent; *len its length. */
static const char *field(const char *msg, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	for (const char *p = msg; *p;) {
		size_t ll = strcspn(p, "\n");

		if (ll > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			*len = ll - kl - 1;
			return p + kl + 1;
		}
		p += ll;
		if (*p)
			p++;
	}
	return NULL;
}

static void handle(const char *msg, int *fds, size_t n_fds)
{
	size_t len = 0;
	const char *v, *name = field(msg, "FDNAME", &len);
	char fdname[256] = "stored";

	printf("%s\n--\n", msg);
	if (name && len < sizeof(fdname)) {
		memcpy(fdname, name, len);
		fdname[len] = '\0';
	}
	v = field(msg, "FDSTORE", &len);
	if (v && len == 1 && *v == '1') {
		for (size_t i = 0; i < n_fds; i++) {
			if (n_store == MAX_STORED) {
				close(fds[i]);
				continue;
			}
			store[n_store].name = strdup(fdname);
			store[n_store++].fd = fds[i];
			printf("svc stored %s\n", fdname);
		}
		n_fds = 0;
	}
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	v = field(msg, "FDSTOREREMOVE", &len);
	if (v && len == 1 && *v == '1') {
		for (size_t i = 0; i < n_store;) {
			if (strcmp(store[i].name, fdname) != 0) {
				i++;
				continue;
			}
			close(store[i].fd);
			free(store[i].name);
			store[i] = store[--n_store];
			printf("svc removed %s\n", fdname);
		}
	}
	v = field(msg, "READY", &len);
	if (v && len == 1 && *v == '1') {
		for (size_t i = 0; i < n_watch; i++) {
			char *node = input_node(watch_names[i]);

			printf("svc at-ready %s %s\n", watch_names[i], node ? node : "missing");
			free(node);
		}
	}
	fflush(stdout);
}

static void receive(int sock)
{
	char buf[4096];
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MAX_STORED)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = &ctl,
		.msg_controllen = sizeof(ctl),
	};
	int fds[MAX_STORED];
	size_t n_fds = 0;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

	if (n < 0)
		return;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; i < k && n_fds < MAX_STORED; i++)
			memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	handle(buf, fds, n_fds);
}

static pid_t start(const char *sock, char **argv, const sigset_t *mask)
{
	char names[4096] = "";
	pid_t pid;

	for (size_t i = 0; i < n_store; i++) {
		if (i)
			strncat(names, ":", sizeof(names) - strlen(names) - 1);
		strncat(names, store[i].name, sizeof(names) - strlen(names) - 1);
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("svc-manager: fork");
		exit(1);
	}
	if (pid == 0) {
		int moved[MAX_STORED];
		char buf[32];

		/* Out of the way first, then down to 3, 4, ...: the copies
		 * dup2 makes are inherited (no FD_CLOEXEC). */
		for (size_t i = 0; i < n_store; i++) {
			moved[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC,
					 LISTEN_FDS_START + (int)n_store);
			if (moved[i] < 0)
				_exit(127);
		}
		for (size_t i = 0; i < n_store; i++)
			if (dup2(moved[i], LISTEN_FDS_START + (int)i) < 0)
				_exit(127);
		setenv("NOTIFY_SOCKET", sock, 1);
		if (n_store) {
			snprintf(buf, sizeof(buf), "%zu", n_store);
			setenv("LISTEN_FDS", buf, 1);
			snprintf(buf, sizeof(buf), "%d", (int)getpid());
			setenv("LISTEN_PID", buf, 1);
			setenv("LISTEN_FDNAMES", names, 1);
		} else {
			unsetenv("LISTEN_FDS");
			unsetenv("LISTEN_PID");
			unsetenv("LISTEN_FDNAMES");
		}
		sigprocmask(SIG_UNBLOCK, mask, NULL);
		execvp(argv[0], argv);
		fprintf(stderr, "svc-manager: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	printf("svc started %d %zu %s\n", (int)pid, n_store, n_store ? names : "-");
	fflush(stdout);
	return pid;
}

/* Reap the child if it ended; true if it did. */
static bool reaped(pid_t pid)
{
	int status;

	if (pid <= 0 || waitpid(pid, &status, WNOHANG) != pid)
		return false;
	if (WIFEXITED(status))
		printf("svc exited %d\n", WEXITSTATUS(status));
	else
		printf("svc exited signal %d\n", WTERMSIG(status));
	fflush(stdout);
	return true;
}

/* SIGTERM the child and wait for it, reading messages meanwhile (it may
 * still talk: STOPPING=1, FDSTOREREMOVE=1). */
static void stop(int sock, int sfd, pid_t pid)
{
	struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (!reaped(pid)) {
		if (poll(p, 2, 100) <= 0)
			continue;
		if (p[0].revents & POLLIN)
			receive(sock);
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			(void)!read(sfd, &si, sizeof(si));
		}
	}
	/* what it said last, after it went */
	p[1].fd = -1;
	while (poll(p, 1, 0) > 0)
		receive(sock);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct pollfd p[2];
	sigset_t mask;
	int opt, sock, sfd;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+n:h")) != -1) {
		switch (opt) {
		case 'n':
			if (n_watch == MAX_NAMES) {
				fprintf(stderr, "svc-manager: at most %d -n\n", MAX_NAMES);
				return 2;
			}
			watch_names[n_watch++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind < 2 || strlen(argv[optind]) >= sizeof(addr.sun_path)) {
		usage(stderr);
		return 2;
	}
	strcpy(addr.sun_path, argv[optind]);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "svc-manager: %s: %s\n", argv[optind], strerror(errno));
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("svc-manager: signalfd");
		return 1;
	}
	pid = start(argv[optind], argv + optind + 1, &mask);
	p[0] = (struct pollfd){ .fd = sock, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (;;) {
		struct signalfd_siginfo si;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("svc-manager: poll");
			return 1;
		}
		if (p[0].revents & POLLIN)
			receive(sock);
		if (!(p[1].revents & POLLIN) || read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGCHLD:
			if (reaped(pid))
				pid = 0;
			break;
		case SIGUSR1:
			stop(sock, sfd, pid);
			pid = start(argv[optind], argv + optind + 1, &mask);
			break;
		default:
			stop(sock, sfd, pid);
			unlink(argv[optind]);
			return 0;
		}
	}
}

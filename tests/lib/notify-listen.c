/* notify-listen: play the service manager's end of sd_notify(3) for shell
 * tests: bind a datagram socket and print each message received. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char buf[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: notify-listen SOCKET\n"
				"Binds SOCKET (a path) and prints every datagram received on it,\n"
				"each followed by a line \"--\", until killed. Descriptors passed\n"
				"with a message (FDSTORE=1) are dropped.\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "notify-listen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		/* no control buffer: passed descriptors are closed by the kernel */
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "notify-listen: recv: %s\n", strerror(errno));
			return 1;
		}
		buf[n] = '\0';
		printf("%s\n--\n", buf);
		fflush(stdout);
	}
}

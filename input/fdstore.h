/* The service manager's fd store (systemd: FDSTORE=1, FDNAME=): sink
 * descriptors handed over so that a restart of vmplugd keeps the uinput
 * nodes QEMU holds, and taken back on start. Built without libsystemd, or
 * not started by systemd, every call does nothing. */
#pragma once

#include <stddef.h>

struct input_fdstore_entry {
	char *name;
	int fd;
};

/* Hand a duplicate of fd to the store under name. 1 if the service
 * manager took it, 0 if there is none to take it, -errno. */
int input_fdstore_push(const char *name, int fd);
/* Drop (and close) what the store keeps under name. 1, 0 (no manager), -errno. */
int input_fdstore_remove(const char *name);
/* The descriptors passed in at start whose names start with prefix; the
 * caller owns the array, the names and the fds. Others (socket
 * activation) stay open for their owners, and the environment stays;
 * libsystemd makes every passed descriptor close-on-exec. Returns how
 * many; *out is NULL when none. */
size_t input_fdstore_take(const char *prefix, struct input_fdstore_entry **out);
void input_fdstore_entries_free(struct input_fdstore_entry *e, size_t n);

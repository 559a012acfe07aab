/* Sink descriptors in the service manager's fd store (see fdstore.h). */
#include "config.h"

#include "input/fdstore.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "util/util.h"

#ifdef HAVE_SYSTEMD
int input_fdstore_push(const char *name, int fd)
{
	char *msg = xasprintf("FDSTORE=1\nFDNAME=%s", name);
	int r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);

	free(msg);
	return r;
}

int input_fdstore_remove(const char *name)
{
	return sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
}

size_t input_fdstore_take(const char *prefix, struct input_fdstore_entry **out)
{
	struct input_fdstore_entry *e = NULL;
	char **names = NULL;
	size_t n = 0;
	int count;

	*out = NULL;
	count = sd_listen_fds_with_names(0, &names);
	for (int i = 0; i < count; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (!names || !names[i] || !startswith(names[i], prefix))
			continue;
		e = xrealloc(e, (n + 1) * sizeof(*e));
		e[n].name = xstrdup(names[i]);
		e[n].fd = fd;
		n++;
	}
	strv_free(names);
	*out = e;
	return n;
}
#else
int input_fdstore_push(const char *name, int fd)
{
	return 0;
}

int input_fdstore_remove(const char *name)
{
	return 0;
}

size_t input_fdstore_take(const char *prefix, struct input_fdstore_entry **out)
{
	*out = NULL;
	return 0;
}
#endif

void input_fdstore_entries_free(struct input_fdstore_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* One inotify instance per loop, shared by every directory watch on it
 * (see dirwatch.h). Watches of the same directory get the same kernel
 * watch descriptor; the kernel watch is removed with the last of them. */
#include "config.h"

#include "loop/dirwatch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/list.h"
#include "util/log.h"
#include "util/util.h"

#define MASK (IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct shared {
	struct list link; /* in instances */
	struct loop *loop;
	int fd;
	struct loop_source *src;
	struct list watches; /* struct dirwatch, live and dead */
	unsigned live;       /* watches not removed */
	unsigned depth;      /* > 0 while events are being delivered */
};

struct dirwatch {
	struct list link;
	struct shared *sh;
	int wd; /* -1 once the kernel dropped it (IN_IGNORED) */
	dirwatch_fn fn;
	void *data;
	bool dead;
};

/* Every loop that has watches; the daemon has one loop, tests a few. */
static struct list instances = { &instances, &instances };

/* The loop's inotify instance, NULL while it has no watch. */
static struct shared *find_shared(const struct loop *loop)
{
	struct shared *sh;

	list_for_each(sh, &instances, link)
		if (sh->loop == loop)
			return sh;
	return NULL;
}

/* Does a live watch still share wd? Then the kernel watch must stay. */
static bool wd_in_use(const struct shared *sh, int wd)
{
	const struct dirwatch *w;

	list_for_each(w, &sh->watches, link)
		if (!w->dead && w->wd == wd)
			return true;
	return false;
}

/* Close the instance once its last watch is gone. */
static void shared_free(struct shared *sh)
{
	list_remove(&sh->link);
	loop_source_remove(sh->src);
	closep(&sh->fd);
	free(sh);
}

/* Free what was removed while events were delivered, and the instance
 * with its last watch. */
static void collect(struct shared *sh)
{
	struct dirwatch *w, *tmp;

	if (sh->depth > 0)
		return;
	list_for_each_safe(w, tmp, &sh->watches, link)
		if (w->dead) {
			list_remove(&w->link);
			free(w);
		}
	if (sh->live == 0)
		shared_free(sh);
}

/* Deliver one event to every live watch of its descriptor. Watches added
 * by a callback are at the tail with a new descriptor or the same one;
 * either way they only see later events of it, which is what a fresh
 * watch would see. */
static void deliver(struct shared *sh, const struct inotify_event *ev)
{
	struct dirwatch *w;
	struct list *end = sh->watches.prev; /* the last watch before delivery */

	for (struct list *l = sh->watches.next; l != &sh->watches; l = l->next) {
		w = container_of(l, struct dirwatch, link);
		if (!w->dead && w->wd == ev->wd)
			w->fn(w, ev, w->data);
		if (l == end)
			break;
	}
	if (ev->mask & IN_IGNORED)
		list_for_each(w, &sh->watches, link)
			if (w->wd == ev->wd)
				w->wd = -1;
}

/* Deliver everything readable; watches removed meanwhile are freed after (collect()). */
static void on_read(struct loop_source *src, int fd, uint32_t revents, void *data)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct shared *sh = data;
	ssize_t n;

	sh->depth++;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			deliver(sh, ev);
		}
	}
	if (n < 0 && errno != EAGAIN && errno != EINTR)
		log_warning("inotify: read: %s", strerror(errno));
	sh->depth--;
	collect(sh);
}

struct dirwatch *dirwatch_add(struct loop *loop, const char *dir, dirwatch_fn fn, void *data)
{
	struct shared *sh = find_shared(loop);
	struct dirwatch *w;
	int wd, err;

	if (!sh) {
		sh = xnew(struct shared);
		list_init(&sh->watches);
		sh->loop = loop;
		sh->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (sh->fd < 0) {
			err = errno;
			free(sh);
			errno = err;
			return NULL;
		}
		sh->src = loop_add_fd(loop, sh->fd, EPOLLIN, on_read, sh);
		if (!sh->src) {
			err = errno;
			close(sh->fd);
			free(sh);
			errno = err;
			return NULL;
		}
		list_insert_tail(&instances, &sh->link);
	}
	/* Every watch asks for the same events, so adding the same
	 * directory again keeps the kernel watch as it is. */
	wd = inotify_add_watch(sh->fd, dir, MASK);
	if (wd < 0) {
		err = errno;
		collect(sh); /* frees an instance made for this watch */
		errno = err;
		return NULL;
	}
	w = xnew(struct dirwatch);
	w->sh = sh;
	w->wd = wd;
	w->fn = fn;
	w->data = data;
	list_insert_tail(&sh->watches, &w->link);
	sh->live++;
	return w;
}

void dirwatch_remove(struct dirwatch *w)
{
	struct shared *sh;

	if (!w || w->dead)
		return;
	sh = w->sh;
	w->dead = true;
	sh->live--;
	if (w->wd >= 0 && !wd_in_use(sh, w->wd))
		inotify_rm_watch(sh->fd, w->wd); /* EINVAL if the kernel dropped it */
	collect(sh);
}

int dirwatch_fd(const struct loop *loop)
{
	const struct shared *sh = find_shared(loop);

	return sh ? sh->fd : -1;
}

unsigned dirwatch_kernel_watches(const struct loop *loop)
{
	const struct shared *sh = find_shared(loop);
	char path[64], line[512];
	unsigned n = 0;
	FILE *f;

	if (!sh)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", sh->fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "inotify wd:", 11) == 0)
			n++;
	fclose(f);
	return n;
}

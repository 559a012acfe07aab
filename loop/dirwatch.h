/* Watching directories for entries that appear, with one inotify
 * instance per event loop shared by every watcher on it.
 *
 * Each QMP client waits for its VM's socket to appear. An inotify
 * instance each would cost one per VM against the kernel's per-user limit
 * (fs.inotify.max_user_instances, 128 by default, shared with every other
 * program running as root), so a host with a hundred VMs could not watch
 * them all. Watches of the same directory share one kernel watch. */
#pragma once

#include <sys/inotify.h>

#include "loop/loop.h"

struct dirwatch;

/* One event of the watched directory: IN_CREATE, IN_MOVED_TO or
 * IN_ATTRIB with ev->name set, or IN_DELETE_SELF / IN_MOVE_SELF /
 * IN_IGNORED when the directory itself went away (the watch is then
 * dead: remove it and watch again). The callback may remove any watch,
 * its own included, and add new ones. */
typedef void (*dirwatch_fn)(struct dirwatch *w, const struct inotify_event *ev, void *data);

/* Watch the directory `dir` (which must exist). NULL with errno set when
 * inotify refuses (no such directory, limits). */
struct dirwatch *dirwatch_add(struct loop *loop, const char *dir, dirwatch_fn fn, void *data);
/* Stop watching and free (deferred while events are being delivered).
 * NULL is a no-op. */
void dirwatch_remove(struct dirwatch *w);

/* For tests: the inotify fd shared on `loop` (-1 if none) and how many
 * kernel watches it holds. */
int dirwatch_fd(const struct loop *loop);
unsigned dirwatch_kernel_watches(const struct loop *loop);

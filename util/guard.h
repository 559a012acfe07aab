/* A guard for an object whose callbacks may free it: the object counts
 * the entries from the loop running inside it (an fd ready, a timer, a
 * reply), and a free asked for meanwhile only marks it dead; its memory
 * goes when the outermost entry returns. Code that ran a callback checks
 * `dead` before touching the object again. */
#pragma once

#include <stdbool.h>

struct guard {
	unsigned depth; /* entries running */
	bool dead;      /* freed by its owner: nothing may start any more */
};

static inline void guard_enter(struct guard *g)
{
	g->depth++;
}

/* Leave an entry: true when the object died inside and this was the
 * outermost entry, so its memory must be released now. */
static inline bool guard_leave(struct guard *g)
{
	return --g->depth == 0 && g->dead;
}

/* The owner frees the object: true when no entry is running and its
 * memory may be released at once; otherwise the outermost guard_leave()
 * will say so. */
static inline bool guard_kill(struct guard *g)
{
	g->dead = true;
	return g->depth == 0;
}

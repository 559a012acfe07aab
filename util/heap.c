/* The deadline heap (heap.h). */
#include "config.h"

#include "util/heap.h"

#include <stdlib.h>

#include "util/util.h"

/* Earlier key first; equal keys in the order they were armed. */
static bool before(const struct heap_node *a, const struct heap_node *b)
{
	return a->key < b->key || (a->key == b->key && a->order < b->order);
}

/* Store n at i and remember i in n, so heap_remove() needs no search. */
static void put(struct heap *h, size_t i, struct heap_node *n)
{
	h->v[i] = n;
	n->index = i;
}

static void sift_up(struct heap *h, size_t i)
{
	struct heap_node *n = h->v[i];

	while (i > 0 && before(n, h->v[(i - 1) / 2])) {
		put(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	put(h, i, n);
}

static void sift_down(struct heap *h, size_t i)
{
	struct heap_node *n = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->len)
			break;
		if (c + 1 < h->len && before(h->v[c + 1], h->v[c]))
			c++;
		if (!before(h->v[c], n))
			break;
		put(h, i, h->v[c]);
		i = c;
	}
	put(h, i, n);
}

void heap_insert(struct heap *h, struct heap_node *n)
{
	if (h->len == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	put(h, h->len++, n);
	sift_up(h, n->index);
}

/* The last node fills n's slot and is sifted into place. */
void heap_remove(struct heap *h, struct heap_node *n)
{
	size_t i = n->index;
	struct heap_node *last;

	if (i == HEAP_NONE)
		return;
	last = h->v[--h->len];
	n->index = HEAP_NONE;
	if (last == n)
		return;
	put(h, i, last);
	sift_up(h, i);
	sift_down(h, last->index);
}

void heap_arm(struct heap *h, struct heap_node *n, uint64_t key)
{
	heap_remove(h, n);
	n->key = key;
	if (!key)
		return;
	n->order = ++h->seq;
	heap_insert(h, n);
}

void heap_clear(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}

/* An intrusive binary min-heap of deadlines: each node remembers its
 * slot, so a node is moved or taken out from anywhere in O(log n) with no
 * search. Equal keys come out in the order they were armed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE SIZE_MAX

struct heap_node {
	uint64_t key;   /* 0: not armed */
	uint64_t order; /* arming order, the tie-break among equal keys */
	size_t index;   /* HEAP_NONE unless in the heap */
};

struct heap {
	struct heap_node **v;
	size_t len, cap;
	uint64_t seq; /* the last order handed out */
};

static inline void heap_node_init(struct heap_node *n)
{
	n->key = 0;
	n->index = HEAP_NONE;
}

static inline bool heap_node_queued(const struct heap_node *n)
{
	return n->index != HEAP_NONE;
}

/* The node with the earliest key, NULL when the heap is empty. */
static inline struct heap_node *heap_top(const struct heap *h)
{
	return h->len ? h->v[0] : NULL;
}

/* Put n in with the key and order it has (a node taken out and put back
 * keeps its place among equal keys). */
void heap_insert(struct heap *h, struct heap_node *n);
/* Take n out, wherever it is; a node not in the heap is a no-op. */
void heap_remove(struct heap *h, struct heap_node *n);
/* Set n's key and put it in as armed last among equal keys; key 0 takes
 * it out. */
void heap_arm(struct heap *h, struct heap_node *n, uint64_t key);
/* Free the heap's storage (its nodes are the caller's). */
void heap_clear(struct heap *h);

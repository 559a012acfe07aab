/* The intrusive hash table (hash.h). */
#include "config.h"

#include "util/hash.h"

#include <stdlib.h>

#include "util/util.h"

/* Move every link into 2^k buckets, n of them. */
static void rehash(struct hash *h, size_t n)
{
	struct hash_link **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < h->n_buckets; i++) {
		struct hash_link *l = h->buckets[i], *next;

		for (; l; l = next) {
			next = l->next;
			l->next = b[l->hash & (n - 1)];
			b[l->hash & (n - 1)] = l;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->n_buckets = n;
}

void hash_insert(struct hash *h, struct hash_link *l, uint32_t hash)
{
	struct hash_link **b;

	if (h->len >= h->n_buckets)
		rehash(h, h->n_buckets ? 2 * h->n_buckets : 16);
	b = &h->buckets[hash & (h->n_buckets - 1)];
	l->hash = hash;
	l->next = *b;
	*b = l;
	h->len++;
}

void hash_remove(struct hash *h, struct hash_link *l)
{
	struct hash_link **p = &h->buckets[l->hash & (h->n_buckets - 1)];

	while (*p != l)
		p = &(*p)->next;
	*p = l->next;
	l->next = NULL;
	h->len--;
}

void hash_clear(struct hash *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->n_buckets = h->len = 0;
}

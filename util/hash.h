/* An intrusive hash table, chained, for lookups by a key the caller
 * hashes (str_hash() for strings): the table holds links and their
 * hashes; which link matches a key is the caller's test, in the walk of
 * hash_for_each_match(). It doubles past one link per bucket on average,
 * so a lookup stays O(1) whatever it holds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/list.h"

struct hash_link {
	struct hash_link *next;
	uint32_t hash;
};

struct hash {
	struct hash_link **buckets;
	size_t n_buckets; /* 0 or a power of two */
	size_t len;
};

/* Add l under hash (several links may share one). */
void hash_insert(struct hash *h, struct hash_link *l, uint32_t hash);
/* Take l out; it must be in h. */
void hash_remove(struct hash *h, struct hash_link *l);
/* Free the buckets (the links are the caller's). */
void hash_clear(struct hash *h);

/* The first link of hash's bucket (NULL: none); the walk skips links of other hashes. */
static inline struct hash_link *hash_bucket(const struct hash *h, uint32_t hash)
{
	return h->n_buckets ? h->buckets[hash & (h->n_buckets - 1)] : NULL;
}

/* Every entry `pos` (a pointer to the type holding `member`) stored under hashval. */
#define hash_for_each_match(pos, h, hashval, member)                                               \
	for (struct hash_link *hash_l_ = hash_bucket((h), (hashval)); hash_l_;                     \
	     hash_l_ = hash_l_->next)                                                              \
		if (hash_l_->hash == (hashval) &&                                                  \
		    ((pos) = container_of(hash_l_, __typeof__(*(pos)), member), 1))

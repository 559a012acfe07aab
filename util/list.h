/* Intrusive doubly-linked list (the wayland/libinput shape). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct list {
	struct list *prev;
	struct list *next;
};

static inline void list_init(struct list *l)
{
	l->prev = l;
	l->next = l;
}

static inline void list_insert_tail(struct list *head, struct list *elm)
{
	elm->next = head;
	elm->prev = head->prev;
	head->prev->next = elm;
	head->prev = elm;
}

static inline void list_remove(struct list *elm)
{
	elm->prev->next = elm->next;
	elm->next->prev = elm->prev;
	elm->next = elm->prev = elm;
}

static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define list_for_each(pos, head, member)                                                           \
	for (pos = container_of((head)->next, __typeof__(*pos), member); &pos->member != (head);   \
	     pos = container_of(pos->member.next, __typeof__(*pos), member))

#define list_for_each_safe(pos, tmp, head, member)                                                 \
	for (pos = container_of((head)->next, __typeof__(*pos), member),                           \
	    tmp = container_of(pos->member.next, __typeof__(*pos), member);                        \
	     &pos->member != (head);                                                               \
	     pos = tmp, tmp = container_of(pos->member.next, __typeof__(*pos), member))

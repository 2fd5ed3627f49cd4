/*
 * list.h - intrusive circular doubly-linked lists, after the kernel's
 * <linux/list.h>: embed a struct list_node in the object, find the object
 * back with container_of(). Not thread-safe: the owner of a list says which
 * lock protects it.
 */
#ifndef UZSWAP_LIST_H
#define UZSWAP_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list_node {
	struct list_node *prev;
	struct list_node *next;
};

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define LIST_INIT(name) { &(name), &(name) }

static inline void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static inline bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

static inline void list_add_between(struct list_node *n,
				    struct list_node *prev,
				    struct list_node *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

/* Add @n at the head of @head. */
static inline void list_add(struct list_node *n, struct list_node *head)
{
	list_add_between(n, head, head->next);
}

/* Add @n at the tail of @head. */
static inline void list_add_tail(struct list_node *n, struct list_node *head)
{
	list_add_between(n, head->prev, head);
}

/* Unlink @n; it then points to itself, so list_del() twice is harmless. */
static inline void list_del(struct list_node *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	list_init(n);
}

#define list_for_each(pos, head) \
	for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_for_each_safe(pos, tmp, head)                          \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif /* UZSWAP_LIST_H */

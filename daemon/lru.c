/*
 * lru.c - a client's page LRU as a ring of fault-in records; see lru.h.
 *
 * The ring doubles when full (under its lock: the fault thread appending
 * at that moment pays for the copy, O(records), once per doubling). It
 * never shrinks while the client lives; records are 16 bytes, and there
 * are at most about as many live records as fault-in blocks of resident
 * pages, plus stale ones the evictor has not reached yet.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/common/debug.h"
#include "../lib/common/failpoint.h"
#include "lru.h"

#define LRU_INITIAL_CAP 256

void lru_init(struct lru *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
}

void lru_destroy(struct lru *l)
{
	free(l->recs);
	pthread_mutex_destroy(&l->lock);
}

/* Double the ring, keeping the records in order; lock held. */
static int lru_grow(struct lru *l)
{
	size_t cap = l->cap ? 2 * l->cap : LRU_INITIAL_CAP;
	size_t n = l->head - l->tail, i;
	struct lru_rec *recs;

	assert_held(&l->lock);
	if (failpoint_hit() || !(recs = malloc(cap * sizeof(*recs))))
		return -ENOMEM;
	for (i = 0; i < n; i++)
		recs[i] = l->recs[(l->tail + i) & (l->cap - 1)];
	free(l->recs);
	l->recs = recs;
	l->cap = cap;
	l->tail = 0;
	l->head = n;
	return 0;
}

int lru_add(struct lru *l, uint64_t region_id, uint32_t first,
	    uint16_t npages)
{
	struct lru_rec *rec;
	int ret = 0;

	pthread_mutex_lock(&l->lock);
	if (l->head - l->tail == l->cap)
		ret = lru_grow(l);
	if (ret == 0) {
		rec = &l->recs[l->head++ & (l->cap - 1)];
		rec->region_id = region_id;
		rec->first = first;
		rec->npages = npages;
		rec->stamp = l->stamp++;
		ret = rec->stamp;
	}
	pthread_mutex_unlock(&l->lock);
	return ret;
}

size_t lru_peek(struct lru *l, struct lru_rec *recs, size_t max)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	for (n = 0; n < max && l->tail + n != l->head; n++)
		recs[n] = l->recs[(l->tail + n) & (l->cap - 1)];
	pthread_mutex_unlock(&l->lock);
	return n;
}

size_t lru_records(struct lru *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->head - l->tail;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void lru_consume(struct lru *l, const struct lru_rec *rec, uint16_t npages)
{
	struct lru_rec *t;

	pthread_mutex_lock(&l->lock);
	if (l->head != l->tail) {
		t = &l->recs[l->tail & (l->cap - 1)];
		if (t->region_id == rec->region_id && t->first == rec->first &&
		    t->stamp == rec->stamp) {
			if (npages >= t->npages) {
				l->tail++;
			} else {
				t->first += npages;
				t->npages -= npages;
			}
		}
	}
	pthread_mutex_unlock(&l->lock);
}

/*
 * lru.h - a client's page LRU, kept as a log of fault-ins.
 *
 * No access bits are visible from user space, so recency comes from the
 * fault stream (DESIGN.md, "LRU and the scanner"): a page enters the LRU
 * when it is faulted in. Each fault-in (a block of up to FAULT_BLOCK_PAGES
 * pages of one region, filled by one ioctl) appends one record at the head
 * of the client's ring; the evictor takes records from the tail, which
 * are thus the least recently faulted-in pages, already in address runs —
 * what the batched eviction protocol wants. A page remembers the 16-bit
 * stamp of its latest record, so a record whose page was evicted and
 * faulted in again since (and so has a newer record) is recognized as
 * stale and skipped.
 *
 * The active list: a page that refaults soon after its eviction (its
 * refault distance — evictions of the client in between — is under the
 * client's budget, as the kernel's workingset detection compares it with
 * the active list) is marked PAGE_ACTIVE. When the evictor reaches an
 * active page it clears the mark and appends a fresh record instead of
 * evicting: the page gets one more trip through the LRU.
 *
 * Private to uzswapd.
 */
#ifndef UZSWAPD_LRU_H
#define UZSWAPD_LRU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One fault-in: @npages pages of region @region_id from page @first. */
struct lru_rec {
	uint64_t region_id;
	uint32_t first;
	uint16_t npages;
	uint16_t stamp;
};

/*
 * struct lru - the ring of fault-in records of one client
 * @lock:  protects everything below
 * @recs:  ring storage, @cap records (a power of two)
 * @head:  records appended so far (monotonic; index = head & (cap - 1))
 * @tail:  records consumed so far
 * @stamp: the next record's stamp
 */
struct lru {
	pthread_mutex_t lock;
	struct lru_rec *recs;
	size_t cap;
	size_t head;
	size_t tail;
	uint16_t stamp;
};

void lru_init(struct lru *l);
void lru_destroy(struct lru *l);

/*
 * lru_add() - record that @npages pages from @first of region @region_id
 * were faulted in. Return: the stamp to give those pages, or -ENOMEM if
 * the ring could not grow (the pages are then not on the LRU: they stay
 * resident until touched again). Any thread; O(1) amortized.
 */
int lru_add(struct lru *l, uint64_t region_id, uint32_t first,
	    uint16_t npages);

/* Copy up to @max records from the tail on into @recs. Return: how
 * many. */
size_t lru_peek(struct lru *l, struct lru_rec *recs, size_t max);

/* How many records the ring holds (stale ones included). */
size_t lru_records(struct lru *l);

/* Drop @npages pages from the front of the tail record (the whole record
 * when it has no more), if the tail is still @rec's record. */
void lru_consume(struct lru *l, const struct lru_rec *rec, uint16_t npages);

#endif /* UZSWAPD_LRU_H */
